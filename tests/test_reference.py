"""The numpy reference against PyTorch (the semantic oracle), in float64 on both sides.

Every configuration is one torch accepts; sizes, strides and pads are drawn per axis so that a
swapped axis cannot pass by luck."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convgraph import ir
from convgraph.errors import Loc
from convgraph.validate import reference
from convgraph.validate.reference import ELEMENTWISE_IMPLS, LAYER_IMPLS, forward_layer, run

RTOL = ATOL = 1e-10
MODES = ("zeros", "reflect", "replicate", "circular")


def close(actual: np.ndarray, expected) -> None:
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def fn(torch, name: str, nd: int):
    """torch.nn.functional.<name><nd>d."""
    return getattr(torch.nn.functional, f"{name}{nd}d")


def symmetric(pads: ir.Pads) -> tuple[int, ...]:
    """torch's one padding per axis from (begin, end) pairs that must be equal."""
    assert all(b == e for b, e in pads), pads
    return tuple(b for b, _ in pads)


def torch_pad_list(pads: ir.Pads) -> list[int]:
    """(begin, end) per axis -> F.pad's order: pairs from the last axis backwards."""
    return [p for pair in reversed(pads) for p in pair]


# --- Conv -----------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(MODES))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = g * draw(st.integers(1, 3)), g * draw(st.integers(1, 3))
    k, s, d, pads, size = [], [], [], [], []
    for _ in range(nd):
        k.append(draw(st.integers(1, 3)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)))
        pb, pe = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        pads.append((pb, pe))
        low = {"reflect": max(pb, pe) + 1, "circular": max(pb, pe, 1)}.get(mode, 1)
        low = max(low, d[-1] * (k[-1] - 1) + 1 - pb - pe)
        size.append(draw(st.integers(low, low + (5 if nd < 3 else 2))))
    spec = ir.Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=cin, out_channels=cout, kernel_size=tuple(k),
                   stride=tuple(s), padding=tuple(pads), dilation=tuple(d), groups=g, bias=draw(st.booleans()),
                   padding_mode=mode)
    return spec, (draw(st.integers(1, 2)), cin, *size), draw(st.integers(0, 2**31))


def torch_conv(torch, spec: ir.Conv, x: np.ndarray, w: np.ndarray, b: np.ndarray | None):
    """The module when pads are symmetric (it pads with padding_mode itself), else F.pad + F.conv."""
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    bt = None if b is None else torch.from_numpy(b)
    if all(pb == pe for pb, pe in spec.padding):
        m = getattr(torch.nn, spec.type_name)(
            spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride,
            tuple(pb for pb, _ in spec.padding), spec.dilation, spec.groups, b is not None,
            spec.padding_mode, dtype=torch.float64)
        with torch.no_grad():
            m.weight.copy_(wt)
            if bt is not None:
                m.bias.copy_(bt)
            return m(xt)
    mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
    xp = torch.nn.functional.pad(xt, torch_pad_list(spec.padding), mode=mode)
    return fn(torch, "conv", spec.nd)(xp, wt, bt, spec.stride, 0, spec.dilation, spec.groups)


@settings(max_examples=250)
@given(conv_cases())
@example((ir.Conv(type_name="Conv2d", nd=2, in_channels=4, out_channels=4, kernel_size=(3, 2), stride=(1, 2),
                  padding=((1, 1), (0, 0)), dilation=(1, 1), groups=4), (2, 4, 7, 10), 1))
@example((ir.Conv(type_name="Conv2d", nd=2, in_channels=3, out_channels=6, kernel_size=(3, 3), stride=(2, 1),
                  padding=((1, 2), (2, 1)), dilation=(2, 1), groups=3, bias=True, padding_mode="reflect"),
          (1, 3, 9, 6), 2))
def test_conv_matches_torch(torch, case):
    spec, shape, seed = case
    x = randn(seed, *shape)
    w = randn(seed + 1, *spec.weight_shape)
    b = randn(seed + 2, spec.out_channels) if spec.bias else None
    params = {"weight": w} if b is None else {"weight": w, "bias": b}
    close(forward_layer(spec, x, params), torch_conv(torch, spec, x, w, b))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_every_padding_mode_in_every_rank(torch, mode, nd):
    sizes, pads = (7, 5, 6)[:nd], ((2, 1), (1, 2), (0, 1))[:nd]
    spec = ir.Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=2, out_channels=3, kernel_size=(3, 2, 3)[:nd],
                   stride=(2, 1, 2)[:nd], padding=pads, dilation=(1, 2, 1)[:nd], padding_mode=mode)
    x, w, b = randn(0, 2, 2, *sizes), randn(1, *spec.weight_shape), randn(2, 3)
    close(forward_layer(spec, x, {"weight": w, "bias": b}), torch_conv(torch, spec, x, w, b))


