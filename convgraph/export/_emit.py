"""ONNX lowering of the IR: one emitter per layer kind and per merge op, each a short function.

Every emitter writes the nodes of one IR value into a ``Builder`` and ends with a node whose
output is the IR value's own name, so value names in the ONNX graph are the DSL's. The main node
of a layer is named after the layer (``conv1``, ``0``); helper nodes and values are named
``{layer}/{what}``. Parameters are the initializers ``{layer}.weight``, ``{layer}.bias``,
``{layer}.running_mean``, ``{layer}.running_var``; every other constant is a ``Constant`` node, so
the initializers are exactly the state_dict of the equivalent torch module.

Lowering rules (``/work/shared/reference/conv-semantics.md`` §4, §5, §8):

- explicit ``pads``, never ``auto_pad``; padding modes other than zeros are a ``Pad`` node
  (reflect -> reflect, replicate -> edge, circular -> wrap, Pad-19) followed by a Conv without pads;
- ConvTranspose with ``output_padding >= stride`` on some axis (torch allows it below the dilation,
  onnxruntime 1.32 does not) crops less at the end instead, zero-pads what cropping cannot absorb
  and adds the bias after;
- ``count_include_pad`` is always written (ONNX's default 0 is not torch's);
- Upsample is ``Resize`` with ``scales`` (never sizes for a scale_factor: the coordinate mapping
  would differ) in PyTorch's coordinate mode;
- ``crop`` is a Slice whose starts are computed from the runtime shapes, so it stays dynamic.

``LOWERINGS`` maps each spec type to its emitter and to the lowest opset at which its lowering is
faithful (``min_opset``); ``MERGE_EMITTERS`` covers ``cat``, ``add``, ``crop`` and the DSL
functions; ``emit_nodes`` writes the outputs of a ``chunk``/``split`` as one Split.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from onnx import NodeProto, TensorProto, helper, numpy_helper

from convgraph import dims as D
from convgraph import ir
from convgraph.errors import ExportError

Shape = tuple  # of dims: int or a convgraph.dims expression

#: the lowest opset convgraph writes
BASE_OPSET = 17

#: the largest adaptive-pool output size exported (its lowering's constants and matrix grow with it)
MAX_ADAPTIVE_BINS = 1 << 20

#: torch padding_mode -> ONNX Pad mode
PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


class Builder:
    """Collects the ONNX nodes of one graph at one opset, with unique node and value names."""

    def __init__(self, opset: int, reserved: Sequence[str] = ()):
        self.opset = opset
        self.nodes: list[NodeProto] = []
        #: helper values whose shape is known: (name, dims), written as value_info
        self.known_shapes: list[tuple[str, Shape]] = []
        self._values: set[str] = set(reserved)
        self._node_names: set[str] = set()

    def _unique(self, base: str, used: set[str]) -> str:
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    def value(self, base: str) -> str:
        """A fresh value name ``base`` (suffixed when taken)."""
        return self._unique(base, self._values)

    def op(self, op_type: str, inputs: Sequence[str], name: str, output: str | None = None, **attrs: Any) -> str:
        """Append one node; its output is ``output`` or a fresh value named after the node."""
        node_name = self._unique(name, self._node_names)
        out = output if output is not None else self.value(node_name)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=node_name, **attrs))
        return out

    def multi_op(self, op_type: str, inputs: Sequence[str], name: str, outputs: Sequence[str], **attrs: Any) -> None:
        """Append one node with several named outputs (Split)."""
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs),
                                           name=self._unique(name, self._node_names), **attrs))

    def const(self, name: str, values: ArrayLike, dtype: DTypeLike = np.int64) -> str:
        """A Constant node holding ``values`` (int64 unless told)."""
        arr = np.asarray(values, dtype=dtype)
        out = self.value(name)
        self.nodes.append(helper.make_node("Constant", [], [out], name=self._unique(name, self._node_names),
                                           value=numpy_helper.from_array(arr, out)))
        return out

    def ints(self, name: str, values: int | np.ndarray | Iterable[int]) -> str:
        """An int64 Constant: a scalar, a sequence or an array."""
        return self.const(name, values if isinstance(values, (int, np.ndarray)) else list(values), np.int64)

    def floats(self, name: str, values: ArrayLike) -> str:
        return self.const(name, values, np.float32)

    def reduce_mean(self, x: str, axes: Sequence[int], name: str, output: str | None = None) -> str:
        """ReduceMean with keepdims; ``axes`` is an input from opset 18, an attribute before."""
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.ints(f"{name}/axes", axes)], name, output, keepdims=1)
        return self.op("ReduceMean", [x], name, output, axes=list(axes), keepdims=1)

    def reduce_max(self, x: str, axes: Sequence[int], name: str, output: str | None = None) -> str:
        """ReduceMax with keepdims; ``axes`` is an input from opset 18, an attribute before."""
        if self.opset >= 18:
            return self.op("ReduceMax", [x, self.ints(f"{name}/axes", axes)], name, output, keepdims=1)
        return self.op("ReduceMax", [x], name, output, axes=list(axes), keepdims=1)

    def shape(self, x: str, name: str, start: int, end: int | None = None) -> str:
        """Shape(x)[start:end] as an int64 vector (Shape-15 start/end attributes)."""
        attrs: dict[str, Any] = {"start": start} if end is None else {"start": start, "end": end}
        return self.op("Shape", [x], name, **attrs)

    def channel_vector(self, v: str, rank: int, name: str) -> str:
        """A per-channel vector [C] reshaped to [C, 1, ...] so it broadcasts over (N, C, *spatial)."""
        if rank <= 2:
            return v
        return self.op("Unsqueeze", [v, self.ints(f"{name}/axes", range(1, rank - 1))], name)


@dataclass(frozen=True)
class Site:
    """Where one layer lowers: its IR node, the input value and shape, the output value and shape."""

    node: ir.Node
    x: str
    x_shape: Shape
    out: str
    out_shape: Shape

    @property
    def spec(self) -> Any:
        """The layer spec. ``LOWERINGS`` is keyed by the spec's type, so each emitter declares the
        one type it receives (``spec: ir.Conv = s.spec``); the table test checks the keys."""
        return self.node.spec

    @property
    def name(self) -> str:
        return self.node.layer_name or self.node.name

    def param(self, local: str) -> str:
        return f"{self.name}.{local}"

    def fail(self, message: str) -> ExportError:
        return ExportError(f"{self.spec.type_name} '{self.name}': {message}", self.node.loc)


def _pads(begins: Sequence[int], ends: Sequence[int]) -> list[int]:
    """ONNX Conv/Pool ``pads``: all begins, then all ends."""
    return [*begins, *ends]


def _pair_pads(pads: ir.Pads) -> list[int]:
    """ONNX ``pads`` from (begin, end) per axis."""
    return _pads([p for p, _ in pads], [p for _, p in pads])


def _pad_node(b: Builder, s: Site, pads: ir.Pads, mode: str) -> str:
    """Pad (N and C untouched) with an ONNX Pad mode; records the padded shape."""
    begins, ends = [p for p, _ in pads], [p for _, p in pads]
    vec = b.ints(f"{s.name}/pads", [0, 0, *begins, 0, 0, *ends])
    out = b.op("Pad", [s.x, vec], f"{s.name}/pad", mode=mode)
    shape = (*s.x_shape[:2], *(D.add(i, pb + pe) for i, (pb, pe) in zip(s.x_shape[2:], pads)))
    b.known_shapes.append((out, shape))
    return out


# --------------------------------------------------------------------------------------------
# Layer emitters
# --------------------------------------------------------------------------------------------


def _conv(b: Builder, s: Site) -> None:
    spec: ir.Conv = s.spec
    x, pads = s.x, spec.padding
    if spec.padding_mode != "zeros" and any(p for pair in pads for p in pair):
        x = _pad_node(b, s, pads, PAD_MODES[spec.padding_mode])
        pads = tuple((0, 0) for _ in pads)
    inputs = [x, s.param("weight")] + ([s.param("bias")] if spec.bias else [])
    b.op("Conv", inputs, s.name, s.out, kernel_shape=list(spec.kernel_size), strides=list(spec.stride),
         pads=_pair_pads(pads), dilations=list(spec.dilation),
         group=spec.groups)


def _conv_transpose(b: Builder, s: Site) -> None:
    spec: ir.ConvTranspose = s.spec
    attrs: dict[str, Any] = dict(kernel_shape=list(spec.kernel_size), strides=list(spec.stride),
                 dilations=list(spec.dilation), group=spec.groups)
    weights = [s.x, s.param("weight")]
    if all(op < st for op, st in zip(spec.output_padding, spec.stride)):
        b.op("ConvTranspose", weights + ([s.param("bias")] if spec.bias else []), s.name, s.out,
             pads=_pair_pads(spec.padding), output_padding=list(spec.output_padding), **attrs)
        return
    # onnxruntime rejects output_padding >= stride. The op extra positions at the end of the full
    # transposed conv receive no kernel tap (bias only): crop op less at the end; when padding
    # cannot absorb op, take the full result and let a Pad crop (negative) and extend (positive).
    begins, ends, op = [q for q, _ in spec.padding], [q for _, q in spec.padding], spec.output_padding
    if all(o <= q for o, q in zip(op, ends)):
        y = b.op("ConvTranspose", weights, s.name, None if spec.bias else s.out,
                 pads=_pads(begins, [q - o for q, o in zip(ends, op)]), output_padding=[0] * spec.nd, **attrs)
    else:
        full = b.op("ConvTranspose", weights, s.name, pads=[0] * 2 * spec.nd, output_padding=[0] * spec.nd, **attrs)
        vec = b.ints(f"{s.name}/pads", [0, 0, *(-q for q in begins), 0, 0, *(o - q for o, q in zip(op, ends))])
        y = b.op("Pad", [full, vec], f"{s.name}/pad", None if spec.bias else s.out, mode="constant")
    if spec.bias:
        bias = b.channel_vector(s.param("bias"), len(s.out_shape), f"{s.name}/bias")
        b.op("Add", [y, bias], f"{s.name}/add_bias", s.out)


def _pool(b: Builder, s: Site) -> None:
    spec: ir.Pool = s.spec
    attrs = dict(kernel_shape=list(spec.kernel_size), strides=list(spec.stride),
                 pads=_pair_pads(spec.padding), ceil_mode=int(spec.ceil_mode))
    if spec.mode == "max":
        b.op("MaxPool", [s.x], s.name, s.out, dilations=list(spec.dilation), **attrs)
    elif spec.divisor_override is not None:
        _divided_pool(b, s, attrs)
    else:
        b.op("AveragePool", [s.x], s.name, s.out, count_include_pad=int(spec.count_include_pad), **attrs)


def _divided_pool(b: Builder, s: Site, attrs: dict) -> None:
    """divisor_override d: window sum / d. Floor mode: every window lies in the padded input, so
    the sum is the count_include_pad mean times prod(kernel). Ceil mode: the mean over the real
    elements times their count, the count being LpPool(p=1) of ones (zero padding adds 0)."""
    spec: ir.Pool = s.spec
    n, divisor = s.name, spec.divisor_override
    assert divisor is not None  # _pool calls this only with a divisor
    if not spec.ceil_mode:
        mean = b.op("AveragePool", [s.x], f"{n}/mean", count_include_pad=1, **attrs)
        factor = math.prod(spec.kernel_size) / divisor
        b.op("Mul", [mean, b.floats(f"{n}/factor", factor)], n, s.out)
        return
    mean = b.op("AveragePool", [s.x], f"{n}/mean", count_include_pad=0, **attrs)
    spatial = b.shape(s.x, f"{n}/spatial", 2)
    ones_shape = b.op("Concat", [b.ints(f"{n}/n1c1", [1, 1]), spatial], f"{n}/ones_shape", axis=0)
    ones = b.op("ConstantOfShape", [ones_shape], f"{n}/ones",
                value=numpy_helper.from_array(np.ones(1, np.float32), f"{n}/one"))
    count = b.op("LpPool", [ones], f"{n}/count", p=1, **attrs)
    total = b.op("Mul", [mean, count], f"{n}/sum")
    b.op("Div", [total, b.floats(f"{n}/divisor", float(divisor))], n, s.out)


def _adaptive_axes(b: Builder, s: Site, output_size: tuple[int | None, ...], global_op: str) -> list[tuple[int, int]]:
    """The (axis, bins) an adaptive pool must compute; [] when Identity or the global op did it all.
    Either lowering builds per-bin constants or ops at export time: a huge bin count is refused."""
    rank = len(s.x_shape)
    axes = [(a, o) for a, o in enumerate(output_size, start=2) if o is not None and o != s.x_shape[a]]
    if not axes:
        b.op("Identity", [s.x], s.name, s.out)
        return []
    if len(axes) == rank - 2 and all(o == 1 for _, o in axes):
        b.op(global_op, [s.x], s.name, s.out)
        return []
    big = [o for _, o in axes if o > MAX_ADAPTIVE_BINS]
    if big:
        raise s.fail(f"output size {big[0]} is too large to export (the lowering has a row or a slice per "
                     f"output; at most {MAX_ADAPTIVE_BINS})")
    return axes


def _adaptive(b: Builder, s: Site) -> None:
    """Global mean when every bin is the whole axis; otherwise, per axis with o >= 2 bins, an
    averaging matrix ``M[j, t] = [start_j <= t < end_j] / (end_j - start_j)`` with
    ``start_j = floor(j*i/o)``, ``end_j = ceil((j+1)*i/o)`` built from the runtime size i (§3.2),
    contracted with the axis by Einsum."""
    spec: ir.AdaptiveAvgPool = s.spec
    axes = _adaptive_axes(b, s, spec.output_size, "GlobalAveragePool")
    x = s.x
    for n, (a, o) in enumerate(axes):
        out = s.out if n == len(axes) - 1 else None
        tag = f"{s.name}/axis{a}"
        x = b.reduce_mean(x, [a], tag, out) if o == 1 else _bin_average(b, x, a, o, len(s.x_shape), tag, out)


def _adaptive_max(b: Builder, s: Site) -> None:
    """GlobalMaxPool when every bin is the whole axis; otherwise per axis, the bins
    ``[floor(j*i/o), ceil((j+1)*i/o))`` sliced from the runtime size i, each reduced by ReduceMax,
    concatenated along the axis."""
    spec: ir.AdaptiveMaxPool = s.spec
    x = s.x
    axes = _adaptive_axes(b, s, spec.output_size, "GlobalMaxPool")
    for n, (a, o) in enumerate(axes):
        out = s.out if n == len(axes) - 1 else None
        x = _bin_max(b, x, a, o, f"{s.name}/axis{a}", out)


def _bin_max(b: Builder, x: str, axis: int, o: int, tag: str, out: str | None) -> str:
    i = b.shape(x, f"{tag}/size", axis, axis + 1)  # [1]
    parts = []
    for j in range(o):
        start = b.op("Div", [b.op("Mul", [i, b.ints(f"{tag}/j{j}", [j])], f"{tag}/ji{j}"), b.ints(f"{tag}/o{j}", [o])],
                     f"{tag}/start{j}")
        j1i = b.op("Mul", [i, b.ints(f"{tag}/j1_{j}", [j + 1])], f"{tag}/j1i{j}")
        end = b.op("Div", [b.op("Add", [j1i, b.ints(f"{tag}/up{j}", [o - 1])], f"{tag}/j1i_up{j}"),
                           b.ints(f"{tag}/o_{j}", [o])], f"{tag}/end{j}")
        piece = b.op("Slice", [x, start, end, b.ints(f"{tag}/axis{j}", [axis])], f"{tag}/bin{j}")
        parts.append(b.reduce_max(piece, [axis], f"{tag}/max{j}"))
    return b.op("Concat", parts, tag, out, axis=axis)


def _pad_layer(b: Builder, s: Site) -> None:
    """Pad (the positive amounts, ONNX mode constant/reflect/edge/wrap) then Slice (the negative
    amounts crop): torch pads first, so reflect (5, -3) reflects 5 of the original size."""
    spec: ir.Pad = s.spec
    rank, k = len(s.x_shape), len(spec.padding)
    first = rank - k
    grow = [(max(pb, 0), max(pe, 0)) for pb, pe in spec.padding]
    crop = [(max(-pb, 0), max(-pe, 0)) for pb, pe in spec.padding]
    need_crop = any(c for pair in crop for c in pair)
    x = s.x
    if spec.mode == "circular" and need_crop:  # torch crops first, then wraps the cropped part
        x = _crop_slice(b, s, x, crop, first, None if any(p for pair in grow for p in pair) else s.out)
        need_crop = False
        if x == s.out:
            return
    if any(p for pair in grow for p in pair):
        begins, ends = [0] * first + [p for p, _ in grow], [0] * first + [p for _, p in grow]
        inputs = [x, b.ints(f"{s.name}/pads", begins + ends)]
        mode = PAD_MODES.get(spec.mode, "constant")
        if mode == "constant":
            inputs.append(b.floats(f"{s.name}/value", float(spec.value)))
        x = b.op("Pad", inputs, s.name if not need_crop else f"{s.name}/pad", None if need_crop else s.out, mode=mode)
    if need_crop or x == s.x:
        _crop_slice(b, s, x, crop, first, s.out)


def _crop_slice(b: Builder, s: Site, x: str, crop: list[tuple[int, int]], first: int, out: str | None) -> str:
    """Slice off ``crop`` (begin, end) amounts from the axes from ``first`` on."""
    big = np.iinfo(np.int64).max
    axes = [a for a, (cb, ce) in enumerate(crop, start=first) if cb or ce] or [first]
    starts = [crop[a - first][0] for a in axes]
    ends = [-crop[a - first][1] if crop[a - first][1] else big for a in axes]
    return b.op("Slice", [x, b.ints(f"{s.name}/starts", starts), b.ints(f"{s.name}/ends", ends),
                          b.ints(f"{s.name}/axes", axes)], s.name if out is not None else f"{s.name}/crop", out)


def _pixel_shuffle(b: Builder, s: Site) -> None:
    """PixelShuffle is DepthToSpace in CRD mode (torch's channel order c*r*r + i*r + j).
    PixelUnshuffle: Reshape (N, C, H/r, r, W/r, r), Transpose to (N, C, r, r, H/r, W/r), Reshape
    (N, C*r*r, H/r, W/r), with H/r and W/r read from the runtime shape."""
    spec: ir.PixelShuffle = s.spec
    r, n = spec.factor, s.name
    if spec.upscale:
        b.op("DepthToSpace", [s.x], n, s.out, blocksize=r, mode="CRD")
        return
    nc = b.shape(s.x, f"{n}/nc", 0, 2)
    hw = b.op("Div", [b.shape(s.x, f"{n}/hw", 2), b.ints(f"{n}/r", [r])], f"{n}/hw_r")
    h, w = (b.op("Slice", [hw, b.ints(f"{n}/s{j}", [j]), b.ints(f"{n}/e{j}", [j + 1])], f"{n}/{t}")
            for j, t in ((0, "h"), (1, "w")))
    six = b.op("Concat", [nc, h, b.ints(f"{n}/r1", [r]), w, b.ints(f"{n}/r2", [r])], f"{n}/shape6", axis=0)
    y = b.op("Transpose", [b.op("Reshape", [s.x, six], f"{n}/split")], f"{n}/move", perm=[0, 1, 3, 5, 2, 4])
    four = b.op("Concat", [b.shape(s.x, f"{n}/n", 0, 1), b.ints(f"{n}/c", [-1]), hw], f"{n}/shape4", axis=0)
    b.op("Reshape", [y, four], n, s.out)


def _instancenorm(b: Builder, s: Site) -> None:
    """InstanceNormalization with the input's statistics; with running statistics (eval mode and
    track_running_stats) a BatchNormalization, as torch."""
    spec: ir.InstanceNorm = s.spec
    c = s.x_shape[1]
    if spec.affine:
        scale, bias = s.param("weight"), s.param("bias")
    else:
        scale, bias = b.floats(f"{s.name}/ones", np.ones(c)), b.floats(f"{s.name}/zeros", np.zeros(c))
    if spec.uses_input_stats:
        b.op("InstanceNormalization", [s.x, scale, bias], s.name, s.out, epsilon=float(spec.eps))
    else:
        b.op("BatchNormalization", [s.x, scale, bias, s.param("running_mean"), s.param("running_var")],
             s.name, s.out, epsilon=float(spec.eps))


def _groupnorm(b: Builder, s: Site) -> None:
    """Reshape to (N, G, C/G * spatial), InstanceNormalization with unit scale, reshape back, then
    the per-channel affine weight and bias (ONNX GroupNormalization-18 scales per group)."""
    spec: ir.GroupNorm = s.spec
    g, n, rank = spec.num_groups, s.name, len(s.x_shape)
    grouped = b.op("Reshape", [s.x, b.ints(f"{n}/grouped_shape", [0, g, -1])], f"{n}/grouped")
    normed = b.op("InstanceNormalization", [grouped, b.floats(f"{n}/ones", np.ones(g)),
                                            b.floats(f"{n}/zeros", np.zeros(g))], f"{n}/norm", epsilon=float(spec.eps))
    back = b.op("Reshape", [normed, b.shape(s.x, f"{n}/shape", 0)], n if not spec.affine else f"{n}/back",
                None if spec.affine else s.out)
    if spec.affine:
        scaled = b.op("Mul", [back, b.channel_vector(s.param("weight"), rank, f"{n}/scale")], f"{n}/scaled")
        b.op("Add", [scaled, b.channel_vector(s.param("bias"), rank, f"{n}/shift")], n, s.out)


def _prelu(b: Builder, s: Site) -> None:
    slope = s.param("weight")
    if s.spec.num_parameters > 1:
        slope = b.channel_vector(slope, len(s.x_shape), f"{s.name}/slope")
    b.op("PRelu", [s.x, slope], s.name, s.out)


def _softmax(b: Builder, s: Site) -> None:
    from convgraph.shapes import softmax_dim

    spec: ir.Softmax = s.spec
    axis = softmax_dim(spec.dim, len(s.x_shape))
    b.op("LogSoftmax" if spec.log else "Softmax", [s.x], s.name, s.out, axis=axis)


def _bin_average(b: Builder, x: str, axis: int, o: int, rank: int, tag: str, out: str | None) -> str:
    i = b.shape(x, f"{tag}/size", axis, axis + 1)  # [1]
    t = b.op("Range", [b.ints(f"{tag}/zero", 0), b.op("Squeeze", [i], f"{tag}/i"), b.ints(f"{tag}/one", 1)],
             f"{tag}/t")  # [i]
    j = b.ints(f"{tag}/j", np.arange(o).reshape(o, 1))
    starts = b.op("Div", [b.op("Mul", [j, i], f"{tag}/ji"), b.ints(f"{tag}/o", [o])], f"{tag}/start")
    j1i = b.op("Mul", [b.ints(f"{tag}/j1", np.arange(1, o + 1).reshape(o, 1)), i], f"{tag}/j1i")
    ends = b.op("Div", [b.op("Add", [j1i, b.ints(f"{tag}/o_1", [o - 1])], f"{tag}/j1i_up"),
                        b.ints(f"{tag}/o_", [o])], f"{tag}/end")
    inside = b.op("And", [b.op("GreaterOrEqual", [t, starts], f"{tag}/ge"), b.op("Less", [t, ends], f"{tag}/lt")],
                  f"{tag}/in_bin")
    count = b.op("Cast", [b.op("Sub", [ends, starts], f"{tag}/len")], f"{tag}/count", to=TensorProto.FLOAT)
    m = b.op("Div", [b.op("Cast", [inside], f"{tag}/mask", to=TensorProto.FLOAT), count], f"{tag}/matrix")
    letters = "nabcd"[:rank]
    eq = f"{letters},z{letters[axis]}->{letters.replace(letters[axis], 'z')}"
    return b.op("Einsum", [x, m], tag, out, equation=eq)


#: torch Upsample mode -> Resize attributes (§4.6; nearest-exact: floor((j + 0.5)/s) is
#: half_pixel's x = (j + 0.5)/s - 0.5 rounded with ties up)
_RESIZE_MODES = {
    "nearest": dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    "nearest-exact": dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                          nearest_mode="round_prefer_ceil"),
}


def _resize_attrs(spec: ir.Upsample) -> dict:
    if spec.mode in _RESIZE_MODES:
        return _RESIZE_MODES[spec.mode]
    return dict(mode="linear", coordinate_transformation_mode="align_corners" if spec.align_corners else "half_pixel")


def float32_exact(sf: float) -> bool:
    """ONNX Resize carries float32 scales and onnxruntime computes ``floor(i*scale)`` in float32;
    torch uses the double ``floor(i*sf)``. They agree for every practical size only when sf is a
    float32 value (then ``i*sf`` is exact for ``i*mantissa < 2**24``)."""
    if not abs(sf) <= float(np.finfo(np.float32).max):  # 1e300 would overflow the cast (a numpy warning)
        return False
    return float(np.float32(sf)) == sf


def _upsample(b: Builder, s: Site) -> None:
    spec: ir.Upsample = s.spec
    nd = len(s.x_shape) - 2
    scales = spec.scales_for(nd)
    if scales is not None:
        bad = [sf for sf in scales if not float32_exact(float(sf))]
        if bad:
            raise s.fail(f"scale_factor {bad[0]!r} is not a float32 value: ONNX Resize computes the output "
                         f"size in float32 and would differ from PyTorch's double-precision floor(i*{bad[0]!r}) "
                         "at some sizes; use a scale with a short binary fraction (e.g. 0.75, 1.5) or size=")
        vec = b.floats(f"{s.name}/scales", [1.0, 1.0, *map(float, scales)])
        b.op("Resize", [s.x, "", vec], s.name, s.out, **_resize_attrs(spec))
        return
    given = spec.sizes_for(nd)
    if given is None:
        raise s.fail("needs size or scale_factor")
    sizes = list(given)
    if b.opset >= 18:
        b.op("Resize", [s.x, "", "", b.ints(f"{s.name}/sizes", sizes)], s.name, s.out,
             axes=list(range(2, nd + 2)), **_resize_attrs(spec))
        return
    full = b.op("Concat", [b.shape(s.x, f"{s.name}/nc", 0, 2), b.ints(f"{s.name}/hw", sizes)],
                f"{s.name}/sizes", axis=0)
    b.op("Resize", [s.x, "", "", full], s.name, s.out, **_resize_attrs(spec))


def _batchnorm(b: Builder, s: Site) -> None:
    spec: ir.BatchNorm = s.spec
    c = spec.num_features
    if spec.affine:
        scale, bias = s.param("weight"), s.param("bias")
    else:
        scale, bias = b.floats(f"{s.name}/ones", np.ones(c)), b.floats(f"{s.name}/zeros", np.zeros(c))
    if spec.track_running_stats:
        b.op("BatchNormalization", [s.x, scale, bias, s.param("running_mean"), s.param("running_var")],
             s.name, s.out, epsilon=float(spec.eps))
        return
    # no running statistics: eval-mode torch normalises with the batch's own mean and biased variance
    rank = len(s.x_shape)
    axes = [0, *range(2, rank)]
    mean = b.reduce_mean(s.x, axes, f"{s.name}/mean")
    centred = b.op("Sub", [s.x, mean], f"{s.name}/centred")
    var = b.reduce_mean(b.op("Mul", [centred, centred], f"{s.name}/sq"), axes, f"{s.name}/var")
    std = b.op("Sqrt", [b.op("Add", [var, b.floats(f"{s.name}/eps", spec.eps)], f"{s.name}/var_eps")],
               f"{s.name}/std")
    normed = b.op("Div", [centred, std], f"{s.name}/normed")
    scaled = b.op("Mul", [normed, b.channel_vector(scale, rank, f"{s.name}/scale")], f"{s.name}/scaled")
    b.op("Add", [scaled, b.channel_vector(bias, rank, f"{s.name}/shift")], s.name, s.out)


def _gelu(b: Builder, s: Site) -> None:
    """Gelu from opset 20; before, torch's formulas: x/2*(1 + erf(x/sqrt 2)) or the tanh form."""
    approximate = str(s.spec.param("approximate", "none"))
    if b.opset >= 20:
        b.op("Gelu", [s.x], s.name, s.out, approximate=approximate)
        return
    n = s.name
    if approximate == "tanh":
        cube = b.op("Mul", [b.op("Mul", [s.x, s.x], f"{n}/x2"), s.x], f"{n}/x3")
        inner = b.op("Add", [s.x, b.op("Mul", [cube, b.floats(f"{n}/c", 0.044715)], f"{n}/cx3")], f"{n}/inner")
        core = b.op("Tanh", [b.op("Mul", [inner, b.floats(f"{n}/k", math.sqrt(2.0 / math.pi))], f"{n}/arg")],
                    f"{n}/tanh")
    else:
        core = b.op("Erf", [b.op("Mul", [s.x, b.floats(f"{n}/rsqrt2", 1.0 / math.sqrt(2.0))], f"{n}/arg")],
                    f"{n}/erf")
    half_x = b.op("Mul", [s.x, b.floats(f"{n}/half", 0.5)], f"{n}/half_x")
    b.op("Mul", [half_x, b.op("Add", [core, b.floats(f"{n}/one", 1.0)], f"{n}/one_plus")], n, s.out)


