"""The graph's block calls as the classes of a PyTorch source file (read by ``torch_source``).

A *scope* is the part of the graph one class writes: the whole graph (``Model``) or one DSL block
call (``Graph.blocks``). Its *items*, in graph order, are the values it makes itself and the calls
nested directly in it (each one item, written as one call of the child's module).

A call becomes a class unless its values need a size read from the graph's inputs (a ``reshape``
to a symbolic size), which a block's forward does not have; such a call (and every call around
it) stays inline, its layers in containers as before.
"""
from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass

from convgraph import ir

Item = ir.Node | ir.BlockCall


@dataclass(frozen=True)
class Scope:
    """One class: ``call`` None for the Model; ``items`` its values and direct child calls in order."""

    call: ir.BlockCall | None
    items: tuple[Item, ...]

    @property
    def prefix(self) -> str:
        return "" if self.call is None else self.call.path + "."

    def relative(self, dotted: str) -> str:
        """A module path inside this scope: ``down1.maxpool_conv.0`` -> ``maxpool_conv.0``."""
        return dotted[len(self.prefix):]


def _symbolic_reshape(node: ir.Node) -> bool:
    return node.op == "reshape" and any(isinstance(e, tuple) for e in node.attr("shape"))


def class_calls(graph: ir.Graph) -> list[ir.BlockCall]:
    """The block calls written as classes: those that make a value and need no input's size."""
    nodes = graph.nodes
    index = {n.name: i for i, n in enumerate(nodes)}
    return [c for c in graph.blocks
            if c.nodes and all(n in index for n in c.nodes)
            and not any(_symbolic_reshape(graph.node(n)) for n in c.nodes)]


def _span(index: dict[str, int], call: ir.BlockCall) -> tuple[int, int]:
    return index[call.nodes[0]], index[call.nodes[-1]] + 1


def scopes(graph: ir.Graph, calls: list[ir.BlockCall]) -> tuple[Scope, dict[ir.BlockCall, Scope]]:
    """The Model's scope and each call's, nested calls as items of their parent."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    spans = {c: _span(index, c) for c in calls}
    order = sorted(range(len(calls)), key=lambda k: (spans[calls[k]][0], -spans[calls[k]][1], k))
    children: dict[ir.BlockCall | None, list[ir.BlockCall]] = {None: []}
    stack: list[ir.BlockCall] = []
    for k in order:
        call = calls[k]
        while stack and spans[stack[-1]][1] <= spans[call][0]:
            stack.pop()
        children.setdefault(stack[-1] if stack else None, []).append(call)
        children[call] = children.get(call, [])
        stack.append(call)

    def items(call: ir.BlockCall | None) -> tuple[Item, ...]:
        start, stop = spans[call] if call is not None else (0, len(graph.nodes))
        firsts = {spans[c][0]: c for c in children[call]}
        out: list[Item] = []
        i = start
        while i < stop:
            if i in firsts:
                out.append(firsts[i])
                i = spans[firsts[i]][1]
            else:
                out.append(graph.nodes[i])
                i += 1
        return tuple(out)

    return Scope(None, items(None)), {c: Scope(c, items(c)) for c in calls}


def heights(calls: list[ir.BlockCall], by_call: dict[ir.BlockCall, Scope]) -> dict[ir.BlockCall, int]:
    """0 for a call with no nested calls, else one more than its highest child (children first)."""
    out: dict[ir.BlockCall, int] = {}

    def height(c: ir.BlockCall) -> int:
        if c not in out:
            kids = [i for i in by_call[c].items if isinstance(i, ir.BlockCall)]
            out[c] = 1 + max(map(height, kids)) if kids else 0
        return out[c]

    for c in calls:
        height(c)
    return out


def identifier(base: str, used: set[str]) -> str:
    """``base`` as a fresh Python identifier: non-word characters to '_', ``v_`` before a
    non-identifier, ``_1``, ``_2``, ... after a name in ``used`` (which it joins)."""
    base = re.sub(r"\W", "_", base)
    base = base if base.isidentifier() and not keyword.iskeyword(base) else f"v_{base}"
    name, k = base, 1
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def block_locals(scope: Scope, taken: frozenset[str]) -> dict[str, str]:
    """Each value a block's forward handles -> its variable: parameters by their names, what the
    block returns by the block's names for it, the rest by their names inside the block."""
    call = scope.call
    assert call is not None
    used, out = set(taken), {}
    for param, value in call.inputs:
        if value not in out:
            out[value] = identifier(param, used)
    returned = dict(zip(call.outputs, call.returns))
    for item in scope.items:
        for name in item.outputs if isinstance(item, ir.BlockCall) else (item.name,):
            if name not in out:
                base = returned.get(name, name[len(scope.prefix):] if name.startswith(scope.prefix) else name)
                out[name] = identifier(base, used)
    return out


# --- one class for the calls of a block whose arguments differ ---------------------------------------


class Expr:
    """A constructor argument written as an expression of the class's parameters (its repr)."""

    def __init__(self, text: str, param: str) -> None:
        self.text, self.param = text, param

    def __repr__(self) -> str:
        return self.text


#: how an int argument may follow an int parameter p: (text, value of p -> the argument)
FORMS: tuple[tuple[str, Callable[[int], int]], ...] = (
    ("{p}", lambda v: v), ("{p} // 2", lambda v: v // 2), ("2 * {p}", lambda v: 2 * v),
    ("4 * {p}", lambda v: 4 * v), ("{p} // 4", lambda v: v // 4))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


NOTHING = object()


def _one_param(value: object, consts: list[dict[str, object]], params: list[str]) -> object:
    """``Expr(p)`` where exactly one int parameter p equals ``value`` in every call, else ``value``."""
    if not _is_int(value):
        return value
    hits = [p for p in params if all(_is_int(c.get(p)) and c[p] == value for c in consts)]
    return Expr(hits[0], hits[0]) if len(hits) == 1 else value


def follow(values: list[object], consts: list[dict[str, object]], params: list[str], eager: bool) -> object:
    """An ``Expr`` of one parameter giving ``values[i]`` for call i (its constants ``consts[i]``),
    or the common value when they are all equal (``eager``: the one parameter equal to it, if there
    is one); ``NOTHING`` when no parameter explains them. Forms are tried in order, each with
    every parameter (``cout`` before ``2 * cin``)."""
    if all(v == values[0] and type(v) is type(values[0]) for v in values):
        return _one_param(values[0], consts, params) if eager else values[0]
    if not eager or not all(_is_int(v) for v in values):
        return NOTHING
    for text, f in FORMS:
        for p in params:
            if all(_is_int(c.get(p)) and f(c[p]) == v for c, v in zip(consts, values)):  # type: ignore[arg-type]
                return Expr(text.format(p=p), p)
    return NOTHING
