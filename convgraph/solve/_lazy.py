"""The conditions of one merge on a graph where one layer spec was edited, running the shape rules
only on the nodes whose dims that merge reads.

A candidate fix that the point check proved incomplete is shown (as a partial fix) only where its
edited merge holds at some size where the merge fails today (``_fixes._verify_partial``), so for
most candidates only that merge's conditions on the edited graph are needed. ``infer_edited``
re-runs the rules on every node whose input dims changed; in a stride nest an edit of a layer on
the down path changes every deeper node, though the merge reads none of them: the cat that joins
the deep path takes its dims (but the channels) from its first operand, the skip. Two facts of the
shape rules (``convgraph.shapes._infer``) say which dims a node's dims depend on:

- ``_cat`` returns ``(*xs[0][:dim], sum of xs[i][dim], *xs[0][dim + 1:])``: on every axis but the
  cat axis the first operand's dims, on the cat axis a function of the operands' cat-axis dims;
- ``_conv`` / ``_conv_transpose`` return ``(x[0], out_channels, *out)`` and ``_pool``
  ``(*x[:2], *out)``, with ``out[i]`` a function of ``x[2 + i]`` and the spec alone (after the
  rank check): each output axis depends on the same input axis only.

After an edit of node X, the axes on which a node's dims may differ from the solved graph's
("changed") are therefore: for X, those where its new dims differ; for a conv, transposed conv or
pool, its input's; for a cat, its first operand's but the cat axis, and the cat axis when some
operand's changed; for any other node every axis, when some input changed (``None``). A node with
no changed axis has the solved graph's dims. A cat with an unchanged cat axis (every operand of the
solved graph's rank) has its first operand's dims with the solved graph's cat-axis dim, whatever
its other operands' dims are. Every other node the merge reads is run by its rule on its inputs'
dims (``shapes.node_dims_only``: the dims ``infer`` computes), and the merge by its rule with its
conditions (``shapes.node_conditions``: what ``infer`` records for it), so those conditions are
``infer_edited``'s. A rule that raises here raises in ``infer_edited`` too: it runs on the same
inputs there, or on the solved graph's, where it did not raise.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from convgraph.ir import Conv, ConvTranspose, Graph, Node, Pool
from convgraph.shapes import Constraint, Shape, node_conditions, node_dims_only

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Solution

#: the axes on which a node's dims may differ from the solved graph's; None: any (or the rank)
Changed = frozenset[int] | None

#: layer kinds whose output axis i depends on input axis i only (see the module doc)
AXIS_WISE = (Conv, ConvTranspose, Pool)


def edited_merge(sol: Solution, pos: Mapping[str, int], edited: tuple[int, Node], value: str
                 ) -> tuple[Constraint, ...] | None:
    """The conditions of node ``value`` (a merge after the edited node) on the solved graph with
    ``edited`` = (position, new node) in place, as ``infer_edited`` records them; None when none
    of its inputs' dims changed (then they are the solved graph's own). Raises ConvGraphError
    where a rule fails (``infer_edited`` fails then too)."""
    res = sol.result
    base = res.values
    x = edited[1]
    dims = {x.name: _edited_dims(sol, x)}
    plan = _plan(sol, pos, edited[0], _diff(dims[x.name], base[x.name]), value)
    if plan is None:
        return None
    changed, order = plan
    for v in order:
        dims[v] = _dims(res.graph.node(v), dims, base, changed)
    merge = res.graph.nodes[pos[value]]
    return tuple(node_conditions(merge, [dims.get(j, base[j]) for j in merge.inputs])[1])


def reads_unchanged(sol: Solution, pos: Mapping[str, int], edited: tuple[int, Node], value: str) -> bool:
    """``edited_merge`` is None: no input of the merge ``value`` changes (nothing run but the edited
    node). Raises ConvGraphError where its rule fails."""
    x = edited[1]
    return _plan(sol, pos, edited[0], _diff(_edited_dims(sol, x), sol.result.values[x.name]), value) is None


Plan = tuple[dict[str, Changed], list[str]]


def _edited_dims(sol: Solution, x: Node) -> Shape:
    """The edited node's dims on the solved graph's inputs (once per edit: an edit proposed for
    several merges is the same node object, ``_fixes._layer_edits``)."""
    table: dict[int, tuple[Node, Shape]] = sol.graph.memo((_edited_dims, id(sol.result)), dict)
    got = table.get(id(x))
    if got is None or got[0] is not x:
        got = table[id(x)] = (x, node_dims_only(x, [sol.result.values[j] for j in x.inputs]))
    return got[1]


def _plan(sol: Solution, pos: Mapping[str, int], i: int, first: Changed, value: str) -> Plan | None:
    """(the changed axes of the nodes after the edited node at ``i``, the changed nodes whose dims
    the merge ``value`` reads, in graph order); None when no input of the merge changed. It depends
    on the edited node's changed axes only: made once per solved graph (the edits of one layer,
    for every merge they are proposed for, share it)."""
    table: dict[tuple[int, Changed, str], Plan | None] = sol.graph.memo((_plan, id(sol.result)), dict)
    key = (i, first, value)
    if key not in table:
        res = sol.result
        changed = _changed_after(sol, i, first)
        todo = [j for j in res.graph.node(value).inputs if j in changed]
        table[key] = None if not todo else (changed, sorted(_needed(res.graph, todo, changed, res.values,
                                                                    res.graph.nodes[i].name), key=pos.__getitem__))
    return table[key]


def _changed_after(sol: Solution, i: int, first: Changed) -> dict[str, Changed]:
    """``_changed`` of every node after the edited one (once per solved graph and edited node)."""
    table: dict[tuple[int, Changed], dict[str, Changed]] = sol.graph.memo((_changed_after, id(sol.result)), dict)
    got = table.get((i, first))
    if got is None:
        nodes = sol.result.graph.nodes
        got = table[(i, first)] = _changed(nodes[i + 1:], nodes[i].name, first, sol.result.values)
    return got


def _diff(new: Shape, old: Shape) -> Changed:
    if len(new) != len(old):
        return None
    return frozenset(k for k, (a, b) in enumerate(zip(new, old)) if a != b)


def _changed(after: Sequence[Node], name: str, first: Changed, base: Mapping[str, Shape]) -> dict[str, Changed]:
    """The changed axes of the edited node and of each node after it whose dims may differ."""
    out: dict[str, Changed] = {name: first} if first != frozenset() else {}
    for node in after:
        if any(j in out for j in node.inputs):
            got = _flow(node, [out.get(j, frozenset()) for j in node.inputs], base)
            if got != frozenset():
                out[node.name] = got
    return out


def _flow(node: Node, ins: list[Changed], base: Mapping[str, Shape]) -> Changed:
    """A node's changed axes from its inputs' (see the module doc)."""
    if node.op == "layer" and isinstance(node.layer, AXIS_WISE):
        return ins[0]
    ax = _cat_axis(node, ins, base)
    if ax is None:
        return None
    first = ins[0]
    assert first is not None  # _cat_axis checked it
    return (first - {ax}) | (frozenset({ax}) if any(c is not None and ax in c for c in ins) else frozenset())


def _cat_axis(node: Node, ins: Sequence[Changed], base: Mapping[str, Shape]) -> int | None:
    """The cat axis (from 0) of a cat whose operands all keep the solved graph's rank (their
    changed axes known: the rank the solved graph's cat has); None for any other node."""
    if node.op != "cat" or any(c is None for c in ins):
        return None
    r = len(base[node.name])
    return node.dim + r if node.dim < 0 else node.dim