def _silu(b: Builder, s: Site) -> None:
    """Swish from opset 24; before, x * sigmoid(x)."""
    if b.opset >= 24:
        b.op("Swish", [s.x], s.name, s.out)
        return
    b.op("Mul", [s.x, b.op("Sigmoid", [s.x], f"{s.name}/sigmoid")], s.name, s.out)


def _simple(op_type: str, **attrs: Any) -> Callable[[Builder, Site], None]:
    def emit(b: Builder, s: Site) -> None:
        b.op(op_type, [s.x], s.name, s.out, **attrs)

    return emit


def _mish(b: Builder, s: Site) -> None:
    """Mish from opset 18; before, x * tanh(softplus(x))."""
    if b.opset >= 18:
        b.op("Mish", [s.x], s.name, s.out)
        return
    soft = b.op("Softplus", [s.x], f"{s.name}/softplus")
    b.op("Mul", [s.x, b.op("Tanh", [soft], f"{s.name}/tanh")], s.name, s.out)


def _relu6(b: Builder, s: Site) -> None:
    b.op("Clip", [s.x, b.floats(f"{s.name}/min", 0.0), b.floats(f"{s.name}/max", 6.0)], s.name, s.out)


def _elu(b: Builder, s: Site) -> None:
    b.op("Elu", [s.x], s.name, s.out, alpha=float(s.spec.param("alpha", 1.0)))


