"""The fix search's point check on concrete sizes, before any symbolic inference.

A candidate edit that a few sizes prove incomplete (a size the edited graph's layers accept where
the merge still fails) need not be re-inferred symbolically unless it is shown at all. Here the
edited graph's rules run on integers: the solved graph's dims and failing conditions evaluated once
per size are reused for every node the edit leaves unchanged, so only the edited node and the
nodes it feeds whose concrete dims change are re-run, on integers (``shapes.node_failures``, each
remembered per node and input dims: the candidates of one merge feed the same nodes the same dims;
a conv, pool or cat where every condition holds is run on plain ints, ``shapes.node_dims``).
The solved graph's failing conditions at a size are read with a table of each condition's check
made once per solution and symbol (``_checks``).

The check is sound, not complete: it answers True only when, at one of the sizes, every layer
condition of the edited graph holds (for every symbol: the others are set to the smallest size
where the solved graph runs) and the merge's own axis fails, so the symbolic point check
(``_fixes._fails_at``) answers True too. Any doubt (a condition relating two symbols in the graph,
an edit that inserts a node, a rule that rejects the sizes) answers False, and the caller falls
back to the symbolic check.
"""
from __future__ import annotations

import heapq
import operator
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.errors import ConvGraphError
from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, Shape, ShapeResult, node_dims, node_failures

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._sets import EPSet
    from convgraph.solve._solve import Merge, Solution

#: edit kinds the check handles: one layer's spec changed, nothing inserted (a crop: ``crop_fails``)
KINDS = ("padding", "ceil_mode", "output_padding")

#: failing / holding sizes tried at offsets 2**i, i < SPREAD (each costs a run on integers)
SPREAD = 4

#: (concrete dims, failing conditions per node, the nodes among them with a failing condition that
#: is not a merge)
Base = tuple[dict[str, Shape], dict[str, list[Constraint]], tuple[str, ...]]


#: an edit of one layer spec in place: (the node's position in the solved graph, the edited node)
Edited = tuple[int, Node]


def point_fails(sol: Solution, m: Merge, kind: str, edited: Edited | None, axis: int, sizes: Iterable[int]) -> bool:
    """True when at one of ``sizes`` (of the merge's symbol) the graph with the ``edited`` node
    accepts the size and the merge fails on shape position ``axis``; False when it does not or
    cannot tell (any edit that is not one layer spec changed in place: ``edited`` None)."""
    if kind not in KINDS or edited is None:
        return False
    n = m.one_symbol
    for x in sizes:
        base = _base_at(sol, n, x)
        if base is not None and _fails(sol.result, base, m, edited, axis):
            return True
    return False


def _base_at(sol: Solution, n: str, x: int) -> Base | None:
    """``_base`` at ``n = x``, the other symbols at their smallest running size (None when there
    is none): remembered by (solution, symbol, size)."""
    key = (id(sol), n, x)
    got = _AT.get(key)
    if got is None or got[0] is not sol:
        others = _others(sol, n)
        if len(_AT) > 1024:
            _AT.clear()
        got = _AT[key] = (sol, _base(sol, {**others, n: x}, n) if others is not None else None)
    return got[1]


_AT: dict[tuple[int, str, int], tuple[Solution, Base | None]] = {}


def excludes(sol: Solution, m: Merge, kind: str, edited: Edited | None, axis: int, x: int) -> bool:
    """True when, on the graph with the ``edited`` node (an edit of one axis only: padding or
    output_padding), ``x`` is provably not a size where the merge holds: a layer rejects it or the
    merge fails. False when it holds there or the check cannot tell."""
    others = _others(sol, m.one_symbol) if kind in ("padding", "output_padding") and axis >= 0 else None
    base = _base(sol, {**others, m.one_symbol: x}, m.one_symbol) if others is not None else None
    if base is None or edited is None:
        return False
    try:
        failed = _edited_failures(sol.result, base, edited)
    except ConvGraphError:
        return True  # a layer condition fails: on this axis, the only one the edit changed
    except (ArithmeticError, ValueError):
        return False
    return any(c.kind != "merge" for c in failed) or _merge_failed(failed, m, axis)


