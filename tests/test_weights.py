"""Parameter names and shapes against torch's state_dict, initialisation, and weight files."""
from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

from convgraph import ir
from convgraph.errors import Loc, WeightsError
from convgraph.export import weights
from convgraph.export.weights import init_params, load_weights, param_specs


def sequential(*specs: ir.LayerSpec, dims=(1, 6, "H", "W")) -> ir.Graph:
    """Layers named "0", "1", ... as torch.nn.Sequential names its children."""
    nodes = [ir.Node("x", "input", (), Loc(), dims=dims)]
    for i, spec in enumerate(specs):
        nodes.append(ir.Node(f"v{i}", "layer", (nodes[-1].name,), Loc(), layer=spec, layer_name=str(i)))
    return ir.Graph(tuple(nodes), (nodes[-1].name,))


def conv(nd, cin, cout, k, groups=1, bias=True) -> ir.Conv:
    return ir.Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=cin, out_channels=cout, kernel_size=k, stride=(1,) * nd,
                   padding=((0, 0),) * nd, dilation=(1,) * nd, groups=groups, bias=bias)


def conv_t(nd, cin, cout, k, groups=1, bias=True) -> ir.ConvTranspose:
    return ir.ConvTranspose(type_name=f"ConvTranspose{nd}d", nd=nd, in_channels=cin, out_channels=cout, kernel_size=k,
                            stride=(2,) * nd, padding=((0, 0),) * nd, output_padding=(0,) * nd, dilation=(1,) * nd,
                            groups=groups, bias=bias)


def bn(nd, c, affine=True, track=True) -> ir.BatchNorm:
    return ir.BatchNorm(type_name=f"BatchNorm{nd}d", nd=nd, num_features=c, affine=affine, track_running_stats=track)


def zoo() -> ir.Graph:
    """Every parameterised kind, every BatchNorm variant, grouped convs, no-bias layers."""
    return sequential(
        conv(2, 6, 8, (3, 5), groups=2), bn(2, 8), ir.Elementwise(type_name="ReLU"),
        conv(2, 8, 4, (1, 3), bias=False), bn(2, 4, affine=False),
        conv_t(2, 4, 6, (2, 3), groups=2), bn(2, 6, track=False),
        ir.Pool(type_name="MaxPool2d", nd=2, mode="max", kernel_size=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)),
                dilation=(1, 1)),
        ir.AdaptiveAvgPool(type_name="AdaptiveAvgPool2d", nd=2, output_size=(3, 2)), ir.Flatten(),
        ir.Linear(type_name="Linear", in_features=36, out_features=5),
        ir.Linear(type_name="Linear", in_features=5, out_features=7, bias=False))


def torch_zoo(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(6, 8, (3, 5), groups=2), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 4, (1, 3), bias=False), nn.BatchNorm2d(4, affine=False),
        nn.ConvTranspose2d(4, 6, (2, 3), stride=2, groups=2), nn.BatchNorm2d(6, track_running_stats=False),
        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten(), nn.Linear(36, 5), nn.Linear(5, 7, bias=False))


def state_shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


# --- names and shapes -----------------------------------------------------------------------------


def test_param_specs_equal_torch_state_dict_keys_order_and_shapes(torch):
    specs = param_specs(zoo())
    assert list(specs.items()) == list(state_shapes(torch_zoo(torch)).items())


@pytest.mark.parametrize("nd", [1, 3])
def test_param_specs_in_1d_and_3d(torch, nd):
    k = (3, 2, 4)[:nd] if nd == 3 else (5,)
    g = sequential(conv(nd, 4, 6, k, groups=2), bn(nd, 6), conv_t(nd, 6, 3, k, groups=3, bias=False))
    nn = torch.nn
    m = nn.Sequential(getattr(nn, f"Conv{nd}d")(4, 6, k, groups=2), getattr(nn, f"BatchNorm{nd}d")(6),
                      getattr(nn, f"ConvTranspose{nd}d")(6, 3, k, stride=2, groups=3, bias=False))
    assert list(param_specs(g).items()) == list(state_shapes(m).items())