@pytest.mark.parametrize("min_columns", [1, 13, 30, 10**6])
def test_conv_in_blocks_is_the_same(torch, monkeypatch, min_columns):
    """Blocks of 1 output row, of 3 rows and 1 (a shorter last block), of 2 whole images and 1, and
    of all 3 images; the first axis is strided, so a block's input starts at row ``r*s``."""
    monkeypatch.setattr(reference, "COLUMN_BUDGET", 1)
    monkeypatch.setattr(reference, "MIN_COLUMNS", min_columns)
    spec = ir.Conv(type_name="Conv3d", nd=3, in_channels=2, out_channels=4, kernel_size=(3, 2, 2), stride=(2, 2, 1),
                   padding=((1, 0), (0, 1), (1, 1)), dilation=(1, 1, 2), groups=2)
    x, w, b = randn(8, 3, 2, 9, 4, 3), randn(9, 4, 1, 3, 2, 2), randn(10, 4)
    blocks = list(reference._blocks(3, (4, 2, 3), 2 * 12))
    assert len(blocks) == {1: 12, 13: 6, 30: 2, 10**6: 1}[min_columns]
    close(forward_layer(spec, x, {"weight": w, "bias": b}), torch_conv(torch, spec, x, w, b))


@settings(max_examples=100)
@given(conv_cases(), st.integers(1, 40))
def test_conv_in_small_blocks_matches_torch(torch, case, min_columns):
    """Every conv case again, in blocks of a few output rows or images instead of one block."""
    spec, shape, seed = case
    x, w = randn(seed, *shape), randn(seed + 1, *spec.weight_shape)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reference, "COLUMN_BUDGET", 1)
        mp.setattr(reference, "MIN_COLUMNS", min_columns)
        close(forward_layer(spec, x, {"weight": w}), torch_conv(torch, spec, x, w, None))


def test_depthwise_conv_with_channel_multiplier(torch):
    spec = ir.Conv(type_name="Conv2d", nd=2, in_channels=3, out_channels=6, kernel_size=(3, 5), stride=(1, 2),
                   padding=((1, 1), (2, 2)), dilation=(2, 1), groups=3)
    x, w, b = randn(3, 2, 3, 8, 11), randn(4, 6, 1, 3, 5), randn(5, 6)
    close(forward_layer(spec, x, {"weight": w, "bias": b}), torch_conv(torch, spec, x, w, b))


# --- ConvTranspose --------------------------------------------------------------------------------


