"""The DSL's functions (PyTorch's functional spellings) -> catalogue layers or IR node attributes.

Shared by the text DSL and the Python builder, so both validate the same way. Every function
binds its arguments as PyTorch's own signature does (positional order, keywords, defaults):

>>> functional_layer("max_pool2d", (2,), {"stride": 1}).stride
(1, 1)
>>> functional_layer("relu", (), {}).type_name
'ReLU'

- ``F.relu(v)``, ``torch.flatten(v, 1)``, ``F.max_pool2d(v, 2)``, ... are the catalogue layer of
  the same meaning (``FUNCTIONAL``), applied to v; arguments that only matter in training
  (``training=`` of F.dropout) must be literal bools and change nothing at inference.
- ``F.pad(v, (l, r, t, b), mode, value)`` is a ``Pad`` spec (``fpad``); ``F.interpolate`` an
  ``Upsample`` spec.
- ``pad(v, like=w, mode=, value=)`` and ``interpolate(v, like=w, mode=, align_corners=)`` are
  the 'pad_like' / 'interp_like' node ops (``like_attrs``).
- ``chunk`` / ``split`` are several 'slice' nodes with the attr ``part`` (``part_arg``).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from convgraph.errors import NOWHERE, GraphError, LayerConfigError, Loc
from convgraph.front.catalogue import (
    INTERPOLATING_MODES,
    PAD_MODES,
    REQUIRED,
    UPSAMPLE_MODES,
    construct,
    pad_pairs,
    suggest,
)
from convgraph.ir import LayerSpec, Pad

Params = tuple[tuple[str, object], ...]

_INPLACE: Params = (("inplace", False),)
_MAXPOOL: Params = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1),
                    ("ceil_mode", False), ("return_indices", False))
_AVGPOOL: Params = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
                    ("count_include_pad", True))
_SOFTMAX: Params = (("dim", None), ("_stacklevel", 3), ("dtype", None))
_DROPOUT: Params = (("p", 0.5), ("training", True), ("inplace", False))
_INTERPOLATE: Params = (("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
                        ("recompute_scale_factor", None), ("antialias", False))


def _functional() -> dict[str, tuple[str, Params]]:
    """functional name -> (catalogue class, torch.nn.functional's parameters after the input)."""
    table: dict[str, tuple[str, Params]] = {
        "relu": ("ReLU", _INPLACE), "relu6": ("ReLU6", _INPLACE), "silu": ("SiLU", _INPLACE),
        "mish": ("Mish", _INPLACE), "hardswish": ("Hardswish", _INPLACE), "hardsigmoid": ("Hardsigmoid", _INPLACE),
        "elu": ("ELU", (("alpha", 1.0), ("inplace", False))),
        "leaky_relu": ("LeakyReLU", (("negative_slope", 0.01), ("inplace", False))),
        "gelu": ("GELU", (("approximate", "none"),)),
        "sigmoid": ("Sigmoid", ()), "tanh": ("Tanh", ()),
        "softmax": ("Softmax", _SOFTMAX), "log_softmax": ("LogSoftmax", _SOFTMAX),
        "flatten": ("Flatten", (("start_dim", 0), ("end_dim", -1))),
        "dropout": ("Dropout", _DROPOUT),
        "pixel_shuffle": ("PixelShuffle", (("upscale_factor", REQUIRED),)),
        "pixel_unshuffle": ("PixelUnshuffle", (("downscale_factor", REQUIRED),)),
        "interpolate": ("Upsample", _INTERPOLATE),
    }
    for nd in (1, 2, 3):
        table[f"max_pool{nd}d"] = (f"MaxPool{nd}d", _MAXPOOL)
        table[f"avg_pool{nd}d"] = (f"AvgPool{nd}d", _AVGPOOL if nd == 1 else (*_AVGPOOL, ("divisor_override", None)))
        table[f"adaptive_avg_pool{nd}d"] = (f"AdaptiveAvgPool{nd}d", (("output_size", REQUIRED),))
        table[f"adaptive_max_pool{nd}d"] = (f"AdaptiveMaxPool{nd}d", (("output_size", REQUIRED),
                                                                      ("return_indices", False)))
        table[f"dropout{nd}d"] = (f"Dropout{nd}d", _DROPOUT)
    return table


#: ``F.<name>`` (also ``nn.functional.``, ``torch.nn.functional.``) -> (layer, parameters)
FUNCTIONAL: dict[str, tuple[str, Params]] = _functional()
#: what ``torch.<name>`` may call (torch.softmax's dim is required, unlike F.softmax's)
TORCH_FUNCTIONS = ("cat", "flatten", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "chunk", "split", "mean",
                   "unsqueeze", "squeeze", "reshape")
#: the DSL's own functions besides input/output/assume/expect
DSL_FUNCTIONS = ("cat", "crop", "pad", "interpolate", "chunk", "split", "softmax", "flatten", "mean", "unsqueeze",
                 "squeeze", "reshape")
#: functions that are node ops (not layers): name -> (torch's parameters after the input)
SHAPE_FUNCTIONS: dict[str, Params] = {
    "mean": (("dim", REQUIRED), ("keepdim", False), ("dtype", None)),
    "unsqueeze": (("dim", REQUIRED),),
    "squeeze": (("dim", None),),
}


def shape_function_attrs(name: str, args: tuple, kwargs: dict, loc: Loc, prefix: str = "") -> tuple:
    """Node attrs of ``mean(v, dim, keepdim)``, ``unsqueeze(v, dim)``, ``squeeze(v, dim=None)``."""
    b = bind(f"{prefix}{name}", SHAPE_FUNCTIONS[name], args, kwargs, loc)
    dim: Any = b["dim"]
    ints: Any = (dim,) if isinstance(dim, Integral) else dim
    ok = isinstance(ints, (tuple, list)) and all(isinstance(d, Integral) and not isinstance(d, bool) for d in ints)
    if name == "unsqueeze" and not (ok and len(ints) == 1 and not isinstance(dim, (tuple, list))):
        raise GraphError(f"{prefix}unsqueeze: dim must be an int, got {dim!r}", loc)
    if name == "unsqueeze":
        return (("dim", int(dim)),)
    if name == "squeeze" and dim is None:
        return (("dims", None),)
    if isinstance(dim, bool) or not ok or not ints:
        raise GraphError(f"{prefix}{name}: dim must be an int or a tuple of ints, got {dim!r}", loc)
    dims = tuple(int(d) for d in ints)
    if name == "squeeze":
        return (("dims", dims),)
    if not isinstance(b["keepdim"], bool) or b["dtype"] is not None:
        raise GraphError(f"{prefix}mean: keepdim must be True or False and dtype None", loc)
    return (("dims", dims), ("keepdim", b["keepdim"]))


MAX_RESHAPE_DIMS = 5
MAX_RESHAPE_FACTOR = 2**31


def reshape_attrs(entries: tuple, loc: Loc) -> tuple:
    """Node attrs of ``reshape(v, shape)``: 1 to 5 entries, each an int >= 1, -1 (at most one) or
    ``(symbol, k)`` for ``k * symbol`` (1 <= k <= 2**31); the caller has resolved the symbols."""
    if not 1 <= len(entries) <= MAX_RESHAPE_DIMS:
        raise GraphError(f"the shape is a tuple of 1 to {MAX_RESHAPE_DIMS} entries", loc)
    entries = tuple(int(e) if isinstance(e, Integral) and not isinstance(e, bool) else e for e in entries)
    for e in entries:
        is_int = isinstance(e, int) and not isinstance(e, bool) and (e >= 1 or e == -1)
        is_sym = isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int) \
            and not isinstance(e[1], bool) and 1 <= e[1] <= MAX_RESHAPE_FACTOR
        if not (is_int or is_sym):
            raise GraphError("a reshape entry is a positive int, -1, a size symbol or a size symbol times an int", loc)
    if sum(e == -1 for e in entries) > 1:
        raise GraphError("only one dimension can be -1", loc)
    return (("shape", tuple(entries)),)