def _leaky_relu(b: Builder, s: Site) -> None:
    b.op("LeakyRelu", [s.x], s.name, s.out, alpha=s.spec.number("negative_slope", 0.01))


#: Elementwise kinds by type_name (Dropout is the identity at inference)
ELEMENTWISE_EMITTERS: dict[str, Callable[[Builder, Site], None]] = {
    "ReLU": _simple("Relu"),
    "LeakyReLU": _leaky_relu,
    "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"),
    "GELU": _gelu,
    "SiLU": _silu,
    "ReLU6": _relu6,
    "Hardswish": _simple("HardSwish"),
    "Hardsigmoid": _simple("HardSigmoid", alpha=1.0 / 6.0, beta=0.5),
    "ELU": _elu,
    "Mish": _mish,
    "Identity": _simple("Identity"),
    "Dropout": _simple("Identity"),
    "Dropout1d": _simple("Identity"),
    "Dropout2d": _simple("Identity"),
    "Dropout3d": _simple("Identity"),
}


def _elementwise(b: Builder, s: Site) -> None:
    emit = ELEMENTWISE_EMITTERS.get(s.spec.type_name)
    if emit is None:
        raise s.fail("has no ONNX lowering")
    emit(b, s)


def _flatten(b: Builder, s: Site) -> None:
    """Flatten(axis=1) for torch's default; otherwise Reshape to Shape[:a] ++ [-1] ++ Shape[e+1:]."""
    spec: ir.Flatten = s.spec
    rank = len(s.x_shape)
    start, end = spec.start_dim % rank, spec.end_dim % rank
    if start == 1 and end == rank - 1:
        b.op("Flatten", [s.x], s.name, s.out, axis=1)
        return
    parts = [b.shape(s.x, f"{s.name}/head", 0, start)] if start > 0 else []
    parts.append(b.ints(f"{s.name}/merged", [-1]))
    if end < rank - 1:
        parts.append(b.shape(s.x, f"{s.name}/tail", end + 1))
    target = b.op("Concat", parts, f"{s.name}/shape", axis=0) if len(parts) > 1 else parts[0]
    b.op("Reshape", [s.x, target], s.name, s.out)


