"""The IR: frozen layer specs in one canonical form, graph nodes and the graph.

Every front end (text DSL, Python builder) produces these; every later stage (shapes, solver,
ONNX export, numpy reference, animation) reads them and never sees the user's spelling.

Canonical form (done once, in ``layers.py``):
- every per-axis parameter is a tuple with one entry per spatial axis (``kernel_size=3`` on a
  2-D layer becomes ``(3, 3)``);
- Conv padding is explicit ``(begin, end)`` pairs per axis (``'same'``/``'valid'`` resolved);
- pooling stride defaults to the kernel size; AvgPool dilation is all ones.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, get_args

from convgraph.dims import Dim
from convgraph.errors import Loc

Ints = tuple[int, ...]
#: the kinds a string names, as Literal types (the catalogue checks them; the tables key on them)
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PoolMode = Literal["max", "avg"]
UpsampleMode = Literal["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]


def upsample_mode(name: object) -> UpsampleMode:
    """``name`` narrowed to an UpsampleMode (ValueError for any other value)."""
    for mode in get_args(UpsampleMode):
        if name == mode:
            return mode
    raise ValueError(f"not an Upsample mode: {name!r}")
Pads = tuple[tuple[int, int], ...]  # (begin, end) per spatial axis
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Conv:
    """Conv1d/2d/3d. ``padding`` is explicit (begin, end) per axis, applied with ``padding_mode``."""

    type_name: str
    nd: int
    in_channels: int
    out_channels: int
    kernel_size: Ints
    stride: Ints
    padding: Pads
    dilation: Ints
    groups: int = 1
    bias: bool = True
    padding_mode: PaddingMode = "zeros"

    @property
    def weight_shape(self) -> Ints:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)


@dataclass(frozen=True, kw_only=True)
class ConvTranspose:
    """ConvTranspose1d/2d/3d: full transposed conv, + output_padding at the end, then ``padding``
    (begin, end) per axis cropped off (torch's symmetric p is (p, p))."""

    type_name: str
    nd: int
    in_channels: int
    out_channels: int
    kernel_size: Ints
    stride: Ints
    padding: Pads
    output_padding: Ints
    dilation: Ints
    groups: int = 1
    bias: bool = True

    @property
    def weight_shape(self) -> Ints:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)


@dataclass(frozen=True, kw_only=True)
class Pool:
    """MaxPool/AvgPool 1d/2d/3d. ``mode`` is 'max' or 'avg'; AvgPool has dilation 1.
    ``padding`` is (begin, end) per axis (torch's symmetric p is (p, p))."""

    type_name: str
    nd: int
    mode: PoolMode
    kernel_size: Ints
    stride: Ints
    padding: Pads
    dilation: Ints
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None  # AvgPool: every window's sum is divided by this instead


@dataclass(frozen=True, kw_only=True)
class AdaptiveAvgPool:
    """AdaptiveAvgPool1d/2d/3d; ``None`` in output_size keeps that axis' input size."""

    type_name: str
    nd: int
    output_size: tuple[int | None, ...]


@dataclass(frozen=True, kw_only=True)
class AdaptiveMaxPool:
    """AdaptiveMaxPool1d/2d/3d: bins as AdaptiveAvgPool's, the maximum of each bin."""

    type_name: str
    nd: int
    output_size: tuple[int | None, ...]


@dataclass(frozen=True, kw_only=True)
class Pad:
    """ZeroPad/ConstantPad/ReflectionPad/ReplicationPad/CircularPad 1d/2d/3d and ``F.pad``.

    ``padding`` is (begin, end) per padded axis in axis order; the padded axes are the *last*
    ``len(padding)`` axes of the value (torch's ``F.pad`` order, last axis first, is undone here).
    Negative amounts crop. ``mode`` is torch's: constant | reflect | replicate | circular.
    ``nd`` is the rank of the module (0 for ``F.pad``, whose rank is the length of its list)."""

    type_name: str
    nd: int
    padding: Pads
    mode: str = "constant"
    value: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PixelShuffle:
    """PixelShuffle (``upscale=True``) and PixelUnshuffle on (N, C, H, W):
    shuffle (N, C*r*r, H, W) -> (N, C, H*r, W*r); unshuffle the inverse (H and W divisible by r)."""

    type_name: str
    factor: int
    upscale: bool = True