def bind(what: str, params: Params, args: tuple, kwargs: dict, loc: Loc) -> dict[str, object]:
    """Python's binding of ``args``/``kwargs`` to ``params`` (name, default), defaults filled in."""
    names = [n for n, _ in params]
    if len(args) > len(names):
        raise GraphError(f"{what}: takes at most {len(names)} argument(s) after the value, got {len(args)}", loc)
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise GraphError(f"{what}: unexpected keyword argument {key!r}{suggest(key, names)}", loc)
        if key in bound:
            raise GraphError(f"{what}: got multiple values for argument {key!r}", loc)
        bound[key] = value
    missing = [n for n, d in params if d is REQUIRED and n not in bound]
    if missing:
        raise GraphError(f"{what}: missing required argument(s) {', '.join(map(repr, missing))}", loc)
    return {n: bound.get(n, d) for n, d in params}


def functional_layer(name: str, args: tuple, kwargs: dict, loc: Loc = NOWHERE, prefix: str = "F.") -> LayerSpec:
    """The catalogue spec of ``F.<name>(v, *args, **kwargs)``."""
    if name == "pad":
        b = bind(f"{prefix}pad", (("pad", REQUIRED), ("mode", "constant"), ("value", None)), args, kwargs, loc)
        return fpad(b["pad"], b["mode"], b["value"], loc)
    layer, params = FUNCTIONAL[name]
    b = bind(f"{prefix}{name}", params, args, kwargs, loc)
    for key, want in (("training", None), ("antialias", False), ("_stacklevel", None), ("dtype", None)):
        if key in b:
            _check_ignored(f"{prefix}{name}", key, b.pop(key), want, loc)
    if name == "softmax" and prefix == "torch." and b["dim"] is None:
        raise GraphError("torch.softmax: missing required argument 'dim'", loc)
    return construct(layer, (), b, loc)


