"""Concrete dims of the commonest nodes on plain ints, for the fix search's point check.

``node_dims(node, inputs)`` is what ``node_failures(graph, node, inputs)`` gives when every
condition of the node's rule holds at these int dims (its dims, and no failing condition); None
when some condition fails, or for a node kind not listed here: the caller then runs
``node_failures``, which decides (and names what fails). The formulas are the rules' own
(``_infer``, on ints), without building a condition or its text; the tests compare the two on
random specs and sizes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from convgraph.ir import Conv, ConvTranspose, Node, Pool

Shape = tuple[int, ...]


def node_dims(node: Node, inputs: Sequence[tuple]) -> Shape | None:
    """The node's int dims when all its conditions hold on the int ``inputs``; else None."""
    for x in inputs:
        for v in x:
            if type(v) is not int:
                return None
    if node.op == "layer":
        rule = _LAYERS.get(type(node.layer))
        return rule(node.layer, inputs[0]) if rule is not None else None
    if node.op == "cat":
        return _cat(node.dim, inputs)
    if node.op in ("add", "sub", "mul") and len(inputs) == 2 and inputs[0] == inputs[1]:
        return tuple(inputs[0])  # equal dims broadcast to themselves
    if node.op == "crop" and len(inputs) == 2:
        return _crop(inputs[0], inputs[1])
    return None


def _conv(spec: Conv, x: Shape) -> Shape | None:
    if len(x) != spec.nd + 2 or x[1] != spec.in_channels or spec.padding_mode != "zeros":
        return None
    out = []
    for i, (pb, pe), k, s, d in zip(x[2:], spec.padding, spec.kernel_size, spec.stride, spec.dilation):
        span = i + pb + pe - (d * (k - 1) + 1)
        if span < 0:
            return None
        out.append(span // s + 1)
    return (x[0], spec.out_channels, *out)


def _conv_transpose(spec: ConvTranspose, x: Shape) -> Shape | None:
    if len(x) != spec.nd + 2 or x[1] != spec.in_channels:
        return None
    out = []
    for i, k, s, (pb, pe), op, d in zip(x[2:], spec.kernel_size, spec.stride, spec.padding,
                                        spec.output_padding, spec.dilation):
        o = i * s - s - pb - pe + d * (k - 1) + 1 + op
        if o < 1:
            return None
        out.append(o)
    return (x[0], spec.out_channels, *out)


def _pool(spec: Pool, x: Shape) -> Shape | None:
    if len(x) != spec.nd + 2:
        return None
    out = []
    for i, k, s, (pb, pe), d in zip(x[2:], spec.kernel_size, spec.stride, spec.padding, spec.dilation):
        ek = d * (k - 1) + 1
        if spec.mode == "avg" and spec.nd == 3 and i < k:
            return None
        o = (i + min(pb + pe - ek + s - 1, pb - 1)) // s + 1 if spec.ceil_mode else (i + pb + pe - ek) // s + 1
        if o < 1:
            return None
        out.append(o)
    return (*x[:2], *out)


def _cat(axis: int, xs: Sequence[Shape]) -> Shape | None:
    first = xs[0]
    r = len(first)
    dim = axis + r if axis < 0 else axis
    if not 0 <= dim < r:
        return None
    total = 0
    for x in xs:
        if len(x) != r or any(a != b for j, (a, b) in enumerate(zip(first, x)) if j != dim):
            return None
        total += x[dim]
    return (*first[:dim], total, *first[dim + 1:])


def _crop(v: Shape, w: Shape) -> Shape | None:
    """``crop(v, like=w)``: two values of one rank with spatial dims, v at least w on each spatial axis."""
    if len(v) != len(w) or len(v) < 3 or any(a < b for a, b in zip(v[2:], w[2:])):
        return None
    return (*v[:2], *w[2:])


_LAYERS: dict[type, Callable[..., Shape | None]] = {Conv: _conv, ConvTranspose: _conv_transpose, Pool: _pool}
