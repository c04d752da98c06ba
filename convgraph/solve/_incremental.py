"""Re-inferring an edited graph: only the nodes an edit changes.

A fix candidate changes one layer, inserts one crop, or adds an ``assume``. Every node that is
the same node as in the solved graph and whose inputs have the same dims has the same dims and
the same constraints as before (the shape rules are pure functions of the node and its input
dims), so those are taken from the solved graph's ``ShapeResult`` and the rules run only on the
rest: the edited node and what it feeds when its dims changed (``shapes.infer_reusing``).
Likewise the layer sets of the edited graph start from the solved graph's intersection over the
conditions the two share (``edited_layers``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, Known, Shape, ShapeResult, infer_reusing
from convgraph.solve._sets import EPSet, condition_set, intersect_all
from convgraph.solve._sizes import Sizes

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

    return infer_reusing(graph, reuse, _KNOWN)


# --- the layer sets of an edited graph --------------------------------------------------------------

Radix = Mapping[str, tuple[int, ...]]
Layers = tuple[EPSet, bool]  # the sizes the layers (and assumes) accept, and whether that is exact


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
