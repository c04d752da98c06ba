"""The grouped fixes' shortcut for an edit that only adds assumes (``_incremental.assumed_runs``,
``_edits._assumed_lines``) against solving the edited graph in full: whether it is accepted and
the running sets it states, on the U-Nets' grouped assume fixes and on random assumes."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_graphs import GRAPHS

from convgraph import dims as D
from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import Assume, Graph
from convgraph.solve import _edits, _incremental, solve
from convgraph.solve._report import valid_lines

SOLVED = {name: solve(make()) for name, make in GRAPHS.items()}


def _full(sol: object, value: str, graph: Graph) -> list[str]:
    """What ``_verified`` states for ``graph`` solved in full: [] when it refuses it."""
    try:
        new = solve(graph, tiling=False)
    except ConvGraphError:
        return []
    return valid_lines(new) if new.ok and _edits._holds(sol, new, value) else []  # type: ignore[arg-type]


def _with(graph: Graph, conds: list[tuple[D.Dim, str, D.Dim]]) -> Graph:
    a = Assume(Loc(graph.filename, 1, 0), ", ".join(f"{D.dim_str(x)} {op} {D.dim_str(y)}" for x, op, y in conds),
               tuple(conds))
    return Graph(graph.nodes, graph.outputs, graph.filename, graph.doc, (*graph.assumes, a), graph.expects)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_the_grouped_assume_fixes_read_off_the_solved_graph_state_the_full_solve(name: str) -> None:
    sol = SOLVED[name]
    fixes = [f for f in sol.skip_fixes if f.kind == "assume"]
    for f in fixes:
        got = _edits._assumed_lines(sol, f.value, f.graph)
        if got is not None:
            assert got == _full(sol, f.value, f.graph)
            assert "the edited graph runs for " + "; ".join(got) == f.holds
    if name in ("unet_padded_4", "unet3d_3", "unet.cg"):
        assert fixes and all(_incremental.assumed_runs(sol, f.graph) is not None for f in fixes)


_SYM_CONDS = st.lists(st.tuples(st.sampled_from(["mod", "ge", "le"]), st.integers(2, 64), st.integers(0, 63)),
                      min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(list(GRAPHS)), picks=st.lists(st.tuples(st.integers(0, 3), _SYM_CONDS), min_size=1,
                                                          max_size=3), pick_merge=st.integers(0, 50))
def test_random_assumes_read_off_the_solved_graph_state_the_full_solve(name: str, picks: list, pick_merge: int
                                                                        ) -> None:
    sol = SOLVED[name]
    syms = [n for n in sol.symbols if n != "N"]
    conds: list[tuple[D.Dim, str, D.Dim]] = []
    for i, cs in picks:
        x = D.sym(syms[i % len(syms)])
        for kind, k, r in cs:
            if kind == "mod":
                conds.append((x % k, "<=", r % k))
            else:
                conds.append((x, ">=" if kind == "ge" else "<=", k + r))
    graph = _with(sol.graph, conds)
    values = [m.constraint.value for m in sol.merges if m.constraint.kind == "merge"]
    if not values:
        return
    value = values[pick_merge % len(values)]
    got = _edits._assumed_lines(sol, value, graph)
    if got is not None:
        assert got == _full(sol, value, graph)
