"""The fix search's partial-fix check reads an edited merge's conditions off the nodes that merge
reads (``_lazy.edited_merge``) and rules out a condition that holds nowhere from its flat form
(``_conditions.never_holds``): checked against inferring the whole edited graph (``shapes.infer``)
and against the exact condition sets and evaluation."""
from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solver_graphs import bench
from test_fix_search_reference import _int_nodes, unet_like

from convgraph import dims as D
from convgraph.errors import ConvGraphError
from convgraph.ir import Graph, Node
from convgraph.shapes import infer, node_failures, rule_failures
from convgraph.solve import _fixes, solve
from convgraph.solve._conditions import never_holds
from convgraph.solve._lazy import edited_merge
from convgraph.solve._sets import condition_set


def _conditions(conds: object, value: str) -> list[tuple]:
    return [(c.lhs, c.op, c.rhs, c.kind, c.axis) for c in conds if c.value == value]  # type: ignore[attr-defined]


def _check_every_edit(graph: Graph) -> int:
    """For every in-place candidate edit of every failing merge: the merge's conditions from
    ``edited_merge`` are those of the whole edited graph inferred (the solved graph's own when it
    says none changed); where it raises, so does the inference. Returns how many were compared."""
    sol = solve(graph)
    pos = {n.name: i for i, n in enumerate(graph.nodes)}
    seen = 0
    for m in sol.merges:
        if m.verdict not in ("classes", "never") or m.symbol is None or m.constraint.kind != "merge":
            continue
        value = m.constraint.value
        for cand in _fixes._candidates(sol, m):
            if cand.edited is None:
                continue
            try:
                got = edited_merge(sol, pos, cand.edited, value)
            except ConvGraphError:
                try:
                    infer(cand.graph)
                except ConvGraphError:
                    continue
                raise AssertionError(f"{cand.edit}: edited_merge raised, the inference did not") from None
            try:
                want = infer(cand.graph).constraints
            except ConvGraphError:
                continue  # the whole graph fails at every size: the caller's answer is None either way
            expected = _conditions(want, value)
            assert _conditions(sol.result.constraints if got is None else got, value) == expected, cand.edit
            seen += 1
    return seen


def test_edited_merge_equals_inference_on_a_stride_nest() -> None:
    """Edits deep on the down path (read by the merge only through a skip) and near the merge."""
    assert _check_every_edit(bench.nest([2, 3, 2, 3, 2], "nest", c=2)) > 50


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(unet_like())
def test_edited_merge_equals_inference_on_random_graphs(graph: Graph) -> None:
    _check_every_edit(graph)


#: (multiplier, denominator) pairs by slope: a side ``m*floor((x + b)/d) + c`` has slope m/d
_SIDES = {Fraction(1, 2): [(1, 2), (2, 4), (3, 6)], Fraction(1, 3): [(1, 3), (2, 6)], Fraction(1): [(1, 1), (2, 2)]}


@st.composite
def _flat_conditions(draw: st.DrawFn) -> tuple[D.Dim, str, D.Dim]:
    """``m*floor((x + b)/d) + c op m'*floor((x + b')/d') + c'``, the two slopes equal half the time
    (a periodic condition, the kind a merge has)."""
    x = D.sym("x")
    slopes = list(_SIDES)

    def side(slope: Fraction) -> D.Dim:
        m, d = draw(st.sampled_from(_SIDES[slope]))
        return D.lower(D.add(D.mul(D.floordiv(D.add(x, draw(st.integers(-5, 5))), d), m), draw(st.integers(-8, 8))))

    s1 = draw(st.sampled_from(slopes))
    s2 = s1 if draw(st.booleans()) else draw(st.sampled_from(slopes))
    return side(s1), draw(st.sampled_from(["==", ">=", ">", "<=", "<", "!="])), side(s2)


@settings(max_examples=400, deadline=None)
@given(_flat_conditions())
def test_never_holds_only_where_no_size_holds(cond: tuple[D.Dim, str, D.Dim]) -> None:
    lhs, op, rhs = cond
    if never_holds(lhs, op, rhs):
        assert condition_set(lhs, op, rhs, "x").sizes.empty
        assert not any(D.compare(D.evaluate(lhs, {"x": v}), op, D.evaluate(rhs, {"x": v})) for v in range(-40, 200))


def test_never_holds_decides_the_nest_edits() -> None:
    """It is not vacuous: ``floor((L + 1)/2) == 3*floor((L + 3)/6) + 6`` (a padding edit two
    strides too far) holds nowhere and is decided so; a condition that holds somewhere is not."""
    x = D.sym("L")
    a = D.lower(D.floordiv(D.add(x, 1), 2))
    b = D.lower(D.add(D.mul(D.floordiv(D.add(x, 3), 6), 3), 6))
    assert never_holds(a, "==", b)
    assert not never_holds(a, "==", D.lower(D.mul(D.floordiv(D.add(x, 3), 6), 3)))
    assert not never_holds(a, "!=", b)


@settings(max_examples=600, deadline=None)
@given(_int_nodes())
def test_int_cat_failures_equal_the_rule(case: tuple[Node, list[tuple[int, ...]]]) -> None:
    """``node_failures`` of a cat on ints is built without running the rule: the same dims and the
    same failing conditions (every field) as the rule under ``_Recording``, or the rule's error."""
    node, inputs = case
    graph = Graph((node,), (node.name,), "<test>")
    try:
        want: tuple | None = rule_failures(graph, node, list(inputs))
    except ConvGraphError:
        want = None
    try:
        got: tuple | None = node_failures(graph, node, list(inputs))
    except ConvGraphError:
        got = None
    assert got == want

