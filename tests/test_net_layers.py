"""The layers published conv nets use beyond the conv family (issue 9), against PyTorch.

InstanceNorm, GroupNorm, PReLU, ReLU6, Hardswish, Hardsigmoid, ELU, Mish, Softmax, LogSoftmax,
AdaptiveMaxPool, the pad modules, PixelShuffle/PixelUnshuffle, AvgPool's divisor_override and an
empty batch. Each drawn configuration (asymmetric sizes, 1-D/2-D/3-D where the layer has them) is
written as DSL text and run through torch: convgraph raises (a ConvGraphError) exactly where torch
raises, and otherwise its shapes are torch's; onnxruntime's values on the export equal torch's and
the numpy reference's. The deliberate differences: convgraph refuses a result with an empty
spatial or channel dim, which torch returns (an empty tensor; ``_empty_result``), and a circular
pad that would wrap past what a crop on the other side leaves (``_uninitialised_circular``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.errors import ConvGraphError
from convgraph.export import to_onnx
from convgraph.export.weights import init_params
from convgraph.validate import accumulation, reference, tolerance

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
VALUE_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))


def _sizes(draw, nd: int, lo: int = 1, hi: int = 7) -> tuple[int, ...]:
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


@st.composite
def norm_layers(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["InstanceNorm", "GroupNorm"]))
    c = draw(st.sampled_from([2, 3, 4, 6]))
    affine = draw(st.booleans())
    if kind == "InstanceNorm":
        track = draw(st.booleans())
        feats = c if draw(st.integers(0, 3)) else c + 1
        call = f"InstanceNorm{nd}d({feats}, affine={affine}, track_running_stats={track})"
    else:
        g = draw(st.sampled_from([1, 2, 3, c]))
        cc = c if c % g == 0 else g
        call = f"GroupNorm({g}, {cc}, affine={affine})"
        c = cc if draw(st.integers(0, 3)) else cc + 1
    n = draw(st.sampled_from([1, 1, 2, 0]))
    return call, (n, c, *_sizes(draw, nd, 1, 4))


@st.composite
def activation_layers(draw):
    nd = draw(st.integers(1, 3))
    c = draw(st.sampled_from([1, 2, 3]))
    call = draw(st.sampled_from([
        "ReLU6()", "Hardswish()", "Hardsigmoid()", "Mish()", "ELU()", "ELU(alpha=0.5)", "ELU(2.0, inplace=True)",
        "PReLU()", f"PReLU({c})", f"PReLU({c + 1})", "PReLU(1, 0.1)",
        "Softmax()", "Softmax(1)", "Softmax(dim=-1)", f"Softmax({nd + 2})", "LogSoftmax(2)", "LogSoftmax()",
        f"LogSoftmax({-nd - 3})"]))
    return call, (draw(st.sampled_from([1, 2])), c, *_sizes(draw, nd))


@st.composite
def pool_layers(draw):
    nd = draw(st.integers(1, 3))
    if draw(st.booleans()):
        out = tuple(draw(st.one_of(st.integers(1, 4), st.none())) if nd > 1 else draw(st.integers(1, 4))
                    for _ in range(nd))
        call = f"AdaptiveMaxPool{nd}d({out!r})"
    else:
        k = _sizes(draw, nd, 1, 3)
        s = _sizes(draw, nd, 1, 3)
        p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
        div = draw(st.sampled_from([1, 2, 3, -2]))
        ceil = draw(st.booleans())
        call = f"AvgPool{nd}d({k!r}, {s!r}, {p!r}, ceil_mode={ceil}, divisor_override={div})"
    return call, (draw(st.sampled_from([1, 2])), 2, *_sizes(draw, nd, 1, 8))


@st.composite
def pad_layers(draw):
    nd = draw(st.integers(1, 3))
    prefix = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
    if draw(st.booleans()):
        pad: object = draw(st.integers(0, 3))
    else:
        pad = tuple(draw(st.integers(-2, 4)) for _ in range(2 * nd))
    value = ", 1.5" if prefix == "Constant" else ""
    rank = nd if draw(st.integers(0, 4)) else draw(st.integers(1, 3))  # sometimes a wrong rank
    return f"{prefix}Pad{nd}d({pad!r}{value})", (draw(st.sampled_from([1, 2])), 2, *_sizes(draw, rank, 1, 7))


@st.composite
def shuffle_layers(draw):
    r = draw(st.integers(1, 3))
    if draw(st.booleans()):
        c = r * r * draw(st.integers(1, 2)) if draw(st.integers(0, 3)) else r * r + 1
        return f"PixelShuffle({r})", (draw(st.sampled_from([1, 2])), c, *_sizes(draw, 2, 1, 5))
    return f"PixelUnshuffle({r})", (draw(st.sampled_from([1, 2])), 2, *_sizes(draw, 2, 1, 9))


@st.composite
def unflatten_layers(draw):
    sizes = draw(st.sampled_from([(3, 4), (-1, 4), (2, -1, 3), (5,), (-1,), (4, 1), (7, -1)]))
    dim = draw(st.sampled_from([1, -1, 2]))
    spatial = _sizes(draw, draw(st.integers(1, 2)), 1, 13)
    return f"Unflatten({dim}, {sizes!r})", (draw(st.sampled_from([1, 2])), 12, *spatial)


LAYERS = st.one_of(norm_layers(), activation_layers(), pool_layers(), pad_layers(), shuffle_layers(),
                   unflatten_layers())


def dsl(call: str, shape: tuple[int, ...]) -> str:
    return f"x = input({', '.join(map(str, shape))})\ny = {call}(x)\n"


def torch_outcome(torch, call: str, shape: tuple[int, ...]):
    """torch's output shape, or None where it raises (eval mode, as convgraph models)."""
    nn = torch.nn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = eval(f"nn.{call}", {"nn": nn}).eval()
            with torch.no_grad():
                return tuple(module(torch.randn(shape)).shape)
    except (RuntimeError, ValueError, IndexError, NotImplementedError, TypeError):
        return None


