"""Pool and ConvTranspose hold padding as (begin, end) pairs, like Conv and Pad (issue 8).

Torch layers always give equal pairs; unequal pairs can only come from a spec built directly
(later: ONNX import). For those, the formulas, the numpy reference and onnxruntime must still agree,
torch (padding 0, then an explicit F.pad or slice) is the independent check, and the torch-source
generator refuses with a clear error instead of writing a wrong module.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_export import assert_matches

from convgraph import api, ir
from convgraph.errors import ExportError, Loc
from convgraph.export import to_onnx
from convgraph.export._torch_codegen import layer_source
from convgraph.front.catalogue import construct
from convgraph.validate._check import _t_conv_t
from convgraph.validate.reference import forward_layer

HERE = Loc("<test>", 1, 1)


def conv_t(pads, op=(0, 0), stride=(2, 1), dilation=(1, 2)) -> ir.ConvTranspose:
    return ir.ConvTranspose(type_name="ConvTranspose2d", nd=2, in_channels=2, out_channels=3, kernel_size=(3, 2),
                            stride=stride, padding=pads, output_padding=op, dilation=dilation)


def pool(mode, pads, ceil_mode=False) -> ir.Pool:
    return ir.Pool(type_name=f"{mode.capitalize()}Pool2d", nd=2, mode=mode, kernel_size=(3, 2), stride=(2, 1),
                   padding=pads, dilation=(1, 1), ceil_mode=ceil_mode)


def one_layer(spec: ir.LayerSpec, c: int = 2) -> api.Graph:
    x = ir.Node("x", "input", (), HERE, dims=(1, c, "H", "W"))
    y = ir.Node("y", "layer", ("x",), HERE, layer_name="l", layer=spec)
    return api.wrap(ir.Graph((x, y), ("y",)))


def params(spec: ir.ConvTranspose, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"weight": rng.standard_normal(spec.weight_shape), "bias": rng.standard_normal(spec.out_channels)}


def test_torch_layers_canonicalise_to_equal_pairs():
    assert construct("ConvTranspose2d", (1, 1, 3), {"padding": (2, 1)}).padding == ((2, 2), (1, 1))
    assert construct("MaxPool1d", (3,), {"padding": 1}).padding == ((1, 1),)
    assert construct("AvgPool3d", (3,), {"padding": (1, 0, 1)}).padding == ((1, 1), (0, 0), (1, 1))


@pytest.mark.parametrize("pads, op", [(((1, 0), (0, 2)), (0, 0)), (((0, 2), (1, 0)), (1, 1)),
                                      (((2, 1), (3, 0)), (1, 0))])
def test_conv_transpose_pairs_match_torch_crop(torch, pads, op):
    """torch: the full transposed conv (padding 0), then begin/end sliced off each axis."""
    spec = conv_t(pads, op)
    x, p = np.random.default_rng(1).standard_normal((2, 2, 4, 5)), params(spec)
    full = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(p["weight"]),
                                                torch.from_numpy(p["bias"]), spec.stride, 0, op, 1, spec.dilation)
    want = full[..., pads[0][0]:full.shape[2] - pads[0][1], pads[1][0]:full.shape[3] - pads[1][1]].numpy()
    got = forward_layer(spec, x, p)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-10)
    mirror = _t_conv_t(torch.nn.functional, spec, torch.from_numpy(x), {k: torch.from_numpy(v) for k, v in p.items()})
    assert np.allclose(mirror.numpy(), want, atol=1e-10)
    assert one_layer(spec).shapes(H=4, W=5)["y"] == (1, 3, *want.shape[2:])


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_pairs_match_torch_explicit_pad(torch, mode):
    """Floor mode, padding counted (AvgPool's default): F.pad, then the pool with padding 0."""
    pads = ((2, 0), (0, 1))
    spec = pool(mode, pads)
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 5))
    fill = -np.inf if mode == "max" else 0.0
    xp = torch.nn.functional.pad(torch.from_numpy(x), (0, 1, 2, 0), value=fill)
    f = getattr(torch.nn.functional, f"{mode}_pool2d")
    want = f(xp, spec.kernel_size, spec.stride).numpy()
    got = forward_layer(spec, x, {})
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-12)
    assert one_layer(spec).shapes(H=6, W=5)["y"] == (1, 2, *want.shape[2:])


@pytest.mark.parametrize("spec", [conv_t(((1, 0), (0, 2))), conv_t(((0, 1), (2, 0)), op=(1, 1)),
                                  conv_t(((0, 0), (1, 0)), op=(0, 1), stride=(1, 1), dilation=(1, 2)),
                                  pool("max", ((1, 0), (0, 1))), pool("avg", ((0, 1), (1, 0))),
                                  pool("max", ((1, 0), (1, 1)), ceil_mode=True)],
                         ids=["ct", "ct-op", "ct-op-above-stride", "max", "avg", "max-ceil"])
def test_pairs_export_matches_onnxruntime(spec):
    """Formulas == onnxruntime's shapes, values == the numpy reference, with unequal pairs."""
    g = one_layer(spec)
    for env in ({"H": 5, "W": 6}, {"H": 8, "W": 3}):
        assert_matches(g, to_onnx(g, opset=22), env)


@pytest.mark.parametrize("spec", [conv_t(((1, 0), (1, 1))), pool("avg", ((1, 1), (0, 1)))])
def test_torch_source_refuses_unequal_pairs(spec):
    with pytest.raises(ExportError, match=r"asymmetric .* cannot express"):
        layer_source(spec)


def test_torch_source_keeps_equal_pairs_as_torch_writes_them():
    want = "nn.MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))"
    assert layer_source(pool("max", ((1, 1), (0, 0)))).expr == want
    assert "padding=(1, 2)" in layer_source(conv_t(((1, 1), (2, 2)))).expr
