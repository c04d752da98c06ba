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
from typing import Literal, TypeVar

from convgraph.dims import Dim
from convgraph.errors import Loc

Ints = tuple[int, ...]
#: the kinds a string names, as Literal types (the catalogue checks them; the tables key on them)
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PoolMode = Literal["max", "avg"]
UpsampleMode = Literal["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]
Pads = tuple[tuple[int, int], ...]  # (begin, end) per spatial axis
T = TypeVar("T")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ConvTranspose:
    """ConvTranspose1d/2d/3d: full transposed conv, + output_padding at the end, cropped by padding."""

    type_name: str
    nd: int
    in_channels: int
    out_channels: int
    kernel_size: Ints
    stride: Ints
    padding: Ints
    output_padding: Ints
    dilation: Ints
    groups: int = 1
    bias: bool = True

    @property
    def weight_shape(self) -> Ints:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)


@dataclass(frozen=True)
class Pool:
    """MaxPool/AvgPool 1d/2d/3d. ``mode`` is 'max' or 'avg'; AvgPool has dilation 1."""

    type_name: str
    nd: int
    mode: PoolMode
    kernel_size: Ints
    stride: Ints
    padding: Ints
    dilation: Ints
    ceil_mode: bool = False
    count_include_pad: bool = True


@dataclass(frozen=True)
class AdaptiveAvgPool:
    """AdaptiveAvgPool1d/2d/3d; ``None`` in output_size keeps that axis' input size."""

    type_name: str
    nd: int
    output_size: tuple[int | None, ...]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class BatchNorm:
    type_name: str
    nd: int
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Flatten:
    type_name: str = "Flatten"
    start_dim: int = 1
    end_dim: int = -1


@dataclass(frozen=True)
class Linear:
    type_name: str
    in_features: int
    out_features: int
    bias: bool = True


LayerSpec = Conv | ConvTranspose | Pool | AdaptiveAvgPool | Upsample | BatchNorm | Elementwise | Flatten | Linear

#: node ops that are not layers
MERGE_OPS = ("cat", "add", "crop")


@dataclass(frozen=True)
class Node:
    """One value of the graph.

    op: 'input' (``dims`` set), 'layer' (``layer`` and ``layer_name`` set, one input),
    'cat' (``dim`` set), 'add' (two inputs), 'crop' (inputs (v, like)).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    loc: Loc
    layer: LayerSpec | None = None
    layer_name: str | None = None
    dims: tuple[int | str, ...] = ()
    dim: int = 1
    #: the name the value is assigned to in the file ("" when unnamed or built in Python); what
    #: convgraph prints for the user to paste. Not part of equality: a built graph equals its DSL twin.
    source: str = field(default="", compare=False)

    @property
    def spec(self) -> LayerSpec:
        """The layer spec of a 'layer' node (``layer``, narrowed); any other op has none."""
        if self.layer is None:
            raise TypeError(f"node '{self.name}' is a {self.op!r} node, not a layer")
        return self.layer


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
    return Graph(nodes, graph.outputs, graph.filename, graph.doc)