@st.composite
def conv_transpose_cases(draw):
    nd = draw(st.integers(1, 3))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = g * draw(st.integers(1, 3)), g * draw(st.integers(1, 3))
    k, s, d, p, op, size = [], [], [], [], [], []
    for _ in range(nd):
        k.append(draw(st.integers(1, 4)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 3)))
        op.append(draw(st.integers(0, max(s[-1], d[-1]) - 1)))
        size.append(draw(st.integers(1, 5 if nd < 3 else 3)))
        full = (size[-1] - 1) * s[-1] + d[-1] * (k[-1] - 1) + op[-1] + 1
        p.append(draw(st.integers(0, min(3, (full - 1) // 2))))  # output size >= 1
    spec = ir.ConvTranspose(type_name=f"ConvTranspose{nd}d", nd=nd, in_channels=cin, out_channels=cout,
                            kernel_size=tuple(k), stride=tuple(s), padding=tuple((q, q) for q in p),
                            output_padding=tuple(op), dilation=tuple(d), groups=g, bias=draw(st.booleans()))
    return spec, (draw(st.integers(1, 2)), cin, *size), draw(st.integers(0, 2**31))


@settings(max_examples=250)
@given(conv_transpose_cases())
@example((ir.ConvTranspose(type_name="ConvTranspose2d", nd=2, in_channels=4, out_channels=6, kernel_size=(3, 2),
                           stride=(2, 3), padding=((1, 1), (0, 0)), output_padding=(1, 2), dilation=(1, 1), groups=2),
          (2, 4, 4, 5), 0))
@example((ir.ConvTranspose(type_name="ConvTranspose1d", nd=1, in_channels=2, out_channels=2, kernel_size=(3,),
                           stride=(1,), padding=((0, 0),), output_padding=(1,), dilation=(2,)), (1, 2, 6), 1))
def test_conv_transpose_matches_torch(torch, case):
    spec, shape, seed = case
    x, w = randn(seed, *shape), randn(seed + 1, *spec.weight_shape)
    b = randn(seed + 2, spec.out_channels) if spec.bias else None
    params = {"weight": w} if b is None else {"weight": w, "bias": b}
    expected = fn(torch, "conv_transpose", spec.nd)(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
        spec.stride, symmetric(spec.padding), spec.output_padding, spec.groups, spec.dilation)
    close(forward_layer(spec, x, params), expected)


# --- pooling --------------------------------------------------------------------------------------


def pool_len(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    num = i + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil_mode else num // s) + 1
    return o - 1 if ceil_mode and (o - 1) * s >= i + p else o


@st.composite
def pool_cases(draw):
    nd, mode = draw(st.integers(1, 3)), draw(st.sampled_from(["max", "avg"]))
    ceil_mode, cip = draw(st.booleans()), draw(st.booleans())
    k, s, d, p, size = [], [], [], [], []
    for _ in range(nd):
        k.append(draw(st.integers(1, 4)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)) if mode == "max" else 1)
        p.append(draw(st.integers(0, k[-1] // 2)))  # torch 2.13: p <= k//2 (undilated k)
        low = k[-1] if mode == "avg" and nd == 3 else 1  # avg_pool3d needs i >= k
        size.append(draw(st.integers(low, low + (6 if nd < 3 else 3))))
        if pool_len(size[-1], k[-1], s[-1], p[-1], d[-1], ceil_mode) < 1:
            size[-1] = max(size[-1], d[-1] * (k[-1] - 1) + 1)
    spec = ir.Pool(type_name=f"{mode.capitalize()}Pool{nd}d", nd=nd, mode=mode, kernel_size=tuple(k), stride=tuple(s),
                   padding=tuple((q, q) for q in p), dilation=tuple(d), ceil_mode=ceil_mode, count_include_pad=cip)
    return spec, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size), draw(st.integers(0, 2**31))


def torch_pool(torch, spec: ir.Pool, x: np.ndarray):
    xt = torch.from_numpy(x)
    if spec.mode == "max":
        return fn(torch, "max_pool", spec.nd)(xt, spec.kernel_size, spec.stride, symmetric(spec.padding),
                                              spec.dilation, spec.ceil_mode)
    return fn(torch, "avg_pool", spec.nd)(xt, spec.kernel_size, spec.stride, symmetric(spec.padding),
                                          spec.ceil_mode, spec.count_include_pad)


@settings(max_examples=250)
@given(pool_cases())
@example((ir.Pool(type_name="MaxPool1d", nd=1, mode="max", kernel_size=(2,), stride=(3,), padding=((1, 1),),
                  dilation=(1,), ceil_mode=True), (1, 1, 4), 0))
@example((ir.Pool(type_name="AvgPool2d", nd=2, mode="avg", kernel_size=(3, 2), stride=(2, 3), padding=((1, 1), (1, 1)),
                  dilation=(1, 1), ceil_mode=True, count_include_pad=True), (2, 2, 6, 7), 0))
@example((ir.Pool(type_name="AvgPool2d", nd=2, mode="avg", kernel_size=(3, 2), stride=(2, 3), padding=((1, 1), (1, 1)),
                  dilation=(1, 1), ceil_mode=True, count_include_pad=False), (2, 2, 5, 9), 0))
def test_pool_matches_torch(torch, case):
    spec, shape, seed = case
    x = randn(seed, *shape)
    close(forward_layer(spec, x, {}), torch_pool(torch, spec, x))


def test_ceil_mode_divisors_from_the_semantics_table():
    """conv-semantics §3.1: x=[1..6], k=3, s=2, p=1, ceil -> cip [1,3,5,3], no cip [1.5,3,5,6]."""
    x = np.arange(1.0, 7.0).reshape(1, 1, 6)
    for cip, expected in ((True, [1, 3, 5, 3]), (False, [1.5, 3, 5, 6])):
        spec = ir.Pool(type_name="AvgPool1d", nd=1, mode="avg", kernel_size=(3,), stride=(2,), padding=((1, 1),),
                       dilation=(1,), ceil_mode=True, count_include_pad=cip)
        np.testing.assert_allclose(forward_layer(spec, x, {})[0, 0], expected)


def test_max_pool_window_of_only_padding_is_minus_inf(torch):
    spec = ir.Pool(type_name="MaxPool2d", nd=2, mode="max", kernel_size=(2, 1), stride=(1, 1), padding=((1, 1), (0, 0)),
                   dilation=(2, 1))
    x = randn(0, 1, 2, 1, 3)
    y = forward_layer(spec, x, {})
    assert y.shape == (1, 2, 1, 3) and np.isneginf(y).all()  # one window: padded positions 0 and 2
    close(y, torch_pool(torch, spec, x))


@given(st.integers(1, 3), st.data())
@example(2, None)
def test_adaptive_avg_pool_matches_torch(torch, nd, data):
    if data is None:  # o > i on one axis, None on the other, i != o everywhere
        size, out, seed = (3, 11), (7, None), 0
    else:
        size = tuple(data.draw(st.integers(1, 9 if nd < 3 else 5)) for _ in range(nd))
        o = st.integers(1, 12 if nd < 3 else 6)
        out = tuple(data.draw(o | st.none() if nd > 1 else o) for _ in range(nd))  # torch: no None in 1-D
        seed = data.draw(st.integers(0, 2**31))
    nd = len(size)
    x = randn(seed, 2, 3, *size)
    spec = ir.AdaptiveAvgPool(type_name=f"AdaptiveAvgPool{nd}d", nd=nd, output_size=out)
    close(forward_layer(spec, x, {}), fn(torch, "adaptive_avg_pool", nd)(torch.from_numpy(x), out))


# --- Upsample -------------------------------------------------------------------------------------

LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
SCALES = [0.29, 0.5, 0.7, 1 / 3, 1.0, 1.05, 1.5, 2.0, 2.05, 2.5, 3.0, 1.75]


@st.composite
def upsample_cases(draw):
    nd = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", LINEAR[nd]]))
    align = draw(st.sampled_from([None, False, True])) if mode == LINEAR[nd] else None
    size = tuple(draw(st.integers(1, 12 if nd < 3 else 5)) for _ in range(nd))
    if draw(st.booleans()):  # size=
        out = tuple(draw(st.integers(1, 2 * i + 3)) for i in size)
        spec = ir.Upsample(type_name="Upsample", size=out if nd > 1 or draw(st.booleans()) else out[0],
                           scale_factor=None, mode=mode, align_corners=align)
    else:
        sf = tuple(draw(st.sampled_from(SCALES) | st.floats(0.3, 3.5)) for _ in range(nd))
        sf = sf if draw(st.booleans()) else (sf[0],) * nd
        if any(math.floor(i * f) < 1 for i, f in zip(size, sf)):
            size = tuple(max(i, math.ceil(1 / f) + 1) for i, f in zip(size, sf))
        spec = ir.Upsample(type_name="Upsample", size=None, scale_factor=sf if len(set(sf)) > 1 else sf[0], mode=mode,
                           align_corners=align)
    return spec, (draw(st.integers(1, 2)), 2, *size), draw(st.integers(0, 2**31))


def torch_upsample(torch, spec: ir.Upsample, x: np.ndarray):
    m = torch.nn.Upsample(spec.size, spec.scale_factor, spec.mode, spec.align_corners)
    return m(torch.from_numpy(x))


@settings(max_examples=250)
@given(upsample_cases())
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=1.05,
                      mode="nearest"), (1, 1, 10, 13), 0))  # o == i shortcut
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=2.05,
                      mode="nearest"), (1, 1, 10, 3), 0))  # o == 2i shortcut
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=1.05,
                      mode="nearest"), (1, 1, 10, 3, 2), 0))  # not in 3-D
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=2.05, mode="nearest"), (1, 1, 9), 0))  # nor in 1-D
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=1.02, mode="nearest-exact"), (1, 1, 30, 4), 0))
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=1.02,
                      mode="linear"), (1, 1, 30), 0))  # linear copies when o == i
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=1.05, mode="bilinear",
                      align_corners=False), (1, 1, 10, 13), 0))
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=(0.29, 1.5), mode="bilinear",
                      align_corners=False), (1, 2, 100, 5), 0))
