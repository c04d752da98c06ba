"""The fix search's shortcuts only save work: on every model and on random U-Net-like graphs
(strides 2 and 3, skips, crops, transposed convs, different H and W parameters), the fixes and
the grouped skip fixes equal those of the slow, obviously-correct reference path, which re-infers
every candidate graph in full, checks every candidate symbolically (no integer point check, no
pruning, no shared prefix of layer conditions) and verifies every grouped edit by a full
``solve`` of the edited graph."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_solve import B

import convgraph as cg
from convgraph import dims as D
from convgraph.errors import ConvGraphError, LayerConfigError, Loc
from convgraph.ir import Graph, Node
from convgraph.shapes import infer, node_dims, node_failures
from convgraph.solve import _edits, _fixes, _symmetry, solve
from convgraph.solve._sets import condition_set
from convgraph.solve._solve import Solution

MODELS = Path(__file__).resolve().parent.parent / "models"
GRAPH_FILES = sorted(MODELS.glob("*.cg")) + sorted((MODELS / "examples").glob("*.cg"))


@contextmanager
def _reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The reference path: every shortcut of the fix search switched off."""
    with monkeypatch.context() as mp:
        mp.setattr(_fixes, "REFERENCE", True)
        mp.setattr(_fixes, "infer_edited", lambda base, graph: infer(graph))
        mp.setattr(_fixes, "point_fails", lambda *a: False)
        mp.setattr(_fixes, "excludes", lambda *a: False)
        mp.setattr(_fixes, "_common_prefix", lambda base, res: 0)
        mp.setattr(_fixes, "_common_suffix", lambda base, res, k: 0)
        mp.setattr(_fixes, "_INFERRED", {})
        mp.setattr(_edits, "FULL", True)
        yield


def _shown(sol: Solution) -> tuple[list[tuple], list[tuple]]:
    """Everything the fixes and skip fixes show, and the edited graphs' nodes."""
    fixes = [(f.where, f.edit, f.holds, f.complete, f.kind, f.sizes, f.graph.nodes, f.graph.assumes)
             for f in sol.fixes]
    skips = [(f.value, f.where, f.line, f.kind, f.edits, f.edit, f.holds, f.graph.nodes, f.graph.assumes)
             for f in sol.skip_fixes]
    return fixes, skips


