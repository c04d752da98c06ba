"""The summary table: per value its shape formula, parameters, MACs as an exact formula of the
input symbols, and per spatial axis the receptive field, effective stride (jump) and start offset.

Definitions (one table per quantity, keyed by layer kind):

- parameters: what ``sum(p.numel() for p in module.parameters())`` counts (BatchNorm's running
  statistics are buffers, not parameters);
- MACs: multiply-accumulates of the layer's products: Conv ``out.numel() * in/groups * prod(k)``,
  ConvTranspose ``in.numel() * out/groups * prod(k)`` (every input element meets every tap once),
  Linear ``out.numel() * in_features``; every other layer 0 (no products of two operands);
- receptive field along a spatial axis: the span, in input elements, of the input positions one
  output element depends on (holes left by dilation included), the largest over positions;
  jump: the input distance between neighbouring output elements; start: the input index where
  output element 0's window begins (negative inside the padding). ``None`` marks an axis whose
  output depends on the whole input (global pooling, or a resize to a size given from outside).
  The recurrences (Dumoulin & Visin 2016; Araujo et al. 2019): ``r' = r + (ek - 1) * j``,
  ``j' = j * s``, ``start' = start - p_begin * j`` with ``ek = d*(k - 1) + 1``: exact for graphs
  that only slide windows. Transposed convolutions and upsampling by s make ``j' = j / s``; output
  o reads layer-input indices between two lines ``o/s - a`` and ``o/s + b``, so from then on the
  window ``[start + o*jump, start + o*jump + size - 1]`` (fractional) bounds the true one, tightly
  but not exactly (the floors between the lines are dropped).

>>> import convgraph as cg
>>> s = summarize(cg.parse("x = input(N, 3, H, W)\\ny = Conv2d(3, 8, 3, stride=2)(x)"))
>>> s.rows[-1].macs
216*N*(floor(H/2 + 1/2) - 1)*(floor(W/2 + 1/2) - 1)
>>> evaluate(s.macs, {"N": 2, "H": 9, "W": 12})
8640
>>> s.rows[-1].fields[0]
Field(size=3, jump=2, start=0)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from convgraph import dims as D
from convgraph import ir
from convgraph.shapes._infer import Shape, infer


@dataclass(frozen=True)
class Field:
    """One spatial axis' receptive field: ``size`` input elements, ``jump`` between neighbouring
    outputs, window of output 0 starting at input index ``start`` (sympy numbers/expressions)."""

    size: Any  # sympy numbers or expressions
    jump: Any
    start: Any

    def at(self, sizes: Mapping[str, int]) -> Field:
        env = {D.sympy_symbol(k): v for k, v in sizes.items()}
        return Field(*(sp.sympify(v).subs(env) for v in (self.size, self.jump, self.start)))


Fields = tuple["Field | None", ...]  # one per spatial axis; None: the whole input


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # "Conv2d", "cat", "+", "crop", "input"
    layer_name: str | None
    shape: Shape
    params: int
    macs: Any  # sympy expression of the symbols
    fields: Fields


@dataclass(frozen=True)
class Summary:
    rows: tuple[Row, ...]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> Any:
        return sp.Add(*(r.macs for r in self.rows))

    @property
    def activations(self) -> Any:
        """Elements of every value but the inputs (float32: 4 bytes each)."""
        return sp.Add(*(numel(r.shape) for r in self.rows if r.kind != "input"))


def numel(shape: Shape) -> Any:
    """The number of elements, a sympy expression."""
    return sp.Mul(*(D.to_sympy(d) for d in shape))


def evaluate(expr: Any, sizes: Mapping[str, int]) -> int:
    """An exact int (every symbol given): sympy evaluates floors of rationals exactly."""
    return int(sp.sympify(expr).subs({D.sympy_symbol(k): v for k, v in sizes.items()}))


# --- parameters and MACs, per layer kind ---------------------------------------------------------


def _conv_params(spec: ir.Conv | ir.ConvTranspose) -> int:
    return math.prod(spec.weight_shape) + (spec.out_channels if spec.bias else 0)


PARAMS: dict[type, Callable[[Any], int]] = {
    ir.Conv: _conv_params,
    ir.ConvTranspose: _conv_params,
    ir.Pool: lambda s: 0,
    ir.AdaptiveAvgPool: lambda s: 0,
    ir.AdaptiveMaxPool: lambda s: 0,
    ir.Pad: lambda s: 0,
    ir.PixelShuffle: lambda s: 0,
    ir.Upsample: lambda s: 0,
    ir.BatchNorm: lambda s: 2 * s.num_features if s.affine else 0,
    ir.InstanceNorm: lambda s: 2 * s.num_features if s.affine else 0,
    ir.GroupNorm: lambda s: 2 * s.num_channels if s.affine else 0,
    ir.PReLU: lambda s: s.num_parameters,
    ir.Softmax: lambda s: 0,
    ir.Elementwise: lambda s: 0,
    ir.Flatten: lambda s: 0,
    ir.Unflatten: lambda s: 0,
    ir.Linear: lambda s: s.in_features * s.out_features + (s.out_features if s.bias else 0),
}

MACS: dict[type, Callable[[Any, Shape, Shape], Any]] = {
    ir.Conv: lambda s, x, y: numel(y) * (s.in_channels // s.groups * math.prod(s.kernel_size)),
    ir.ConvTranspose: lambda s, x, y: numel(x) * (s.out_channels // s.groups * math.prod(s.kernel_size)),
    ir.Pool: lambda s, x, y: 0,
    ir.AdaptiveAvgPool: lambda s, x, y: 0,
    ir.AdaptiveMaxPool: lambda s, x, y: 0,
    ir.Pad: lambda s, x, y: 0,
    ir.PixelShuffle: lambda s, x, y: 0,
    ir.Upsample: lambda s, x, y: 0,
    ir.BatchNorm: lambda s, x, y: 0,
    ir.InstanceNorm: lambda s, x, y: 0,
    ir.GroupNorm: lambda s, x, y: 0,
    ir.PReLU: lambda s, x, y: 0,
    ir.Softmax: lambda s, x, y: 0,
    ir.Elementwise: lambda s, x, y: 0,
    ir.Flatten: lambda s, x, y: 0,
    ir.Unflatten: lambda s, x, y: 0,
    ir.Linear: lambda s, x, y: numel(y) * s.in_features,
}


# --- receptive fields, per layer kind -----------------------------------------------------------------


def _window(f: Field | None, k: int, s: int, p: int, d: int) -> Field | None:
    """A sliding window: r + (ek - 1) j, j s, start - p j."""
    if f is None:
        return None
    ek = d * (k - 1) + 1
    return Field(f.size + (ek - 1) * f.jump, f.jump * s, f.start - p * f.jump)


def _conv_field(spec: ir.Conv, fs: Fields, x: Shape) -> Fields:
    return tuple(_window(f, k, s, p[0], d) for f, k, s, p, d in
                 zip(fs, spec.kernel_size, spec.stride, spec.padding, spec.dilation))


def _pool_field(spec: ir.Pool, fs: Fields, x: Shape) -> Fields:
    return tuple(_window(f, k, s, p[0], d) for f, k, s, p, d in
                 zip(fs, spec.kernel_size, spec.stride, spec.padding, spec.dilation))


def _spread(f: Field | None, s: Any, before: Any, after: Any) -> Field | None:
    """Upsampling by s: output o reads layer-input indices in [o/s - before, o/s + after]."""
    if f is None:
        return None
    return Field(f.size + (before + after) * f.jump, f.jump / s, f.start - before * f.jump)


def _conv_transpose_field(spec: ir.ConvTranspose, fs: Fields, x: Shape) -> Fields:
    """Output o = i*s - p + m*d (p the begin padding) reads i in [(o + p - d(k - 1))/s, (o + p)/s]."""
    return tuple(_spread(f, sp.Integer(s), sp.Rational(d * (k - 1) - p, s), sp.Rational(p, s))
                 for f, k, s, (p, _), d in zip(fs, spec.kernel_size, spec.stride, spec.padding, spec.dilation))


def _upsample_window(mode: str, sc: Any) -> tuple[Any, Any]:
    """(before, after) of o/sc for the input indices one output reads."""
    if mode == "nearest":  # floor(o/sc)
        return ((sc - 1) / sc if sc.is_Integer else sp.Integer(1)), sp.Integer(0)
    if mode == "nearest-exact":  # floor((o + 1/2)/sc)
        return 1 - 1 / (2 * sc), 1 / (2 * sc)
    return sp.Rational(3, 2) - 1 / (2 * sc), 1 / (2 * sc) + sp.Rational(1, 2)  # two taps around (o + 1/2)/sc - 1/2


def _upsample_field(spec: ir.Upsample, fs: Fields, x: Shape) -> Fields:
    scales = spec.scales_for(len(fs))
    if scales is None or spec.align_corners:  # the source positions depend on the sizes
        return (None,) * len(fs)
    out = []
    for f, sc in zip(fs, scales):
        sc = sp.nsimplify(sc)
        out.append(_spread(f, sc, *_upsample_window(spec.mode, sc)))
    return tuple(out)


def _adaptive_field(spec: ir.AdaptiveAvgPool, fs: Fields, x: Shape) -> Fields:
    return tuple(f if o is None else None for f, o in zip(fs, spec.output_size))


def _pad_field(spec: ir.Pad, fs: Fields, x: Shape) -> Fields:
    """Padding shifts the start by the begin amount (F.pad's axes are the last ones)."""
    begins = [0] * len(x)
    for axis, (b, _) in zip(range(len(x) - len(spec.padding), len(x)), spec.padding):
        begins[axis] = b
    return tuple(None if f is None else Field(f.size, f.jump, f.start - b * f.jump) for f, b in zip(fs, begins[2:]))


def _pixel_shuffle_field(spec: ir.PixelShuffle, fs: Fields, x: Shape) -> Fields:
    """Shuffle by r: output o reads input o // r (an upsampling); unshuffle: a window of r, stride r."""
    r = spec.factor
    if spec.upscale:
        return tuple(_spread(f, sp.Integer(r), sp.Rational(r - 1, r), sp.Integer(0)) for f in fs)
    return tuple(_window(f, r, r, 0, 1) for f in fs)


def _global(spec: Any, fs: Fields, x: Shape) -> Fields:
    """Statistics over every spatial element (instance and group norm): the whole input."""
    if isinstance(spec, ir.InstanceNorm) and spec.track_running_stats:
        return fs
    return (None,) * len(fs)


def _softmax_field(spec: ir.Softmax, fs: Fields, x: Shape) -> Fields:
    dim = spec.dim if spec.dim is not None else (0 if len(x) in (0, 1, 3) else 1)
    dim = dim + len(x) if dim < 0 else dim
    return tuple(None if j == dim else f for j, f in enumerate(fs, 2))


def _unflatten_field(spec: ir.Unflatten, fs: Fields, x: Shape) -> Fields:
    """Batch or channels split: the spatial axes keep their fields; a spatial axis split: the new
    axes are parts of a reshape (no window)."""
    dim = spec.dim + len(x) if spec.dim < 0 else spec.dim
    if dim < 2:
        return fs
    j = dim - 2
    return (*fs[:j], *(None,) * len(spec.sizes), *fs[j + 1:])


def _same(spec: Any, fs: Fields, x: Shape) -> Fields:
    return fs


def _no_axes(spec: Any, fs: Fields, x: Shape) -> Fields:
    return ()


FIELDS: dict[type, Callable[[Any, Fields, Shape], Fields]] = {
    ir.Conv: _conv_field,
    ir.ConvTranspose: _conv_transpose_field,
    ir.Pool: _pool_field,
    ir.AdaptiveAvgPool: _adaptive_field,
    ir.AdaptiveMaxPool: _adaptive_field,
    ir.Pad: _pad_field,
    ir.PixelShuffle: _pixel_shuffle_field,
    ir.Upsample: _upsample_field,
    ir.BatchNorm: _same,
    ir.InstanceNorm: _global,
    ir.GroupNorm: _global,
    ir.PReLU: _same,
    ir.Softmax: _softmax_field,
    ir.Elementwise: _same,
    ir.Flatten: _no_axes,
    ir.Unflatten: _unflatten_field,
    ir.Linear: _no_axes,
}


def _union(fields: list[Field | None]) -> Field | None:
    """Several values meeting (cat, +): the union of their windows; one jump if they agree."""
    known = [f for f in fields if f is not None]
    if len(known) < len(fields) or len({f.jump for f in known}) != 1:  # jumps are numbers
        return None
    start = sp.Min(*(f.start for f in known))
    return Field(sp.Max(*(f.start + f.size - 1 for f in known)) - start + 1, known[0].jump, start)


def _shift(fs: Fields, shifts: list[Any]) -> Fields:
    return tuple(None if f is None else Field(f.size, f.jump, f.start + f.jump * d) for f, d in zip(fs, shifts))


def _half_gap(big: Shape, small: Shape) -> list[Any]:
    return [sp.floor((D.to_sympy(a) - D.to_sympy(b)) / 2) for a, b in zip(big[2:], small[2:])]


def _slice_fields(node: ir.Node, fs: Fields, x: Shape) -> Fields:
    """A slice of spatial axes moves the start to its first kept index (chunk/split: channels)."""
    index = node.attr("index", ()) if node.attr("part") is None else ()
    shifts: list[Any] = [0] * len(fs)
    for j, (a, _) in enumerate(index):
        if j >= 2 and a is not None:
            size = D.to_sympy(x[j])
            shifts[j - 2] = sp.Max(0, a) if a >= 0 else sp.Max(0, size + a)
    return _shift(fs, shifts)


def _mean_fields(node: ir.Node, fs: Fields, x: Shape, y: Shape) -> Fields:
    """The averaged spatial axes depend on the whole input; without keepdim they go."""
    dims = {d % len(x) for d in node.attr("dims")}
    if node.attr("keepdim"):
        return tuple(None if j in dims else f for j, f in enumerate(fs, 2))
    if dims & {0, 1}:  # batch or channels averaged: the axes after them move
        return (None,) * (len(y) - 2)
    return tuple(f for j, f in enumerate(fs, 2) if j not in dims)


def _merge_fields(node: ir.Node, ins: list[Fields], shapes: list[Shape], y: Shape) -> Fields:
    if node.op == "mean":
        return _mean_fields(node, ins[0], shapes[0], y)
    if node.op in ("unsqueeze", "squeeze", "reshape"):  # a reshape: no window (unless nothing moved)
        return ins[0] if tuple(shapes[0]) == tuple(y) else (None,) * max(len(y) - 2, 0)
    if node.op == "crop":  # drops (v - w) // 2 at the start of each spatial axis
        return _shift(ins[0], _half_gap(shapes[0], shapes[1]))
    if node.op == "pad_like":  # adds (w - v) // 2 at the start
        return _shift(ins[0], [-g for g in _half_gap(shapes[1], shapes[0])])
    if node.op == "interp_like":  # resized to a size from another value: no constant jump
        return (None,) * len(ins[0])
    if node.op == "slice":
        return _slice_fields(node, ins[0], shapes[0])
    if node.op == "scalar":
        return ins[0]
    n = min(len(f) for f in ins)
    return tuple(_union([f[j] for f in ins]) for j in range(n))


# --- the stage ---------------------------------------------------------------------------------------------


def _kind(node: ir.Node) -> str:
    if node.op == "layer":
        return node.layer.type_name  # type: ignore[union-attr]
    return {"add": "+", "sub": "-", "mul": "*"}.get(node.op, node.op)


def _row(node: ir.Node, values: Mapping[str, Shape], fields: Mapping[str, Fields]) -> Row:
    y = values[node.name]
    if node.op == "input":
        fs: Fields = tuple(Field(sp.Integer(1), sp.Integer(1), sp.Integer(0)) for _ in y[2:])
        return Row(node.name, "input", None, y, 0, sp.Integer(0), fs)
    if node.op != "layer":
        fs = _merge_fields(node, [fields[i] for i in node.inputs], [values[i] for i in node.inputs], y)
        return Row(node.name, _kind(node), None, y, 0, sp.Integer(0), fs)
    spec, x = node.layer, values[node.inputs[0]]
    fs = FIELDS[type(spec)](spec, fields[node.inputs[0]], x)
    macs = sp.sympify(MACS[type(spec)](spec, x, y))
    return Row(node.name, _kind(node), node.layer_name, y, PARAMS[type(spec)](spec), macs, fs)


def summarize(graph: ir.Graph) -> Summary:
    """The summary of every value, in graph order (computed once per graph)."""
    return graph.memo(summarize, lambda: _summarize(graph))


def _summarize(graph: ir.Graph) -> Summary:
    values = infer(graph).values
    fields: dict[str, Fields] = {}
    rows = []
    for node in graph.nodes:
        row = _row(node, values, fields)
        fields[node.name] = row.fields
        rows.append(row)
    return Summary(tuple(rows))
