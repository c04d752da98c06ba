"""The validator: every model checks on CPU; sizes, tolerances, providers, the report, the CLI
and the exit codes; a broken lowering or a wrong formula is caught."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from test_export import MODEL_FILES, ROOT, TINY, Net, cli, write_cg

import convgraph as cg
import convgraph.validate as C
from convgraph import ir
from convgraph.errors import ConvGraphError, Loc, ShapeError
from convgraph.export import _emit as onnx_emit
from convgraph.export.weights import init_params
from convgraph.validate import accumulation, check, choose_sizes, tolerance


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(ROOT / "models")))
def test_every_model_checks_on_cpu(path: Path):
    graph = cg.load(str(path))
    report = check(graph, count=2, params=init_params(graph, seed=2, realistic_bn=True), progress=False)
    assert report.ok, report.table()
    assert all(r.ran == "cpu" for r in report.results)
    for r in report.results:
        for o in r.outputs:
            assert o.expected == o.actual and o.err_ref <= o.tol


def _tiny() -> ir.Graph:
    return (Net().input("N", 2, "H", "W").layer("Conv2d", 2, 4, 3, stride=2, padding=1, name="conv")
            .layer("ReLU", name="relu").layer("MaxPool2d", 3, stride=2, padding=1, ceil_mode=True, name="pool")
            .graph())


def test_cg_check_stays_callable():
    """``cg.check`` is the package's function, also once the validator module is imported."""
    import importlib

    importlib.import_module("convgraph.validate")
    assert cg.check(_tiny(), count=1, progress=False).ok
    assert cg.check(_tiny(), count=1, progress=False).ok


def test_sizes_cover_smallest_and_unequal_axes():
    envs = choose_sizes(_tiny(), count=6)
    assert envs[0] == {"N": 1, "H": 1, "W": 1}
    assert any(e["H"] != e["W"] for e in envs)
    assert len({(e["H"] % 4, e["W"] % 4) for e in envs}) > 2
    assert choose_sizes(_tiny(), {"H": 9}, count=3)[0]["H"] == 9
    assert choose_sizes(_tiny(), [{"N": 1, "H": 5, "W": 6}]) == [{"N": 1, "H": 5, "W": 6}]
    with pytest.raises(ShapeError):
        choose_sizes(_tiny(), {"Z": 3})
    with pytest.raises(ConvGraphError, match="leave W unset"):
        choose_sizes(_tiny(), [{"N": 1, "H": 5}])


def test_tolerance_scales_with_accumulation_and_magnitude():
    g = _tiny()
    acc = accumulation(g, g.shapes(N=1, H=8, W=8))
    assert acc["conv"] == 2 * 9 and acc["relu"] == acc["conv"] + 4 and acc["pool"] == acc["relu"] + 1
    ref = np.array([1.0, -3.0])
    assert tolerance(400, ref) == pytest.approx(C.TOL_C * C.EPS32 * 20 * 3)
    assert tolerance(400, 2 * ref) == pytest.approx(2 * tolerance(400, ref))


def test_one_session_per_provider_reused(monkeypatch):
    made = []
    real = ort.InferenceSession

    def counting(*a, **kw):
        made.append(kw.get("providers"))
        return real(*a, **kw)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    report = check(_tiny(), count=5, progress=False)
    assert report.ok and len(report.results) == 5 and len(made) == 1


def test_report_json_and_table():
    report = check(_tiny(), sizes={"N": 2, "H": 7, "W": 10}, progress=False)
    data = report.to_json()
    assert data["ok"] and data["opset"] == 22 and data["results"][0]["sizes"] == {"N": 2, "H": 7, "W": 10}
    out = data["results"][0]["outputs"][0]
    assert out["expected"] == out["actual"] == [2, 4, 3, 3] and out["err_ref"] <= out["tol"]
    assert set(report.seconds) >= {"reference", "onnxruntime", "export"}
    text = report.table()
    assert "max|ort-ref|" in text and "ok: 1 runs" in text


def test_wrong_lowering_is_a_mismatch(monkeypatch):
    """A broken emitter (ReLU lowered as Sigmoid) gives values that differ: the report says so."""
    monkeypatch.setitem(onnx_emit.ELEMENTWISE_EMITTERS, "ReLU", onnx_emit._simple("Sigmoid"))
    report = check(_tiny(), count=2, progress=False)
    assert not report.ok
    o = report.results[0].outputs[0]
    assert o.shape_ok and o.err_ref > o.tol
    assert "MISMATCH" in report.table()


