"""Pure geometry of the convolution-arithmetic animations (no drawing here).

Every windowed layer is drawn as a *direct* convolution over a grid of drawn cells, one axis at a
time (Dumoulin & Visin, reference §6):

- Conv / MaxPool / AvgPool: the input with its padding cells (and, for ceil-mode pooling, the cells
  a last window runs past the right padding);
- ConvTranspose: the input stretched by stride−1 zeros between cells, padded d(k−1)−p on each side
  plus output_padding at the end, stride 1. A negative equivalent padding (p > d(k−1)) crops: the
  cropped cells are drawn but no window reaches them.

A frame is one output position (or, in the scatter view of a transposed conv, one input position);
it records the drawn cells under the kernel and the cells of the other tensor that it links, in
original coordinates. ``Geometry.frames()`` is what the drawing and the tests both read.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from convgraph.dims import ceil_window_count, effective_kernel, stretched_size, window_count
from convgraph.errors import ConvGraphError, Loc, ShapeError
from convgraph.ir import Conv, ConvTranspose, LayerSpec, Pool

# kinds of drawn cells on the source side of a window
INPUT = "input"  # an input cell (holds input[src])
PAD = "pad"  # padding: zero, ignored (max pool), or a copy of input[src] (reflect/replicate/circular)
ZERO = "zero"  # a zero inserted between input cells by a transposed conv's stride
CROP = "crop"  # a stretched-input cell cropped away by negative equivalent padding
OVER = "over"  # beyond the right padding: reached only by a ceil-mode pooling window, ignored
# kinds of drawn cells of the full output in the scatter view
OUT = "out"  # an output cell
OUTPAD = "outpad"  # an output cell added by output_padding, which no stamp reaches

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
CLI = Loc("<command line>", 0, 0)


def pad_source(q: int, i: int, mode: str) -> int | None:
    """The input index a padded cell at unpadded coordinate q copies (None: a zero)."""
    if mode == "reflect":
        return -q if q < 0 else 2 * (i - 1) - q
    if mode == "replicate":
        return min(max(q, 0), i - 1)
    if mode == "circular":
        return q % i
    return None


@dataclass(frozen=True)
class GatherAxis:
    """One spatial axis as a direct convolution over drawn cells.

    ``cells[c]`` is the kind of drawn cell c and ``src[c]`` the input index whose value it holds
    (None for zeros and ignored cells). Window j covers the drawn cells
    ``origin + j·stride + t·dilation`` for t < kernel; ``origin`` skips cropped cells."""

    name: str
    in_size: int
    cells: tuple[str, ...]
    src: tuple[int | None, ...]
    origin: int
    stride: int
    dilation: int
    kernel: int
    out_size: int

    def window(self, j: int) -> tuple[int, ...]:
        start = self.origin + j * self.stride
        return tuple(start + t * self.dilation for t in range(self.kernel))

    def contributors(self, j: int) -> tuple[int, ...]:
        """The input indices whose values reach output j (padding copies included)."""
        return tuple(sorted({s for s in (self.src[c] for c in self.window(j)) if s is not None}))

    def real_count(self, j: int) -> int:
        """Window cells inside the input (AvgPool's divisor with count_include_pad=False)."""
        return sum(self.cells[c] == INPUT for c in self.window(j))

    def counted(self, j: int) -> int:
        """Window cells inside input or padding (AvgPool's divisor with count_include_pad=True)."""
        return sum(self.cells[c] in (INPUT, PAD) for c in self.window(j))


@dataclass(frozen=True)
class ScatterAxis:
    """One axis of a transposed conv as a scatter: input a stamps the kernel on the full output at
    ``a·s + t·d``; the full output, ``(i−1)s + d(k−1) + 1 + op`` long, is cropped by p at each end.
    ``cells`` are the kinds of the full-output cells (OUT, OUTPAD or CROP)."""

    name: str
    in_size: int
    stride: int
    dilation: int
    kernel: int
    padding: int
    out_size: int
    cells: tuple[str, ...]

    def stamp(self, a: int) -> tuple[int, ...]:
        return tuple(a * self.stride + t * self.dilation for t in range(self.kernel))

    def targets(self, a: int) -> tuple[int, ...]:
        """The output indices (after cropping) that input a writes to."""
        return tuple(f - self.padding for f in self.stamp(a) if 0 <= f - self.padding < self.out_size)


Axis = GatherAxis | ScatterAxis
#: the layers with a sliding window to draw
Windowed = Conv | ConvTranspose | Pool


@dataclass(frozen=True)
class Frame:
    """One frame. ``position``: the output cell (gather view) or input cell (scatter view) drawn;
    ``footprint``: per axis, the drawn cells under the kernel; ``cells``: the input cells that
    contribute (gather) or the output cells written (scatter), in original coordinates."""

    position: tuple[int, ...]
    footprint: tuple[tuple[int, ...], ...]
    cells: frozenset[tuple[int, ...]]


@dataclass(frozen=True)
class Geometry:
    """Everything an animation shows, for one layer at one input size."""

    spec: LayerSpec
    view: str  # "gather" | "scatter"
    axes: tuple[Axis, ...]

    @property
    def in_sizes(self) -> tuple[int, ...]:
        return tuple(a.in_size for a in self.axes)

    @property
    def out_sizes(self) -> tuple[int, ...]:
        return tuple(a.out_size for a in self.axes)

    @property
    def frame_grid(self) -> tuple[int, ...]:
        """The sizes iterated by the frames: outputs (gather) or inputs (scatter)."""
        return self.out_sizes if self.view == "gather" else self.in_sizes

    def positions(self, fixed: dict[int, int] | None = None) -> Iterator[tuple[int, ...]]:
        """Frame positions in row-major order; ``fixed`` pins axes (a 3-D layer's drawn slice)."""
        fixed = fixed or {}
        ranges = [[fixed[a]] if a in fixed else range(n) for a, n in enumerate(self.frame_grid)]
        return itertools.product(*ranges)

    @property
    def gather_axes(self) -> tuple[GatherAxis, ...]:
        """``axes`` of a gather view, narrowed."""
        out = tuple(ax for ax in self.axes if isinstance(ax, GatherAxis))
        if len(out) != len(self.axes):
            raise TypeError("a scatter view has no gather axes")
        return out

    @property
    def scatter_axes(self) -> tuple[ScatterAxis, ...]:
        """``axes`` of a scatter view, narrowed."""
        out = tuple(ax for ax in self.axes if isinstance(ax, ScatterAxis))
        if len(out) != len(self.axes):
            raise TypeError("a gather view has no scatter axes")
        return out

    def frame(self, pos: tuple[int, ...]) -> Frame:
        if self.view == "gather":
            foot = tuple(ax.window(j) for ax, j in zip(self.gather_axes, pos))
            per_axis = [ax.contributors(j) for ax, j in zip(self.gather_axes, pos)]
        else:
            foot = tuple(ax.stamp(a) for ax, a in zip(self.scatter_axes, pos))
            per_axis = [ax.targets(a) for ax, a in zip(self.scatter_axes, pos)]
        return Frame(pos, foot, frozenset(itertools.product(*per_axis)))

    def frames(self, fixed: dict[int, int] | None = None) -> Iterator[Frame]:
        return (self.frame(p) for p in self.positions(fixed))


# --------------------------------------------------------------------------------------------
# Per-layer axis builders
# --------------------------------------------------------------------------------------------


def _padded_cells(i: int, pb: int, pe: int, mode: str) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    """Drawn cells of an input of size i padded pb before and pe after (pb, pe ≥ 0)."""
    qs = range(-pb, i + pe)
    cells = tuple(INPUT if 0 <= q < i else PAD for q in qs)
    src = tuple(q if 0 <= q < i else pad_source(q, i, mode) for q in qs)
    return cells, src


def _conv_axis(spec: Conv, a: int, i: int) -> GatherAxis:
    (pb, pe), k, s, d = spec.padding[a], spec.kernel_size[a], spec.stride[a], spec.dilation[a]
    cells, src = _padded_cells(i, pb, pe, spec.padding_mode)
    o = window_count(i, pb + pe, effective_kernel(k, d), s)
    return GatherAxis(_axis_name(spec.nd, a), i, cells, src, 0, s, d, k, o)


def _pool_axis(spec: Pool, a: int, i: int) -> GatherAxis:
    (pb, pe), k, s, d = spec.padding[a], spec.kernel_size[a], spec.stride[a], spec.dilation[a]
    ek = effective_kernel(k, d)
    o = ceil_window_count(i, pb, ek, s, pe) if spec.ceil_mode else window_count(i, pb + pe, ek, s)
    cells, src = _padded_cells(i, pb, pe, "zeros")
    over = max(0, (o - 1) * s + ek - len(cells))  # a ceil-mode window may run past the padding
    return GatherAxis(_axis_name(spec.nd, a), i, cells + (OVER,) * over, src + (None,) * over, 0, s, d, k, o)


def _conv_transpose_axis(spec: ConvTranspose, a: int, i: int) -> GatherAxis:
    k, s, d, (cb, ce), op = (spec.kernel_size[a], spec.stride[a], spec.dilation[a], spec.padding[a],
                             spec.output_padding[a])
    begin, end = d * (k - 1) - cb, d * (k - 1) - ce + op  # negative: crop the stretched input
    qs = range(stretched_size(i, s))
    cells = [INPUT if q % s == 0 else ZERO for q in qs]
    src: list[int | None] = [q // s if q % s == 0 else None for q in qs]
    for c in range(min(len(cells), max(0, -begin))):
        cells[c] = CROP
    for c in range(max(0, len(cells) + min(0, end)), len(cells)):
        cells[c] = CROP
    pb, pe = max(0, begin), max(0, end)
    cells = [PAD] * pb + cells + [PAD] * pe
    src = [None] * pb + src + [None] * pe
    o = window_count(stretched_size(i, s), begin + end, effective_kernel(k, d), 1)
    return GatherAxis(_axis_name(spec.nd, a), i, tuple(cells), tuple(src), max(0, -begin), 1, d, k, o)


def _scatter_axis(spec: ConvTranspose, a: int, i: int) -> ScatterAxis:
    k, s, d, (p, pe), op = (spec.kernel_size[a], spec.stride[a], spec.dilation[a], spec.padding[a],
                            spec.output_padding[a])
    full = stretched_size(i, s) + d * (k - 1) + op
    o = full - p - pe
    cells = tuple(CROP if not p <= f < p + o else OUTPAD if f >= full - op else OUT for f in range(full))
    return ScatterAxis(_axis_name(spec.nd, a), i, s, d, k, p, o, cells)


def _axis_name(nd: int, a: int) -> str:
    return AXIS_NAMES.get(nd, tuple(f"x{j}" for j in range(nd)))[a]


GATHER_AXIS: dict[type, Callable[..., GatherAxis]] = {
    Conv: _conv_axis,
    Pool: _pool_axis,
    ConvTranspose: _conv_transpose_axis,
}


def layer_kind(spec: LayerSpec) -> str:
    return getattr(spec, "type_name", type(spec).__name__)


def check_animatable(spec: LayerSpec, loc: Loc | None = None) -> Windowed:
    """The spec, narrowed to a windowed layer; a clear error for layers without a spatial window
    (ReLU, BatchNorm, Linear, ...)."""
    if not isinstance(spec, (Conv, ConvTranspose, Pool)) or type(spec) not in GATHER_AXIS:
        raise ConvGraphError(
            f"animate: {layer_kind(spec)} has no sliding window to draw; animate draws Conv, "
            "ConvTranspose, MaxPool and AvgPool layers (1-D, 2-D, 3-D)", loc or CLI)
    return spec


def geometry(spec: LayerSpec, in_sizes: tuple[int, ...], scatter: bool = False,
             loc: Loc | None = None) -> Geometry:
    """The animation geometry of ``spec`` on spatial input sizes ``in_sizes``.

    >>> from convgraph.ir import Conv
    >>> g = geometry(Conv(type_name="Conv1d", nd=1, in_channels=1, out_channels=1, kernel_size=(3,), stride=(1,),
    ...                      padding=((1, 1),), dilation=(1,)), (5,))
    >>> g.out_sizes, sorted(g.frame((0,)).cells)
    ((5,), [(0,), (1,)])
    """
    nd = check_animatable(spec, loc).nd
    if len(in_sizes) != nd:
        raise ConvGraphError(f"animate: {layer_kind(spec)} has {nd} spatial axes but the input size "
                             f"{'x'.join(map(str, in_sizes))} has {len(in_sizes)}", loc or CLI)
    if min(in_sizes) < 1:
        raise ShapeError(f"animate: input sizes must be positive, got {'x'.join(map(str, in_sizes))}", loc or CLI)
    axes: tuple[Axis, ...]
    if scatter:
        if not isinstance(spec, ConvTranspose):
            raise ConvGraphError(f"animate: --scatter draws transposed convolutions, not {layer_kind(spec)}",
                                 loc or CLI)
        axes = tuple(_scatter_axis(spec, a, i) for a, i in enumerate(in_sizes))
    else:
        axes = tuple(GATHER_AXIS[type(spec)](spec, a, i) for a, i in enumerate(in_sizes))
    bad = [ax for ax in axes if ax.out_size < 1]
    if bad:
        raise ShapeError(f"animate: {layer_kind(spec)} on input {'x'.join(map(str, in_sizes))} gives output "
                         f"size {bad[0].out_size} on axis {bad[0].name}; it must be at least 1", loc or CLI)
    return Geometry(spec, "scatter" if scatter else "gather", axes)