def test_graph_without_parameters_has_none():
    g = sequential(ir.Elementwise(type_name="ReLU"),
                   ir.Pool(type_name="AvgPool2d", nd=2, mode="avg", kernel_size=(2, 3), stride=(2, 3),
                           padding=((0, 0), (0, 0)), dilation=(1, 1)))
    assert param_specs(g) == {} and init_params(g) == {}


# --- initialisation -------------------------------------------------------------------------------


def fan_in(shape: tuple[int, ...]) -> int:
    return shape[1] * math.prod(shape[2:])


def test_init_params_keys_shapes_dtype_and_determinism():
    g = zoo()
    p = init_params(g, seed=3)
    assert {k: v.shape for k, v in p.items()} == param_specs(g)
    assert list(p) == list(param_specs(g))
    assert all(v.dtype == np.float32 for v in p.values())
    assert all(np.array_equal(p[k], v) for k, v in init_params(g, seed=3).items())
    assert not np.array_equal(p["0.weight"], init_params(g, seed=4)["0.weight"])


def test_uniform_draw_is_float32_and_within_the_bound_at_its_ends():
    """u = 0 and the largest u < 1 give -b and about +b: b, the float32 bound, never exceeds it."""
    class Ends:
        def random(self, shape, dtype):
            return np.array([0.0, np.nextafter(1.0, 0.0, dtype=np.float32)], dtype=dtype)

    for fan_in in range(1, 3000):
        bound = 1 / math.sqrt(fan_in)
        w = weights._uniform(Ends(), bound, (2,))  # type: ignore[arg-type]
        lo, hi = float(w[0]), float(w[1])  # compared in float64
        assert w.dtype == np.float32 and -bound <= lo < 0 < hi <= bound
        assert -lo > bound * (1 - 2 ** -22) and hi > bound * (1 - 2 ** -21)  # within 2 and 4 ulp


def test_init_follows_torch_default_bounds(torch):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in; checked against torch's own draw."""
    g = sequential(conv(2, 16, 32, (3, 5), groups=2), conv_t(2, 32, 48, (4, 3), groups=4), ir.Flatten(),
                   ir.Linear(type_name="Linear", in_features=300, out_features=200))
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(16, 32, (3, 5), groups=2),
                            torch.nn.ConvTranspose2d(32, 48, (4, 3), groups=4), torch.nn.Flatten(),
                            torch.nn.Linear(300, 200))
    ours, theirs = init_params(g, seed=0), m.state_dict()
    for layer in ("0", "1", "3"):
        w = ours[f"{layer}.weight"]
        bound = 1 / math.sqrt(fan_in(w.shape))
        for key in (f"{layer}.weight", f"{layer}.bias"):
            assert np.abs(ours[key]).max() <= bound
            assert np.abs(theirs[key].numpy()).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.95 * bound and abs(w.mean()) < 0.05 * bound
        assert abs(np.abs(w).max() - np.abs(theirs[f"{layer}.weight"].numpy()).max()) < 0.05 * bound


def test_conv_transpose_fan_in_is_c_out_per_group_times_kernel():
    w = init_params(sequential(conv_t(2, 4, 64, (3, 3), groups=2)), seed=1)["0.weight"]
    assert w.shape == (4, 32, 3, 3)
    bound = 1 / math.sqrt(32 * 9)  # not C_in * 9
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_batch_norm_init_default_is_identity_and_realistic_is_not():
    g = sequential(bn(2, 500))
    p = init_params(g)
    assert (p["0.weight"] == 1).all() and (p["0.bias"] == 0).all()
    assert (p["0.running_mean"] == 0).all() and (p["0.running_var"] == 1).all()
    r = init_params(g, seed=2, realistic_bn=True)
    for key in ("0.weight", "0.running_var"):
        assert r[key].min() >= 0.5 and r[key].max() <= 1.5 and r[key].std() > 0.2
    for key in ("0.bias", "0.running_mean"):
        assert abs(r[key].mean()) < 0.03 and 0.07 < r[key].std() < 0.13


# --- weight files ---------------------------------------------------------------------------------


def save_npz(path, params):
    np.savez(path, **params)


def save_safetensors(path, params):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, str(path))