def test_wrong_shape_is_a_mismatch(monkeypatch):
    """Pooling exported in floor mode (and the exporter's own shape cross-check disabled): the
    actual output shapes differ from the formulas at sizes where ceil mode adds a window."""
    import convgraph.export._export as E

    def floor_pool(b, s):
        b.op("MaxPool", [s.x], s.name, s.out, kernel_shape=list(s.spec.kernel_size), strides=list(s.spec.stride),
             pads=[*(b for b, _ in s.spec.padding), *(e for _, e in s.spec.padding)])

    monkeypatch.setitem(onnx_emit.LOWERINGS, ir.Pool, onnx_emit.Lowering(floor_pool, lambda spec: None))
    monkeypatch.setattr(E, "_verify", lambda *a, **kw: None)
    report = check(_tiny(), sizes=[{"N": 1, "H": 8, "W": 8}], progress=False)
    o = report.results[0].outputs[0]
    assert not report.ok and not o.shape_ok and o.expected == (1, 4, 3, 3) and o.actual == (1, 4, 2, 2)


def test_progress_bar_on_request(capsys):
    check(_tiny(), count=4, progress=True)
    assert "check" in capsys.readouterr().err


def test_cuda_when_missing(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ConvGraphError, match="CUDAExecutionProvider"):
        check(_tiny(), providers=("cuda",), count=1)
    report = check(_tiny(), providers=("cpu", "cuda"), count=1, progress=False)
    assert report.ok and any("onnxruntime-gpu" in n for n in report.notes)
    assert [r.ran for r in report.results] == ["cpu"]


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="no CUDA provider")
def test_cuda_runs_when_present():
    report = check(_tiny(), providers=("cpu", "cuda"), count=2, progress=False)
    assert report.ok and {r.ran for r in report.results} == {"cpu", "cuda"}