@example((ir.Upsample(type_name="Upsample", size=None, scale_factor=(0.7, 2.5),
                      mode="nearest-exact"), (1, 2, 10, 3), 0))
@example((ir.Upsample(type_name="Upsample", size=(1, 7), scale_factor=None, mode="bilinear",
                      align_corners=True), (1, 2, 4, 5), 0))
def test_upsample_matches_torch(torch, case):
    spec, shape, seed = case
    x = randn(seed, *shape)
    close(forward_layer(spec, x, {}), torch_upsample(torch, spec, x))


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("by", ["scale", "size"])
def test_every_upsample_mode_by_scale_and_size(torch, mode, nd, by):
    mode = LINEAR[nd] if mode == "linear" else mode
    size, sf, out = (5, 3, 4)[:nd], (1.5, 2.5, 0.75)[:nd], (7, 8, 3)[:nd]
    for align in ([False, True] if mode == LINEAR[nd] else [None]):
        spec = ir.Upsample(type_name="Upsample", size=out if by == "size" else None,
                           scale_factor=sf if by == "scale" else None, mode=mode, align_corners=align)
        x = randn(nd, 2, 3, *size)
        close(forward_layer(spec, x, {}), torch_upsample(torch, spec, x))


# --- BatchNorm, elementwise, Flatten, Linear ------------------------------------------------------