@dataclass(frozen=True, kw_only=True)
class Upsample:
    """nn.Upsample. Exactly one of size / scale_factor is set, each a per-axis tuple or a scalar
    (scalar: the same for every spatial axis; the rank is known only when it is applied)."""

    type_name: str
    size: int | Ints | None
    scale_factor: float | tuple[float, ...] | None
    mode: UpsampleMode = "nearest"
    align_corners: bool | None = None

    def sizes_for(self, nd: int) -> Ints | None:
        if self.size is None:
            return None
        return self.size if isinstance(self.size, tuple) else (self.size,) * nd

    def scales_for(self, nd: int) -> tuple[float, ...] | None:
        if self.scale_factor is None:
            return None
        sf = self.scale_factor
        return sf if isinstance(sf, tuple) else (float(sf),) * nd


@dataclass(frozen=True, kw_only=True)
class BatchNorm:
    type_name: str
    nd: int
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True


@dataclass(frozen=True, kw_only=True)
class InstanceNorm:
    """InstanceNorm1d/2d/3d: each (sample, channel) normalised over its spatial elements with its
    own mean and biased variance -- unless ``track_running_stats`` (inference then uses the running
    statistics, as BatchNorm). With input statistics torch needs more than one spatial element."""

    type_name: str
    nd: int
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = False
    track_running_stats: bool = False

    @property
    def uses_input_stats(self) -> bool:
        return not self.track_running_stats


@dataclass(frozen=True, kw_only=True)
class GroupNorm:
    """GroupNorm: the channels in ``num_groups`` groups, each (sample, group) normalised over its
    channels and spatial elements; per-channel affine weight and bias."""

    type_name: str
    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True


@dataclass(frozen=True, kw_only=True)
class PReLU:
    """PReLU: ``max(0, x) + a*min(0, x)`` with a learnt ``weight`` of ``num_parameters`` slopes
    (1: shared; else one per channel, dim 1)."""

    type_name: str
    num_parameters: int = 1
    init: float = 0.25


@dataclass(frozen=True, kw_only=True)
class Softmax:
    """Softmax / LogSoftmax over ``dim`` (None: torch's legacy choice, dim 1 unless the value
    is 0-, 1- or 3-D, then dim 0)."""

    type_name: str
    dim: int | None = None
    log: bool = False


@dataclass(frozen=True, kw_only=True)
class Elementwise:
    """Shape-preserving, parameter-free: activations, Identity, Dropout (identity at inference).

    ``params`` holds the numeric knobs as sorted (key, value) pairs, e.g.
    ``(('negative_slope', 0.01),)`` for LeakyReLU, ``(('approximate', 'none'),)`` for GELU,
    ``(('p', 0.5),)`` for Dropout."""

    type_name: str
    params: tuple[tuple[str, object], ...] = ()

    def param(self, key: str, default: object = None) -> object:
        return dict(self.params).get(key, default)

    def number(self, key: str, default: float) -> float:
        """A numeric knob (``negative_slope``, ``p``), narrowed to float."""
        v = self.param(key, default)
        if not isinstance(v, (int, float)):
            raise TypeError(f"{self.type_name}: {key} is not a number: {v!r}")
        return float(v)


@dataclass(frozen=True, kw_only=True)
class Flatten:
    type_name: str = "Flatten"
    start_dim: int = 1
    end_dim: int = -1


@dataclass(frozen=True, kw_only=True)
class Unflatten:
    """nn.Unflatten: dim ``dim`` becomes ``sizes`` (ints >= 1, at most one -1: the rest of the dim)."""

    type_name: str
    dim: int
    sizes: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class Linear:
    type_name: str
    in_features: int
    out_features: int
    bias: bool = True


LayerSpec = (Conv | ConvTranspose | Pool | AdaptiveAvgPool | AdaptiveMaxPool | Pad | PixelShuffle | Upsample | BatchNorm
             | InstanceNorm | GroupNorm | PReLU | Softmax | Elementwise | Flatten | Unflatten | Linear)

#: node ops that are not layers (see ``Node``)
MERGE_OPS = ("cat", "add", "sub", "mul", "crop", "pad_like", "interp_like", "scalar", "slice", "mean", "unsqueeze",
             "squeeze", "reshape")

#: the elementwise binary ops, torch broadcasting
BINARY_OPS = ("add", "sub", "mul")

#: ``scalar`` node ops: value op constant (``rsub``: constant - value)
SCALAR_OPS = ("add", "sub", "rsub", "mul", "div")