def test_torch_mirror_agrees_with_the_reference(torch):
    """The runtime torch comparison (functional mirror) on a graph with every merge op."""
    g = (Net().input("N", 2, "H", "W").layer("Conv2d", 2, 4, 3, padding=1, padding_mode="reflect", name="a")
         .layer("AvgPool2d", 2, ceil_mode=True, name="d").layer("Upsample", scale_factor=2.0, mode="bilinear", name="u")
         .merge("crop", "c", "a", "u").merge("cat", "j", "c", "u").layer("BatchNorm2d", 8, name="bn")
         .layer("AdaptiveAvgPool2d", (2, 3), name="ap").layer("Flatten", name="f").layer("Linear", 48, 3, name="fc")
         .layer("SiLU", name="act").graph())
    report = check(g, count=3, params=init_params(g, seed=4, realistic_bn=True), progress=False)
    assert report.ok, report.table()
    assert report.torch == torch.__version__
    assert all(o.err_torch is not None and o.err_torch <= o.tol for r in report.results for o in r.outputs)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_check_table_and_json(tmp_path: Path, capsys):
    src = write_cg(tmp_path, TINY)
    assert cli("check", src, "--at", "H=9", "--at", "W=6") == 0
    out = capsys.readouterr().out
    assert "H=9" in out and "ok" in out
    assert cli("check", src, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and len(data["results"]) >= 3 and data["results"][0]["ran"] == "cpu"


def test_cli_check_mismatch_exit_1(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setitem(onnx_emit.ELEMENTWISE_EMITTERS, "ReLU", onnx_emit._simple("Tanh"))
    assert cli("check", write_cg(tmp_path, TINY)) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_cli_check_cuda_alone_without_provider_exit_2(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert cli("check", write_cg(tmp_path, TINY), "--provider", "cuda") == 2
    err = capsys.readouterr().err
    assert "CUDAExecutionProvider" in err and "Traceback" not in err
    assert cli("check", write_cg(tmp_path, TINY), "--provider", "all") == 0
    assert "onnxruntime-gpu" in capsys.readouterr().out


def test_cli_check_invalid_size_exit_2(tmp_path: Path, capsys):
    src = write_cg(tmp_path, '"""x"""\ninput(1, 1, H, W)\nConv2d(1, 1, 5)\n')
    assert cli("check", src, "--at", "H=3", "--at", "W=9") == 2
    assert "error:" in capsys.readouterr().err


def test_profile_placements_name_the_nodes_that_fell_back():
    from convgraph.validate._placement import fallbacks, placements

    events = [
        {"cat": "Session", "name": "model_run", "args": {}},
        {"cat": "Node", "name": "conv_0_fence_before", "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "conv_0_kernel_time", "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}},
        {"cat": "Node", "name": "up_1_kernel_time",
         "args": {"op_name": "ConvTranspose", "provider": "CPUExecutionProvider"}},
        {"cat": "Node", "name": "conv_0_kernel_time", "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}},
    ]
    ran = placements(events)
    assert [(p.node, p.op, p.provider) for p in ran] == [
        ("conv_0", "Conv", "CUDAExecutionProvider"), ("up_1", "ConvTranspose", "CPUExecutionProvider")]
    assert [p.node for p in fallbacks(ran, "CUDAExecutionProvider")] == ["up_1"]


def test_a_profiled_provider_reports_where_every_node_ran(monkeypatch):
    # no GPU here: let 'cuda' name the CPU provider, so the profiled path runs end to end
    monkeypatch.setitem(C.PROVIDERS, "cuda", "CPUExecutionProvider")
    report = check(_tiny(), sizes=[{"N": 1, "H": 8, "W": 9}], providers=("cuda",), progress=False)
    assert report.ok and report.fallbacks == {"cuda": ()}
    assert "cuda: every node ran on CPUExecutionProvider" in report.table()
    assert report.to_json()["fallbacks"] == {"cuda": []}


def test_cuda_sessions_run_float32_without_tf32(monkeypatch):
    """TF32 convs missed the float32 tolerance by up to 45x on an H200 (docs/cuda/README.md)."""
    import onnxruntime as ort

    made = []
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", lambda model, sess_options, providers: made.append(providers))
    from convgraph.validate._check import _sessions

    _sessions(b"", ("cpu", "cuda"), Loc("<test>", 0, 0))
    assert made == [["CPUExecutionProvider"],
                    [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]]


# -- normalisation over few elements: the data-aware conditioning term ---------------------------

FEW = "x = input(N, 3, H, W)\np = MaxPool2d(4)(x)\ny = {norm}(p)\noutput(y)\n"
NORMS = ("InstanceNorm2d(3)", "InstanceNorm2d(3, affine=True)", "GroupNorm(3, 3)",
         "BatchNorm2d(3, track_running_stats=False)")


@pytest.mark.parametrize("norm", NORMS)
def test_normalising_few_pooled_elements_passes(norm):
    """Max-pooled values lie close together far from 0: normalising 2 of them cancels ~|mean|/std
    in float32, which the plain tolerance did not allow (a false MISMATCH at H=4, W=8)."""
    g = cg.parse(FEW.format(norm=norm))
    for seed in range(3):
        report = check(g, sizes=[{"N": 1, "H": 4, "W": 8}, {"N": 2, "H": 8, "W": 4}, {"N": 2, "H": 8, "W": 8},
                                 {"N": 3, "H": 12, "W": 5}], seed=seed, progress=False)
        assert report.ok, report.table()


def test_conditioning_is_the_cancellation_of_the_mean():
    from convgraph.validate import conditioning

    g = cg.parse(FEW.format(norm="InstanceNorm2d(3)"))
    rng = np.random.default_rng(0)
    p = rng.standard_normal((2, 3, 8, 8))  # zero mean: nothing cancels
    assert conditioning(g, {"x": None, "p": p, "y": None})["y"] == pytest.approx(1.0, abs=0.3)
    # offset by 1000 with a std of 1 (max deviation ~3): the subtraction cancels ~1000 / 3
    assert 200 < conditioning(g, {"x": None, "p": p + 1000.0, "y": None})["y"] < 600
    # running statistics: a fixed affine map, no conditioning
    g = cg.parse(FEW.format(norm="BatchNorm2d(3)"))
    assert conditioning(g, {"x": None, "p": p + 1000.0, "y": None})["y"] == 1.0


def _eps_ignored(monkeypatch, spec_type):
    """The lowering of ``spec_type`` emitted with epsilon=0 (eps dropped from sqrt(var + eps))."""
    import dataclasses

    lowering = onnx_emit.LOWERINGS[spec_type]

    def emit(b, s):
        node = dataclasses.replace(s.node, layer=dataclasses.replace(s.node.layer, eps=0.0))
        lowering.emit(b, dataclasses.replace(s, node=node))

    monkeypatch.setitem(onnx_emit.LOWERINGS, spec_type, lowering._replace(emit=emit))


@pytest.mark.parametrize(("norm", "spec_type"), [("InstanceNorm2d(3)", ir.InstanceNorm),
                                                 ("GroupNorm(3, 3)", ir.GroupNorm)])
def test_wrong_normalisation_lowering_is_still_a_mismatch(monkeypatch, norm, spec_type):
    """The widened tolerance of a badly conditioned normalisation still catches eps dropped."""
    _eps_ignored(monkeypatch, spec_type)
    report = check(cg.parse(FEW.format(norm=norm)), sizes=[{"N": 1, "H": 4, "W": 8}, {"N": 2, "H": 8, "W": 8}],
                   progress=False)
    assert not report.ok
    for r in report.results:
        o = r.outputs[0]
        assert o.shape_ok and o.err_ref > 10 * o.tol
    assert "MISMATCH" in report.table()


def test_wrong_variance_denominator_is_still_a_mismatch(monkeypatch):
    """A normalisation with the unbiased variance (n - 1) differs from the export beyond the tolerance."""
    from convgraph.validate import reference

    def unbiased(x, axes, eps):
        return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True, ddof=1) + eps)

    monkeypatch.setattr(reference, "_normalise", unbiased)
    report = check(cg.parse(FEW.format(norm="InstanceNorm2d(3)")), sizes=[{"N": 1, "H": 4, "W": 8},
                                                                           {"N": 2, "H": 16, "W": 8}], progress=False)
    assert not report.ok and all(r.outputs[0].err_ref > 10 * r.outputs[0].tol for r in report.results)
