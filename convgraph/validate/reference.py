"""An independent numpy reference of the IR, written from PyTorch's semantics (not from ONNX).

One function per layer kind, each written once for 1, 2 or 3 spatial dims and vectorised: a
convolution is, per cache-sized block of output positions, an im2col copy of the strided, dilated
taps and one grouped matrix product (BLAS); a U-Net forward at 256x256 takes under a second.

>>> import numpy as np
>>> from convgraph import ir
>>> from convgraph.errors import Loc
>>> x = ir.Node("x", "input", (), Loc(), dims=(1, 1, 4))
>>> p = ir.Node("p", "layer", ("x",), Loc(), layer_name="p",
...             layer=ir.Pool(type_name="MaxPool1d", nd=1, mode="max", kernel_size=(2,), stride=(3,),
...                           padding=((1, 1),), dilation=(1,), ceil_mode=True))
>>> run(ir.Graph((x, p), ("p",)), {"x": np.array([[[1.0, 2, 3, 4]]])}, {})["p"]
array([[[1., 4.]]])

Semantics follow the design notes' ``reference/conv-semantics.md`` (section numbers below refer to it).

Independence, on purpose: this module restates the window and dilation formulas (``_extent``,
``_window_count``, ``_pool_len``) in PyTorch's own literal form instead of importing the shared ones
from ``convgraph.dims``, so that a mistake in the shape stage's formulas cannot hide in a comparison
with this reference. (It walks the graph with the shared ``convgraph.ir.interpret``, which holds no
arithmetic.)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import reduce
from types import EllipsisType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from convgraph import ir

Params = dict[str, np.ndarray]
LayerFn = Callable[[Any, np.ndarray, Params], np.ndarray]  # keyed by the spec type it takes

__all__ = ["ELEMENTWISE_IMPLS", "LAYER_IMPLS", "PARAM_NAMES", "forward_layer", "run"]

#: local parameter names a layer may have; the graph keys them ``{layer_name}.{name}``
PARAM_NAMES = ("weight", "bias", "running_mean", "running_var")

# --- per-axis helpers ---------------------------------------------------------------------------


def _index(*parts: slice | EllipsisType) -> tuple[slice | EllipsisType, ...]:
    """A multi-axis index: ``x[_index(..., *sl)]`` is ``x[..., *sl]`` (that spelling needs Python 3.11)."""
    return parts


def _extent(k: int, d: int) -> int:
    """Effective (dilated) kernel extent: ``d*(k-1) + 1``."""
    return d * (k - 1) + 1


def _window_count(n: int, k: int, s: int, d: int) -> int:
    """Windows over an already padded axis of length n: ``(n - ek)//s + 1``."""
    return (n - _extent(k, d)) // s + 1


def _tap(j: int, d: int, s: int, o: int) -> slice:
    """Positions read (or written) by kernel tap j for o outputs: ``j*d + t*s`` for t < o."""
    return slice(j * d, j * d + (o - 1) * s + 1, s)


def _taps(kernel: ir.Ints, dilation: ir.Ints, stride: ir.Ints, out: ir.Ints) -> Iterator[tuple[slice, ...]]:
    """Spatial slices of every kernel tap, in C order over the kernel (``w.reshape(..., -1)``)."""
    for offs in np.ndindex(*kernel):
        yield tuple(_tap(j, d, s, o) for j, d, s, o in zip(offs, dilation, stride, out))