@dataclass(frozen=True)
class Node:
    """One value of the graph.

    op:

    - 'input': ``dims`` set.
    - 'layer': ``layer`` and ``layer_name`` set, one input.
    - 'cat': ``dim`` set, one or more inputs.
    - 'add', 'sub', 'mul': two inputs, elementwise with torch broadcasting (trailing dims aligned;
      each pair equal, or one of them the literal 1).
    - 'crop': inputs (v, like): v's spatial dims centre-cropped to like's, dropping
      ``(v - w) // 2`` at the start of each spatial axis and the rest at the end.
    - 'pad_like': inputs (v, like): v's spatial dims padded up to like's, ``(w - v) // 2`` at the
      start and the rest at the end (the U-Net ``F.pad`` idiom); attrs ``mode`` (torch's F.pad
      mode) and ``value``.
    - 'interp_like': inputs (v, like): ``F.interpolate(v, size=like.shape[2:], mode=...,
      align_corners=...)``; attrs ``mode`` and ``align_corners`` (None for the nearest modes).
    - 'scalar': one input; attrs ``op`` (one of SCALAR_OPS) and ``value`` (a float): ``v * 0.5``,
      ``v + 1.0``, ``1.0 - v`` ('rsub'), ``v / 2.0``.
    - 'slice': one input; attr ``index``: a (start, stop) pair per leading dim (None: open), as
      written, with Python's negative indices; torch's clamping applies. Multi-output functions
      are one 'slice' node per output: ``a, b = chunk(v, 2, dim=1)`` and ``split(v, [16, 48],
      dim=1)`` give nodes with the attr ``part`` = (kind, chunks or sizes, dim, k, count): output
      k of count, its bounds computed from the dim's size by ``part_bounds`` (so they follow the
      graph's shapes; ``slice_index`` gives every slice node's index). In the JSON each output is
      a value of its own; the ONNX export writes one Split with an output per value (a Slice per
      part when not every part is in the graph).
    - 'mean': one input; attrs ``dims`` (a tuple of ints, as written) and ``keepdim``.
    - 'unsqueeze': one input; attr ``dim``: a new dim of size 1 there (``torch.unsqueeze``).
    - 'squeeze': one input; attr ``dims`` (None: every dim): those of size 1 are removed; a dim of
      symbolic size must not be named (whether torch removes it depends on the size).
    - 'reshape': one input; attr ``shape``: entries as written, each an int, -1 (at most one) or
      ``(symbol, k)`` for ``k * symbol``, which must be one of the value's dims times an int
      (``reshape(v, (N, 2, 16, L))``; see ``reshape_entry``).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    loc: Loc
    layer: LayerSpec | None = None
    layer_name: str | None = None
    dims: tuple[int | str, ...] = ()
    dim: int = 1
    attrs: tuple[tuple[str, object], ...] = ()
    #: the name the value is assigned to in the file ("" when unnamed or built in Python); what
    #: convgraph prints for the user to paste. Not part of equality: a built graph equals its DSL twin.
    source: str = field(default="", compare=False)

    def attr(self, key: str, default: Any = None) -> Any:
        """An attribute of a function node (``mode``, ``index``, ``part``, ...); see the op list above."""
        return dict(self.attrs).get(key, default)

    @property
    def spec(self) -> LayerSpec:
        """The layer spec of a 'layer' node (``layer``, narrowed); any other op has none."""
        if self.layer is None:
            raise TypeError(f"node '{self.name}' is a {self.op!r} node, not a layer")
        return self.layer


def reshape_entry(e: int | tuple[str, int], env: Mapping[str, int] | None = None) -> int | tuple[str, int]:
    """A reshape entry as a size: ints stay; ``(symbol, k)`` is ``k * env[symbol]`` (with no env:
    the pair itself)."""
    if isinstance(e, tuple) and env is not None:
        return env[e[0]] * e[1]
    return e


def part_bounds(kind: str, n: int, arg: int | tuple[int, ...]) -> list[tuple[int, int]]:
    """(start, stop) of each output of ``torch.chunk(v, arg)`` ('chunk': parts of ceil(n/arg), so
    possibly fewer than arg) or ``torch.split(v, arg)`` ('split': parts of size arg, the last one
    shorter, or the listed sizes, which must sum to n) along a dim of size n."""
    if isinstance(arg, int):  # chunk's count, or split's part size
        size = -(-n // arg) if kind == "chunk" else arg
        return [(a, min(a + size, n)) for a in range(0, n, max(size, 1))]
    if sum(arg) != n:
        raise ValueError(f"split sizes {list(arg)} sum to {sum(arg)}, but the dim has size {n}")
    ends = [sum(arg[:i + 1]) for i in range(len(arg))]
    return list(zip([0, *ends[:-1]], ends))


def slice_index(node: Node, dims: tuple[Any, ...]) -> tuple[tuple[int | None, int | None], ...]:
    """The (start, stop) per leading dim of a 'slice' node, given its input's dims (a part's dim
    must be an int)."""
    part = node.attr("part")
    if part is None:
        return tuple(node.attr("index", ()))
    kind, arg, dim, k, _count = part
    dim = dim % len(dims)
    return ((None, None),) * dim + (part_bounds(kind, dims[dim], arg)[k],)


@dataclass(frozen=True)
class Assume:
    """``assume(cond, ...)``: each condition restricts the input symbols.

    ``conds`` are (lhs, op, rhs) triples of ``convgraph.dims`` expressions, op in
    ('==', '!=', '<', '<=', '>', '>=')."""

    loc: Loc
    text: str
    conds: tuple[tuple[Dim, str, Dim], ...]


@dataclass(frozen=True)
class Expect:
    """``expect(value, d0, d1, ...)``: asserts a value's shape; dims are ``convgraph.dims`` exprs."""

    loc: Loc
    text: str
    value: str
    dims: tuple[Dim, ...]


