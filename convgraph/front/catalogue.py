"""The layer catalogue: PyTorch constructor arguments -> one canonical IR spec.

``construct("Conv2d", (3, 8, 3), {"padding": "same"}, loc)`` binds the arguments exactly as
``torch.nn.Conv2d.__init__`` would (same positional order, keywords, defaults), validates them and
returns ``Conv(..., kernel_size=(3, 3), padding=((1, 1), (1, 1)), ...)``.

Validation reproduces PyTorch 2.13: everything its constructor rejects, plus the checks its
forward makes that do not depend on the input size (stride <= 0, pooling pad > kernel/2, ...), so
an invalid layer is reported where it is written. Deliberately stricter than PyTorch, because
PyTorch's behaviour there is an accident of truthiness or of ``F.pad`` (each gives a clear error):

- a bool where a number is expected, or a non-bool where a flag is expected;
- channel and feature counts and adaptive output sizes below 1 (PyTorch makes empty tensors), and
  BatchNorm's num_features when PyTorch never reads it (no affine parameters, no running stats);
- negative Conv padding with a padding_mode other than 'zeros' (PyTorch silently crops);
- Conv padding='same' with a padding_mode other than 'zeros' and a 1-tuple dilation on a 2-D/3-D
  layer (PyTorch then pads only the first spatial axis);
- ConvTranspose dilation 0 (PyTorch's 1-D/2-D CPU kernels accept it when kernel_size is 1, its
  3-D kernel and every other kernel size reject it);
- features convgraph does not model: ``device``/``dtype``, ``return_indices=True``,
  ``recompute_scale_factor=True``, Upsample modes other than
  nearest/nearest-exact/linear/bilinear/trilinear, ``BatchNorm(bias=False)``, non-finite floats;
- InstanceNorm/GroupNorm ``bias=False`` with affine (torch then has a weight and no bias) and
  ``eps < 0`` (torch computes NaN); InstanceNorm's num_features below 1 (torch never reads it
  without affine parameters or running statistics); GroupNorm's num_groups / num_channels that are
  not positive ints without affine parameters (torch then reads num_channels only in
  ``num_channels % num_groups``, so it accepts ``GroupNorm(1, 6.0, affine=False)``);
- PixelShuffle/PixelUnshuffle factors below 1 (torch fails in forward, for every input).
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, TypeGuard, TypeVar, overload

from convgraph.errors import NOWHERE, LayerConfigError, Loc
from convgraph.ir import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Elementwise,
    Flatten,
    GroupNorm,
    InstanceNorm,
    Ints,
    LayerSpec,
    Linear,
    Pad,
    PaddingMode,
    Pads,
    PixelShuffle,
    Pool,
    PoolMode,
    PReLU,
    Softmax,
    Unflatten,
    Upsample,
    UpsampleMode,
)

S = TypeVar("S", bound=str)
REQUIRED = object()  # marks a parameter without a default
PADDING_MODES: tuple[PaddingMode, ...] = ("zeros", "reflect", "replicate", "circular")
UPSAMPLE_MODES: tuple[UpsampleMode, ...] = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear")
INTERPOLATING_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}  # mode -> spatial rank
_NOT_MODELLED = ("device", "dtype")

Params = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Entry:
    """One catalogue class: its builder, spatial rank (0: any) and PyTorch's parameters in order."""

    build: Callable[[_Args], LayerSpec]
    nd: int
    params: Params
    kwonly: Params = ()
    varargs: bool = False  # Identity(*args, **kwargs) accepts and ignores anything


# --------------------------------------------------------------------------------------------
# Argument access with type and range checks
# --------------------------------------------------------------------------------------------


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_number(v: object) -> TypeGuard[float]:
    return isinstance(v, Real) and not isinstance(v, bool)


def _show(v: object) -> str:
    return f"{v!r} (a bool)" if isinstance(v, bool) else repr(v)


def _tup(v: tuple) -> str:
    return "(" + ", ".join(map(str, v)) + ")"