def _pad(x: np.ndarray, pads: ir.Pads, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """np.pad over the spatial axes only; ``pads`` is (begin, end) per spatial axis."""
    width = [(0, 0), (0, 0), *pads]
    if mode == "constant":
        return np.pad(x, width, constant_values=value)
    return np.pad(x, width, mode=mode)  # type: ignore[call-overload]


def _channel_shape(ndim: int) -> tuple[int, ...]:
    """Broadcast shape of a per-channel vector against (N, C, *spatial)."""
    return (1, -1) + (1,) * (ndim - 2)


def _add_bias(y: np.ndarray, params: Params) -> np.ndarray:
    bias = params.get("bias")
    return y if bias is None else y + bias.reshape(_channel_shape(y.ndim))


# --- convolution ----------------------------------------------------------------------------------

#: torch padding_mode -> np.pad mode (reflect does not repeat the edge, as in torch)
NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


#: A convolution is computed in blocks of output positions (one image's rows along the first spatial
#: axis, or several whole images): each block's im2col columns hold about COLUMN_BUDGET elements
#: (4 MiB in float64, so the copy and the matrix product stay in cache) but at least MIN_COLUMNS
#: output positions, so that every weight read from memory is used that many times.
COLUMN_BUDGET = 1 << 19
MIN_COLUMNS = 2048


def _blocks(n: int, out: ir.Ints, depth: int) -> Iterator[tuple[slice, slice]]:
    """(images, output rows) of each block for n images of output size ``out`` whose columns have
    ``depth`` rows (C_in * kernel taps): rows of one image, or whole images when one fits."""
    want = max(MIN_COLUMNS, COLUMN_BUDGET // max(1, depth))
    row = math.prod(out[1:])
    rows = max(1, min(out[0], -(-want // max(1, row))))
    images = max(1, min(n, -(-want // max(1, out[0] * row)))) if rows >= out[0] else 1
    for i in range(0, n, images):
        for r in range(0, out[0], rows):
            yield slice(i, i + images), slice(r, min(r + rows, out[0]))


def _im2col(src: np.ndarray, spec: ir.Conv, out: ir.Ints) -> np.ndarray:
    """Columns (C, K, N, *out) of padded images (N, C, *spatial): ``[c, t]`` is tap t of channel c."""
    n, c = src.shape[:2]
    cols = np.empty((c, math.prod(spec.kernel_size), n, *out), dtype=src.dtype)
    for t, sl in enumerate(_taps(spec.kernel_size, spec.dilation, spec.stride, out)):
        cols[:, t] = src[_index(slice(None), slice(None), *sl)].swapaxes(0, 1)
    return cols


def _conv(spec: ir.Conv, x: np.ndarray, params: Params) -> np.ndarray:
    """``y[n, o, t] = b[o] + sum_{c in group(o), j} xpad[n, c, t*s + j*d] * w[o, c, j]``: per block
    of ``_blocks``, an im2col copy of the strided, dilated taps and one grouped matrix product
    (BLAS) written in place into y, laid out (g, C_out/g, N, *out) so that a block is one slice.
    Output rows r.. read the padded input from row ``r*s`` on."""
    xp = _pad(x, spec.padding, NP_PAD_MODES[spec.padding_mode])
    out = tuple(map(_window_count, xp.shape[2:], spec.kernel_size, spec.stride, spec.dilation))
    n, c = x.shape[:2]
    g, w = spec.groups, params["weight"]
    wg = w.reshape(g, w.shape[0] // g, -1)  # (g, C_out/g, C_in/g * K): column c*K + t
    y = np.empty((g, wg.shape[1], n, *out), dtype=x.dtype)
    for images, rows in _blocks(n, out, c * math.prod(spec.kernel_size)):
        block = (rows.stop - rows.start, *out[1:])
        cols = _im2col(xp[images, :, rows.start * spec.stride[0]:], spec, block)
        # a view, not a copy: a block is rows of one image or whole images
        np.matmul(wg, cols.reshape(g, wg.shape[2], -1), out=y[:, :, images, rows].reshape(g, wg.shape[1], -1))
    return _add_bias(np.moveaxis(y, 2, 0).reshape(n, w.shape[0], *out), params)


def _conv_transpose(spec: ir.ConvTranspose, x: np.ndarray, params: Params) -> np.ndarray:
    """Scatter-add ``full[n, o, t*s + j*d] += x[n, c, t] * w[c, o, j]`` into the full output of
    length ``s(i-1) + d(k-1) + 1``, extended by output_padding at the end, cropped by padding at
    both ends (conv-semantics §2.1). Independent of the conv code path: one grouped matmul gives
    every tap's contribution, then each tap is added at its strided, dilated offset."""
    n, c, *size = x.shape
    g, w = spec.groups, params["weight"]
    full = [s * (i - 1) + _extent(k, d) + op for i, k, s, d, op in
            zip(size, spec.kernel_size, spec.stride, spec.dilation, spec.output_padding)]
    wt = w.reshape(g, c // g, -1).transpose(0, 2, 1)  # (g, C_out/g * K, C_in/g)
    contrib = (wt @ x.reshape(n, g, c // g, -1)).reshape(n, g, w.shape[1], -1, *size)
    y = np.zeros((n, g, w.shape[1], *full), dtype=x.dtype)
    for t, sl in enumerate(_taps(spec.kernel_size, spec.dilation, spec.stride, tuple(size))):
        y[(slice(None),) * 3 + sl] += contrib[:, :, :, t]
    crop = tuple(slice(pb, f - pe) for (pb, pe), f in zip(spec.padding, full))
    return _add_bias(y.reshape(n, -1, *full)[_index(..., *crop)], params)


# --- pooling --------------------------------------------------------------------------------------


def _pool_len(i: int, k: int, s: int, p: tuple[int, int], d: int, ceil_mode: bool) -> int:
    """p = (begin, end) (torch: both p). ``num = i + begin + end - d(k-1) - 1``; floor: ``num//s + 1``;
    ceil: ``ceil(num/s) + 1``, minus one when that last window would start in the right padding,
    ``(o-1)*s >= i + begin`` (§3.1)."""
    num = i + p[0] + p[1] - _extent(k, d)
    if not ceil_mode:
        return num // s + 1
    o = -(-num // s) + 1
    return o - 1 if (o - 1) * s >= i + p[0] else o


def _avg_divisor_axis(i: int, k: int, s: int, p: tuple[int, int], o: int, include_pad: bool) -> np.ndarray:
    """Window j covers [st, st+k), ``st = j*s - begin``. count_include_pad: ``min(st+k, i+end) - st``
    (padding counts, a ceil-mode overhang past the right padding does not); otherwise the real
    elements ``min(st+k, i) - max(st, 0)`` (§3.1)."""
    st = np.arange(o) * s - p[0]
    if include_pad:
        return np.minimum(st + k, i + p[1]) - st
    return np.minimum(st + k, i) - np.maximum(st, 0)


def _max_pool(spec: ir.Pool, x: np.ndarray, out: ir.Ints, pads: ir.Pads) -> np.ndarray:
    """Max over each window; padding is -inf, so an all-padding window gives -inf as in torch."""
    xp = _pad(x, pads, value=-np.inf)
    y = np.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
    for sl in _taps(spec.kernel_size, spec.dilation, spec.stride, out):
        np.maximum(y, xp[_index(..., *sl)], out=y)
    return y


def _avg_pool(spec: ir.Pool, x: np.ndarray, out: ir.Ints, pads: ir.Pads) -> np.ndarray:
    """Window sum over zero padding divided by ``divisor_override`` when set, else by the
    separable divisor of ``_avg_divisor_axis``."""
    xp = _pad(x, pads)
    y = np.zeros(x.shape[:2] + out, dtype=x.dtype)
    for sl in _taps(spec.kernel_size, (1,) * len(out), spec.stride, out):
        y += xp[_index(..., *sl)]
    if spec.divisor_override is not None:
        return y / spec.divisor_override
    per_axis = [_avg_divisor_axis(i, k, s, p, o, spec.count_include_pad) for i, k, s, p, o in
                zip(x.shape[2:], spec.kernel_size, spec.stride, spec.padding, out)]
    return y / reduce(np.multiply.outer, per_axis)


_POOL_MODES = {"max": _max_pool, "avg": _avg_pool}


def _pool(spec: ir.Pool, x: np.ndarray, params: Params) -> np.ndarray:
    """MaxPool/AvgPool: pad begin at the start and enough at the end for the last (ceil) window."""
    axes = list(zip(x.shape[2:], spec.kernel_size, spec.stride, spec.padding, spec.dilation))
    out = tuple(_pool_len(i, k, s, p, d, spec.ceil_mode) for i, k, s, p, d in axes)
    pads = tuple((pb, max(pe, (o - 1) * s + _extent(k, d) - i - pb)) for (i, k, s, (pb, pe), d), o in zip(axes, out))
    return _POOL_MODES[spec.mode](spec, x, out, pads)


def _adaptive_bins(i: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin j covers ``[floor(j*i/o), ceil((j+1)*i/o))`` (§3.2)."""
    j = np.arange(o)
    return (j * i) // o, -((-(j + 1) * i) // o)


def _bin_means(x: np.ndarray, axis: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Mean of ``x[start[j]:end[j]]`` along axis; bins may overlap (reduceat on interleaved bounds,
    a zero appended so that ``end == len`` is a valid index; odd results are discarded)."""
    if len(start) == 0:
        return np.take(x, np.arange(0), axis=axis)
    zero = np.zeros_like(np.take(x, [0], axis=axis))
    sums = np.add.reduceat(np.concatenate([x, zero], axis=axis), np.stack([start, end], 1).ravel(), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    return np.take(sums, np.arange(0, 2 * len(start), 2), axis=axis) / (end - start).reshape(shape)


def _adaptive_avg_pool(spec: ir.AdaptiveAvgPool, x: np.ndarray, params: Params) -> np.ndarray:
    """Separable: the mean over a box is the mean over each axis' bin in turn."""
    for axis, o in enumerate(spec.output_size, start=2):
        if o is not None:
            x = _bin_means(x, axis, *_adaptive_bins(x.shape[axis], o))
    return x


def _adaptive_max_pool(spec: ir.AdaptiveMaxPool, x: np.ndarray, params: Params) -> np.ndarray:
    """Separable: the max over a box is the max over each axis' bin in turn."""
    for axis, o in enumerate(spec.output_size, start=2):
        if o is not None:
            start, end = _adaptive_bins(x.shape[axis], o)
            x = np.stack([np.take(x, np.arange(a, b), axis=axis).max(axis=axis) for a, b in zip(start, end)], axis)
    return x


# --- padding and pixel shuffle --------------------------------------------------------------------

#: torch F.pad mode -> np.pad mode
NP_FPAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_np(x: np.ndarray, width: list[tuple[int, int]], mode: str, value: float) -> np.ndarray:
    if mode == "constant":
        return np.pad(x, width, constant_values=value)
    return np.pad(x, width, mode=mode)  # type: ignore[call-overload]


def _pad_layer(spec: ir.Pad, x: np.ndarray, params: Params) -> np.ndarray:
    """Pad the last len(padding) axes by the positive amounts, then crop by the negative ones;
    circular mode crops first and wraps the cropped part (as torch)."""
    first = x.ndim - len(spec.padding)
    if spec.mode == "circular":
        x = x[tuple([slice(None)] * first + [slice(max(-b, 0), n - max(-e, 0))
                                            for (b, e), n in zip(spec.padding, x.shape[first:])])]
        wrap = [(0, 0)] * first + [(max(b, 0), max(e, 0)) for b, e in spec.padding]
        return np.pad(x, wrap, mode="wrap")
    width = [(0, 0)] * first + [(max(b, 0), max(e, 0)) for b, e in spec.padding]
    mode = NP_FPAD_MODES[spec.mode]
    y = _pad_np(x, width, mode, spec.value)
    crop = [slice(None)] * first + [slice(max(-b, 0), n - max(-e, 0))
                                    for (b, e), n in zip(spec.padding, y.shape[first:])]
    return y[tuple(crop)]


def _pixel_shuffle(spec: ir.PixelShuffle, x: np.ndarray, params: Params) -> np.ndarray:
    """shuffle: ``y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]``; unshuffle the inverse."""
    n, c, h, w = x.shape
    r = spec.factor
    if spec.upscale:
        return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


# --- interpolation (§3.3) -------------------------------------------------------------------------


def _float32_scale(i: int, o: int, sf: float | None) -> np.float32:
    """torch's ``compute_scales_value<float>``: ``float(1/sf)`` when a scale was given, else ``i/o``."""
    if sf is not None and sf > 0:
        return np.float32(1.0 / sf)
    return np.float32(i) / np.float32(o)


def _nearest_index(i: int, o: int, sf: float | None, shortcuts: bool) -> np.ndarray:
    """``min(floor(j*r), i-1)`` in float32. With ``shortcuts`` (torch's 2-D kernel only, checked
    on torch 2.13 CPU) o == i copies and o == 2i halves, which differs from the formula when a
    scale_factor such as 1.05 or 2.05 gives those sizes; the 1-D and 3-D kernels always use it."""
    j = np.arange(o)
    if shortcuts and o == i:
        return j
    if shortcuts and o == 2 * i:
        return j >> 1
    src = np.floor(j.astype(np.float32) * _float32_scale(i, o, sf))
    return np.minimum(src.astype(np.int64), i - 1)


def _nearest_exact_index(i: int, o: int, sf: float | None) -> np.ndarray:
    """``min(floorf((j + 0.5)*r), i-1)``: the product in double, rounded to float by floorf."""
    src = np.float32((np.arange(o) + 0.5) * np.float64(_float32_scale(i, o, sf)))
    return np.minimum(np.floor(src).astype(np.int64), i - 1)


def _linear_source(i: int, o: int, sf: float | None, align_corners: bool) -> np.ndarray:
    """Source coordinate: align_corners ``j*(i-1)/(o-1)`` (0 when o == 1); otherwise
    ``max((j + 0.5)*r - 0.5, 0)`` with ``r = 1/sf`` if a scale was given else ``i/o``."""
    j = np.arange(o, dtype=np.float64)
    if align_corners:
        return j * ((i - 1) / (o - 1) if o > 1 else 0.0)
    r = 1.0 / sf if sf is not None and sf > 0 else i / o
    return np.maximum((j + 0.5) * r - 0.5, 0.0)


def _along(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def _resample_nearest(x: np.ndarray, axis: int, o: int, sf: float | None, align: bool | None) -> np.ndarray:
    return np.take(x, _nearest_index(x.shape[axis], o, sf, shortcuts=x.ndim == 4), axis=axis)


def _resample_nearest_exact(x: np.ndarray, axis: int, o: int, sf: float | None, align: bool | None) -> np.ndarray:
    return np.take(x, _nearest_exact_index(x.shape[axis], o, sf), axis=axis)


def _resample_linear(x: np.ndarray, axis: int, o: int, sf: float | None, align: bool | None) -> np.ndarray:
    """Lerp between ``floor(src)`` and ``min(floor(src)+1, i-1)``; torch copies when o == i."""
    i = x.shape[axis]
    if o == i:
        return x
    src = _linear_source(i, o, sf, bool(align))
    i0 = src.astype(np.int64)
    i1 = np.where(i0 < i - 1, i0 + 1, i0)
    lam1 = _along(np.clip(src - i0, 0.0, 1.0), x.ndim, axis).astype(x.dtype)
    return np.take(x, i0, axis=axis) * (1 - lam1) + np.take(x, i1, axis=axis) * lam1


_RESAMPLERS = {
    "nearest": _resample_nearest,
    "nearest-exact": _resample_nearest_exact,
    "linear": _resample_linear,
    "bilinear": _resample_linear,
    "trilinear": _resample_linear,
}


def _upsample(spec: ir.Upsample, x: np.ndarray, params: Params) -> np.ndarray:
    """Separable per axis. With scale_factor ``o = floor(i*sf)`` in double and ``r = 1/sf``;
    with size ``r = i/o``."""
    nd = x.ndim - 2
    sizes, scales = spec.sizes_for(nd), spec.scales_for(nd)
    for a in range(nd):
        i = x.shape[2 + a]
        sf = None if scales is None else float(scales[a])
        if sizes is not None:
            o = sizes[a]
        elif sf is not None:
            o = math.floor(i * sf)
        else:
            raise ValueError("Upsample needs size or scale_factor")
        x = _RESAMPLERS[spec.mode](x, 2 + a, o, sf, spec.align_corners)
    return x


# --- normalisation, activations, reshaping, linear ------------------------------------------------


def _batch_norm(spec: ir.BatchNorm, x: np.ndarray, params: Params) -> np.ndarray:
    """Inference: ``(x - mean)/sqrt(var + eps)*weight + bias``, applied as ``x*scale + shift`` (as
    torch's CPU kernel does). Without running stats: the batch's own mean and biased variance over
    (N, *spatial), which is what torch uses in eval mode too."""
    if spec.track_running_stats:
        mean, var = params["running_mean"], params["running_var"]
    else:
        axes = (0, *range(2, x.ndim))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    scale = 1.0 / np.sqrt(var + spec.eps)
    if spec.affine:
        scale = scale * params["weight"]
    shift = -mean * scale + (params["bias"] if spec.affine else 0.0)
    shape = _channel_shape(x.ndim)
    return x * scale.reshape(shape).astype(x.dtype) + shift.reshape(shape).astype(x.dtype)


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """``(x - mean)/sqrt(var + eps)`` with the biased variance over ``axes``."""
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _affine(y: np.ndarray, params: Params) -> np.ndarray:
    if "weight" in params:
        y = y * params["weight"].reshape(_channel_shape(y.ndim))
    return _add_bias(y, params)


def _instance_norm(spec: ir.InstanceNorm, x: np.ndarray, params: Params) -> np.ndarray:
    """Each (sample, channel) over its spatial elements; with running statistics (inference with
    track_running_stats) exactly BatchNorm's inference formula."""
    if not spec.uses_input_stats:
        bn = ir.BatchNorm(type_name=spec.type_name, nd=spec.nd, num_features=spec.num_features, eps=spec.eps,
                          momentum=spec.momentum, affine=spec.affine, track_running_stats=True)
        return _batch_norm(bn, x, params)
    return _affine(_normalise(x, tuple(range(2, x.ndim)), spec.eps), params)


def _group_norm(spec: ir.GroupNorm, x: np.ndarray, params: Params) -> np.ndarray:
    """Each (sample, group of C/G channels) over its channels and spatial elements; then the
    per-channel weight and bias."""
    grouped = x.reshape(x.shape[0], spec.num_groups, -1)
    return _affine(_normalise(grouped, (2,), spec.eps).reshape(x.shape), params)


def _prelu(spec: ir.PReLU, x: np.ndarray, params: Params) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``a*x`` with a per channel (dim 1) or shared."""
    a = params["weight"]
    if spec.num_parameters > 1:
        a = a.reshape(_channel_shape(x.ndim))
    return np.where(x >= 0, x, a * x)


def _softmax(spec: ir.Softmax, x: np.ndarray, params: Params) -> np.ndarray:
    """``exp(x - max)/sum exp(x - max)`` along the dim (log: ``x - max - log sum exp(x - max)``)."""
    axis = (0 if x.ndim in (0, 1, 3) else 1) if spec.dim is None else spec.dim % x.ndim
    z = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - log_sum if spec.log else np.exp(z - log_sum)


def _erf(x: np.ndarray) -> np.ndarray:
    """The C library's erf, element by element (numpy has none and scipy is not a dependency)."""
    flat = np.fromiter(map(math.erf, x.ravel().tolist()), dtype=np.float64, count=x.size)
    return flat.reshape(x.shape).astype(x.dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1/(1 + exp(-x))`` as ``exp(-log(1 + exp(-x)))``: no overflow for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x))


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    """'none': ``x/2 * (1 + erf(x/sqrt 2))``; 'tanh': ``x/2 * (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))``."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``negative_slope * x``."""
    return np.where(x >= 0, x, x * negative_slope)


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """``x`` where ``x > 0``, else ``alpha*(exp(x) - 1)``."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _hardswish(x: np.ndarray) -> np.ndarray:
    """``x * relu6(x + 3)/6``."""
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _identity(x: np.ndarray, spec: ir.Elementwise) -> np.ndarray:
    return x


#: Elementwise kinds by type_name: ``(x, spec) -> y``
ELEMENTWISE_IMPLS: dict[str, Callable[[np.ndarray, ir.Elementwise], np.ndarray]] = {
    "ReLU": lambda x, spec: np.maximum(x, 0.0),
    "LeakyReLU": lambda x, spec: _leaky_relu(x, spec.number("negative_slope", 0.01)),
    "Sigmoid": lambda x, spec: _sigmoid(x),
    "Tanh": lambda x, spec: np.tanh(x),
    "GELU": lambda x, spec: _gelu(x, str(spec.param("approximate", "none"))),
    "SiLU": lambda x, spec: x * _sigmoid(x),
    "ReLU6": lambda x, spec: np.clip(x, 0.0, 6.0),
    "Hardswish": lambda x, spec: _hardswish(x),
    "Hardsigmoid": lambda x, spec: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "ELU": lambda x, spec: _elu(x, spec.number("alpha", 1.0)),
    "Mish": lambda x, spec: x * np.tanh(np.logaddexp(0.0, x)),
    "Identity": _identity,
    "Dropout": _identity,  # inference: identity
    "Dropout1d": _identity,
    "Dropout2d": _identity,
    "Dropout3d": _identity,
}


def _elementwise(spec: ir.Elementwise, x: np.ndarray, params: Params) -> np.ndarray:
    if spec.type_name not in ELEMENTWISE_IMPLS:
        raise NotImplementedError(f"no numpy reference for elementwise layer {spec.type_name!r}")
    return ELEMENTWISE_IMPLS[spec.type_name](x, spec).astype(x.dtype, copy=False)


def _flatten(spec: ir.Flatten, x: np.ndarray, params: Params) -> np.ndarray:
    """torch.flatten: axes start_dim..end_dim (negative from the end) merge into one."""
    start, end = spec.start_dim % x.ndim, spec.end_dim % x.ndim
    return x.reshape((*x.shape[:start], -1, *x.shape[end + 1:]))


def _unflatten(spec: ir.Unflatten, x: np.ndarray, params: Params) -> np.ndarray:
    """Dim ``dim`` split into ``sizes`` (C order, as torch.unflatten)."""
    j = spec.dim % x.ndim
    return x.reshape(x.shape[:j] + spec.sizes + x.shape[j + 1:])


def _linear(spec: ir.Linear, x: np.ndarray, params: Params) -> np.ndarray:
    """``y = x @ W.T + b`` over the last axis."""
    y = x @ params["weight"].T
    return y if "bias" not in params else y + params["bias"]


#: the reference implementation of every layer kind, keyed by spec type
LAYER_IMPLS: dict[type, LayerFn] = {
    ir.Conv: _conv,
    ir.ConvTranspose: _conv_transpose,
    ir.Pool: _pool,
    ir.AdaptiveAvgPool: _adaptive_avg_pool,
    ir.AdaptiveMaxPool: _adaptive_max_pool,
    ir.Pad: _pad_layer,
    ir.PixelShuffle: _pixel_shuffle,
    ir.Upsample: _upsample,
    ir.BatchNorm: _batch_norm,
    ir.InstanceNorm: _instance_norm,
    ir.GroupNorm: _group_norm,
    ir.PReLU: _prelu,
    ir.Softmax: _softmax,
    ir.Elementwise: _elementwise,
    ir.Flatten: _flatten,
    ir.Unflatten: _unflatten,
    ir.Linear: _linear,
}


def forward_layer(spec: ir.LayerSpec, x: np.ndarray, params: Params) -> np.ndarray:
    """One layer on a batched array; ``params`` uses local names ('weight', 'bias', ...)."""
    return LAYER_IMPLS[type(spec)](spec, x, params)


# --- graph ----------------------------------------------------------------------------------------


def _crop(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Center crop of v's spatial axes to like's: drop ``(v - w)//2`` at the start, the rest at the end."""
    sl = tuple(slice((a - b) // 2, (a - b) // 2 + b) for a, b in zip(v.shape[2:], like.shape[2:]))
    return v[_index(slice(None), slice(None), *sl)]


def _layer_params(node: ir.Node, params: Params, dtype: DTypeLike) -> Params:
    prefix = f"{node.layer_name}."
    return {k: np.asarray(params[prefix + k], dtype=dtype) for k in PARAM_NAMES if prefix + k in params}


def _pad_like(node: ir.Node, v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Pad v's spatial axes to like's: ``(w - v)//2`` at the start, the rest at the end."""
    pads = tuple(((b - a) // 2, (b - a) - (b - a) // 2) for a, b in zip(v.shape[2:], like.shape[2:]))
    spec = ir.Pad(type_name="pad", nd=0, padding=pads, mode=str(node.attr("mode", "constant")),
                  value=float(node.attr("value", 0.0)))
    return _pad_layer(spec, v, {})


def _interp_like(node: ir.Node, v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``F.interpolate(v, size=like.shape[2:], mode, align_corners)``."""
    spec = ir.Upsample(type_name="Upsample", size=tuple(like.shape[2:]), scale_factor=None,
                       mode=ir.upsample_mode(node.attr("mode")), align_corners=node.attr("align_corners"))
    return _upsample(spec, v, {})


_SCALAR_IMPLS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "add": lambda x, c: x + c, "sub": lambda x, c: x - c, "rsub": lambda x, c: c - x,
    "mul": lambda x, c: x * c, "div": lambda x, c: x / c,
}


def _slice(node: ir.Node, x: np.ndarray) -> np.ndarray:
    """Python's basic slicing, which clamps as torch does."""
    return x[tuple(slice(a, z) for a, z in ir.slice_index(node, x.shape))]


def _squeeze(node: ir.Node, x: np.ndarray) -> np.ndarray:
    """Drop the named dims (None: all) that have size 1; keep the others."""
    named = node.attr("dims")
    dims = range(x.ndim) if named is None else [d % x.ndim for d in named]
    return x.squeeze(axis=tuple(j for j in dims if x.shape[j] == 1))


_MERGE_IMPLS: dict[str, Callable[[ir.Node, list[np.ndarray]], np.ndarray]] = {
    "cat": lambda node, args: np.concatenate(args, axis=node.dim),
    "add": lambda node, args: args[0] + args[1],
    "sub": lambda node, args: args[0] - args[1],
    "mul": lambda node, args: args[0] * args[1],
    "crop": lambda node, args: _crop(args[0], args[1]),
    "pad_like": lambda node, args: _pad_like(node, *args),
    "interp_like": lambda node, args: _interp_like(node, *args),
    "scalar": lambda node, args: _SCALAR_IMPLS[str(node.attr("op"))](args[0], float(node.attr("value"))),
    "slice": lambda node, args: _slice(node, args[0]),
    "mean": lambda node, args: args[0].mean(axis=tuple(node.attr("dims")), keepdims=bool(node.attr("keepdim"))),
    "unsqueeze": lambda node, args: np.expand_dims(args[0], int(node.attr("dim")) % (args[0].ndim + 1)),
    "squeeze": lambda node, args: _squeeze(node, args[0]),
}


def _layer(node: ir.Node, x: np.ndarray, params: Params, dtype: DTypeLike) -> np.ndarray:
    try:
        return forward_layer(node.spec, x, _layer_params(node, params, dtype))
    except KeyError as e:
        raise KeyError(f"no parameter '{node.layer_name}.{e.args[0]}' for layer '{node.name}'") from e


def symbol_sizes(graph: ir.Graph, inputs: dict[str, Any]) -> dict[str, int]:
    """The size symbols' values, read from the input arrays' shapes."""
    return {d: int(inputs[n.name].shape[k]) for n in graph.inputs if n.name in inputs
            for k, d in enumerate(n.dims) if isinstance(d, str)}


def _merge(node: ir.Node, args: list[np.ndarray], sizes: dict[str, int] | None = None) -> np.ndarray:
    if node.op == "reshape":  # C order, as torch.reshape; the entries name input symbols
        return args[0].reshape(tuple(ir.reshape_entry(e, sizes or {}) for e in node.attr("shape")))
    if node.op not in _MERGE_IMPLS:
        raise ValueError(f"unknown node op {node.op!r} at '{node.name}'")
    return _MERGE_IMPLS[node.op](node, args)


def run(graph: ir.Graph, inputs: dict[str, np.ndarray], params: Params,
        dtype: DTypeLike = np.float64) -> dict[str, np.ndarray]:
    """Every value of the graph, computed in ``dtype`` (float64 by default).

    ``inputs`` maps input names to arrays; ``params`` uses the weight-file keys
    (``{layer_name}.weight``, see ``convgraph.export.weights.param_specs``)."""
    env = {n.name: np.asarray(inputs[n.name], dtype=dtype) for n in graph.inputs if n.name in inputs}
    sizes = symbol_sizes(graph, env)
    rules = ir.Rules(lambda node, x: _layer(node, x, params, dtype), lambda node, args: _merge(node, args, sizes))
    return ir.interpret(graph, rules, env)