@pytest.mark.parametrize("nd", [0, 1, 2, 3])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_batch_norm_matches_torch_in_eval_mode(torch, nd, affine, track):
    c, sizes = 3, (5, 4, 6)[:nd]
    rank = max(nd, 1)
    spec = ir.BatchNorm(type_name=f"BatchNorm{rank}d", nd=rank, num_features=c, eps=1e-3, momentum=0.1, affine=affine,
                        track_running_stats=track)
    m = getattr(torch.nn, spec.type_name)(c, 1e-3, 0.1, affine, track, dtype=torch.float64).eval()
    rng = np.random.default_rng(nd)
    params = {"weight": rng.uniform(0.5, 1.5, c), "bias": rng.normal(0, 0.1, c),
              "running_mean": rng.normal(0, 0.1, c), "running_var": rng.uniform(0.5, 1.5, c)}
    own = {k: v for k, v in params.items() if k in m.state_dict()}
    m.load_state_dict({k: torch.from_numpy(v) for k, v in own.items()}, strict=False)
    x = randn(nd, 4, c, *sizes) * 2 + 0.5
    with torch.no_grad():
        close(forward_layer(spec, x, own), m(torch.from_numpy(x)))


ELEMENTWISE_CASES = [
    ("ReLU", (), {}),
    ("LeakyReLU", (("negative_slope", 0.2),), {"negative_slope": 0.2}),
    ("LeakyReLU", (), {}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("GELU", (("approximate", "none"),), {"approximate": "none"}),
    ("GELU", (("approximate", "tanh"),), {"approximate": "tanh"}),
    ("SiLU", (), {}),
    ("Identity", (), {}),
    ("Dropout", (("p", 0.5),), {"p": 0.5}),
    ("Dropout1d", (("p", 0.3),), {"p": 0.3}),
    ("Dropout2d", (("p", 0.3),), {"p": 0.3}),
    ("Dropout3d", (("p", 0.3),), {"p": 0.3}),
]


@pytest.mark.parametrize("name, params, kwargs", ELEMENTWISE_CASES)
def test_elementwise_matches_torch(torch, name, params, kwargs):
    rank = {"Dropout1d": 3, "Dropout2d": 4, "Dropout3d": 5}.get(name, 4)
    x = randn(1, *(2, 3, 5, 4, 6)[:rank]) * 4
    x.flat[:4] = [-800.0, 800.0, 0.0, -30.0]  # saturation and overflow of exp
    m = getattr(torch.nn, name)(**kwargs).eval()
    close(forward_layer(ir.Elementwise(type_name=name, params=params), x, {}), m(torch.from_numpy(x)))


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (2, 3), (-3, -2), (1, 1)])
def test_flatten_matches_torch(torch, start, end):
    x = randn(0, 2, 3, 4, 5)
    expected = torch.nn.Flatten(start, end)(torch.from_numpy(x))
    close(forward_layer(ir.Flatten(type_name="Flatten", start_dim=start, end_dim=end), x, {}), expected)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(torch, bias):
    x, w, b = randn(0, 3, 7), randn(1, 5, 7), randn(2, 5)
    params = {"weight": w, "bias": b} if bias else {"weight": w}
    t = {k: torch.from_numpy(v) for k, v in params.items()}
    expected = torch.nn.functional.linear(torch.from_numpy(x), t["weight"], t.get("bias"))
    close(forward_layer(ir.Linear(type_name="Linear", in_features=7, out_features=5, bias=bias), x, params), expected)


