"""The fix search's point check on concrete sizes, before any symbolic inference.

A candidate edit that a few sizes prove incomplete (a size the edited graph's layers accept where
the merge still fails) need not be re-inferred symbolically unless it is shown at all. Here the
edited graph's rules run on integers: the solved graph's dims and failing conditions evaluated once
per size are reused for every node the edit leaves unchanged (``shapes.merge_failures_reusing``),
so only the nodes whose concrete dims change are re-run, on integers.

The check is sound, not complete: it answers True only when, at one of the sizes, every layer
condition of the edited graph holds (for every symbol: the others are set to the smallest size
where the solved graph runs) and the merge's own axis fails, so the symbolic point check
(``_fixes._fails_at``) answers True too. Any doubt (a condition relating two symbols in the graph,
an edit that inserts a node, a rule that rejects the sizes) answers False, and the caller falls
back to the symbolic check.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from convgraph import dims as D
from convgraph.errors import ConvGraphError
from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, Shape, ShapeResult, merge_failures_reusing

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Merge, Solution

#: edit kinds the check handles: one layer's spec changed, nothing inserted
KINDS = ("padding", "ceil_mode", "output_padding")

Base = tuple[dict[str, Shape], dict[str, list[Constraint]]]


def point_fails(sol: Solution, m: Merge, kind: str, graph: Graph, axis: int, sizes: Iterable[int]) -> bool:
    """True when at one of ``sizes`` (of the merge's symbol) the edited ``graph`` accepts the size
    and the merge fails on shape position ``axis``; False when it does not or cannot tell."""
    if kind not in KINDS:
        return False
    others = _others(sol, m.one_symbol)
    if others is None:
        return False
    for x in sizes:
        base = _base(sol, {**others, m.one_symbol: x})
        if base is not None and _fails(sol.result, base, m, graph, axis):
            return True
    return False


def _fails(res: ShapeResult, base: Base, m: Merge, graph: Graph, axis: int) -> bool:
    values, failing = base
    old = {n.name: n for n in res.graph.nodes}

    def reuse(node: Node, got: Mapping[str, Shape]) -> tuple[Shape, Sequence[Constraint]] | None:
        prev = old.get(node.name)
        same = (prev is node or prev == node) and all(got[i] == values[i] for i in node.inputs)
        return (values[node.name], failing.get(node.name, [])) if same else None

    try:
        failed = merge_failures_reusing(graph, reuse)
    except (ConvGraphError, ArithmeticError, ValueError):
        return False
    if any(c.kind != "merge" for c in failed):
        return False
    label, value = f"dim {axis}", m.constraint.value
    return any(c is m.constraint or (c.value == value and c.axis == label and isinstance(c.lhs, int))
               for c in failed)


def _others(sol: Solution, n: str) -> dict[str, int] | None:
    """The smallest size where the solved graph runs, for every symbol but ``n``; None when some
    condition relates two symbols or some symbol has no such size."""
    got = _OTHERS.get(id(sol))
    if got is None or got[0] is not sol:
        got = _OTHERS[id(sol)] = (sol, _smallest(sol))
        while len(_OTHERS) > 8:
            _OTHERS.pop(next(iter(_OTHERS)))
    sizes = got[1]
    if sizes is None:
        return None
    return {k: v for k, v in sizes.items() if k != n}


def _smallest(sol: Solution) -> dict[str, int] | None:
    if any(len(c.symbols) > 1 for c in sol.result.constraints):
        return None
    out = {}
    for name in sol.result.sym_names:
        s = sol.symbols.get(name)
        x = s.runs.min if s is not None else None
        if x is None:
            return None
        out[name] = x
    return out


_OTHERS: dict[int, tuple[Solution, dict[str, int] | None]] = {}


def _base(sol: Solution, env: dict[str, int]) -> Base | None:
    """The solved graph's concrete dims at ``env`` and its failing conditions per node; None when
    an ``assume`` fails there."""
    key = (id(sol), tuple(sorted(env.items())))
    got = _BASES.get(key)
    if got is not None and got[0] is sol:
        return got[1]
    res, base = sol.result, None
    if all(c.holds(env) for c in res.constraints if c.kind == "assume"):
        values = {k: tuple(D.evaluate(d, env) for d in v) for k, v in res.values.items()}
        failing: dict[str, list[Constraint]] = {}
        for c in res.constraints:
            if c.kind not in ("assume", "expect") and not c.holds(env):
                failing.setdefault(c.value, []).append(c)
        base = (values, failing)
    if len(_BASES) > 256:
        _BASES.clear()
    _BASES[key] = (sol, base)
    return base


_BASES: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[Solution, Base | None]] = {}
