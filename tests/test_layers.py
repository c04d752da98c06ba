"""The layer catalogue against PyTorch, the definition of every layer.

The differential tests draw random constructor calls (1/2/3-D, ints and tuples, positional and
keyword mixes, invalid values and types, misspelt or doubled arguments) and require
``construct()`` to raise exactly when PyTorch raises: in the constructor, or in ``forward`` on a
comfortably large input (so that only size-independent checks can fire). The only exceptions are
the documented cases where convgraph is deliberately stricter (``_stricter`` below, an
independent restatement of the policy in the layers.py docstring).
"""
from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convgraph.errors import ConvGraphError, LayerConfigError, Loc
from convgraph.front.catalogue import CATALOGUE, construct, param_names
from convgraph.ir import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Conv,
    ConvTranspose,
    Elementwise,
    Pad,
    PixelShuffle,
    Pool,
    Unflatten,
    Upsample,
)

LOC = Loc("m.cg", 7, 5)

# --------------------------------------------------------------------------------------------
# Value pools: each parameter has well-typed values (which may still break a rule, alone or with
# another parameter) and bad ones (wrong type, length or range)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V:
    good: st.SearchStrategy
    bad: st.SearchStrategy


BAD_SCALARS = st.sampled_from([2.0, True, False, "3", None])


def per_axis(nd: int, lo: int, hi: int) -> V:
    """An int or a sequence for a per-axis parameter (a 1-tuple broadcasts in torch)."""
    good_int = st.integers(lo, hi)
    any_int = st.integers(-1, hi)
    good = st.one_of(good_int, st.tuples(*[good_int] * nd), st.lists(good_int, min_size=nd, max_size=nd),
                     st.tuples(good_int))
    bad = st.one_of(any_int, st.lists(any_int, min_size=0, max_size=nd + 1).map(tuple), BAD_SCALARS,
                    st.tuples(*[st.one_of(any_int, BAD_SCALARS)] * nd))
    return V(good, bad)


CHANNELS = V(st.sampled_from([1, 2, 3, 4, 6]), st.sampled_from([0, -1, 2.0, True]))
FLAG = V(st.booleans(), st.sampled_from([0, 1, None, "yes"]))
FLOATISH = V(st.sampled_from([0.0, 0.2, 0.5, 1, 1.0]), st.sampled_from([-0.1, 1.5, "a", True]))


def conv_params(nd: int, transposed: bool) -> dict[str, V]:
    modes = ("zeros", "reflect", "replicate", "circular", "bogus")
    p = {
        "in_channels": CHANNELS,
        "out_channels": CHANNELS,
        "kernel_size": per_axis(nd, 1, 4),
        "stride": per_axis(nd, 1, 3),
        "padding": V(st.one_of(per_axis(nd, 0, 3).good, st.sampled_from(["same", "valid"])),
                     st.one_of(per_axis(nd, 0, 3).bad, st.just("full"))),
        "dilation": per_axis(nd, 1, 3),
        "groups": V(st.sampled_from([1, 1, 2, 3]), st.sampled_from([0, -1, 2.0])),
        "bias": FLAG,
        "padding_mode": V(st.just("zeros"), st.sampled_from(modes[1:])) if transposed
        else V(st.sampled_from(modes[:4]), st.just("bogus")),
        "device": V(st.none(), st.just("cpu")),
    }
    if transposed:
        p["output_padding"] = per_axis(nd, 0, 2)
    return p


def pool_params(nd: int, mode: str) -> dict[str, V]:
    p = {
        "kernel_size": per_axis(nd, 1, 4),
        "stride": V(st.one_of(st.none(), per_axis(nd, 1, 3).good), st.one_of(st.just(()), per_axis(nd, 1, 3).bad)),
        "padding": per_axis(nd, 0, 2),
        "ceil_mode": FLAG,
    }
    if mode == "max":
        p.update(dilation=per_axis(nd, 1, 3), return_indices=V(st.just(False), st.just(True)))
    else:
        p["count_include_pad"] = FLAG
        if nd > 1:
            p["divisor_override"] = V(st.sampled_from([None, 2, 1, -3]), st.sampled_from([0, 2.0, True]))
    return p


def adaptive_params(nd: int, maximum: bool = False) -> dict[str, V]:
    entry = st.one_of(st.integers(1, 4), st.none()) if nd > 1 else st.integers(1, 4)
    bad_entry = st.one_of(entry, st.sampled_from([0, -1, 2.0, None]))
    p = {"output_size": V(st.one_of(st.integers(1, 4), st.tuples(*[entry] * nd)),
                          st.one_of(st.lists(bad_entry, min_size=max(nd - 1, 0), max_size=nd + 1).map(tuple),
                                    st.sampled_from([None, 0, -1, 2.0, True])))}
    if maximum:
        p["return_indices"] = V(st.just(False), st.just(True))
    return p