def convgraph_outcome(call: str, shape: tuple[int, ...]):
    try:
        g = cg.parse(dsl(call, shape))
        return tuple(g.output_shapes()["y"])
    except ConvGraphError as e:
        assert "\n" not in e.message and e.loc.line in (1, 2)
        return None


def _empty_result(out: tuple[int, ...] | None, shape: tuple[int, ...]) -> bool:
    """An empty result from a non-empty input (a batch of 0 in, a batch of 0 out is fine)."""
    return out is not None and (0 in out[1:] or (out[0] == 0 and shape[0] != 0))


def _uninitialised_circular(call: str, shape: tuple[int, ...]) -> bool:
    """torch's circular pad crops first and then wraps: a pad larger than what the other side's
    crop leaves reads uninitialised memory (torch 2.13 returns garbage; convgraph refuses)."""
    if not call.startswith("CircularPad") or "((" not in call:
        return False
    flat = eval(call[call.index("(") + 1:-1])
    pairs = [flat[i:i + 2] for i in range(0, len(flat), 2)]
    return any(min(p) < 0 < max(p) and i + min(p) < max(p) for p, i in zip(pairs, reversed(shape)))


@SETTINGS
@given(layer=LAYERS)
def test_shapes_and_errors_agree_with_torch(torch, layer):
    call, shape = layer
    want = torch_outcome(torch, call, shape)
    if _empty_result(want, shape) or _uninitialised_circular(call, shape):
        want = None  # deliberately stricter
    assert convgraph_outcome(call, shape) == want, (call, shape)


@VALUE_SETTINGS
@given(layer=LAYERS)
def test_values_agree_with_torch_and_reference(torch, layer):
    """onnxruntime on the export == torch (same weights) == the numpy reference."""
    import onnxruntime as ort
    from torch_equiv import run_torch

    call, shape = layer
    if shape[0] == 0 or convgraph_outcome(call, shape) is None:
        return
    g = cg.parse(dsl(call, shape))
    params = init_params(g, seed=2, realistic_bn=True)
    model = to_onnx(g, params=params)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x})
    ref = reference.run(g, {"x": x}, params)["y"]
    tv = run_torch(g, {"x": x}, params)["y"]
    tol = tolerance(accumulation(g, g.shapes())["y"], ref)
    assert got.shape == ref.shape == tv.shape
    assert np.abs(got - tv).max(initial=0) <= tol, (call, shape)
    assert np.abs(ref - tv).max(initial=0) <= tol, (call, shape)


@pytest.mark.parametrize("call", ["Conv1d(4, 4, 3)", "InstanceNorm1d(4)", "GroupNorm(2, 4)", "ReflectionPad1d(2)"])
def test_empty_batch_runs_as_in_torch(torch, call):
    """An input with N = 0 runs (PyTorch's own module tests use (0, 4, 10) into Conv1d)."""
    want = torch_outcome(torch, call, (0, 4, 10))
    assert want is not None and convgraph_outcome(call, (0, 4, 10)) == want