def _run(res: ShapeResult, runs: dict, node: Node, inputs: tuple[Shape, ...]) -> tuple[Shape, Sequence[Constraint]]:
    """``shapes.node_failures`` of a node of the solved graph on these input dims, remembered (the
    error too: the rules are pure functions of the node and its input dims)."""
    key = (node.name, inputs)
    got = runs.get(key)
    if got is None:
        dims = node_dims(node, inputs)  # every condition holds: nothing recorded
        if dims is not None:
            got = runs[key] = (dims, ())
            return got
        try:
            got = runs[key] = node_failures(res.graph, node, list(inputs))
        except ConvGraphError as e:
            got = runs[key] = e
    if isinstance(got, ConvGraphError):
        raise got
    return got


def _runs(res: ShapeResult) -> dict:
    """The memo of ``_run`` for one solved graph."""
    got = _RUNS.get(id(res))
    if got is None or got[0] is not res:
        got = _RUNS[id(res)] = (res, {})
        while len(_RUNS) > 4:
            _RUNS.pop(next(iter(_RUNS)))
    if len(got[1]) > 1 << 16:
        got[1].clear()
    return got[1]


_RUNS: dict[int, tuple[ShapeResult, dict]] = {}


def _merge_failed(failed: list[Constraint], m: Merge, axis: int, value: str = "") -> bool:
    label, value = f"dim {axis}", value or m.constraint.value
    return any(c is m.constraint or (c.value == value and c.axis == label and isinstance(c.lhs, int))
               for c in failed)


def changed_at(before: Graph, after: Graph) -> int | None:
    """The index of the one node of ``after`` that is not the solved graph's (an edit of one layer
    spec in place); None for any other edit."""
    if len(after.nodes) != len(before.nodes) or after.assumes != before.assumes:
        return None
    differs = list(map(operator.is_not, before.nodes, after.nodes))
    return differs.index(True) if differs.count(True) == 1 else None


def probes(m: Merge, first: list[int]) -> list[int]:
    """``first`` (the smallest failing sizes), the smallest holding sizes, then failing and holding
    sizes spread over the classes: the first at or above ``x0 + 2**i`` (``i < SPREAD``). An edit
    that shifts a size by a few steps of some stride fails away from the smallest sizes, or where
    the merge held. Before all of them, the smallest failing size plus ``2**i`` whole periods of the
    failing set (the same class, larger), the largest first: an edit that makes a deep layer reject
    the smallest sizes (padding 0 on a 3x3 conv where the axis is 2) still fails there, and in the
    benchmarks the largest rules out nearly every candidate that any probe rules out."""
    sets = [s for s in (m.fails, m.holds) if s is not None and not s.empty]
    out = list(first) + (m.holds.first(2) if m.holds is not None else [])
    for i in range(1, SPREAD):
        for s in sets:
            out += s.first(1, lo=(s.min or 1) + 2 ** i)
    if first and m.fails is not None and m.fails.modulus > 1:
        shifted = [first[0] + m.fails.modulus * 2 ** i for i in range(SPREAD)]
        out = shifted[::-1] + out  # the order only changes how soon: the largest answers most often
    return list(dict.fromkeys(out))


def alternating(m: Merge, sizes: list[int]) -> list[int]:
    """``sizes`` with those where the merge fails today and those where it holds taken in turn,
    each in their order (``point_fails`` answers whether any of them fails, so the order changes
    only how soon): an output_padding edit of the ConvTranspose that feeds the merge makes it hold
    on a failing class and fail where it held, so a holding size rules it out; one of a deeper
    ConvTranspose moves a deeper merge and leaves this one as it was, so a failing size does."""
    held = m.holds
    if held is None:
        return sizes
    fails, holds = [x for x in sizes if x not in held], [x for x in sizes if x in held]
    out = [x for pair in zip(fails, holds) for x in pair]
    k = min(len(fails), len(holds))
    return out + fails[k:] + holds[k:]


