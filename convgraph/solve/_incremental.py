"""Re-inferring an edited graph: only the nodes an edit changes.

A fix candidate changes one layer, inserts one crop, or adds an ``assume``. Every node that is
the same node as in the solved graph and whose inputs have the same dims has the same dims and
the same constraints as before (the shape rules are pure functions of the node and its input
dims), so those are taken from the solved graph's ``ShapeResult`` and the rules run only on the
rest: the edited node and what it feeds when its dims changed (``shapes.infer_reusing``).
Likewise the layer sets of the edited graph start from the solved graph's intersection over the
conditions the two share (``edited_layers``), and the sizes where it runs from the solved graph's
meets over the merges the two share (``merged_runs``).
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, Known, Shape, ShapeResult, infer_reusing
from convgraph.solve._sets import CondSet, EPSet, condition_set, edited_radix, intersect_all, subset, symbol_radix
from convgraph.solve._sizes import Sizes

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Merge, Solution

_OWN = ("assume", "expect")  # constraint kinds that belong to the graph, not to one node

#: symbolic conditions seen in any candidate graph: kept, or dropped as true for every size
_KNOWN: Known = {}


def _by_node(base: ShapeResult) -> tuple[dict[str, Node], dict[str, list[Constraint]]]:
    """The base graph's nodes and each node's own constraints, by name (once per base result)."""
    got = _BY_NODE.get(id(base))
    if got is None or got[0] is not base:
        out: dict[str, list[Constraint]] = {}
        for c in base.constraints:
            if c.kind not in _OWN:
                out.setdefault(c.value, []).append(c)
        got = _BY_NODE[id(base)] = (base, ({n.name: n for n in base.graph.nodes}, out))
        while len(_BY_NODE) > 8:
            _BY_NODE.pop(next(iter(_BY_NODE)))
    return got[1]


_BY_NODE: dict[int, tuple[ShapeResult, tuple[dict[str, Node], dict[str, list[Constraint]]]]] = {}


def infer_edited(base: ShapeResult, graph: Graph) -> ShapeResult:
    """``shapes.infer(graph)`` for a graph that differs from ``base.graph`` in a few nodes (or in its
    assumes), re-running the rules only where a node or its input dims changed. Remembered on the
    edited graph (the fix search and the grouped fixes' verification infer the same crop graph)."""
    key = (infer_edited, id(base))
    got = graph._memo.get(key)
    if isinstance(got, tuple) and got[0] is base:
        return got[1]
    res = _infer_edited(base, graph)
    graph._memo[key] = (base, res)
    return res


def _infer_edited(base: ShapeResult, graph: Graph) -> ShapeResult:
    old, kept = _by_node(base)
    before = base.values

    def reuse(node: Node, values: Mapping[str, Shape]) -> tuple[Shape, Sequence[Constraint]] | None:
        prev = old.get(node.name)
        same = (prev is node or prev == node) and all(values[i] is before.get(i) or values[i] == before.get(i)
                                                      for i in node.inputs)
        return (before[node.name], kept.get(node.name, [])) if same else None

    return infer_reusing(graph, reuse, _KNOWN, _prefix(base, graph, kept))


def _prefix(base: ShapeResult, graph: Graph, kept: Mapping[str, list[Constraint]]
            ) -> tuple[dict[str, Shape], list[Constraint]]:
    """The dims and constraints of the leading nodes the edited graph shares with the base (the
    same objects): ``reuse`` gives the base's for each (their inputs are leading nodes too)."""
    k, top = 0, min(len(base.graph.nodes), len(graph.nodes))
    while k < top and base.graph.nodes[k] is graph.nodes[k]:
        k += 1
    key = (id(base), k)  # the first k nodes are the base's own: the prefix depends on (base, k) alone
    got = _LEADING.get(key)
    if got is None or got[0] is not base:
        names = [n.name for n in base.graph.nodes[:k]]
        if len(_LEADING) > 64:
            _LEADING.clear()
        got = _LEADING[key] = (base, ({n: base.values[n] for n in names}, [c for n in names for c in kept.get(n, ())]))
    return got[1]  # read only: ``infer_reusing`` copies both


#: ``_prefix`` by (base result, number of leading nodes shared)
_LEADING: dict[tuple[int, int], tuple[ShapeResult, tuple[dict[str, Shape], list[Constraint]]]] = {}


# --- the layer sets of an edited graph --------------------------------------------------------------

Radix = Mapping[str, tuple[int, ...]]
Layers = tuple[EPSet, bool]  # the sizes the layers (and assumes) accept, and whether that is exact


def solved_radix(sol: Solution) -> Mapping[str, tuple[int, ...]]:
    """The solved graph's digit orders (``symbol_radix``, once per solution: memoised on its graph)."""
    return sol.graph.memo((symbol_radix, id(sol.result)), lambda: symbol_radix(sol.result))


def common_prefix(base: Sequence[Constraint], res: Sequence[Constraint]) -> int:
    """How many leading conditions the edited result shares (the same objects) with the base one."""
    k, top = 0, min(len(base), len(res))
    while k < top and base[k] is res[k]:
        k += 1
    return k


def edited_layers(base: ShapeResult, base_rx: Radix, res: ShapeResult, rx: Radix, n: str) -> Layers | None:
    """The layer sets of symbol ``n`` on the edited result ``res``, as ``solve`` meets them: the
    base's intersection over the shared leading conditions, met with the rest. None when the
    edit changed ``n``'s digit order (then the sets are solved afresh)."""
    r = rx.get(n, ())
    if base_rx.get(n, ()) != r:
        return None
    k = common_prefix(base.constraints, res.constraints)
    pre, exact = prefix_layers(base, n, r)[k]
    rest = [condition_set(c.lhs, c.op, c.rhs, n, r) for c in res.constraints[k:]
            if c.kind in ("size", "assume") and c.symbols == {n}]
    return intersect_all([pre, *(cs.sizes for cs in rest)]), exact and all(cs.exact for cs in rest)


def prefix_layers(base: ShapeResult, n: str, r: tuple[int, ...]) -> list[Layers]:
    """[i]: the layer sets of ``n`` over the base result's first i conditions (once per base)."""
    key = (id(base), n, r)
    got = _PREFIX.get(key)
    if got is None or got[0] is not base:
        cur: Layers = (Sizes.all(1), True)
        out = [cur]
        for c in base.constraints:
            if c.kind in ("size", "assume") and c.symbols == {n}:
                cs = condition_set(c.lhs, c.op, c.rhs, n, r)
                cur = (intersect_all([cur[0], cs.sizes]), cur[1] and cs.exact)
            out.append(cur)
        while len(_PREFIX) > 32:
            _PREFIX.pop(next(iter(_PREFIX)))
        got = _PREFIX[key] = (base, out)
    return got[1]


_PREFIX: dict[tuple[int, str, tuple[int, ...]], tuple[ShapeResult, list[Layers]]] = {}


# --- the sizes where an edited graph runs -------------------------------------------------------------


def merged_runs(base: Solution, layers: Mapping[str, EPSet], merges: Sequence[Merge], rx: Radix
                ) -> dict[str, EPSet]:
    """Per symbol: its layer set met with the set of every merge on it alone (the sizes where the
    edited graph runs, before couplings), as ``solve`` meets them. For a symbol whose digit order is
    the base's and whose layer set is the base's or inside it, the merges the two share (the same
    condition objects) at the start and at the end of the list are met from the base's running
    meets, which start from the base's layer set (an intersection does not depend on the order it
    is taken in, and a set inside the base's layer set is unchanged by meeting it)."""
    runs = dict(layers)
    by_symbol: dict[str, list[Constraint]] = {}
    for m in merges:
        if m.symbol is not None:
            by_symbol.setdefault(m.symbol, []).append(m.constraint)
    base_rx = solved_radix(base)
    for n, cs in by_symbol.items():
        r = rx.get(n, ())
        known = n in base.symbols and base_rx.get(n, ()) == r
        same = known and layers[n] == base.symbols[n].layers
        within = same or (known and subset(layers[n], base.symbols[n].layers))
        if not within:
            for c in cs:
                runs[n] = runs[n] & condition_set(c.lhs, c.op, c.rhs, n, r).sizes
            continue
        before, pre, suf = _merge_meets(base, n, r)
        k = common_prefix(before, cs)
        j, top = 0, min(len(before), len(cs)) - k
        while j < top and before[-1 - j] is cs[-1 - j]:
            j += 1
        # the base's meets start from its layer set ([0] is that set alone): a layer set inside it
        # replaces it, and one equal to it is theirs
        meets = [pre[k], suf[j]] if same else [layers[n], *(x for i, x in ((k, pre[k]), (j, suf[j])) if i)]
        runs[n] = intersect_all([*meets, *(condition_set(c.lhs, c.op, c.rhs, n, r).sizes for c in cs[k:len(cs) - j])])
    return runs


def _merge_meets(base: Solution, n: str, r: tuple[int, ...]) -> MergeMeets:
    """(the base's merge conditions on ``n`` in order, [i]: its layer set met with the first i, [j]:
    with the last j), once per base."""
    key = (id(base), n, r)
    got = _MERGE_MEETS.get(key)
    if got is None or got[0] is not base:
        cs = [m.constraint for m in base.merges if m.symbol == n]
        sets = [condition_set(c.lhs, c.op, c.rhs, n, r).sizes for c in cs]
        layers = base.symbols[n].layers
        pre, suf = [layers], [layers]
        for x in sets:
            pre.append(pre[-1] & x)
        for x in reversed(sets):
            suf.append(suf[-1] & x)
        while len(_MERGE_MEETS) > 32:
            _MERGE_MEETS.pop(next(iter(_MERGE_MEETS)))
        got = _MERGE_MEETS[key] = (base, (cs, pre, suf))
    return got[1]


MergeMeets = tuple[list[Constraint], list[EPSet], list[EPSet]]
_MERGE_MEETS: dict[tuple[int, str, tuple[int, ...]], tuple[Solution, MergeMeets]] = {}


# --- symbols whose results are another's, renamed -------------------------------------------------


def edited_mirrors(base: Solution, graph: Graph, rx: Radix) -> dict[str, str]:
    """symbol m -> symbol n for the edited ``graph`` when swapping their shape positions maps it
    onto itself (``_symmetry.mirrors``: a crop or the assumes of both axes of a skip in a
    symmetric graph) and the two share their digit order. Every condition on m alone is then one
    on n alone with n written m, and the exact set of sizes where a condition holds does not
    depend on its symbol's name: m's layer set (and whether it is exact) is n's."""
    from convgraph.solve._symmetry import mirrors

    return {m: n for m, n in mirrors(base.graph, graph).items() if rx.get(m, ()) == rx.get(n, ())}


def mirrored(points: Sequence[Constraint], judge: Callable[[Constraint], Merge],
             twin: Callable[[Constraint, Merge], Merge], mirror: Mapping[str, str]) -> tuple[list[Merge], set[str]]:
    """The merges at ``points``, in order: each on a symbol that is not mirrored judged, then each on
    a mirrored symbol m taken from its twin on n (``twin``), a merge with the same value and op
    whose sides are this one's with m written n (``same_renamed``: the condition holds at the
    same sizes, over the same layer set), else judged. Also the mirrored symbols whose merges are
    n's one to one (every one has a twin, no twin is taken twice, as many as n has): their meets
    with the layer set are n's."""
    out: list[Merge | None] = [None] * len(points)
    by: dict[tuple[str, str, str], list[Merge]] = {}
    count: dict[str, int] = {}
    for i, c in enumerate(points):
        if not (len(c.symbols) == 1 and next(iter(c.symbols)) in mirror):
            got = out[i] = judge(c)
            if got.symbol is not None and got.holds is not None and got.fails is not None:
                by.setdefault((got.symbol, c.value, c.op), []).append(got)
                count[got.symbol] = count.get(got.symbol, 0) + 1
    used: set[tuple[str, int]] = set()  # (m, twin): each twin taken once per mirrored symbol
    twinned: dict[str, int] = {}
    alone: set[str] = set()
    for i, c in enumerate(points):
        if out[i] is None:
            (m,) = c.symbols
            t = _twin(c, m, mirror[m], by.get((mirror[m], c.value, c.op), ()), used)
            if t is None:
                alone.add(m)
                out[i] = judge(c)
            else:
                used.add((m, id(t)))
                twinned[m] = twinned.get(m, 0) + 1
                out[i] = twin(c, t)
    whole = {m for m, n in mirror.items() if m not in alone and twinned.get(m, 0) == count.get(n, 0)}
    return [m for m in out if m is not None], whole


def _twin(c: Constraint, m: str, n: str, merges: Iterable[Merge], used: set[tuple[str, int]]) -> Merge | None:
    """The first merge not yet taken for m whose condition is ``c``'s with m written n."""
    from convgraph.solve._symmetry import same_renamed

    for t in merges:
        if (m, id(t)) not in used and same_renamed(c.lhs, t.constraint.lhs, m, n) and \
                same_renamed(c.rhs, t.constraint.rhs, m, n):
            return t
    return None


# --- a candidate's verdict read off the edited graph's solution ------------------------------------


def verdict_on(base: Solution, new: Solution, n: str, values: Container[str]) -> tuple[EPSet, bool, EPSet] | None:
    """``_fixes._verify_sets`` for symbol ``n`` and the merges at ``values``, read off ``new``, the
    edited graph's ``solve_edited`` solution (what the grouped fixes verify a crop with), when
    it solved ``n`` in the base's digit order (the caller checks): (the sizes where those merges
    hold, whether that is every size of n's layer set, that layer set), or None when the layer set
    is empty, a merge on n that the base proved no longer holds on all of it, or the edit takes a
    size away from another symbol. Each piece is the same set or answer:

    - ``new``'s layer set of n is the intersection of the edited graph's size and assume
      conditions on n alone, as ``_valid_layers`` meets them;
    - each merge's ``holds`` is its condition met with that layer set and ``fails`` the rest, so the
      layer set met with every ``holds`` at ``values`` is ``_verify_sets``' holds, and a proved
      merge no longer holds everywhere exactly when its ``fails`` is not empty (``_breaks_proved``);
    - the base's runs of a symbol s lie inside every condition of the base on s alone (they are its
      layer set met with its merges, narrowed), so ``_shrinks_others`` (a condition on s alone of
      the edited graph, not the base's, that misses some of them) holds exactly when they are not
      inside s's new layer set or inside the ``holds`` of some merge on s that is not the base's.
    """
    layers = new.symbols[n].layers
    if layers.empty or _breaks(base, new, n) or _shrinks(base, new, n):
        return None
    mine = [m.holds for m in new.merges if m.constraint.kind == "merge" and m.symbol == n
            and m.constraint.value in values and m.holds is not None]
    holds = intersect_all([layers, *mine])
    if holds.empty:
        return None
    return holds, subset(layers, holds), layers


def _breaks(base: Solution, new: Solution, n: str) -> bool:
    proved = {(m.constraint.value, m.constraint.axis, m.constraint.rule) for m in base.merges
              if m.verdict == "proved" and m.symbol == n}
    return any(m.constraint.kind == "merge" and m.symbol == n and m.fails is not None and not m.fails.empty
               and (m.constraint.value, m.constraint.axis, m.constraint.rule) in proved for m in new.merges)


def _shrinks(base: Solution, new: Solution, n: str) -> bool:
    before = _base_conditions(base)
    for s, sizes in base.symbols.items():
        if s == n or s not in new.symbols or sizes.runs.empty:
            continue
        runs = sizes.runs
        if new.symbols[s].layers is not sizes.layers and not subset(runs, new.symbols[s].layers):
            return True
        for m in new.merges:
            if m.symbol == s and m.constraint.kind == "merge" and before.get(id(m.constraint)) is not m.constraint \
                    and m.holds is not None and not subset(runs, m.holds):
                return True
    return False


def _base_conditions(base: Solution) -> dict[int, Constraint]:
    """The base's conditions by id (once per solution, on its graph)."""
    got = base.graph.memo((_base_conditions, id(base)), lambda: (base, {id(c): c for c in base.result.constraints}))
    return got[1] if got[0] is base else {id(c): c for c in base.result.constraints}


# --- an edit that only adds assumes -------------------------------------------------------------------


def assumed_runs(base: Solution, graph: Graph) -> tuple[dict[str, EPSet], dict[str, EPSet]] | None:
    """(per symbol: the sizes where ``graph`` runs, and A: the sizes its added assumes allow) for
    ``graph`` = ``base.graph`` with assumes appended (the same nodes, outputs and expects), when no
    condition of the edited graph relates two symbols (nor of the base: no merge is coupled),
    every added condition is exact, every symbol it restricts was decided, and the digit orders
    are the base's; else None (solve the edited graph). What ``solve_edited`` would give, read off
    the base:

    ``solve`` meets, per symbol, its layer and assume conditions on it alone (L), then the merges
    and expects on it alone (M); with no condition on two symbols there is no coupling to narrow
    by. The edited graph's conditions are the base's and the added ones (A), so its layer set is
    L & A, its running set (L & A) & M = (L & M) & A = runs & A (an intersection does not depend
    on the order it is taken in), a merge's failing set (L & A) - C = (L - C) & A, its base
    ``fails`` met with A, and its holding set contains the running set. A restricted symbol stays
    decided (L, M and A exact); another keeps every set and verdict."""
    old = base.graph
    if not (graph.nodes is old.nodes or graph.nodes == old.nodes) or graph.outputs != old.outputs or \
            graph.expects != old.expects or graph.assumes[:len(old.assumes)] != old.assumes or \
            any(m.symbol is None for m in base.merges):
        return None
    res = infer_edited(base.result, graph)
    before = base.result.constraints
    if common_prefix(before, res.constraints) != len(before):
        return None  # the added conditions are not simply after the base's
    added = res.constraints[len(before):]
    if any(c.kind != "assume" or len(c.symbols) != 1 for c in added) or _coupled(base.result):
        return None
    rx = solved_radix(base)
    if not _same_shapes(base.result, res) and edited_radix(base.result, res) != rx:
        return None
    allowed: dict[str, EPSet] = {}
    for c in added:
        (n,) = c.symbols
        got = _renamed_set(c, n, rx, tuple(base.symbols))
        if not got.exact or n not in base.symbols or not base.symbols[n].decided:
            return None
        allowed[n] = allowed[n] & got.sizes if n in allowed else got.sizes
    runs = {n: s.runs & allowed[n] if n in allowed else s.runs for n, s in base.symbols.items()}
    return runs, allowed


def _renamed_set(c: Constraint, n: str, rx: Radix, names: tuple[str, ...]) -> CondSet:
    """``condition_set`` of ``c`` (on ``n`` alone) with ``n`` written as the first symbol of
    ``names`` with the same digit order: the set of sizes where a condition holds does not depend
    on its symbol's name, and the grouped assume of a skip states for W what its H merge's assume
    stated for H (already solved)."""
    from convgraph.solve._symmetry import rename

    r = rx.get(n, ())
    t = next(m for m in names if m == n or rx.get(m, ()) == r)
    if t != n:
        lhs, rhs = (x if isinstance(x, int) else rename(x, n, t) for x in (c.lhs, c.rhs))
        return condition_set(lhs, c.op, rhs, t, r)
    return condition_set(c.lhs, c.op, c.rhs, n, r)


def _coupled(res: ShapeResult) -> bool:
    """Some condition of ``res`` relates two symbols (once per result: memoised on its graph)."""
    got = res.graph.memo((_coupled, id(res)), lambda: (res, any(len(c.symbols) > 1 for c in res.constraints)))
    return got[1] if got[0] is res else any(len(c.symbols) > 1 for c in res.constraints)


def _same_shapes(base: ShapeResult, res: ShapeResult) -> bool:
    """Every value of ``res`` is ``base``'s (the same shape objects): then ``symbol_radix``, which
    reads only the shapes, gives ``res`` the base's digit orders."""
    return len(res.values) == len(base.values) and all(base.values.get(k) is v for k, v in res.values.items())
