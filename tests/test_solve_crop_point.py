"""The point check of a crop candidate on integers (``_point.crop_fails``, with ``shapes.node_dims``
of a crop) against the shape rule and against verifying the crop."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_graphs import GRAPHS, bench

from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import Graph, Node
from convgraph.shapes import node_dims, node_failures
from convgraph.solve import _fixes, _point, solve


@settings(max_examples=300, deadline=None)
@given(st.integers(3, 5), st.data())
def test_int_crop_dims_equal_the_rule(rank: int, data: st.DataObject) -> None:
    """``node_dims`` of a crop is the rule's dims where every condition holds, None where one fails."""
    dims = st.integers(1, 9)
    v = tuple(data.draw(dims) for _ in range(rank))
    w = tuple(data.draw(dims) for _ in range(data.draw(st.sampled_from([rank, rank, rank - 1]))))
    node = Node("c", "crop", ("a", "b"), Loc("<test>", 1, 1))
    graph = Graph((node,), (node.name,), "<test>")
    try:
        want: tuple | None = node_failures(graph, node, [v, w])
    except ConvGraphError:
        want = None
    got = node_dims(node, [v, w])
    holds = want is not None and not want[1]
    assert (got is not None) == holds and (got is None or want is None or got == want[0])


@pytest.mark.parametrize("name", list(GRAPHS))
def test_crops_ruled_out_on_integers_are_not_complete(name: str) -> None:
    """A crop the integer check rules out has, on its edited graph, a size the layers accept where
    the merge fails: verified, it is not complete. The check answers for some crop of each U-Net."""
    sol = solve(GRAPHS[name]())
    out = 0
    for m in sol.merges:
        if m.symbol is None or m.verdict not in ("classes", "never") or m.fails is None:
            continue
        ax = _fixes._axis_of(sol, m)
        sizes = _point.probes(m, m.fails.first(3))
        for cand in _fixes._candidates(sol, m):
            if cand.kind != "crop" or ax < 0:
                continue
            assert _point.inserted(sol.graph, cand.graph) is not None
            if _point.crop_fails(sol, m, cand.graph, ax, sizes):
                out += 1
                got = _fixes._verify_sets(sol, m, cand)
                assert got is None or not got[1]
    if name in ("unet_padded_4", "unet3d_3", "unet.cg"):
        assert out


def test_inserted_refuses_other_edits() -> None:
    sol = solve(bench.unet(2))
    cands = [c for m in sol.merges if m.symbol is not None and m.verdict == "classes"
             for c in _fixes._candidates(sol, m)]
    for c in cands:
        if c.kind != "crop":
            assert _point.inserted(sol.graph, c.graph) is None
    g = sol.graph
    assert _point.inserted(g, g) is None
    shuffled = Graph((g.nodes[1], g.nodes[0], *g.nodes[2:]), g.outputs, g.filename, g.doc, g.assumes, g.expects)
    assert _point.inserted(g, shuffled) is None