def _unflatten(b: Builder, s: Site) -> None:
    """Reshape to Shape[:dim] ++ sizes ++ Shape[dim+1:] (a -1 is ONNX's own inferred dim)."""
    spec: ir.Unflatten = s.spec
    rank = len(s.x_shape)
    j = spec.dim % rank
    parts = [b.shape(s.x, f"{s.name}/head", 0, j)] if j > 0 else []
    parts.append(b.ints(f"{s.name}/sizes", list(spec.sizes)))
    if j < rank - 1:
        parts.append(b.shape(s.x, f"{s.name}/tail", j + 1))
    target = b.op("Concat", parts, f"{s.name}/shape", axis=0) if len(parts) > 1 else parts[0]
    b.op("Reshape", [s.x, target], s.name, s.out)


def _linear(b: Builder, s: Site) -> None:
    """Gemm(transB=1) on (N, in); MatMul with the transposed weight (+ Add) on other ranks."""
    spec: ir.Linear = s.spec
    if len(s.x_shape) == 2:
        inputs = [s.x, s.param("weight")] + ([s.param("bias")] if spec.bias else [])
        b.op("Gemm", inputs, s.name, s.out, transB=1)
        return
    wt = b.op("Transpose", [s.param("weight")], f"{s.name}/weight_t", perm=[1, 0])
    y = b.op("MatMul", [s.x, wt], s.name if not spec.bias else f"{s.name}/matmul", None if spec.bias else s.out)
    if spec.bias:
        b.op("Add", [y, s.param("bias")], s.name, s.out)