def pad_params(nd: int, constant: bool) -> dict[str, V]:
    pads = st.integers(-1, 2)
    p = {"padding": V(st.one_of(st.integers(0, 2), st.tuples(*[pads] * (2 * nd)),
                                st.lists(pads, min_size=2 * nd, max_size=2 * nd)),
                      st.one_of(st.lists(pads, min_size=2 * nd - 1, max_size=2 * nd - 1).map(tuple),
                                st.sampled_from([1.0, True, None, "1", (1, 1.0)])))}
    if constant:
        p["value"] = V(st.sampled_from([0.0, 1.5, 2, -3.25, None]), st.sampled_from(["a", True]))
    return p


SCALES = st.sampled_from([0.5, 1.5, 2, 2.0, 3])
BAD_SCALES = st.sampled_from([0, -1.0, True])
UPSAMPLE_PARAMS = {
    "size": V(st.one_of(st.integers(1, 8), st.lists(st.integers(1, 8), min_size=1, max_size=3).map(tuple)),
              st.one_of(st.integers(-1, 0), st.lists(st.integers(0, 8), min_size=0, max_size=4).map(tuple),
                        st.sampled_from([7.0, [5, 6], (5, 6.0)]))),
    "scale_factor": V(st.one_of(SCALES, st.lists(SCALES, min_size=1, max_size=3).map(tuple)),
                      st.one_of(BAD_SCALES, st.lists(st.one_of(SCALES, BAD_SCALES), min_size=0, max_size=4).map(tuple),
                                st.just([2, 2]))),
    "mode": V(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]),
              st.sampled_from(["bicubic", "area", "bogus"])),
    "align_corners": V(st.sampled_from([None, True, False]), st.just(1)),
    "recompute_scale_factor": V(st.sampled_from([None, False]), st.just(True)),
}

BATCHNORM_PARAMS = {
    "num_features": CHANNELS,
    "eps": V(st.sampled_from([1e-5, 0.0, 0.1, 1]), st.sampled_from([-1.0, "a", True])),
    "momentum": V(st.sampled_from([0.1, None, 0.5, 0]), st.sampled_from(["a", True])),
    "affine": FLAG,
    "track_running_stats": FLAG,
    "bias": FLAG,
    "dtype": V(st.none(), st.just("float64")),
}

INSTANCENORM_PARAMS = {**BATCHNORM_PARAMS,
                      "eps": V(st.sampled_from([1e-5, 0.0, 0.1, 1]), st.sampled_from([-1.0, "a", True]))}
GROUPNORM_PARAMS = {
    "num_groups": V(st.sampled_from([1, 2, 3]), st.sampled_from([0, -1, 2.0, True])),
    "num_channels": V(st.sampled_from([6, 6, 4, 3]), st.sampled_from([0, -2, 6.0, True])),
    "eps": V(st.sampled_from([1e-5, 0.0, 0.1]), st.sampled_from([-1.0, "a", True])),
    "affine": FLAG,
    "bias": FLAG,
    "device": V(st.none(), st.just("cpu")),
}
FACTOR = V(st.integers(1, 3), st.sampled_from([0, -1, 2.0, True]))

SIMPLE_PARAMS = {
    "ReLU6": {"inplace": FLAG},
    "Hardswish": {"inplace": FLAG},
    "Hardsigmoid": {"inplace": FLAG},
    "Mish": {"inplace": FLAG},
    "ELU": {"alpha": V(st.sampled_from([1.0, 0.5, 2, -1.0]), st.sampled_from(["a", True])), "inplace": FLAG},
    "PReLU": {"num_parameters": CHANNELS,
              "init": V(st.sampled_from([0.25, 0.0, 1, -0.5]), st.sampled_from(["a", True])),
              "dtype": V(st.none(), st.just("float64"))},
    "Softmax": {"dim": V(st.sampled_from([None, 1, -1, 3, -4, 0]), st.sampled_from([1.0, "a", (1,)]))},
    "LogSoftmax": {"dim": V(st.sampled_from([None, 1, -1, 3, -4, 0]), st.sampled_from([1.0, "a", (1,)]))},
    "GroupNorm": GROUPNORM_PARAMS,
    "Unflatten": {"dim": V(st.sampled_from([1, -2]), st.sampled_from([1.0, "a", None])),
                  "unflattened_size": V(st.sampled_from([(3, 4), [2, 6], (-1, 4), (12,), (-1,), (1, -1, 3)]),
                                        st.sampled_from([(), (0, -1), (-1, -1), (3.0, 4), (-2, 6), 12, None]))},
    "PixelShuffle": {"upscale_factor": FACTOR},
    "PixelUnshuffle": {"downscale_factor": FACTOR},
    "ReLU": {"inplace": FLAG},
    "SiLU": {"inplace": FLAG},
    "LeakyReLU": {"negative_slope": V(st.sampled_from([0.01, 0.2, -1, 2]), st.sampled_from(["a", True])),
                  "inplace": FLAG},
    "GELU": {"approximate": V(st.sampled_from(["none", "tanh"]), st.sampled_from(["bogus", 1]))},
    "Sigmoid": {},
    "Tanh": {},
    "Dropout": {"p": FLOATISH, "inplace": FLAG},
    "Dropout1d": {"p": FLOATISH, "inplace": FLAG},
    "Dropout2d": {"p": FLOATISH, "inplace": FLAG},
    "Dropout3d": {"p": FLOATISH, "inplace": FLAG},
    "Linear": {"in_features": CHANNELS, "out_features": CHANNELS, "bias": FLAG},
}