def _needed(graph: Graph, todo: list[str], changed: Mapping[str, Changed], base: Mapping[str, Shape],
            edited: str) -> set[str]:
    """The changed nodes whose dims the merge reads, through the inputs each one's dims need."""
    out: set[str] = set()
    while todo:
        v = todo.pop()
        if v in out or v == edited:
            continue
        out.add(v)
        todo += [j for j in _reads(graph.node(v), changed, base) if j in changed]
    return out


def _reads(node: Node, changed: Mapping[str, Changed], base: Mapping[str, Shape]) -> tuple[str, ...]:
    """The inputs whose dims a changed node's dims need: a cat with an unchanged cat axis needs
    its first operand only."""
    return node.inputs[:1] if _kept_axis(node, changed, base) is not None else node.inputs


def _kept_axis(node: Node, changed: Mapping[str, Changed], base: Mapping[str, Shape]) -> int | None:
    """The cat axis of a cat where it is unchanged in every operand; None for any other node."""
    ins = [changed.get(j, frozenset()) for j in node.inputs]
    ax = _cat_axis(node, ins, base)
    return None if ax is None or any(c is not None and ax in c for c in ins) else ax


def _dims(node: Node, dims: Mapping[str, Shape], base: Mapping[str, Shape], changed: Mapping[str, Changed]) -> Shape:
    """A changed node's dims on the edited graph (those of the inputs it reads known)."""
    ax = _kept_axis(node, changed, base)
    if ax is not None:
        first = dims[node.inputs[0]] if node.inputs[0] in dims else base[node.inputs[0]]
        return (*first[:ax], base[node.name][ax], *first[ax + 1:])
    return node_dims_only(node, [dims[j] if j in dims else base[j] for j in node.inputs])