def assert_same(loaded: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
    assert list(loaded) == list(params)
    for k, v in params.items():
        assert loaded[k].dtype == np.float32 and np.array_equal(loaded[k], v), k


@pytest.mark.parametrize("save, name", [(save_npz, "w.npz"), (save_safetensors, "w.safetensors"),
                                        (save_npz, "w.pt"), (save_safetensors, "weights")])
def test_round_trip_npz_and_safetensors_detected_by_content(tmp_path, save, name):
    g = zoo()
    params = init_params(g, seed=5, realistic_bn=True)
    path = tmp_path / name
    save(path, params)
    if name == "w.pt":
        path = tmp_path / "w.pt.npz"  # np.savez appends .npz; rename to a misleading suffix
        path = path.rename(tmp_path / "w.pt")
    assert_same(load_weights(path, g), params)


@pytest.mark.parametrize("name", ["w.pt", "w.pth", "pytorch_model.bin", "w.npz"])
@pytest.mark.parametrize("legacy", [False, True])
def test_round_trip_torch_state_dict(torch, tmp_path, name, legacy):
    """A real module's state_dict (with num_batches_tracked), saved by torch.save in both formats."""
    g, m = zoo(), torch_zoo(torch)
    params = init_params(g, seed=6, realistic_bn=True)
    missing, unexpected = m.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=False)
    assert unexpected == [] and all(k.endswith("num_batches_tracked") for k in missing)
    torch.save(m.state_dict(), tmp_path / name, _use_new_zipfile_serialization=not legacy)
    assert_same(load_weights(tmp_path / name, g), params)


def test_torch_tensors_of_other_dtypes_are_cast_to_float32(torch, tmp_path):
    g = sequential(conv(1, 6, 2, (3,)))
    sd = {"0.weight": torch.ones(2, 6, 3, dtype=torch.bfloat16), "0.bias": torch.arange(2, dtype=torch.float64)}
    torch.save(sd, tmp_path / "w.pt")
    w = load_weights(tmp_path / "w.pt", g)
    assert w["0.weight"].dtype == np.float32 and w["0.bias"].tolist() == [0.0, 1.0]


def test_mismatches_are_reported_together(tmp_path):
    g = sequential(conv(2, 6, 8, (3, 3)), conv(2, 8, 8, (3, 3)), bn(2, 8))
    params = init_params(g)
    del params["0.bias"], params["2.running_var"]
    params["1.weight"] = np.zeros((8, 4, 3, 3), np.float32)
    params["foo.weight"] = np.zeros(3, np.float32)
    params["2.num_batches_tracked"] = np.array(0)  # ignored
    path = tmp_path / "w.npz"
    save_npz(path, params)
    with pytest.raises(WeightsError) as info:
        load_weights(path, g)
    assert info.value.message == (
        f"weights file '{path}' does not match the graph: missing 0.bias, 2.running_var; extra foo.weight; "
        "misshapen 1.weight: file [8, 4, 3, 3], graph [8, 8, 3, 3]")
    assert str(info.value).startswith(f"{path}:0:0: error: weights file")


@pytest.mark.parametrize("content", [b"conv1.weight = [1, 2, 3]\n", bytes(range(7, 256)) * 40, b"",
                                     b"PK\x03\x04 not really a zip"])
def test_a_file_that_is_not_a_weights_file_is_rejected(tmp_path, content):
    path = tmp_path / "w.npz"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="is not a weights file") as info:
        load_weights(path, zoo())
    assert str(path) in info.value.message and info.value.loc == Loc(str(path), 0, 0)


def test_other_archives_and_unreadable_paths_are_rejected(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(WeightsError, match="is not a weights file"):
        load_weights(tmp_path / "a.zip", zoo())
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(tmp_path / "missing.npz", zoo())
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(tmp_path, zoo())  # a directory


def test_damaged_safetensors_is_reported(tmp_path):
    header = b'{"a": 1}'
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_weights(path, zoo())


def test_torch_file_that_is_not_a_state_dict(torch, tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="not a state_dict"):
        load_weights(tmp_path / "w.pt", zoo())


def test_torch_format_without_torch_says_torch_is_needed(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    path.write_bytes(pickle.dumps({"0.weight": [1.0]}, protocol=2))  # a legacy torch.save stream
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(WeightsError, match="needs torch"):
        load_weights(path, zoo())


def test_modules_do_not_import_torch_or_onnx():
    code = ("import sys, convgraph.validate.reference, convgraph.export.weights; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