def params_for(name: str) -> dict[str, V]:
    nd = _nd(name)
    for prefix, make in (("ConvTranspose", lambda: conv_params(nd, True)), ("Conv", lambda: conv_params(nd, False)),
                         ("MaxPool", lambda: pool_params(nd, "max")), ("AvgPool", lambda: pool_params(nd, "avg")),
                         ("AdaptiveMax", lambda: adaptive_params(nd, True)), ("Adaptive", lambda: adaptive_params(nd)),
                         ("ConstantPad", lambda: pad_params(nd, True))):
        if name.startswith(prefix):
            return make()
    if name[:-2].endswith("Pad"):
        return pad_params(nd, False)
    if name.startswith("InstanceNorm"):
        return INSTANCENORM_PARAMS
    if name.startswith("BatchNorm"):
        return BATCHNORM_PARAMS
    return UPSAMPLE_PARAMS if name == "Upsample" else SIMPLE_PARAMS.get(name, {})


def torch_signature(torch, name: str) -> list[inspect.Parameter]:
    return list(inspect.signature(getattr(torch.nn, name).__init__).parameters.values())[1:]


def draw_call(data, torch, name: str) -> tuple[tuple, dict]:
    """Each parameter given or left to its default; up to two of them drawn from the bad values;
    then a positional prefix, the rest by keyword, and sometimes a broken call."""
    pools = params_for(name)
    sig = [p for p in torch_signature(torch, name) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in sig if p.name in pools]
    bad = data.draw(st.sets(st.sampled_from(names), max_size=2) if names else st.just(set()), label="bad")
    given = {}
    for p in sig:
        if p.name in bad:
            given[p.name] = data.draw(pools[p.name].bad, label=p.name)
        elif p.name in pools and (p.default is p.empty or data.draw(st.booleans())):
            given[p.name] = data.draw(pools[p.name].good, label=p.name)
    if name == "Upsample" and data.draw(st.integers(0, 4), label="usual upsample") > 0:
        given = _usual_upsample(data, given)
    positional_ok = [p for p in sig if p.kind == p.POSITIONAL_OR_KEYWORD]
    k = data.draw(st.integers(0, len(positional_ok)), label="n_positional")
    args = [given.pop(p.name) if p.name in given else p.default for p in positional_ok[:k]]
    if name == "Identity":
        args.append(data.draw(st.integers()))
        given["anything"] = 1
    return _corrupt(data, tuple(args), given, positional_ok)


def _usual_upsample(data, given: dict) -> dict:
    """Most Upsample calls give exactly one of size/scale_factor, and align_corners only with an
    interpolating mode; the rest stay as drawn."""
    given = dict(given)
    if ("size" in given) == ("scale_factor" in given):
        given.pop("size", None)
        given.pop("scale_factor", None)
        key = data.draw(st.sampled_from(["size", "scale_factor"]))
        given[key] = data.draw(UPSAMPLE_PARAMS[key].good)
    if given.get("mode", "nearest") not in ("linear", "bilinear", "trilinear"):
        given.pop("align_corners", None)
    return given


def _corrupt(data, args, kwargs, positional_ok):
    # about 1 in 7 calls is broken; hypothesis draws the ends of a range more often than the middle
    how = data.draw(st.integers(0, 20), label="call")
    if how == 9:
        kwargs = {**kwargs, "kernal_size": 3}
    elif how == 10 and args and positional_ok:
        kwargs = {**kwargs, positional_ok[0].name: args[0]}
    elif how == 11:
        args = (*args, *[p.default for p in positional_ok[len(args):]], 1)
    return args, kwargs


# --------------------------------------------------------------------------------------------
# The oracle: does PyTorch raise (constructor, or forward on a comfortably large input)?
# --------------------------------------------------------------------------------------------


def _nd(name: str) -> int:
    return int(name[-2]) if name[-2].isdigit() else 0


def _channels_of(b: dict, key: str) -> int:
    c = b.get(key)
    return c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else 1