class _Args:
    """The bound arguments of one constructor call, read through checking accessors."""

    def __init__(self, type_name: str, nd: int, values: dict[str, object], loc: Loc):
        self.type_name, self.nd, self.values, self.loc = type_name, nd, values, loc

    def fail(self, message: str) -> LayerConfigError:
        return LayerConfigError(f"{self.type_name}: {message}", self.loc)

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    def int_(self, name: str, lo: int | None = None) -> int:
        v = self.values[name]
        if not _is_int(v):
            raise self.fail(f"{name} must be an int, got {_show(v)}")
        if lo is not None and v < lo:
            raise self.fail(f"{name} must be {_bound_word(lo)}, got {v}")
        return int(v)

    def ints(self, name: str, lo: int, lengths: tuple[int, ...] = ()) -> tuple[int, ...]:
        """One int per spatial axis from an int or a sequence; ``lengths`` lists the sequence
        lengths PyTorch accepts besides ``nd`` (1 broadcasts to every axis)."""
        v = self.values[name]
        ok_len = (self.nd, *lengths)
        if _is_int(v):
            out = (int(v),) * self.nd
        elif isinstance(v, (tuple, list)) and len(v) in ok_len and all(_is_int(x) for x in v):
            out = tuple(int(x) for x in v) if len(v) == self.nd else (int(v[0]),) * self.nd
        else:
            raise self.fail(f"{name} must be an int or a tuple of {self.nd} ints, got {_show(v)}")
        if any(x < lo for x in out):
            raise self.fail(f"{name} must be {_bound_word(lo)}, got {_show(v)}")
        return out

    def flag(self, name: str) -> bool:
        v = self.values[name]
        if not isinstance(v, bool):
            raise self.fail(f"{name} must be True or False, got {v!r}")
        return v

    @overload
    def number(self, name: str, optional: Literal[False] = False) -> float: ...

    @overload
    def number(self, name: str, optional: Literal[True]) -> float | None: ...

    def number(self, name: str, optional: bool = False) -> float | None:
        v = self.values[name]
        if optional and v is None:
            return None
        if not _is_number(v) or not math.isfinite(v):
            raise self.fail(f"{name} must be a finite number, got {_show(v)}")
        return float(v)

    def choice(self, name: str, options: tuple[S, ...]) -> S:
        """The value, one of ``options`` (narrowed to their Literal type)."""
        v = self.values[name]
        for option in options:
            if isinstance(v, str) and v == option:
                return option
        raise self.fail(f"{name} must be one of {', '.join(map(repr, options))}, got {_show(v)}")

    def unsupported_if(self, cond: bool, what: str) -> None:
        if cond:
            raise self.fail(f"{what} is not supported by convgraph")


def _bound_word(lo: int) -> str:
    return {0: "non-negative", 1: "positive"}.get(lo, f"at least {lo}")


# --------------------------------------------------------------------------------------------
# Conv and ConvTranspose
# --------------------------------------------------------------------------------------------


def _channels_and_groups(a: _Args) -> tuple[int, int, int]:
    cin, cout = a.int_("in_channels", 1), a.int_("out_channels", 1)
    groups = a.int_("groups")
    if groups <= 0:
        raise a.fail(f"groups ({groups}) must be a positive integer")
    for what, c in (("in_channels", cin), ("out_channels", cout)):
        if c % groups:
            raise a.fail(f"{what} ({c}) must be divisible by groups ({groups})")
    return cin, cout, groups