# --------------------------------------------------------------------------------------------
# Opset requirements and the table
# --------------------------------------------------------------------------------------------

Requirement = tuple[int, str]  # (opset, why)


def _no_requirement(spec: object) -> Requirement | None:
    return None


def _conv_opset(spec: ir.Conv) -> Requirement | None:
    if spec.padding_mode == "circular" and any(p for pair in spec.padding for p in pair):
        return 19, "padding_mode='circular' lowers to Pad mode 'wrap', which exists from Pad-19"
    return None


def _pad_opset(spec: ir.Pad) -> Requirement | None:
    if spec.mode == "circular" and any(p > 0 for pair in spec.padding for p in pair):
        return 19, "circular padding lowers to Pad mode 'wrap', which exists from Pad-19"
    return None


def _pool_opset(spec: ir.Pool) -> Requirement | None:
    if spec.ceil_mode:
        return 22, ("ceil_mode=True: ONNX shape inference drops a last window that starts in the right "
                    "padding (as torch and onnxruntime do) only from MaxPool/AveragePool-22")
    return None


class Lowering(NamedTuple):
    emit: Callable[[Builder, Site], None]
    #: the lowest opset (above BASE_OPSET) this spec's lowering needs, with the reason
    min_opset: Callable[[Any], Requirement | None]