def crop_fails(sol: Solution, m: Merge, graph: Graph, axis: int, sizes: Iterable[int]) -> bool:
    """``point_fails`` for an edit that inserts one node just before the merge's node and feeds it
    to that node in place of an input (a crop, ``inserted``): True when at one of ``sizes``
    (of the merge's symbol) no condition but merges fails on the edited graph, and the merge or
    the inserted node fails on shape position ``axis`` (the inserted node's conditions on that
    axis compare the merge's own operands there: a merge condition of the edit on the merge's
    symbol). The inserted node is run on the solved graph's dims at those sizes, then the merge's
    node with its output in place, then the nodes fed a value whose dims changed (``_fails``).
    False when it does not or cannot tell."""
    got = inserted(sol.graph, graph)
    if got is None:
        return False
    new, edited = got
    n = m.one_symbol
    for x in sizes:
        base = _base_at(sol, n, x)
        if base is not None and _fails(sol.result, base, m, edited, axis, new):
            return True
    return False


def inserted(before: Graph, after: Graph) -> tuple[Node, Edited] | None:
    """(the inserted node, (the position of the node it feeds in the solved graph, that node as
    edited)) when ``after`` is ``before`` with one new node inserted just before a node of
    ``before`` that reads it in place of one of its inputs, every other node the same object;
    None for any other edit."""
    if len(after.nodes) != len(before.nodes) + 1 or after.assumes != before.assumes or \
            after.outputs != before.outputs or after.expects != before.expects:
        return None
    k = next((i for i, (x, y) in enumerate(zip(before.nodes, after.nodes)) if x is not y), len(before.nodes))
    if k >= len(before.nodes) or not all(map(operator.is_, before.nodes[k + 1:], after.nodes[k + 2:])):
        return None
    new, fed, old = after.nodes[k], after.nodes[k + 1], before.nodes[k]
    if new.name in before._index or fed.name != old.name or fed.op != old.op or \
            not all(i in before._index for i in new.inputs) or len(fed.inputs) != len(old.inputs):
        return None
    changed = [(a, b) for a, b in zip(old.inputs, fed.inputs) if a != b]
    if len(changed) != 1 or changed[0][1] != new.name or fed != replace(old, inputs=fed.inputs):
        return None
    return new, (k, fed)


def _fails(res: ShapeResult, base: Base, m: Merge, edited: Edited, axis: int, new: Node | None = None) -> bool:
    """No condition but merges fails on the edited graph at ``base``'s sizes, and the merge fails
    (``_merge_failed`` of ``_edited_failures``, read per node: a condition's node is its value).
    With ``new`` (a node inserted before the edited one, which reads it): that node is run first,
    and its failing merge conditions count as the merge's."""
    try:
        extra, own = _run_new(res, base, new) if new is not None else ({}, [])
        own_failed = new is not None and _merge_failed(own, m, axis, new.name)
        if new is not None and not own_failed and not _fed_fails(res, base, m, edited, axis, extra):
            return False  # neither fails: the answer is False whatever the nodes after give
        ran = _edited_runs(res, base, edited, extra)
    except (ConvGraphError, ArithmeticError, ValueError):
        return False
    failing = base[1]
    for cs in (own, *ran.values()):  # most runs failed nothing: ()
        for c in cs:
            if c.kind != "merge":
                return False
    for name in base[2]:
        if name not in ran:
            return False
    value = m.constraint.value
    return _merge_failed(list(ran[value] if value in ran else failing.get(value, ())), m, axis) or own_failed


def _edited_failures(res: ShapeResult, base: Base, edited: Edited) -> list[Constraint]:
    """``merge_failures_reusing`` on the edited graph (one layer spec changed in place: the solved
    graph with ``edited``) at the sizes of ``base``: every failing condition (``_edited_runs``)."""
    failing = base[1]
    ran = _edited_runs(res, base, edited)
    return [c for name, cs in failing.items() if name not in ran for c in cs] + [c for cs in ran.values() for c in cs]


def _eval(graph: Graph, node: Node, ins: list[Shape]) -> tuple[Shape, Sequence[Constraint]]:
    """``node_failures``, on plain ints first (``node_dims``: every condition holds, nothing recorded)."""
    dims = node_dims(node, ins)
    return (dims, []) if dims is not None else node_failures(graph, node, ins)


def _run_new(res: ShapeResult, base: Base, new: Node) -> tuple[dict[str, Shape], list[Constraint]]:
    """({node: its dims}, its failing conditions) of an inserted node on the dims at ``base``."""
    shape, own = _eval(res.graph, new, [base[0][i] for i in new.inputs])
    return {new.name: shape}, list(own)