def same_padding(kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """'same': total = d*(k - 1) per axis, begin = total // 2, the odd element at the end."""
    totals = (d * (k - 1) for k, d in zip(kernel_size, dilation))
    return tuple((t // 2, t - t // 2) for t in totals)


def _conv_padding(a: _Args, k: Ints, stride: Ints, dilation: Ints, mode: str) -> tuple[tuple[int, int], ...]:
    p = a["padding"]
    if isinstance(p, str):
        if p not in ("same", "valid"):
            raise a.fail(f"invalid padding string {p!r}, should be 'same' or 'valid'")
        if p == "valid":
            return ((0, 0),) * a.nd
        if any(s != 1 for s in stride):
            raise a.fail(f"padding='same' is not supported for strided convolutions (stride {_tup(stride)})")
        d = a["dilation"]
        if mode != "zeros" and a.nd > 1 and isinstance(d, (tuple, list)) and len(d) == 1:
            # torch zips the 1-tuple with kernel_size and pads the first axis only
            raise a.fail(f"padding='same' with padding_mode={mode!r} needs dilation as an int or a tuple of "
                         f"{a.nd} ints, got {_show(d)}")
        return same_padding(k, dilation)
    # a 1-tuple broadcasts in F.conv, but F.pad (used for other modes) then pads the last axis only
    lengths = (1,) if mode == "zeros" or a.nd == 1 else ()
    return tuple((x, x) for x in a.ints("padding", 0, lengths))


def _conv(a: _Args) -> Conv:
    cin, cout, groups = _channels_and_groups(a)
    k = a.ints("kernel_size", 1)
    stride, dilation = a.ints("stride", 1, (1,)), a.ints("dilation", 1, (1,))
    mode = a.choice("padding_mode", PADDING_MODES)
    padding = _conv_padding(a, k, stride, dilation, mode)
    return Conv(type_name=a.type_name, nd=a.nd, in_channels=cin, out_channels=cout, kernel_size=k, stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=a.flag("bias"), padding_mode=mode)


def _conv_transpose(a: _Args) -> ConvTranspose:
    if a["padding_mode"] != "zeros":
        raise a.fail(f"only padding_mode='zeros' is supported for transposed convolutions, "
                     f"got {_show(a['padding_mode'])}")
    cin, cout, groups = _channels_and_groups(a)
    k = a.ints("kernel_size", 1)
    stride, dilation = a.ints("stride", 1, (1,)), a.ints("dilation", 1, (1,))
    if isinstance(a["padding"], str):
        raise a.fail(f"string padding ({a['padding']!r}) is not supported for transposed "
                     "convolutions; give the padding as ints")
    padding, out_pad = a.ints("padding", 0, (1,)), a.ints("output_padding", 0, (1,))
    if any(op >= s and op >= d for op, s, d in zip(out_pad, stride, dilation)):
        raise a.fail(f"output_padding {_tup(out_pad)} must be smaller than either stride {_tup(stride)} "
                     f"or dilation {_tup(dilation)} on every axis")
    return ConvTranspose(type_name=a.type_name, nd=a.nd, in_channels=cin, out_channels=cout, kernel_size=k,
                         stride=stride, padding=_pairs(padding), output_padding=out_pad, dilation=dilation,
                         groups=groups, bias=a.flag("bias"))


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _pairs(padding: tuple[int, ...]) -> Pads:
    """torch's symmetric padding p per axis as the canonical (begin, end) = (p, p)."""
    return tuple((p, p) for p in padding)


def _pool_stride(a: _Args, kernel: tuple[int, ...]) -> tuple[int, ...]:
    """None, and also an empty tuple (PyTorch's C++ check), mean stride = kernel_size."""
    s = a["stride"]
    if s is None or (isinstance(s, (tuple, list)) and len(s) == 0):
        return kernel
    return a.ints("stride", 1, (1,))


def _pool(a: _Args, mode: PoolMode) -> Pool:
    kernel = a.ints("kernel_size", 1, (1,))
    stride = _pool_stride(a, kernel)
    padding = a.ints("padding", 0, (1,))
    dilation = a.ints("dilation", 1, (1,)) if mode == "max" else (1,) * a.nd
    # torch 2.13 checks max-pool padding against the non-dilated kernel (conv-semantics §3.1)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise a.fail(f"padding {_tup(padding)} must be at most half of kernel_size {_tup(kernel)} on every axis")
    ceil_mode = a.flag("ceil_mode")
    if mode == "max":
        a.unsupported_if(a.flag("return_indices"), "return_indices=True")
        return Pool(type_name=a.type_name, nd=a.nd, mode=mode, kernel_size=kernel, stride=stride,
                    padding=_pairs(padding), dilation=dilation, ceil_mode=ceil_mode)
    divisor = None if a.values.get("divisor_override") is None else a.int_("divisor_override")
    if divisor == 0:
        raise a.fail("divisor_override must not be zero")
    return Pool(type_name=a.type_name, nd=a.nd, mode=mode, kernel_size=kernel, stride=stride, padding=_pairs(padding),
                dilation=dilation, ceil_mode=ceil_mode, count_include_pad=a.flag("count_include_pad"),
                divisor_override=divisor)


def _adaptive_max(a: _Args) -> AdaptiveMaxPool:
    a.unsupported_if(a.flag("return_indices"), "return_indices=True")
    return AdaptiveMaxPool(type_name=a.type_name, nd=a.nd, output_size=_adaptive(a).output_size)


def _adaptive(a: _Args) -> AdaptiveAvgPool:
    given = a["output_size"]
    v: object = (given,) * a.nd if _is_int(given) else given
    allow_none = a.nd > 1  # adaptive_avg_pool1d takes ints only
    if not (isinstance(v, (tuple, list)) and len(v) == a.nd and all(
            _is_int(x) or (allow_none and x is None) for x in v)):
        what = "ints or None" if allow_none else "int"
        raise a.fail(f"output_size must be an int or a tuple of {a.nd} {what}, got {_show(a['output_size'])}")
    if any(x is not None and x < 1 for x in v):
        raise a.fail(f"output_size must be positive, got {_show(a['output_size'])}")
    return AdaptiveAvgPool(type_name=a.type_name, nd=a.nd, output_size=tuple(v))


# --------------------------------------------------------------------------------------------
# Upsample
# --------------------------------------------------------------------------------------------


def _upsample_size(a: _Args) -> int | tuple[int, ...] | None:
    v = a["size"]
    if v is None:
        return None
    if _is_int(v):
        vals: tuple[int, ...] = (int(v),)
    elif isinstance(v, (tuple, list)) and 1 <= len(v) <= 3 and all(_is_int(x) for x in v):
        vals = tuple(int(x) for x in v)
    else:
        raise a.fail(f"size must be an int or a tuple of 1 to 3 ints, got {_show(v)}")
    if any(x < 1 for x in vals):
        raise a.fail(f"size must be positive, got {_show(v)}")
    return vals[0] if _is_int(v) else vals


def _upsample_scale(a: _Args) -> float | tuple[float, ...] | None:
    v = a["scale_factor"]
    vals: tuple[object, ...]
    if isinstance(v, tuple):
        vals = v
        if not 1 <= len(v) <= 3:
            raise a.fail(f"scale_factor must be a number or a tuple of 1 to 3 numbers, got {_show(v)}")
    elif v is None or (_is_number(v) and v == 0):  # torch: `float(sf) if sf else None`
        return None
    else:
        vals = (v,)
    nums = [float(x) for x in vals if _is_number(x) and math.isfinite(x)]
    if len(nums) < len(vals):
        raise a.fail(f"scale_factor must be a finite number or a tuple of them, got {_show(v)}")
    if any(x <= 0 for x in nums):
        raise a.fail(f"scale_factor must be positive, got {_show(v)}")
    return tuple(nums) if isinstance(v, tuple) else nums[0]


def _upsample_align(a: _Args, mode: str) -> bool | None:
    ac = a["align_corners"]
    if mode not in INTERPOLATING_MODES:
        if ac is not None:
            raise a.fail(f"align_corners can only be set with the interpolating modes linear | bilinear | "
                         f"trilinear, got mode={mode!r}")
        return None
    if ac is None:
        return False  # what F.interpolate uses
    return a.flag("align_corners")


def _upsample(a: _Args) -> Upsample:
    mode = next((m for m in UPSAMPLE_MODES if isinstance(a["mode"], str) and a["mode"] == m), None)
    if mode is None:
        raise a.fail(f"mode {_show(a['mode'])} is not supported; convgraph supports "
                     + ", ".join(map(repr, UPSAMPLE_MODES)))
    size, scale = _upsample_size(a), _upsample_scale(a)
    if (size is None) == (scale is None):
        raise a.fail("give exactly one of size and scale_factor" if size is not None
                     else "either size or scale_factor must be given")
    rsf = a["recompute_scale_factor"]
    if rsf is not None:
        a.unsupported_if(a.flag("recompute_scale_factor"), "recompute_scale_factor=True")
    per_axis = size if size is not None else scale
    need = INTERPOLATING_MODES.get(mode)
    if need is not None and isinstance(per_axis, tuple) and len(per_axis) != need:
        which = "size" if size is not None else "scale_factor"
        raise a.fail(f"mode {mode!r} works on {need} spatial dim(s), but {which} has {len(per_axis)} entries")
    return Upsample(type_name=a.type_name, size=size, scale_factor=scale, mode=mode,
                    align_corners=_upsample_align(a, mode))


# --------------------------------------------------------------------------------------------
# Normalisation, activations, reshaping, dense
# --------------------------------------------------------------------------------------------


def _batchnorm(a: _Args) -> BatchNorm:
    n = a.int_("num_features", 1)
    eps = a.number("eps")
    momentum = a.number("momentum", optional=True)
    affine, track = a.flag("affine"), a.flag("track_running_stats")
    if eps < 0 or (eps == 0 and not track):  # batch statistics (no running stats) need eps > 0
        need = "non-negative" if track else "positive with track_running_stats=False"
        raise a.fail(f"eps must be {need}, got {a['eps']!r}")
    a.unsupported_if(not a.flag("bias") and affine, "bias=False")
    return BatchNorm(type_name=a.type_name, nd=a.nd, num_features=n, eps=eps, momentum=momentum, affine=affine,
                     track_running_stats=track)


def _norm_eps(a: _Args) -> float:
    eps = a.number("eps")
    if eps < 0:
        raise a.fail(f"eps must be non-negative, got {a['eps']!r}")
    return eps


def _instancenorm(a: _Args) -> InstanceNorm:
    n = a.int_("num_features", 1)
    eps, momentum = _norm_eps(a), a.number("momentum", optional=True)
    affine, track = a.flag("affine"), a.flag("track_running_stats")
    a.unsupported_if(not a.flag("bias") and affine, "bias=False")
    return InstanceNorm(type_name=a.type_name, nd=a.nd, num_features=n, eps=eps, momentum=momentum, affine=affine,
                        track_running_stats=track)


def _groupnorm(a: _Args) -> GroupNorm:
    groups, channels = a.int_("num_groups", 1), a.int_("num_channels", 1)
    if channels % groups:
        raise a.fail(f"num_channels ({channels}) must be divisible by num_groups ({groups})")
    affine = a.flag("affine")
    a.unsupported_if(not a.flag("bias") and affine, "bias=False")
    return GroupNorm(type_name=a.type_name, num_groups=groups, num_channels=channels, eps=_norm_eps(a), affine=affine)


def _prelu(a: _Args) -> PReLU:
    return PReLU(type_name=a.type_name, num_parameters=a.int_("num_parameters", 1), init=a.number("init"))


def _softmax(a: _Args) -> Softmax:
    dim = a["dim"]
    return Softmax(type_name=a.type_name, dim=None if dim is None else a.int_("dim"), log=a.type_name == "LogSoftmax")


def _pixel_shuffle(a: _Args) -> PixelShuffle:
    key = "upscale_factor" if a.type_name == "PixelShuffle" else "downscale_factor"
    return PixelShuffle(type_name=a.type_name, factor=a.int_(key, 1), upscale=key == "upscale_factor")


#: pad module prefix -> torch's F.pad mode
PAD_CLASSES = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "replicate",
               "Circular": "circular"}
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad_pairs(flat: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """F.pad's flat list (last axis first: left, right, top, bottom, ...) -> (begin, end) per
    padded axis in axis order."""
    return tuple((flat[i], flat[i + 1]) for i in range(len(flat) - 2, -1, -2))


def _pad(a: _Args) -> Pad:
    """An int pads every one of the module's nd axes on both sides; a tuple is F.pad's list (any
    even length: the shape stage checks it against the value's rank as F.pad does)."""
    v, mode = a["padding"], PAD_CLASSES[a.type_name[:-len("PadNd")]]
    if _is_int(v):
        flat: tuple[int, ...] = (int(v),) * (2 * a.nd)
    elif isinstance(v, (tuple, list)) and all(_is_int(x) for x in v) and 0 < len(v) <= 10 and len(v) % 2 == 0:
        flat = tuple(int(x) for x in v)  # torch pads as many trailing axes as pairs are given
    else:
        raise a.fail(f"padding must be an int or a tuple of {2 * a.nd} ints, got {_show(v)}")
    value = a.number("value", optional=True) if "value" in a.values else 0.0  # torch reads None as 0
    value = 0.0 if value is None else value
    return Pad(type_name=a.type_name, nd=a.nd, padding=pad_pairs(flat), mode=mode, value=value)


def _unflatten(a: _Args) -> Unflatten:
    dim, v = a.int_("dim"), a["unflattened_size"]
    if not (isinstance(v, (tuple, list)) and v and all(_is_int(x) for x in v)):
        raise a.fail(f"unflattened_size must be a non-empty tuple of ints, got {_show(v)}")
    if sum(x == -1 for x in v) > 1 or any(x < 1 and x != -1 for x in v):
        raise a.fail(f"unflattened_size must be positive ints with at most one -1, got {_show(v)}")
    return Unflatten(type_name=a.type_name, dim=dim, sizes=tuple(int(x) for x in v))


def _linear(a: _Args) -> Linear:
    return Linear(type_name=a.type_name, in_features=a.int_("in_features", 1), out_features=a.int_("out_features", 1),
                  bias=a.flag("bias"))


def _flatten(a: _Args) -> Flatten:
    start, end = a.int_("start_dim"), a.int_("end_dim")
    if (start < 0) == (end < 0) and start > end:  # same sign: wrong for every rank
        raise a.fail(f"start_dim ({start}) cannot come after end_dim ({end})")
    return Flatten(type_name=a.type_name, start_dim=start, end_dim=end)


def _activation(*numeric: str) -> Callable[[_Args], Elementwise]:
    """An Elementwise builder; ``inplace`` is checked but dropped (no meaning at inference)."""

    def build(a: _Args) -> Elementwise:
        if "inplace" in a.values:
            a.flag("inplace")
        return Elementwise(type_name=a.type_name, params=tuple(sorted((k, a.number(k)) for k in numeric)))

    return build


def _dropout(a: _Args) -> Elementwise:
    a.flag("inplace")
    p = a.number("p")
    if not 0 <= p <= 1:
        raise a.fail(f"dropout probability has to be between 0 and 1, got {a['p']!r}")
    return Elementwise(type_name=a.type_name, params=(("p", p),))


def _elu(a: _Args) -> Elementwise:
    a.flag("inplace")
    return Elementwise(type_name=a.type_name, params=(("alpha", a.number("alpha")),))


def _gelu(a: _Args) -> Elementwise:
    return Elementwise(type_name=a.type_name, params=(("approximate", a.choice("approximate", ("none", "tanh"))),))


# --------------------------------------------------------------------------------------------
# The catalogue: PyTorch's exact parameter order and defaults
# --------------------------------------------------------------------------------------------

_DEVICE: Params = (("device", None), ("dtype", None))
_CONV: Params = (("in_channels", REQUIRED), ("out_channels", REQUIRED), ("kernel_size", REQUIRED),
                 ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1), ("bias", True),
                 ("padding_mode", "zeros"), *_DEVICE)
_CONV_T: Params = (("in_channels", REQUIRED), ("out_channels", REQUIRED), ("kernel_size", REQUIRED),
                   ("stride", 1), ("padding", 0), ("output_padding", 0), ("groups", 1), ("bias", True),
                   ("dilation", 1), ("padding_mode", "zeros"), *_DEVICE)
_MAXPOOL: Params = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1),
                    ("return_indices", False), ("ceil_mode", False))