def _upsample_rank(b: dict) -> int:
    need = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2, "area": 2}.get(b["mode"])
    if need:
        return need
    seq = b["size"] if isinstance(b["size"], (tuple, list)) else b["scale_factor"]
    return min(max(len(seq), 1), 3) if isinstance(seq, (tuple, list)) else 2


def make_input(torch, name: str, b: dict):
    """An input big enough that no size-dependent check fires for the drawn value ranges."""
    nd = _nd(name)
    if name.startswith(("Conv", "ConvTranspose")):
        return torch.randn(2, _channels_of(b, "in_channels"), *[24 if nd < 3 else 12] * nd)
    if name.startswith(("MaxPool", "AvgPool", "Adaptive")):
        return torch.randn(2, 3, *[24 if nd < 3 else 12] * nd)
    if name.startswith(("BatchNorm", "InstanceNorm")):
        return torch.randn(2, _channels_of(b, "num_features"), *[4] * nd)
    if name[:-2].endswith("Pad"):
        return torch.randn(2, 3, *[6] * nd)
    if name == "GroupNorm":
        return torch.randn(2, _channels_of(b, "num_channels"), 4)
    if name == "PReLU":
        return torch.randn(2, _channels_of(b, "num_parameters"), 4)
    if name == "Unflatten":
        return torch.randn(2, 12, 5)
    if name in ("Softmax", "LogSoftmax", "PixelShuffle", "PixelUnshuffle"):
        return torch.randn(2, 36, 6, 6)
    if name == "Upsample":
        return torch.randn(2, 3, *[6] * _upsample_rank(b))
    if name.startswith("Dropout") and nd:
        return torch.randn(2, 3, *[4] * nd)
    if name == "Linear":
        return torch.randn(2, _channels_of(b, "in_features"))
    return torch.randn(2, 3)


def torch_outcome(torch, name, args, kwargs):
    """(raised, module output, bound arguments with defaults); the last two are None when the
    constructor raised."""
    cls = getattr(torch.nn, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = cls(*args, **kwargs)
        except Exception:  # any constructor error counts as "torch rejects"
            return True, None, None
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        b = dict(bound.arguments)
        b.pop("self")
        try:
            module.eval()
            with torch.no_grad():
                out = module(make_input(torch, name, b))
        except Exception:  # any forward error counts as "torch rejects"
            return True, None, b
    return False, out, b


# --------------------------------------------------------------------------------------------
# Where convgraph is deliberately stricter than PyTorch (see the layers.py docstring)
# --------------------------------------------------------------------------------------------

INT_PARAMS = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "output_padding",
              "groups", "num_features", "in_features", "out_features", "output_size", "size", "start_dim",
              "end_dim", "num_groups", "num_channels", "num_parameters", "upscale_factor", "downscale_factor",
              "dim", "divisor_override"}
FLAG_PARAMS = {"bias", "ceil_mode", "count_include_pad", "return_indices", "affine", "track_running_stats",
               "inplace"}
NUMBER_PARAMS = {"eps", "momentum", "negative_slope", "p", "scale_factor", "alpha", "init", "value"}
COUNT_PARAMS = {"in_channels", "out_channels", "num_features", "in_features", "out_features", "output_size",
                "num_channels", "num_parameters"}


def _is_plain_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _items(v):
    return list(v) if isinstance(v, (tuple, list)) else [v]


def _stricter(name: str, b: dict) -> bool:
    if name == "Identity":
        return False
    if b.get("device") is not None or b.get("dtype") is not None:
        return True
    for key, v in b.items():
        if key in INT_PARAMS and any(isinstance(x, bool) for x in _items(v)):
            return True
        if key in FLAG_PARAMS and not isinstance(v, bool):
            return True
        if key in NUMBER_PARAMS and any(isinstance(x, (bool, str)) for x in _items(v)):
            return True
        if key in COUNT_PARAMS and any(_is_plain_int(x) and x <= 0 for x in _items(v)):
            return True
    if name.startswith("ConvTranspose") and 0 in _items(b["dilation"]):
        return True
    if (name.startswith("Conv") and b["padding"] == "same" and b["padding_mode"] != "zeros" and _nd(name) > 1
            and isinstance(b["dilation"], (tuple, list)) and len(b["dilation"]) == 1):
        return True
    if (name.startswith("Conv") and b["padding_mode"] != "zeros" and not isinstance(b["padding"], str)
            and any(isinstance(x, int) and x < 0 for x in _items(b["padding"]))):
        return True
    return _unsupported(name, b)