def test_every_layer_kind_has_a_reference():
    assert set(LAYER_IMPLS) == set(ir.LayerSpec.__args__)  # type: ignore[attr-defined]
    names = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "Identity",
             "Dropout", "Dropout1d", "Dropout2d", "Dropout3d"}
    assert names <= set(ELEMENTWISE_IMPLS)


# --- graphs ---------------------------------------------------------------------------------------


class GraphBuilder:
    """Builds an ir.Graph by hand (the DSL is not used here)."""

    def __init__(self):
        self.nodes: list[ir.Node] = []

    def input(self, name: str, *dims: int) -> str:
        self.nodes.append(ir.Node(name, "input", (), Loc(), dims=dims))
        return name

    def layer(self, spec: ir.LayerSpec, x: str) -> str:
        name = str(len(self.nodes))
        self.nodes.append(ir.Node(name, "layer", (x,), Loc(), layer=spec, layer_name=f"l{name}"))
        return name

    def op(self, op: str, *inputs: str, dim: int = 1) -> str:
        name = f"{op}{len(self.nodes)}"
        self.nodes.append(ir.Node(name, op, inputs, Loc(), dim=dim))
        return name

    def graph(self, *outputs: str) -> ir.Graph:
        return ir.Graph(tuple(self.nodes), outputs)


def conv3x3(nd: int, cin: int, cout: int) -> ir.Conv:
    return ir.Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=cin, out_channels=cout, kernel_size=(3,) * nd,
                   stride=(1,) * nd, padding=((1, 1),) * nd, dilation=(1,) * nd)


def test_graph_ops_cat_add_crop(torch):
    b = GraphBuilder()
    x = b.input("x", 2, 3, 9, 12)
    h = b.layer(conv3x3(2, 3, 4), x)
    v = b.layer(ir.Conv(type_name="Conv2d", nd=2, in_channels=4, out_channels=4, kernel_size=(2, 3), stride=(1, 1),
                        padding=((0, 0), (0, 0)), dilation=(1, 1)), h)  # 8 x 10
    c = b.op("crop", h, v)
    s = b.op("add", c, v)
    out = b.op("cat", s, c, dim=1)
    g = b.graph(out)
    rng = np.random.default_rng(0)
    params = {"l1.weight": rng.normal(size=(4, 3, 3, 3)), "l1.bias": rng.normal(size=4),
              "l2.weight": rng.normal(size=(4, 4, 2, 3)), "l2.bias": rng.normal(size=4)}
    xv = randn(1, 2, 3, 9, 12)
    vals = run(g, {"x": xv}, params)
    t = {k: torch.from_numpy(v) for k, v in params.items()}
    ht = torch.nn.functional.conv2d(torch.from_numpy(xv), t["l1.weight"], t["l1.bias"], padding=1)
    vt = torch.nn.functional.conv2d(ht, t["l2.weight"], t["l2.bias"])
    ct = ht[:, :, 0:8, 1:11]  # drop (9-8)//2 = 0 / 1 rows and (12-10)//2 = 1 / 1 columns
    close(vals[c], ct)
    close(vals[out], torch.cat([ct + vt, ct], dim=1))
    assert set(vals) == {n.name for n in g.nodes}