_AVGPOOL1: Params = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
                     ("count_include_pad", True))
_BATCHNORM: Params = (("num_features", REQUIRED), ("eps", 1e-5), ("momentum", 0.1), ("affine", True),
                      ("track_running_stats", True), *_DEVICE)
_INSTANCENORM: Params = (("num_features", REQUIRED), ("eps", 1e-5), ("momentum", 0.1), ("affine", False),
                         ("track_running_stats", False), *_DEVICE)
_DROPOUT: Params = (("p", 0.5), ("inplace", False))


def _catalogue() -> dict[str, Entry]:
    cat: dict[str, Entry] = {}
    for nd in (1, 2, 3):
        cat[f"Conv{nd}d"] = Entry(_conv, nd, _CONV)
        cat[f"ConvTranspose{nd}d"] = Entry(_conv_transpose, nd, _CONV_T)
        cat[f"MaxPool{nd}d"] = Entry(lambda a: _pool(a, "max"), nd, _MAXPOOL)
        avg = _AVGPOOL1 if nd == 1 else (*_AVGPOOL1, ("divisor_override", None))
        cat[f"AvgPool{nd}d"] = Entry(lambda a: _pool(a, "avg"), nd, avg)
        cat[f"AdaptiveAvgPool{nd}d"] = Entry(_adaptive, nd, (("output_size", REQUIRED),))
        cat[f"BatchNorm{nd}d"] = Entry(_batchnorm, nd, _BATCHNORM, kwonly=(("bias", True),))
        cat[f"Dropout{nd}d"] = Entry(_dropout, 0, _DROPOUT)
        cat[f"AdaptiveMaxPool{nd}d"] = Entry(_adaptive_max, nd, (("output_size", REQUIRED), ("return_indices", False)))
        cat[f"InstanceNorm{nd}d"] = Entry(_instancenorm, nd, _INSTANCENORM, kwonly=(("bias", True),))
        for prefix in PAD_CLASSES:
            params = (("padding", REQUIRED), ("value", REQUIRED)) if prefix == "Constant" else (("padding", REQUIRED),)
            cat[f"{prefix}Pad{nd}d"] = Entry(_pad, nd, params)
    cat["Dropout"] = Entry(_dropout, 0, _DROPOUT)
    cat["Upsample"] = Entry(_upsample, 0, (("size", None), ("scale_factor", None), ("mode", "nearest"),
                                           ("align_corners", None), ("recompute_scale_factor", None)))
    cat["ReLU"] = Entry(_activation(), 0, (("inplace", False),))
    cat["LeakyReLU"] = Entry(_activation("negative_slope"), 0, (("negative_slope", 0.01), ("inplace", False)))
    cat["Sigmoid"] = Entry(_activation(), 0, ())
    cat["Tanh"] = Entry(_activation(), 0, ())
    cat["GELU"] = Entry(_gelu, 0, (("approximate", "none"),))
    cat["SiLU"] = Entry(_activation(), 0, (("inplace", False),))
    cat["ReLU6"] = Entry(_activation(), 0, (("inplace", False),))
    cat["Hardswish"] = Entry(_activation(), 0, (("inplace", False),))
    cat["Hardsigmoid"] = Entry(_activation(), 0, (("inplace", False),))
    cat["Mish"] = Entry(_activation(), 0, (("inplace", False),))
    cat["ELU"] = Entry(_elu, 0, (("alpha", 1.0), ("inplace", False)))
    cat["PReLU"] = Entry(_prelu, 0, (("num_parameters", 1), ("init", 0.25), *_DEVICE))
    cat["Softmax"] = Entry(_softmax, 0, (("dim", None),))
    cat["LogSoftmax"] = Entry(_softmax, 0, (("dim", None),))
    cat["GroupNorm"] = Entry(_groupnorm, 0, (("num_groups", REQUIRED), ("num_channels", REQUIRED), ("eps", 1e-5),
                                             ("affine", True), *_DEVICE), kwonly=(("bias", True),))
    cat["PixelShuffle"] = Entry(_pixel_shuffle, 0, (("upscale_factor", REQUIRED),))
    cat["PixelUnshuffle"] = Entry(_pixel_shuffle, 0, (("downscale_factor", REQUIRED),))
    cat["Identity"] = Entry(_activation(), 0, (), varargs=True)
    cat["Unflatten"] = Entry(_unflatten, 0, (("dim", REQUIRED), ("unflattened_size", REQUIRED)))
    cat["Flatten"] = Entry(_flatten, 0, (("start_dim", 1), ("end_dim", -1)))
    cat["Linear"] = Entry(_linear, 0, (("in_features", REQUIRED), ("out_features", REQUIRED), ("bias", True),
                                       *_DEVICE))
    return cat


