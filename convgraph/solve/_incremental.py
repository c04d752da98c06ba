"""Re-inferring an edited graph: only the nodes an edit changes.

A fix candidate changes one layer, inserts one crop, or adds an ``assume``. Every node that is
the same node as in the solved graph and whose inputs have the same dims has the same dims and
the same constraints as before (the shape rules are pure functions of the node and its input
dims), so those are taken from the solved graph's ``ShapeResult`` and the rules run only on the
rest: the edited node and what it feeds when its dims changed (``shapes.infer_reusing``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, Known, Shape, ShapeResult, infer_reusing

_OWN = ("assume", "expect")  # constraint kinds that belong to the graph, not to one node

#: symbolic conditions seen in any candidate graph: kept, or dropped as true for every size
_KNOWN: Known = {}


def _by_node(base: ShapeResult) -> dict[str, list[Constraint]]:
    out: dict[str, list[Constraint]] = {}
    for c in base.constraints:
        if c.kind not in _OWN:
            out.setdefault(c.value, []).append(c)
    return out


def infer_edited(base: ShapeResult, graph: Graph) -> ShapeResult:
    """``shapes.infer(graph)`` for a graph that differs from ``base.graph`` in a few nodes (or in its
    assumes), re-running the rules only where a node or its input dims changed."""
    old = {n.name: n for n in base.graph.nodes}
    kept = _by_node(base)

    def reuse(node: Node, values: Mapping[str, Shape]) -> tuple[Shape, Sequence[Constraint]] | None:
        same = old.get(node.name) == node and all(values[i] == base.values.get(i) for i in node.inputs)
        return (base.values[node.name], kept.get(node.name, [])) if same else None

    return infer_reusing(graph, reuse, _KNOWN)