def _fed_fails(res: ShapeResult, base: Base, m: Merge, edited: Edited, axis: int, extra: dict[str, Shape]) -> bool:
    """The merge's node (``edited``, reading the inserted node's dims from ``extra``) fails on ``axis``
    at the sizes of ``base``."""
    node = edited[1]
    ins = [extra[i] if i in extra else base[0][i] for i in node.inputs]
    return _merge_failed(list(_eval(res.graph, node, ins)[1]), m, axis)


def _edited_runs(res: ShapeResult, base: Base, edited: Edited, extra: dict[str, Shape] | None = None
                 ) -> dict[str, Sequence[Constraint]]:
    """The failing conditions of the nodes run on the edited graph at the sizes of ``base``: the
    edited node is run, then, in graph order, only the nodes fed a value whose dims changed
    (``_run``: remembered); every other node keeps the solved graph's dims and failing conditions
    at these sizes."""
    values = base[0]
    graph = res.graph
    node = edited[1]
    shape, own = _eval(graph, node, [extra[i] if extra and i in extra else values[i] for i in node.inputs])
    ran: dict[str, Sequence[Constraint]] = {node.name: own}
    changed: dict[str, Shape] = {}
    if shape == values[node.name]:
        return ran
    changed[node.name] = shape
    consumers = _consumers(res)
    todo = list(consumers[node.name])
    heapq.heapify(todo)
    runs, nodes, pop, push = _runs(res), graph.nodes, heapq.heappop, heapq.heappush
    while todo:
        nxt = nodes[pop(todo)]
        name = nxt.name
        if name in ran:
            continue
        # a changed input's base dims were read (and kept) when it was found changed
        inputs = tuple([changed[j] if j in changed else values[j] for j in nxt.inputs])
        got = runs.get((name, inputs))
        shape, ran[name] = got if type(got) is tuple else _run(res, runs, nxt, inputs)
        if shape != values[name]:
            changed[name] = shape
            for k in consumers[name]:
                push(todo, k)
    return ran


def _consumers(res: ShapeResult) -> dict[str, tuple[int, ...]]:
    """Node -> the positions of the nodes it feeds (once per solved graph)."""
    got = _CONSUMERS.get(id(res))
    if got is None or got[0] is not res:
        out: dict[str, list[int]] = {n.name: [] for n in res.graph.nodes}
        for i, n in enumerate(res.graph.nodes):
            for j in dict.fromkeys(n.inputs):
                out[j].append(i)
        got = _CONSUMERS[id(res)] = (res, {k: tuple(v) for k, v in out.items()})
        while len(_CONSUMERS) > 4:
            _CONSUMERS.pop(next(iter(_CONSUMERS)))
    return got[1]


_CONSUMERS: dict[int, tuple[ShapeResult, dict[str, tuple[int, ...]]]] = {}



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


def _base(sol: Solution, env: dict[str, int], n: str) -> Base | None:
    """The solved graph's concrete dims at ``env`` (each node's evaluated when first read) and its
    failing conditions per node; None when an ``assume`` fails there. Only what depends on ``n``
    is evaluated per size; at a size the layers accept (exactly decided), a layer condition on
    ``n`` alone holds and a merge on ``n`` alone fails where its verdict says."""
    key = (id(sol), tuple(sorted(env.items())))
    got = _BASES.get(key)
    if got is not None and got[0] is sol:
        return got[1]
    dims, conds, fixed = _split(sol, n, env)
    base = None
    sizes = sol.symbols.get(n)
    inside = sizes is not None and sizes.decided and env[n] in sizes.layers
    assumes, checks = _checks(sol, n, conds)
    if all(c.holds(env) for c, alone in assumes if not (inside and alone)):
        failing: dict[str, list[Constraint]] = {k: list(v) for k, v in fixed.items()}
        x = env[n]
        for c, alone, fails in checks:
            if inside and alone:  # ``_fails_at_size``, with its per-condition lookups done once
                if c.kind == "size":
                    continue
                if fails is not None:
                    if x in fails:
                        failing.setdefault(c.value, []).append(c)
                    continue
            if not c.holds(env):
                failing.setdefault(c.value, []).append(c)
        odd = tuple(k for k, cs in failing.items() if any(c.kind != "merge" for c in cs))
        base = (_Values(dims, env), failing, odd)
    if len(_BASES) > 256:
        _BASES.clear()
    _BASES[key] = (sol, base)
    return base


