"""One graph interpreter: the shape stage, the numpy reference and the torch mirror all walk a graph
the same way and differ only in what a value is (a shape, an array, a tensor) and in their rules.

>>> from convgraph.errors import Loc
>>> x = Node("x", "input", (), Loc(), dims=(1, 1, 4))
>>> y = Node("y", "add", ("x", "x"), Loc())
>>> rules = Rules(layer=lambda node, v: v, merge=lambda node, args: sum(args))
>>> interpret(Graph((x, y), ("y",)), rules, {"x": 3})
{'x': 3, 'y': 6}
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

from convgraph.ir._graph import Graph, Node

V = TypeVar("V")


def _no_input(node: Node) -> NoReturn:
    raise KeyError(f"no array given for input '{node.name}'")


@dataclass(frozen=True)
class Rules(Generic[V]):
    """What each kind of node computes: ``layer(node, x)`` for a layer applied to x,
    ``merge(node, args)`` for cat / add / crop, ``input(node)`` for an input ``env`` does not give."""

    layer: Callable[[Node, V], V]
    merge: Callable[[Node, list[V]], V]
    input: Callable[[Node], V] = _no_input

    def apply(self, node: Node, args: list[V]) -> V:
        """One node's value from its inputs' values (in ``node.inputs`` order)."""
        if node.op == "input":
            return self.input(node)
        if node.op == "layer":
            return self.layer(node, args[0])
        return self.merge(node, args)


def interpret(graph: Graph, rules: Rules[V], env: Mapping[str, V] | None = None) -> dict[str, V]:
    """Every value of ``graph``, node by node in definition order (a topological order); ``env``
    gives input values."""
    values: dict[str, V] = dict(env or {})
    for node in graph.nodes:
        if node.op != "input" or node.name not in values:
            values[node.name] = rules.apply(node, [values[i] for i in node.inputs])
    return values