LOWERINGS: dict[type, Lowering] = {
    ir.Conv: Lowering(_conv, _conv_opset),
    ir.ConvTranspose: Lowering(_conv_transpose, _no_requirement),
    ir.Pool: Lowering(_pool, _pool_opset),
    ir.AdaptiveAvgPool: Lowering(_adaptive, _no_requirement),
    ir.AdaptiveMaxPool: Lowering(_adaptive_max, _no_requirement),
    ir.Pad: Lowering(_pad_layer, _pad_opset),
    ir.PixelShuffle: Lowering(_pixel_shuffle, _no_requirement),
    ir.Upsample: Lowering(_upsample, _no_requirement),
    ir.BatchNorm: Lowering(_batchnorm, _no_requirement),
    ir.InstanceNorm: Lowering(_instancenorm, _no_requirement),
    ir.GroupNorm: Lowering(_groupnorm, _no_requirement),
    ir.PReLU: Lowering(_prelu, _no_requirement),
    ir.Softmax: Lowering(_softmax, _no_requirement),
    ir.Elementwise: Lowering(_elementwise, _no_requirement),
    ir.Flatten: Lowering(_flatten, _no_requirement),
    ir.Unflatten: Lowering(_unflatten, _no_requirement),
    ir.Linear: Lowering(_linear, _no_requirement),
}