def _check_ignored(what: str, key: str, v: object, want: object, loc: Loc) -> None:
    if key == "training" and not isinstance(v, bool):
        raise LayerConfigError(f"{what}: training must be True or False (inference drops nothing), got {v!r}", loc)
    if key == "_stacklevel":
        return
    if key in ("antialias", "dtype") and v != want:
        raise LayerConfigError(f"{what}: {key}={v!r} is not supported by convgraph", loc)


def fpad(pad: object, mode: object, value: object, loc: Loc = NOWHERE) -> Pad:
    """``F.pad``'s spec: ``pad`` is the flat list, last axis first; ``value`` None is 0."""
    fail = lambda m: LayerConfigError(f"F.pad: {m}", loc)  # noqa: E731
    if not (isinstance(pad, (tuple, list)) and pad and len(pad) % 2 == 0 and len(pad) <= 10
            and all(isinstance(p, Integral) and not isinstance(p, bool) for p in pad)):
        raise fail(f"pad must be a tuple of an even number (2 to 10) of ints, got {pad!r}")
    if mode not in PAD_MODES:
        raise fail(f"mode must be one of {', '.join(map(repr, PAD_MODES))}, got {mode!r}")
    if value is not None and (mode != "constant" and value != 0):
        raise fail(f"padding mode {mode!r} doesn't take in value argument")
    return Pad(type_name="F.pad", nd=0, padding=pad_pairs(tuple(int(p) for p in pad)), mode=str(mode),
               value=_number("F.pad", "value", value, loc))


def _number(what: str, key: str, v: object, loc: Loc) -> float:
    if v is None:
        return 0.0
    if not isinstance(v, Real) or isinstance(v, bool) or not math.isfinite(v):
        raise LayerConfigError(f"{what}: {key} must be a finite number, got {v!r}", loc)
    return float(v)


def like_attrs(kind: str, kwargs: dict, loc: Loc) -> tuple[tuple[str, object], ...]:
    """Node attrs of ``pad(v, like=w, mode=, value=)`` / ``interpolate(v, like=w, mode=, align_corners=)``."""
    if kind == "pad":
        b = bind("pad", (("mode", "constant"), ("value", 0.0)), (), kwargs, loc)
        if b["mode"] not in PAD_MODES:
            raise LayerConfigError(f"pad: mode must be one of {', '.join(map(repr, PAD_MODES))}, got {b['mode']!r}",
                                   loc)
        return (("mode", b["mode"]), ("value", _number("pad", "value", b["value"], loc)))
    b = bind("interpolate", (("mode", "nearest"), ("align_corners", None)), (), kwargs, loc)
    mode, ac = b["mode"], b["align_corners"]
    if mode not in UPSAMPLE_MODES:
        raise LayerConfigError(f"interpolate: mode {mode!r} is not supported; convgraph supports "
                               + ", ".join(map(repr, UPSAMPLE_MODES)), loc)
    if mode not in INTERPOLATING_MODES and ac is not None:
        raise LayerConfigError("interpolate: align_corners can only be set with the interpolating modes linear | "
                               f"bilinear | trilinear, got mode={mode!r}", loc)
    if mode in INTERPOLATING_MODES:
        if ac is not None and not isinstance(ac, bool):
            raise LayerConfigError(f"interpolate: align_corners must be True or False, got {ac!r}", loc)
        ac = bool(ac)
    return (("mode", mode), ("align_corners", ac))


def part_arg(kind: str, arg: object, loc: Loc) -> int | tuple[int, ...]:
    """Validate ``chunks`` of chunk / ``split_size_or_sections`` of split (bounds: ``ir.part_bounds``)."""
    if isinstance(arg, Integral) and not isinstance(arg, bool):
        if arg < 1:
            what = "chunks" if kind == "chunk" else "split_size"
            raise GraphError(f"{kind}: {what} must be a positive int, got {arg!r}", loc)
        return int(arg)
    if kind == "split" and isinstance(arg, (tuple, list)) and arg and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in arg):
        return tuple(int(s) for s in arg)
    what = "chunks must be a positive int" if kind == "chunk" else \
        "split_size_or_sections must be a positive int or a list of them"
    raise GraphError(f"{kind}: {what}, got {arg!r}", loc)