#: every supported class name -> its Entry
CATALOGUE: dict[str, Entry] = _catalogue()

#: containers of layers: expanded by the front ends into their children (``<name>.0``, ``<name>.1``,
#: ... as ``torch.nn.Sequential`` numbers them), so no later stage ever sees one
CONTAINERS = ("Sequential",)


def param_names(type_name: str) -> tuple[str, ...]:
    """PyTorch's positional parameter order: ``param_names("ConvTranspose2d")[5] == "output_padding"``."""
    return tuple(name for name, _ in CATALOGUE[type_name].params)


def suggest(name: str, options: Iterable[str] | None = None) -> str:
    """`` (did you mean 'Conv2d'?)`` for a near miss, else ``''``."""
    close = difflib.get_close_matches(name, list(options if options is not None else CATALOGUE), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def bind(type_name: str, args: tuple, kwargs: dict, loc: Loc = NOWHERE) -> dict[str, object]:
    """Bind arguments like Python's call of ``torch.nn.<type_name>(...)``; defaults filled in."""
    entry = CATALOGUE[type_name]
    if entry.varargs:
        return {}
    fail = lambda msg: LayerConfigError(f"{type_name}: {msg}", loc)  # noqa: E731
    names = [n for n, _ in entry.params]
    if len(args) > len(names):
        raise fail(f"takes at most {len(names)} positional argument{'s' * (len(names) != 1)}, "
                   f"got {len(args)}")
    bound = dict(zip(names, args))
    every = dict(entry.params + entry.kwonly)
    for key, value in kwargs.items():
        if key not in every:
            raise fail(f"unexpected keyword argument {key!r}{suggest(key, every)}")
        if key in bound:
            raise fail(f"got multiple values for argument {key!r}")
        bound[key] = value
    for key in _NOT_MODELLED:
        if bound.get(key) is not None:  # None is the default: harmless
            raise fail(f"{key}= is not supported by convgraph (layers have no device or dtype)")
    missing = [n for n, d in every.items() if d is REQUIRED and n not in bound]
    if missing:
        raise fail(f"missing required argument{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}")
    return {n: bound.get(n, d) for n, d in every.items() if n not in _NOT_MODELLED}


def construct(type_name: str, args: tuple = (), kwargs: dict | None = None, loc: Loc = NOWHERE) -> LayerSpec:
    """The canonical spec of ``torch.nn.<type_name>(*args, **kwargs)``, or LayerConfigError.

    >>> construct("Conv2d", (3, 8, 3), {"stride": (2, 1)}).stride
    (2, 1)
    """
    entry = CATALOGUE.get(type_name)
    if entry is None:
        raise LayerConfigError(f"unknown layer {type_name!r}{suggest(type_name)}", loc)
    values = bind(type_name, tuple(args), dict(kwargs or {}), loc)
    return entry.build(_Args(type_name, entry.nd, values, loc))