def unet(nd: int, base: int, levels: int, cin: int = 3) -> ir.Graph:
    """A U-Net: (conv-BN-ReLU)x2 per level, max-pool down, transposed conv up, cat skips."""
    b = GraphBuilder()
    cur, c, skips = b.input("x", 1, cin, *("D", "H", "W")[3 - nd:]), cin, []

    def block(x: str, ci: int, co: int) -> str:
        for i in range(2):
            x = b.layer(conv3x3(nd, ci if i == 0 else co, co), x)
            x = b.layer(ir.BatchNorm(type_name=f"BatchNorm{nd}d", nd=nd, num_features=co), x)
            x = b.layer(ir.Elementwise(type_name="ReLU"), x)
        return x

    for lvl in range(levels):
        cur = block(cur, c, base << lvl)
        c = base << lvl
        skips.append(cur)
        cur = b.layer(ir.Pool(type_name=f"MaxPool{nd}d", nd=nd, mode="max", kernel_size=(2,) * nd, stride=(2,) * nd,
                              padding=((0, 0),) * nd, dilation=(1,) * nd), cur)
    cur, c = block(cur, c, 2 * c), 2 * c
    for lvl in reversed(range(levels)):
        up = ir.ConvTranspose(type_name=f"ConvTranspose{nd}d", nd=nd, in_channels=c, out_channels=c // 2,
                              kernel_size=(2,) * nd, stride=(2,) * nd, padding=((0, 0),) * nd, output_padding=(0,) * nd,
                              dilation=(1,) * nd)
        cur = b.op("cat", b.layer(up, cur), skips[lvl], dim=1)
        cur, c = block(cur, c, c // 2), c // 2
    return b.graph(b.layer(ir.Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=c, out_channels=2, kernel_size=(1,) * nd,
                                   stride=(1,) * nd, padding=((0, 0),) * nd, dilation=(1,) * nd), cur))


def random_params(graph: ir.Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for n in graph.layers():
        spec, p = n.layer, n.layer_name
        if isinstance(spec, (ir.Conv, ir.ConvTranspose)):
            out[f"{p}.weight"] = rng.normal(0, 1 / math.sqrt(math.prod(spec.weight_shape[1:])), spec.weight_shape)
            out[f"{p}.bias"] = rng.normal(0, 0.1, spec.out_channels)
        elif isinstance(spec, ir.BatchNorm):
            c = spec.num_features
            out.update({f"{p}.weight": rng.uniform(0.5, 1.5, c), f"{p}.bias": rng.normal(0, 0.1, c),
                        f"{p}.running_mean": rng.normal(0, 0.1, c), f"{p}.running_var": rng.uniform(0.5, 1.5, c)})
    return out


def torch_run(torch, graph: ir.Graph, x: np.ndarray, params: dict[str, np.ndarray]):
    """The U-Net's graph evaluated with torch.nn.functional (only the kinds unet() uses)."""
    F, t = torch.nn.functional, {k: torch.from_numpy(v) for k, v in params.items()}
    vals = {}
    for n in graph.nodes:
        a = [vals[i] for i in n.inputs]
        spec, p = n.layer, f"{n.layer_name}."
        if n.op == "input":
            vals[n.name] = torch.from_numpy(x)
        elif n.op == "cat":
            vals[n.name] = torch.cat(a, dim=n.dim)
        elif isinstance(spec, ir.Conv):
            vals[n.name] = fn(torch, "conv", spec.nd)(a[0], t[p + "weight"], t[p + "bias"], padding=spec.padding[0][0])
        elif isinstance(spec, ir.ConvTranspose):
            vals[n.name] = fn(torch, "conv_transpose", spec.nd)(a[0], t[p + "weight"], t[p + "bias"], stride=2)
        elif isinstance(spec, ir.BatchNorm):
            vals[n.name] = F.batch_norm(a[0], t[p + "running_mean"], t[p + "running_var"], t[p + "weight"],
                                        t[p + "bias"], False, 0.1, spec.eps)
        elif isinstance(spec, ir.Pool):
            vals[n.name] = fn(torch, "max_pool", spec.nd)(a[0], 2)
        else:
            vals[n.name] = F.relu(a[0])
    return vals[graph.outputs[0]]


@pytest.mark.parametrize("nd, size", [(1, (48,)), (2, (32, 48)), (3, (16, 32, 24))])
def test_unet_matches_torch(torch, nd, size):
    g = unet(nd, base=4, levels=3)
    params = random_params(g)
    x = randn(7, 1, 3, *size)
    with torch.no_grad():
        close(run(g, {"x": x}, params)[g.outputs[0]], torch_run(torch, g, x, params))


def test_run_computes_in_the_requested_dtype():
    g = unet(2, base=4, levels=2)
    vals = run(g, {"x": randn(0, 1, 3, 12, 20)}, random_params(g), dtype=np.float32)
    assert all(v.dtype == np.float32 for v in vals.values())


def test_run_names_a_missing_parameter():
    g = unet(1, base=2, levels=1)
    params = random_params(g)
    del params["l4.weight"]
    with pytest.raises(KeyError, match=r"no parameter .l4.weight. for layer .4."):
        run(g, {"x": randn(0, 1, 3, 8)}, params)