def _same_as_reference(make: Callable[[], Graph], monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    fast = _shown(solve(make()))
    with _reference(monkeypatch):
        slow = _shown(solve(make()))
    assert fast == slow
    return fast


@pytest.mark.slow
@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_model_fixes_equal_reference(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_reference(lambda: cg.load(str(path)), monkeypatch)


# --- random U-Net-like graphs ------------------------------------------------------------------

C = 2


Axes = Callable[[st.SearchStrategy[int]], tuple[int, ...]]


def _down(draw: st.DrawFn, axes: Axes, b: B, x: str, nd: int) -> str:
    kind = draw(st.sampled_from(["conv", "maxpool", "avgpool"]))
    s = axes(st.sampled_from([1, 2, 3]))
    if kind == "conv":
        return b.layer(f"Conv{nd}d", x, C, C, axes(st.integers(1, 4)), stride=s, padding=axes(st.integers(0, 2)))
    k = axes(st.integers(2, 3))
    pad = tuple(min(p, kk // 2) for p, kk in zip(axes(st.integers(0, 1)), k))
    return b.layer(f"{'Max' if kind == 'maxpool' else 'Avg'}Pool{nd}d", x, k, stride=s, padding=pad,
                   ceil_mode=draw(st.booleans()))


def _up(draw: st.DrawFn, axes: Axes, b: B, x: str, nd: int) -> str:
    if draw(st.integers(0, 3)) == 0:
        return b.layer("Upsample", x, scale_factor=tuple(float(f) for f in axes(st.sampled_from([2, 3]))))
    s = axes(st.sampled_from([1, 2, 3]))
    op = tuple(min(o, si - 1) for o, si in zip(axes(st.integers(0, 2)), s))
    return b.layer(f"ConvTranspose{nd}d", x, C, C, axes(st.integers(1, 4)), stride=s, padding=axes(st.integers(0, 1)),
                   output_padding=op)


def _same(draw: st.DrawFn, b: B, x: str, nd: int) -> str:
    k = draw(st.sampled_from([1, 3]))
    return b.layer(f"Conv{nd}d", x, C, C, k, padding=draw(st.sampled_from([0, k // 2])))


@st.composite
def unet_like(draw: st.DrawFn) -> Graph:
    """Down and up paths with skips; in 2-D the H and W parameters differ, or (half the time) are
    equal, so that the W merges take their H twins' results (``_fixes.twin_results``)."""
    nd = draw(st.sampled_from([1, 2, 2]))
    square = draw(st.booleans())

    def axes(values: st.SearchStrategy[int]) -> tuple[int, ...]:
        return (draw(values),) * nd if square else tuple(draw(values) for _ in range(nd))

    b = B()
    x = b.input("x", 1, C, *(["L"] if nd == 1 else ["H", "W"]))
    skips = []
    try:
        for _ in range(draw(st.integers(1, 3))):
            x = _same(draw, b, x, nd)
            skips.append(x)
            x = _down(draw, axes, b, x, nd)
        for s in reversed(skips):
            x = _up(draw, axes, b, x, nd)
            op = draw(st.sampled_from(["cat", "cat", "add", "crop"]))
            if op == "crop":
                s = b.merge("crop", s, x)
                op = "cat"
            x = _same(draw, b, b.merge(op, s, x), nd)
        g = b.graph()
        infer(g)
    except (LayerConfigError, cg.ConvGraphError):
        assume(False)
    return g


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(unet_like())
def test_random_fixes_equal_reference(graph: Graph) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_as_reference(lambda: Graph(graph.nodes, graph.outputs, graph.filename, graph.doc, graph.assumes,
                                         graph.expects), monkeypatch)


def test_random_graphs_have_fixes_to_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above is not vacuous: the generator gives graphs with fixes, with skip fixes,
    and with W merges that take their H twins' results."""
    seen = {"fixes": 0, "skips": 0, "twins": 0}
    twin = _fixes.twin_results

    def counted(*args: object) -> object:
        got = twin(*args)  # type: ignore[arg-type]
        seen["twins"] += got is not None
        return got

    monkeypatch.setattr(_fixes, "twin_results", counted)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)  # the same graphs every run: a count, not a search
    @given(unet_like())
    def count(graph: Graph) -> None:
        sol = solve(graph)
        seen["fixes"] += bool(sol.fixes)
        seen["skips"] += bool(sol.skip_fixes)

    count()
    assert min(seen.values()) >= 5, seen


# --- the exact shortcuts under the search ---------------------------------------------------------


def _min_at_least_by_search(d: D.Dim, c: int, lo: int, limit: int) -> int | None:
    """``dims.min_at_least``'s exponential-then-binary search, as written before the direct inversion."""
    f = lambda x: D.evaluate(d, {"x": x})  # noqa: E731
    if f(lo) >= c:
        return lo
    a, hi = lo, lo + 1
    while f(hi) < c:
        if hi > limit:
            return None
        a, hi = hi, lo + 2 * (hi - lo)
    while hi - a > 1:
        mid = (a + hi) // 2
        a, hi = (mid, hi) if f(mid) < c else (a, mid)
    return hi


@st.composite
def floor_chains(draw: st.DrawFn) -> D.Dim:
    d = D.sym("x")
    for _ in range(draw(st.integers(0, 5))):
        d = D.add(D.mul(D.floordiv(d, draw(st.integers(1, 6))), draw(st.integers(1, 3))), draw(st.integers(-6, 6)))
    return D.lower(d)


@settings(max_examples=300, deadline=None)
@given(floor_chains(), st.integers(-50, 5000), st.integers(1, 40), st.one_of(st.just(1 << 62), st.integers(1, 300)))
def test_min_at_least_inversion_equals_search(d: D.Dim, c: int, lo: int, limit: int) -> None:
    assert D.min_at_least(d, c, "x", lo, limit) == _min_at_least_by_search(d, c, lo, limit)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([2, 3, 4, 6, 8, 9, 12, 16, 27, 64, 4096]), st.data())
def test_residue_conditions_equal_evaluation(m: int, data: st.DataObject) -> None:
    """``x % m op c`` (the assume fixes' conditions): the common factor of a split state is divided
    out (``_conditions._flat_scaled``); the set is the same as evaluating every size."""
    c = data.draw(st.integers(-1, m))
    op = data.draw(st.sampled_from(["<=", ">=", "==", "<", ">"]))
    mul = data.draw(st.sampled_from([1, 2, 3]))
    lhs = D.lower(D.mul(D.add(D.sym("x"), D.mul(D.floordiv(D.sym("x"), m), -m)), mul))
    got = condition_set(lhs, op, mul * c, "x").sizes
    want = {x for x in range(1, 3 * m + 50) if D.compare(D.evaluate(lhs, {"x": x}), op, mul * c)}
    assert {x for x in range(1, 3 * m + 50) if x in got} == want


def _skip_net(w_kernel: int, w_pad: int) -> Graph:
    """cat(x, up(down(conv(x)))) with a conv whose W kernel and padding may differ from H's."""
    b = B()
    x = b.input("x", 1, C, "H", "W")
    v = b.layer("Conv2d", x, C, C, (3, w_kernel), padding=(1, w_pad))
    v = b.layer("MaxPool2d", v, 2)
    v = b.layer("ConvTranspose2d", v, C, C, 2, stride=2)
    b.merge("cat", x, v)
    return b.graph()


def test_twins_only_on_a_symmetric_graph() -> None:
    """The W merge takes the H merge's results only when swapping the axes maps the graph onto
    itself: a conv with kernel (3, 5) and padding (1, 2) keeps both sizes alike, yet the graph is
    not symmetric (its padding edits differ), so both merges are searched."""
    for w_kernel, w_pad, twins in ((3, 1, True), (5, 2, False)):
        sol = solve(_skip_net(w_kernel, w_pad))
        (mh, mw) = [m for m in sol.merges if m.verdict in ("classes", "never")]
        assert _symmetry.symmetric(sol.graph, 2, 3, "H", "W") == twins
        ch, cw = list(_fixes._candidates(sol, mh)), list(_fixes._candidates(sol, mw))
        raw = _fixes._check(sol, mh, ch)
        assert (_fixes.twin_results(sol, mw, cw, [(mh, ch, raw)]) is raw) == twins
        if twins:  # a candidate that is not the swapped twin is refused
            assert not _fixes._twins(sol, mh, mw, ch, list(reversed(cw)))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_swapped_spec_check_equals_swapping(data: st.DataObject) -> None:
    """The twin check compares a spec with another's axis swap field by field: the same answer as
    building the swapped spec."""
    from convgraph.front.catalogue import construct

    def conv() -> object:
        pair = lambda lo, hi: (data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi)))  # noqa: E731
        return construct("Conv2d", (C, C, pair(1, 3)), {"stride": pair(1, 2), "padding": pair(0, 1)})

    s, t = conv(), conv()
    for u in (t, _symmetry.swap_spec(s, 0, 1)):  # type: ignore[arg-type]
        assert _symmetry._swapped(s, u, 0, 1) == (_symmetry.swap_spec(s, 0, 1) == u)  # type: ignore[arg-type]


@st.composite
def _int_nodes(draw: st.DrawFn) -> tuple[Node, list[tuple[int, ...]]]:
    """A conv, transposed conv, pool, cat or '+' node on random concrete input dims (asymmetric
    per axis; sometimes sizes or channels where a rule fails)."""
    from convgraph.front.catalogue import construct

    nd = draw(st.integers(1, 3))
    axes = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(nd))  # noqa: E731
    x = (draw(st.integers(1, 3)), draw(st.sampled_from([C, C + 1])), *axes(1, 12))
    loc = Loc("<test>", 1, 1)
    kind = draw(st.sampled_from(["Conv", "ConvTranspose", "MaxPool", "AvgPool", "cat", "add"]))
    if kind in ("cat", "add"):
        other = tuple(v if draw(st.booleans()) else draw(st.integers(1, 12)) for v in x)
        if draw(st.booleans()):
            other = other[:-1]
        return Node("m", kind, ("a", "b"), loc, dim=draw(st.integers(-3, 3))), [x, other]
    k, s, d = axes(1, 4), axes(1, 3), axes(1, 2)
    if kind == "Conv":
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "circular"]))
        spec = construct(f"Conv{nd}d", (C, C, k), {"stride": s, "padding": axes(0, 2), "dilation": d,
                                                   "padding_mode": mode})
    elif kind == "ConvTranspose":
        op = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
        spec = construct(f"ConvTranspose{nd}d", (C, C, k), {"stride": s, "padding": axes(0, 2), "dilation": d,
                                                            "output_padding": op})
    else:
        kw: dict = {"stride": s, "padding": tuple(min(p, a // 2) for p, a in zip(axes(0, 2), k)),
                    "ceil_mode": draw(st.booleans())}
        if kind == "MaxPool":
            kw["dilation"] = d
        spec = construct(f"{kind}{nd}d", (k,), kw)
    return Node("v", "layer", ("a",), loc, layer=spec, layer_name="v"), [x]


@settings(max_examples=600, deadline=None)
@given(_int_nodes())
def test_int_node_dims_equal_the_rules(case: tuple[Node, list[tuple[int, ...]]]) -> None:
    """The point check's plain-int dims (``shapes.node_dims``) are the shape rules' dims where
    every condition holds, and None where one fails (the rules then decide). It answers for every
    conv with zero padding, transposed conv, pool and cat, and for a '+' of equal dims; the rest
    (reflect or circular padding, a broadcast) is left to the rules."""
    node, inputs = case
    graph = Graph((node,), (node.name,), "<test>")
    try:
        want: tuple | None = node_failures(graph, node, list(inputs))
    except ConvGraphError:
        want = None
    got = node_dims(node, inputs)
    holds = want is not None and not want[1]
    assert got is None or (holds and want is not None and got == want[0])
    handled = getattr(node.layer, "padding_mode", "zeros") == "zeros" and (node.op != "add" or inputs[0] == inputs[1])
    assert (got is not None) == (holds and handled)