def _unsupported(name: str, b: dict) -> bool:
    if name == "Upsample":
        if b["mode"] not in ("nearest", "nearest-exact", "linear", "bilinear", "trilinear"):
            return True
        if b["align_corners"] is not None and not isinstance(b["align_corners"], bool):
            return True
        return bool(b["recompute_scale_factor"]) or isinstance(b["scale_factor"], list)
    if name.startswith(("BatchNorm", "InstanceNorm")):
        unread = not b["affine"] and not b["track_running_stats"]  # torch never reads num_features
        nf = b["num_features"]
        if name.startswith("InstanceNorm") and _is_plain_number(b["eps"]) and b["eps"] < 0:
            return True  # torch computes NaN
        return (bool(b["affine"]) and not b["bias"]) or (unread and not (_is_plain_int(nf) and nf > 0))
    if name == "GroupNorm":  # without affine, torch reads num_channels only for `num_channels % num_groups`
        unread = not b["affine"] and not all(_is_plain_int(b[k]) and b[k] > 0 for k in ("num_groups", "num_channels"))
        return (bool(b["affine"]) and not b["bias"]) or (_is_plain_number(b["eps"]) and b["eps"] < 0) or unread
    return bool(b.get("return_indices"))


def _is_plain_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def convgraph_raises(name, args, kwargs):
    try:
        spec = construct(name, args, kwargs, LOC)
    except ConvGraphError as e:
        assert isinstance(e, LayerConfigError) and e.loc == LOC
        assert e.message.startswith(f"{name}: ") and "\n" not in e.message
        return True, None
    return False, spec


# --------------------------------------------------------------------------------------------
# Sizes from the canonical spec (formulas from conv-semantics.md) against torch's output
# --------------------------------------------------------------------------------------------