# --------------------------------------------------------------------------------------------
# Merge ops
# --------------------------------------------------------------------------------------------


def _cat(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    b.op("Concat", list(node.inputs), node.name, node.name, axis=node.dim)


def _add(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    b.op("Add", list(node.inputs), node.name, node.name)


def _crop(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """Slice v[(v - w)//2 : (v - w)//2 + w] on every spatial axis, with v and w read at run time."""
    v, like = node.inputs
    n, rank = node.name, len(shapes[0])
    sv, sw = b.shape(v, f"{n}/v_size", 2), b.shape(like, f"{n}/like_size", 2)
    starts = b.op("Div", [b.op("Sub", [sv, sw], f"{n}/excess"), b.ints(f"{n}/two", [2])], f"{n}/starts")
    ends = b.op("Add", [starts, sw], f"{n}/ends")
    b.op("Slice", [v, starts, ends, b.ints(f"{n}/axes", range(2, rank))], n, n)


def _binary(op_type: str) -> Callable[[Builder, ir.Node, list[Shape]], None]:
    def emit(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
        b.op(op_type, list(node.inputs), node.name, node.name)  # ONNX broadcasting is numpy's, as torch's

    return emit


_SCALAR_TYPES = {"add": "Add", "sub": "Sub", "rsub": "Sub", "mul": "Mul", "div": "Div"}


def _scalar(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    op = str(node.attr("op"))
    c = b.floats(f"{node.name}/value", float(node.attr("value")))
    args = [c, node.inputs[0]] if op == "rsub" else [node.inputs[0], c]
    b.op(_SCALAR_TYPES[op], args, node.name, node.name)


def _pad_like(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """Pad with ``(w - v) // 2`` at the start and the rest at the end of every spatial axis, from
    the runtime shapes (so it stays dynamic): ``pads = [0, 0, begins, 0, 0, ends]``."""
    v, like = node.inputs
    n = node.name
    diff = b.op("Sub", [b.shape(like, f"{n}/like_size", 2), b.shape(v, f"{n}/v_size", 2)], f"{n}/excess")
    begins = b.op("Div", [diff, b.ints(f"{n}/two", [2])], f"{n}/begins")
    ends = b.op("Sub", [diff, begins], f"{n}/ends")
    zeros = b.ints(f"{n}/nc", [0, 0])
    pads = b.op("Concat", [zeros, begins, zeros, ends], f"{n}/pads", axis=0)
    mode = PAD_MODES.get(str(node.attr("mode", "constant")), "constant")
    inputs = [v, pads] + ([b.floats(f"{n}/value", float(node.attr("value", 0.0)))] if mode == "constant" else [])
    b.op("Pad", inputs, n, n, mode=mode)


def _interp_like(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """Resize with ``sizes`` = v's (N, C) and like's spatial dims, read at run time."""
    v, like = node.inputs
    n = node.name
    sizes = b.op("Concat", [b.shape(v, f"{n}/nc", 0, 2), b.shape(like, f"{n}/hw", 2)], f"{n}/sizes", axis=0)
    spec = ir.Upsample(type_name="Upsample", size=1, scale_factor=None, mode=ir.upsample_mode(node.attr("mode")),
                       align_corners=node.attr("align_corners"))
    b.op("Resize", [v, "", "", sizes], n, n, **_resize_attrs(spec))


def _slice(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """ONNX Slice clamps as Python and torch do; an open end is INT64_MAX."""
    big = np.iinfo(np.int64).max
    index = [(j, a, z) for j, (a, z) in enumerate(ir.slice_index(node, shapes[0])) if (a, z) != (None, None)]
    if not index:
        b.op("Identity", [node.inputs[0]], node.name, node.name)
        return
    n = node.name
    starts = b.ints(f"{n}/starts", [0 if a is None else a for _, a, _ in index])
    ends = b.ints(f"{n}/ends", [big if z is None else z for _, _, z in index])
    b.op("Slice", [node.inputs[0], starts, ends, b.ints(f"{n}/axes", [j for j, _, _ in index])], n, n)


def _mean(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    rank = len(shapes[0])
    axes = sorted(d % rank for d in node.attr("dims"))
    keep = int(bool(node.attr("keepdim")))
    if b.opset >= 18:
        b.op("ReduceMean", [node.inputs[0], b.ints(f"{node.name}/axes", axes)], node.name, node.name, keepdims=keep)
    else:
        b.op("ReduceMean", [node.inputs[0]], node.name, node.name, axes=axes, keepdims=keep)


def _unsqueeze(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    axis = int(node.attr("dim")) % (len(shapes[0]) + 1)
    b.op("Unsqueeze", [node.inputs[0], b.ints(f"{node.name}/axes", [axis])], node.name, node.name)


def _squeeze(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """Squeeze exactly the dims the shape stage removed (size 1 in the formulas)."""
    x = shapes[0]
    named = node.attr("dims")
    dims = range(len(x)) if named is None else [d % len(x) for d in named]
    axes = [j for j in dims if x[j] == 1]
    if not axes:
        b.op("Identity", [node.inputs[0]], node.name, node.name)
        return
    b.op("Squeeze", [node.inputs[0], b.ints(f"{node.name}/axes", axes)], node.name, node.name)


def _reshape(b: Builder, node: ir.Node, shapes: list[Shape]) -> None:
    """Reshape to the plan of the shape stage: ints, -1, and carried dims read at run time
    (``Shape(v)[j] * num / den``, exact)."""
    from convgraph.shapes import reshape_plan

    n, v = node.name, node.inputs[0]
    parts = []
    for i, step in enumerate(reshape_plan(node.attr("shape"), shapes[0])):
        if step[0] != "dim":
            parts.append(b.ints(f"{n}/d{i}", [step[1] if step[0] == "int" else -1]))
            continue
        _, j, num, den = step
        d = b.shape(v, f"{n}/dim{i}", j, j + 1)
        if num != den:
            d = b.op("Div", [b.op("Mul", [d, b.ints(f"{n}/num{i}", [num])], f"{n}/times{i}"),
                             b.ints(f"{n}/den{i}", [den])], f"{n}/scaled{i}")
        parts.append(d)
    target = b.op("Concat", parts, f"{n}/shape", axis=0)
    b.op("Reshape", [v, target], n, n)


MERGE_EMITTERS: dict[str, Callable[[Builder, ir.Node, list[Shape]], None]] = {
    "cat": _cat,
    "add": _add,
    "sub": _binary("Sub"),
    "mul": _binary("Mul"),
    "crop": _crop,
    "pad_like": _pad_like,
    "interp_like": _interp_like,
    "scalar": _scalar,
    "slice": _slice,
    "mean": _mean,
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    "reshape": _reshape,
}


def requirement(node: ir.Node) -> Requirement | None:
    """The opset a layer node needs above BASE_OPSET, with the reason (None: BASE_OPSET is enough)."""
    return LOWERINGS[type(node.layer)].min_opset(node.layer)


def emit_node(b: Builder, node: ir.Node, values: dict[str, Shape]) -> None:
    """Lower one non-input IR node; its last ONNX node outputs the value ``node.name``."""
    if node.op == "layer":
        site = Site(node, node.inputs[0], values[node.inputs[0]], node.name, values[node.name])
        LOWERINGS[type(node.layer)].emit(b, site)
    else:
        MERGE_EMITTERS[node.op](b, node, [values[i] for i in node.inputs])


def _split_groups(nodes: Sequence[ir.Node]) -> dict[str, list[ir.Node]]:
    """The complete output sets of chunk/split statements ('slice' nodes with a ``part`` attr of
    the same input and arguments, one per position), keyed by their first output's name."""
    by_key: dict[tuple, list[ir.Node]] = {}
    for n in nodes:
        part = n.attr("part") if n.op == "slice" else None
        if part is not None:
            by_key.setdefault((n.inputs[0], part[0], part[1], part[2], part[4]), []).append(n)
    groups = {}
    for key, parts in by_key.items():
        ks = sorted(p.attr("part")[3] for p in parts)
        if ks == list(range(key[4])):  # complete, no duplicates: one Split
            ordered = sorted(parts, key=lambda p: p.attr("part")[3])
            groups[ordered[0].name] = ordered
    return groups


def _split(b: Builder, parts: list[ir.Node], values: dict[str, Shape]) -> None:
    """One ONNX Split for all outputs of a chunk/split, each output named after its value."""
    first = parts[0]
    kind, arg, dim, _k, _count = first.attr("part")
    x = values[first.inputs[0]]
    axis = dim % len(x)
    sizes = [stop - start for start, stop in ir.part_bounds(kind, x[axis], arg)]
    b.multi_op("Split", [first.inputs[0], b.ints(f"{first.name}/split", sizes)], first.name,
               [p.name for p in parts], axis=axis)


def emit_nodes(b: Builder, nodes: Sequence[ir.Node], values: dict[str, Shape]) -> None:
    """Lower every non-input node in order; the outputs of a chunk/split become one Split."""
    groups = _split_groups(nodes)
    done: set[str] = set()
    for node in nodes:
        if node.op == "input" or node.name in done:
            continue
        if node.name in groups:
            _split(b, groups[node.name], values)
            done.update(p.name for p in groups[node.name])
            continue
        emit_node(b, node, values)