def test_instancenorm_couples_the_spatial_symbols():
    """More than one spatial element: H*W > 1 is a rule on both symbols, refused at 1x1 only."""
    g = cg.parse("x = input(N, 3, H, W)\ny = InstanceNorm2d(3)(x)\n")
    assert g.output_shapes(N=1, H=1, W=2)["y"] == (1, 3, 1, 2)
    with pytest.raises(cg.ShapeError, match="more than 1 spatial element"):
        g.output_shapes(N=1, H=1, W=1)


def test_instancenorm_bottleneck_of_a_3d_unet_is_refused(torch):
    """The MONAI case of issue 9: four 2x poolings of 16^3 leave 1x1x1 before an InstanceNorm."""
    text = "x = input(1, 2, D, H, W)\np = MaxPool3d(16)(x)\ny = InstanceNorm3d(2)(p)\n"
    g = cg.parse(text)
    with pytest.raises(cg.ShapeError, match="more than 1 spatial element"):
        g.output_shapes(D=16, H=16, W=16)
    assert g.output_shapes(D=16, H=16, W=32)["y"] == (1, 2, 1, 1, 2)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        torch.nn.InstanceNorm3d(2)(torch.nn.MaxPool3d(16)(torch.zeros(1, 2, 16, 16, 16)))


def test_pixel_unshuffle_divisibility_is_a_size_rule():
    sol = cg.solve(cg.parse("x = input(1, 3, H, W)\ny = PixelUnshuffle(3)(x)\n"))
    for name in ("H", "W"):
        assert sol.runs(name).first(4) == [3, 6, 9, 12]


def test_every_layer_kind_is_in_every_table():
    """Shape rule, ONNX lowering, numpy reference, parameters, tolerance fan-in, both torch mirrors,
    the PyTorch source generator, the summary's parameters, MACs and receptive-field rules;
    every Elementwise kind of the catalogue in each Elementwise table; every kind either animates
    or is refused by ``check_animatable`` with a clear error."""
    from torch_equiv import _BUILDERS

    from convgraph import ir
    from convgraph.animate._geometry import GATHER_AXIS, check_animatable
    from convgraph.export import _emit
    from convgraph.export.torch_source import LAYER_SOURCE
    from convgraph.export.weights import _PARAM_RULES
    from convgraph.front.catalogue import CATALOGUE, REQUIRED, construct
    from convgraph.shapes import LAYER_RULES
    from convgraph.shapes.summary import FIELDS, MACS, PARAMS
    from convgraph.validate import _check

    kinds = set(ir.LayerSpec.__args__)  # type: ignore[attr-defined]
    for table in (LAYER_RULES, _emit.LOWERINGS, reference.LAYER_IMPLS, _PARAM_RULES, _check._FANS,
                  _check._TORCH_LAYERS, _BUILDERS, LAYER_SOURCE, PARAMS, MACS, FIELDS):
        assert set(table) == kinds
    assert set(GATHER_AXIS) <= kinds
    defaults_only = [name for name, e in CATALOGUE.items()
                     if name != "Upsample" and all(d is not REQUIRED for _, d in e.params)]
    elementwise = {name for name in defaults_only if isinstance(construct(name), ir.Elementwise)}
    assert {"ReLU6", "Hardswish", "Hardsigmoid", "ELU", "Mish", "ReLU", "Identity"} <= elementwise
    assert elementwise <= set(reference.ELEMENTWISE_IMPLS) == set(_emit.ELEMENTWISE_EMITTERS) \
        == set(_check._TORCH_ELEMENTWISE)
    spec = construct("GroupNorm", (2, 4))
    with pytest.raises(ConvGraphError, match="no sliding window"):
        check_animatable(spec)


def test_solve_states_the_coupled_instancenorm_rule(capsys):
    import os
    import tempfile

    from convgraph.cli import main
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.cg")
        with open(path, "w") as f:
            f.write("x = input(N, 3, H, W)\np = MaxPool2d(4)(x)\ny = InstanceNorm2d(3)(p)\n")
        main(["solve", path])
    out = capsys.readouterr().out
    assert "line 3: InstanceNorm2d 'y': floor(H/4)*floor(W/4) > 1 couples H, W; the smallest solutions: " \
           "H=4, W=8; H=8, W=4" in out