def expected_spatial(spec, sizes):
    if isinstance(spec, Conv):
        return [(i + pb + pe - d * (k - 1) - 1) // s + 1
                for i, (pb, pe), k, s, d in zip(sizes, spec.padding, spec.kernel_size, spec.stride, spec.dilation)]
    if isinstance(spec, ConvTranspose):
        return [(i - 1) * s - pb - pe + d * (k - 1) + op + 1
                for i, k, s, (pb, pe), op, d in zip(sizes, spec.kernel_size, spec.stride, spec.padding,
                                                    spec.output_padding, spec.dilation)]
    if isinstance(spec, Pool):
        return [_pool_out(i, k, s, p, d, spec.ceil_mode)
                for i, k, s, p, d in zip(sizes, spec.kernel_size, spec.stride, spec.padding, spec.dilation)]
    if isinstance(spec, PixelShuffle):
        r = spec.factor
        return [i * r for i in sizes] if spec.upscale else [i // r for i in sizes]
    if isinstance(spec, Pad):
        shift = [b + e for b, e in spec.padding]
        return [i + d for i, d in zip(sizes, [0] * (len(sizes) - len(shift)) + shift[-len(sizes):])]
    if isinstance(spec, (AdaptiveAvgPool, AdaptiveMaxPool)):
        return [i if o is None else o for i, o in zip(sizes, spec.output_size)]
    if isinstance(spec, Upsample):
        if spec.size is not None:
            return list(spec.sizes_for(len(sizes)))
        return [math.floor(i * sf) for i, sf in zip(sizes, spec.scales_for(len(sizes)))]
    return list(sizes)


def _pool_out(i, k, s, pads, d, ceil_mode):
    pb, pe = pads
    num = i + pb + pe - d * (k - 1) - 1
    if not ceil_mode:
        return num // s + 1
    o = -(-num // s) + 1
    return o - 1 if (o - 1) * s >= i + pb else o


def check_against_torch(torch, data, name):
    args, kwargs = draw_call(data, torch, name)
    compare_with_torch(torch, name, args, kwargs)


def compare_with_torch(torch, name, args, kwargs):
    t_raised, out, bound = torch_outcome(torch, name, args, kwargs)
    expect_raise = t_raised or (bound is not None and _stricter(name, bound))
    ours, spec = convgraph_raises(name, args, kwargs)
    assert ours == expect_raise, (
        f"{name}(*{args!r}, **{kwargs!r}): torch {'raises' if t_raised else 'accepts'}, "
        f"convgraph {'raises' if ours else 'accepts: ' + repr(spec)}")
    if not ours and out is not None and out.dim() >= 3 and not isinstance(spec, (Elementwise, Unflatten)):
        x_sizes = list(make_input(torch, name, bound).shape[2:])
        assert list(out.shape[2:]) == expected_spatial(spec, x_sizes), spec


SPATIAL = sorted(n for n in CATALOGUE if n[-2:-1].isdigit() and not n.startswith(("Dropout", "BatchNorm")))
OTHER = sorted(set(CATALOGUE) - set(SPATIAL))


@pytest.mark.slow
@settings(max_examples=2500)
@given(data=st.data())
def test_spatial_layers_raise_exactly_when_torch_does(torch, data):
    check_against_torch(torch, data, data.draw(st.sampled_from(SPATIAL), label="layer"))


@pytest.mark.slow
@settings(max_examples=600)
@given(data=st.data())
def test_upsample_raises_exactly_when_torch_does(torch, data):
    check_against_torch(torch, data, "Upsample")


@pytest.mark.slow
@settings(max_examples=900)
@given(data=st.data())
def test_other_layers_raise_exactly_when_torch_does(torch, data):
    check_against_torch(torch, data, data.draw(st.sampled_from([n for n in OTHER if n not in ("Upsample", "Flatten")]),
                                               label="layer"))


@settings(max_examples=200)
@given(start=st.integers(-5, 4), end=st.integers(-5, 4))
def test_flatten_same_sign_order_matches_torch(torch, start, end):
    # mixed signs depend on the rank, which the shape stage checks; same signs never do
    if (start < 0) != (end < 0):
        return
    x = torch.zeros(1, 2, 3, 4, 5)
    try:
        torch.nn.Flatten(start, end)(x)
        t_raised = False
    except RuntimeError:
        t_raised = True
    assert convgraph_raises("Flatten", (start, end), {})[0] == t_raised


def _conv_padding_grid():
    for nd in (1, 2, 3):
        full = (1, 2, 3)[:nd]
        for kernel in (2, 3, tuple(k + 1 for k in full)):
            for padding in ("same", "valid", 1, (1,), tuple(p - 1 for p in full)):
                for dilation in (1, 2, (2,), full):
                    for mode in ("zeros", "reflect", "replicate", "circular"):
                        yield f"Conv{nd}d", (1, 1, kernel), {"padding": padding, "dilation": dilation,
                                                             "padding_mode": mode}


def test_conv_padding_forms_match_torch(torch):
    # every spelling of padding and dilation with every padding_mode: where the padding lands
    # depends on F.pad's and the constructor's handling of short tuples (see _conv_padding)
    for name, args, kwargs in _conv_padding_grid():
        compare_with_torch(torch, name, args, kwargs)


# --------------------------------------------------------------------------------------------
# The catalogue itself
# --------------------------------------------------------------------------------------------


def test_catalogue_matches_design():
    want = {f"{base}{nd}d" for base in ("Conv", "ConvTranspose", "MaxPool", "AvgPool", "AdaptiveAvgPool",
                                        "BatchNorm", "Dropout") for nd in (1, 2, 3)}
    want |= {f"{base}{nd}d" for base in ("AdaptiveMaxPool", "InstanceNorm", "ZeroPad", "ConstantPad", "ReflectionPad",
                                         "ReplicationPad", "CircularPad") for nd in (1, 2, 3)}
    want |= {"Upsample", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "Identity", "Dropout",
             "Flatten", "Linear", "PixelShuffle", "PixelUnshuffle", "GroupNorm", "ReLU6", "PReLU", "ELU", "Mish",
             "Hardswish", "Hardsigmoid", "Softmax", "LogSoftmax", "Unflatten"}
    assert set(CATALOGUE) == want


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_parameter_order_and_defaults_match_torch(torch, name):
    theirs = torch_signature(torch, name)
    positional = [p for p in theirs if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert param_names(name) == tuple(p.name for p in positional)
    defaults = dict(CATALOGUE[name].params + CATALOGUE[name].kwonly)
    for p in theirs:
        if p.default is not p.empty:
            assert defaults[p.name] == p.default, p.name


# --------------------------------------------------------------------------------------------
# Canonical forms
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, d, want", [(4, 1, (1, 2)), (4, 2, (3, 3)), (3, 2, (2, 2)), (1, 1, (0, 0)), (2, 3, (1, 2))])
def test_same_padding_puts_the_odd_element_at_the_end(k, d, want):
    spec = construct("Conv1d", (1, 1, k), {"padding": "same", "dilation": d})
    assert spec.padding == (want,)


def test_same_padding_3d_matches_torch_reversed_pads(torch):
    kw = {"kernel_size": (2, 3, 4), "dilation": (1, 2, 1), "padding": "same"}
    spec = construct("Conv3d", (1, 1), kw)
    rev = torch.nn.Conv3d(1, 1, **kw)._reversed_padding_repeated_twice
    assert [x for pair in reversed(spec.padding) for x in pair] == list(rev) == [1, 2, 2, 2, 0, 1]


def test_per_axis_values_become_tuples():
    spec = construct("Conv2d", (3, 8, 3), {"stride": (2, 1), "padding": [1, 0], "dilation": (2,)})
    assert (spec.kernel_size, spec.stride, spec.padding, spec.dilation) == ((3, 3), (2, 1), ((1, 1), (0, 0)), (2, 2))
    assert construct("Conv2d", (3, 8, 3), {"padding": "valid"}).padding == ((0, 0), (0, 0))


def test_conv_transpose_positional_order_differs_from_conv():
    # in, out, kernel_size, stride, padding, output_padding, groups, bias, dilation
    spec = construct("ConvTranspose2d", (4, 6, 3, 2, 1, 1, 2, False, 3))
    assert (spec.stride, spec.padding, spec.output_padding, spec.groups, spec.bias, spec.dilation) == (
        (2, 2), ((1, 1), (1, 1)), (1, 1), 2, False, (3, 3))
    conv = construct("Conv2d", (4, 6, 3, 2, 1, 3, 2, False))
    assert (conv.dilation, conv.groups, conv.bias) == ((3, 3), 2, False)


def test_pool_stride_defaults_to_kernel_size():
    assert construct("MaxPool2d", ((2, 3),)).stride == (2, 3)
    assert construct("AvgPool1d", (3,), {"stride": None}).stride == (3,)
    assert construct("MaxPool3d", (2,), {"stride": ()}).stride == (2, 2, 2)  # torch: empty = default
    avg = construct("AvgPool2d", (3, 1, 1))
    assert avg.dilation == (1, 1) and avg.mode == "avg" and avg.count_include_pad is True


def test_upsample_keeps_scalar_or_tuple():
    assert construct("Upsample", (), {"scale_factor": 2}).scale_factor == 2.0
    assert construct("Upsample", (None, (2, 3))).scale_factor == (2.0, 3.0)
    assert construct("Upsample", ([5, 7],)).size == (5, 7)
    up = construct("Upsample", (), {"size": 5, "mode": "bilinear"})
    assert (up.size, up.align_corners) == (5, False)
    assert construct("Upsample", (4, 0)).scale_factor is None  # torch: `float(sf) if sf else None`


def test_elementwise_params():
    assert construct("LeakyReLU", (0.2, True)).params == (("negative_slope", 0.2),)
    assert construct("Dropout2d", (1,)).params == (("p", 1.0),)
    assert construct("GELU", ("tanh",)).param("approximate") == "tanh"
    assert construct("Identity", (1, 2), {"x": 3}).params == ()
    assert construct("ReLU", (), {"inplace": True}).params == ()


# --------------------------------------------------------------------------------------------
# Messages: the layer, the rule and the values
# --------------------------------------------------------------------------------------------

MESSAGES = [
    ("Conv2d", (3, 8, 3), {"groups": 2}, "Conv2d: in_channels (3) must be divisible by groups (2)"),
    ("Conv2d", (4, 6, 3), {"groups": 4}, "Conv2d: out_channels (6) must be divisible by groups (4)"),
    ("Conv2d", (4, 6, 3), {"groups": 0}, "Conv2d: groups (0) must be a positive integer"),
    ("ConvTranspose2d", (3, 3, 3), {"stride": (2, 1), "output_padding": (2, 1)},
     "ConvTranspose2d: output_padding (2, 1) must be smaller than either stride (2, 1) or dilation (1, 1) "
     "on every axis"),
    ("ConvTranspose2d", (3, 3, 3), {"output_padding": -1},
     "ConvTranspose2d: output_padding must be non-negative, got -1"),
    ("ConvTranspose1d", (3, 3, 3), {"padding": "same"},
     "ConvTranspose1d: string padding ('same') is not supported for transposed convolutions; give the padding as ints"),
    ("ConvTranspose2d", (3, 3, 3), {"padding_mode": "reflect"},
     "ConvTranspose2d: only padding_mode='zeros' is supported for transposed convolutions, got 'reflect'"),
    ("Conv2d", (3, 8, 3), {"stride": 2, "padding": "same"},
     "Conv2d: padding='same' is not supported for strided convolutions (stride (2, 2))"),
    ("Conv2d", (3, 8, 3), {"padding": "same", "padding_mode": "reflect", "dilation": (2,)},
     "Conv2d: padding='same' with padding_mode='reflect' needs dilation as an int or a tuple of 2 ints, got (2,)"),
    ("Conv2d", (3, 8, 3), {"padding": "full"}, "Conv2d: invalid padding string 'full', should be 'same' or 'valid'"),
    ("Conv2d", (3, 8, 3), {"padding": -1}, "Conv2d: padding must be non-negative, got -1"),
    ("Conv2d", (3, 8, 3), {"padding_mode": "symmetric"},
     "Conv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got 'symmetric'"),
    ("Conv2d", (3, 8, 2.5), {}, "Conv2d: kernel_size must be an int or a tuple of 2 ints, got 2.5"),
    ("Conv2d", (3, 8, (3, 3, 3)), {}, "Conv2d: kernel_size must be an int or a tuple of 2 ints, got (3, 3, 3)"),
    ("Conv2d", (3, 8, (3, 0)), {}, "Conv2d: kernel_size must be positive, got (3, 0)"),
    ("Conv1d", (3, 8, 3), {"stride": 0}, "Conv1d: stride must be positive, got 0"),
    ("Conv1d", (3, 8, 3), {"dilation": 0}, "Conv1d: dilation must be positive, got 0"),
    ("Conv2d", (True, 8, 3), {}, "Conv2d: in_channels must be an int, got True (a bool)"),
    ("Conv2d", (3, 8, 3), {"bias": 1}, "Conv2d: bias must be True or False, got 1"),
    ("Conv2d", (3, 8), {}, "Conv2d: missing required argument 'kernel_size'"),
    ("Conv2d", (3, 8, 3), {"kernal_size": 3},
     "Conv2d: unexpected keyword argument 'kernal_size' (did you mean 'kernel_size'?)"),
    ("Conv2d", (3, 8, 3), {"in_channels": 3}, "Conv2d: got multiple values for argument 'in_channels'"),
    ("Conv2d", (3, 8, 3, 1, 0, 1, 1, True, "zeros", None, None, 1), {},
     "Conv2d: takes at most 11 positional arguments, got 12"),
    ("Conv2d", (3, 8, 3), {"device": "cpu"},
     "Conv2d: device= is not supported by convgraph (layers have no device or dtype)"),
    ("MaxPool2d", (3,), {"padding": 2},
     "MaxPool2d: padding (2, 2) must be at most half of kernel_size (3, 3) on every axis"),
    ("MaxPool1d", (3,), {"padding": 2, "dilation": 2},
     "MaxPool1d: padding (2) must be at most half of kernel_size (3) on every axis"),
    ("MaxPool2d", (2,), {"stride": 0}, "MaxPool2d: stride must be positive, got 0"),
    ("MaxPool2d", (2,), {"return_indices": True}, "MaxPool2d: return_indices=True is not supported by convgraph"),
    ("AvgPool2d", (2,), {"divisor_override": 0}, "AvgPool2d: divisor_override must not be zero"),
    ("AvgPool1d", (2,), {"divisor_override": 3}, "AvgPool1d: unexpected keyword argument 'divisor_override'"),
    ("AdaptiveAvgPool1d", ((None,),), {},
     "AdaptiveAvgPool1d: output_size must be an int or a tuple of 1 int, got (None,)"),
    ("Upsample", (), {}, "Upsample: either size or scale_factor must be given"),
    ("Upsample", (4, 2), {}, "Upsample: give exactly one of size and scale_factor"),
    ("Upsample", (), {"scale_factor": 2, "mode": "bicubic"},
     "Upsample: mode 'bicubic' is not supported; convgraph supports 'nearest', 'nearest-exact', 'linear', "
     "'bilinear', 'trilinear'"),
    ("Upsample", (), {"scale_factor": 2, "align_corners": False},
     "Upsample: align_corners can only be set with the interpolating modes linear | bilinear | trilinear, "
     "got mode='nearest'"),
    ("Upsample", (), {"scale_factor": 2, "recompute_scale_factor": True},
     "Upsample: recompute_scale_factor=True is not supported by convgraph"),
    ("Upsample", (), {"scale_factor": -2.0}, "Upsample: scale_factor must be positive, got -2.0"),
    ("Upsample", (), {"size": (4, 5, 6), "mode": "bilinear"},
     "Upsample: mode 'bilinear' works on 2 spatial dim(s), but size has 3 entries"),
    ("Dropout", (1.5,), {}, "Dropout: dropout probability has to be between 0 and 1, got 1.5"),
    ("BatchNorm2d", (3,), {"eps": -1}, "BatchNorm2d: eps must be non-negative, got -1"),
    ("BatchNorm2d", (3,), {"bias": False}, "BatchNorm2d: bias=False is not supported by convgraph"),
    ("GELU", ("fast",), {}, "GELU: approximate must be one of 'none', 'tanh', got 'fast'"),
    ("Flatten", (2, 1), {}, "Flatten: start_dim (2) cannot come after end_dim (1)"),
    ("Linear", (0, 3), {}, "Linear: in_features must be positive, got 0"),
    ("Sigmoid", (1,), {}, "Sigmoid: takes at most 0 positional arguments, got 1"),
    ("Conv2D", (3, 8, 3), {}, "unknown layer 'Conv2D' (did you mean 'Conv2d'?)"),
]


@pytest.mark.parametrize("name, args, kwargs, message", MESSAGES, ids=[m[3][:50] for m in MESSAGES])
def test_error_messages(name, args, kwargs, message):
    with pytest.raises(LayerConfigError) as info:
        construct(name, args, kwargs, LOC)
    assert info.value.message == message
    assert str(info.value) == f"m.cg:7:5: error: {message}"


def test_specs_are_frozen_and_hashable():
    a = construct("Conv2d", (3, 8, 3), {"padding": 1})
    b = construct("Conv2d", [3, 8], {"kernel_size": [3, 3], "padding": (1, 1)})
    assert a == b and hash(a) == hash(b)