@dataclass(frozen=True)
class BlockCall:
    """One call of a DSL block (``def``), as the parser expanded it: which values it made, so that a
    back end can write the block again as a module (PyTorch source: a class per block).

    ``path``: the call's module path (its layers are named ``{path}.{local}``); ``block``: the
    block's name; ``consts``: its constant arguments, defaults included, (parameter, value) in
    parameter order; ``inputs``: its value arguments, (parameter, value name) in parameter order;
    ``outputs``: the value names it returns, in order (``tuple_return``: written ``return a, b``),
    ``returns`` the block's own names for them;
    ``nodes``: the values the call made, nested calls' included, in graph order (contiguous)."""

    path: str
    block: str
    consts: tuple[tuple[str, object], ...]
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]
    tuple_return: bool
    returns: tuple[str, ...]
    nodes: tuple[str, ...]
    loc: Loc


@dataclass(frozen=True)
class Graph:
    """A parsed model. ``nodes`` are in definition order (a topological order).

    ``_memo`` holds each later stage's frozen result for this graph (shape result, solution), keyed
    by the stage, so that a stage runs once per graph however many consumers ask; the IR itself
    imports no later stage."""

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    filename: str = "<string>"
    doc: str | None = None
    assumes: tuple[Assume, ...] = ()
    expects: tuple[Expect, ...] = ()
    #: the DSL's block calls, outermost first in graph order (nested calls after their parent); a
    #: record of how the file was written, like ``Node.source``: not part of equality (a built graph
    #: equals its DSL twin), read only by the PyTorch source writer
    blocks: tuple[BlockCall, ...] = field(default=(), compare=False)
    _index: dict[str, Node] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _memo: dict[object, object] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({n.name: n for n in self.nodes})

    def node(self, name: str) -> Node:
        return self._index[name]

    @property
    def inputs(self) -> tuple[Node, ...]:
        """The input nodes, in order (computed once: export asks for them once per value)."""
        if "inputs" not in self._memo:
            self._memo["inputs"] = tuple(n for n in self.nodes if n.op == "input")
        return self._memo["inputs"]  # type: ignore[return-value]

    @property
    def symbols(self) -> tuple[str, ...]:
        """Input size symbols in order of first appearance."""
        seen: dict[str, None] = {}
        for n in self.inputs:
            for d in n.dims:
                if isinstance(d, str):
                    seen.setdefault(d)
        return tuple(seen)

    def layers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.op == "layer")

    def memo(self, key: object, compute: Callable[[], T]) -> T:
        """``compute()`` once per graph and key (the later stages' results, see the class doc)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[return-value]


def bake(graph: Graph, sizes: Mapping[str, int]) -> Graph:
    """The graph with the given symbols replaced by ints in its inputs (sizes already checked).
    ``assume``/``expect`` are dropped: their conditions were checked at these sizes."""
    if not sizes:
        return graph
    nodes = tuple(replace(n, dims=tuple(sizes.get(d, d) if isinstance(d, str) else d for d in n.dims))
                  if n.op == "input" else n for n in graph.nodes)
    return Graph(nodes, graph.outputs, graph.filename, graph.doc, blocks=graph.blocks)