Checks = tuple[list[tuple[Constraint, bool]], list[tuple[Constraint, bool, "EPSet | None"]]]


def _checks(sol: Solution, n: str, conds: list[Constraint]) -> Checks:
    """(the assumes among ``conds``, each with whether it is on ``n`` alone; the other conditions
    but expects, each with that and, for a merge on ``n`` alone with a decided verdict, its
    failing set), once per solution and symbol: what ``_fails_at_size`` looks up per size."""
    key = (id(sol), n)
    got = _CHECKS.get(key)
    if got is None or got[0] is not sol:
        verdicts = _verdicts(sol)
        assumes = [(c, c.symbols == {n}) for c in conds if c.kind == "assume"]
        checks = []
        for c in conds:
            if c.kind not in ("assume", "expect"):
                m = verdicts.get(id(c))
                ok = m is not None and m.constraint is c and m.decided and m.fails is not None
                checks.append((c, c.symbols == {n}, m.fails if ok and m is not None else None))
        if len(_CHECKS) > 16:
            _CHECKS.clear()
        got = _CHECKS[key] = (sol, (assumes, checks))
    return got[1]


_CHECKS: dict[tuple[int, str], tuple[Solution, Checks]] = {}


def _fails_at_size(c: Constraint, env: dict[str, int], n: str, inside: bool, verdicts: dict[int, Merge]) -> bool:
    if inside and c.symbols == {n}:
        if c.kind == "size":
            return False
        m = verdicts.get(id(c))
        if m is not None and m.constraint is c and m.decided and m.fails is not None:
            return env[n] in m.fails
    return not c.holds(env)


def _verdicts(sol: Solution) -> dict[int, Merge]:
    """The solved graph's merge verdicts by condition (once per solution)."""
    got = _VERDICTS.get(id(sol))
    if got is None or got[0] is not sol:
        got = _VERDICTS[id(sol)] = (sol, {id(m.constraint): m for m in sol.merges})
        while len(_VERDICTS) > 8:
            _VERDICTS.pop(next(iter(_VERDICTS)))
    return got[1]


_VERDICTS: dict[int, tuple[Solution, dict[int, Merge]]] = {}


class _Values(dict[str, Shape]):
    """Node -> concrete dims at ``env``, each evaluated when first read."""

    def __init__(self, dims: dict[str, list[tuple[Dim, bool]]], env: dict[str, int]):
        super().__init__()
        self.dims, self.env = dims, env

    def __missing__(self, key: str) -> Shape:
        got = self[key] = tuple(D.evaluate(d, self.env) if dep else d for d, dep in self.dims[key])
        return got


Split = tuple[dict[str, list[tuple[Dim, bool]]], list[Constraint], dict[str, list[Constraint]]]


def _split(sol: Solution, n: str, env: dict[str, int]) -> Split:
    """(per node: each dim, evaluated at ``env`` when it does not depend on ``n``, and whether it
    does; the conditions on ``n``; the failing conditions on the other symbols, per node)."""
    key = (id(sol), n)
    got = _SPLITS.get(key)
    if got is None or got[0] is not sol:
        dims = {k: [(d, True) if n in D.symbols(d) else (D.evaluate(d, env), False) for d in v]
                for k, v in sol.result.values.items()}
        conds: list[Constraint] = []
        fixed: dict[str, list[Constraint]] = {}
        for c in sol.result.constraints:
            if n in c.symbols or c.kind == "assume":
                conds.append(c)
            elif c.kind not in ("assume", "expect") and not c.holds(env):
                fixed.setdefault(c.value, []).append(c)
        if len(_SPLITS) > 16:
            _SPLITS.clear()
        got = _SPLITS[key] = (sol, (dims, conds, fixed))
    return got[1]


_SPLITS: dict[tuple[int, str], tuple[Solution, Split]] = {}
_BASES: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[Solution, Base | None]] = {}
