"""Re-inferring an edited graph: only the nodes an edit changes.

A fix candidate changes one layer, inserts one crop, or adds an ``assume``. Every node that is
the same node as in the solved graph and whose inputs have the same dims has the same dims and
the same constraints as before (the shape rules are pure functions of the node and its input
dims), so those are taken from the solved graph's ``ShapeResult`` and the rules run only on the
rest: the edited node and what it feeds when its dims changed.
"""
from __future__ import annotations

from .ir import Graph
from .shapes import LAYER_RULES, MERGE_RULES, Constraint, ShapeResult, _assumptions, _Ctx, _input
from . import dims as D

_OWN = ("assume", "expect")  # constraint kinds that belong to the graph, not to one node


class _Ctx2(_Ctx):
    """``shapes._Ctx`` that remembers which symbolic conditions hold for every size (the rules
    drop those after a bound search): the same conditions recur in every candidate graph."""

    def require(self, lhs, op, rhs, rule, kind="size", axis=""):
        key = (D.lower(lhs), op, D.lower(rhs))
        known = _KNOWN.get(key)
        if known is not None:  # a symbolic condition seen before: dropped, or kept as is
            if known:
                self.constraints.append(Constraint(self.node.name, self.where, self.node.loc, rule, key[0],
                                                   op, key[2], kind, axis))
            return
        before = len(self.constraints)
        super().require(lhs, op, rhs, rule, kind, axis)
        if not (D.is_const(key[0]) and D.is_const(key[2])) and key[0] != key[2]:
            if len(_KNOWN) > 1 << 16:
                _KNOWN.clear()
            _KNOWN[key] = len(self.constraints) > before


_KNOWN: dict = {}  # (lhs, op, rhs) -> kept (True) or dropped as true for every size (False)


def _by_node(base: ShapeResult) -> dict[str, list]:
    out: dict[str, list] = {}
    for c in base.constraints:
        if c.kind not in _OWN:
            out.setdefault(c.value, []).append(c)
    return out


def infer_edited(base: ShapeResult, graph: Graph) -> ShapeResult:
    """``shapes.infer(graph)`` for a graph that differs from ``base.graph`` in a few nodes (or in its
    assumes), re-running the rules only where a node or its input dims changed."""
    old = {n.name: n for n in base.graph.nodes}
    kept = _by_node(base)
    ctx = _Ctx2(graph)
    values: dict = {}
    changed: set[str] = set()
    for node in graph.nodes:
        ctx.node = node
        same = old.get(node.name) == node and not any(i in changed for i in node.inputs)
        if same:
            values[node.name] = base.values[node.name]
            ctx.constraints += kept.get(node.name, [])
            continue
        if node.op == "input":
            values[node.name] = _input(ctx, node)
        elif node.op == "layer":
            rule = LAYER_RULES[type(node.layer)]
            values[node.name] = tuple(D.lower(d) for d in rule(ctx, node.layer, values[node.inputs[0]]))
        else:
            values[node.name] = MERGE_RULES[node.op](ctx, node, [values[i] for i in node.inputs])
        if values[node.name] != base.values.get(node.name):
            changed.add(node.name)
    _assumptions(ctx, graph, values)
    return ShapeResult(graph, values, tuple(ctx.constraints), graph.symbols)
