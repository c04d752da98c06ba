"""The ONNX exporter: every model, randomized layers and graphs against torch, opset policy,
dims as formulas, weights, atomic writes and user errors.

Graphs for the randomized tests are built with ``Net`` (``layers.construct``, the canonical
constructor the DSL uses) so that each test states its layers as PyTorch would. Values are compared
on onnxruntime against the module of ``tests/torch_equiv.py`` loaded with the exported file's own
initializers, and against ``convgraph.reference``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

import convgraph as cg
from convgraph import dims as D
from convgraph import ir, shapes
from convgraph.cli import main
from convgraph.errors import ConvGraphError, ExportError, LayerConfigError, Loc, ShapeError
from convgraph.export import MAX_OPSET, InferenceMismatch, export, to_onnx
from convgraph.export import _emit as onnx_emit
from convgraph.export.weights import init_params, param_specs
from convgraph.front.catalogue import construct
from convgraph.shapes import infer
from convgraph.solve import solve
from convgraph.solve._simplify import simplified, valid_sets
from convgraph.solve.sizes import check_sizes
from convgraph.validate import accumulation, reference, tolerance

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILES = sorted((ROOT / "models").rglob("*.cg"))
#: models whose onnxruntime/torch runs are cheap enough for several sizes
CHEAP_MACS = 2e8
FEW = settings(max_examples=int(os.environ.get("CG_EXAMPLES", 25)), deadline=None,
               suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class Net:
    """A tiny graph builder over the IR: ``Net().input(...).layer(...).graph()``."""

    def __init__(self, filename: str = "<test>"):
        self.nodes: list[ir.Node] = []
        self.filename = filename
        self.last = ""

    def _add(self, node: ir.Node) -> Net:
        self.nodes.append(node)
        self.last = node.name
        return self

    def input(self, *dims, name: str = "x") -> Net:
        return self._add(ir.Node(name, "input", (), Loc(self.filename, len(self.nodes) + 1, 1), dims=dims))

    def layer(self, type_name: str, *args, src: str | None = None, name: str | None = None, **kw) -> Net:
        name = name or str(sum(n.op == "layer" for n in self.nodes))
        spec = construct(type_name, args, kw)
        return self._add(ir.Node(name, "layer", (src or self.last,), Loc(self.filename, len(self.nodes) + 1, 1),
                                 layer=spec, layer_name=name))

    def merge(self, op: str, name: str, *inputs: str, dim: int = 1) -> Net:
        return self._add(ir.Node(name, op, inputs, Loc(self.filename, len(self.nodes) + 1, 1), dim=dim))

    def graph(self, *outputs: str, doc: str | None = None) -> ir.Graph:
        return cg.Graph(tuple(self.nodes), outputs or (self.last,), self.filename, doc)


def model_params(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def random_inputs(graph: ir.Graph, env: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    res = infer(graph)
    return {n.name: rng.standard_normal(tuple(D.evaluate(d, env) for d in res.values[n.name])).astype(np.float32)
            for n in graph.inputs}


def run_ort(model: onnx.ModelProto | str, inputs: dict) -> dict[str, np.ndarray]:
    src = model if isinstance(model, str) else model.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))


def assert_matches(graph: ir.Graph, model: onnx.ModelProto, env: dict, torch=None) -> None:
    """At sizes ``env``: onnxruntime's shapes equal the formulas, and its values equal the numpy
    reference and (with torch) the equivalent torch module loaded with the file's initializers."""
    params = model_params(model)
    inputs = random_inputs(graph, env)
    got = run_ort(model, inputs)
    want_shapes = graph.shapes(**env)
    refs = reference.run(graph, inputs, params)
    acc = accumulation(graph, want_shapes)
    tv = None
    if torch is not None:
        from torch_equiv import run_torch

        tv = run_torch(graph, inputs, params, dtype="float32")
    for name in graph.outputs:
        assert got[name].shape == tuple(want_shapes[name]), (name, env)
        tol = tolerance(acc[name], refs[name])
        assert np.abs(got[name] - refs[name]).max(initial=0) <= tol, (name, env)
        if tv is not None:
            assert np.abs(got[name] - tv[name]).max(initial=0) <= tol, (name, env)


def valid_sizes(graph: ir.Graph, count: int = 2) -> list[dict]:
    return check_sizes(graph, count)


def sympy_value(text: str, env: dict) -> int:
    import sympy as sp

    got = sp.sympify(text, locals={k: sp.Symbol(k) for k in env}).subs({sp.Symbol(k): v for k, v in env.items()})
    assert got.is_Integer, (text, env, got)
    return int(got)


def dims_of(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]


def write_cg(tmp_path: Path, text: str, name: str = "m.cg") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def cli(*argv: str) -> int:
    return main(list(argv))


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def test_every_layer_kind_has_a_lowering():
    assert set(onnx_emit.LOWERINGS) == set(shapes.LAYER_RULES) == set(reference.LAYER_IMPLS)
    assert set(onnx_emit.MERGE_EMITTERS) == set(ir.MERGE_OPS)
    assert set(reference.ELEMENTWISE_IMPLS) <= set(onnx_emit.ELEMENTWISE_EMITTERS)


# --------------------------------------------------------------------------------------------
# Every model in models/
# --------------------------------------------------------------------------------------------


def _macs(graph: ir.Graph, env: dict) -> float:
    total, sh = 0.0, graph.shapes(**env)
    for node in graph.layers():
        spec = node.layer
        if isinstance(spec, (ir.Conv, ir.ConvTranspose)):
            big = sh[node.name] if isinstance(spec, ir.Conv) else sh[node.inputs[0]]
            total += float(np.prod(big, dtype=np.float64)) * spec.in_channels // spec.groups * np.prod(spec.kernel_size)
    return total


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(ROOT / "models")))
def test_model_exports_with_formula_dims(path: Path, tmp_path: Path):
    graph = cg.load(str(path))
    out = tmp_path / "m.onnx"
    assert cli("export", str(path), "-o", str(out)) == 0
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    res = infer(graph)
    for vi in model.graph.input:
        assert dims_of(vi) == [d if isinstance(d, int) else D.dim_str(d) for d in res.values[vi.name]]
        assert {d for d in dims_of(vi) if isinstance(d, str)} <= set(graph.symbols)
    described = list(model.graph.value_info) + list(model.graph.output)
    sets = valid_sets(solve(graph, tiling=False))
    for vi in described:
        if vi.name not in res.values:
            continue  # a helper value of a lowering
        for ours, theirs in zip(res.values[vi.name], dims_of(vi)):
            if isinstance(theirs, str):
                # the formula, simplified on the valid sizes (issue 11: floor(H/2) is H/2 where H % 16 == 0)
                assert theirs == simplified(ours, sets), (vi.name, theirs)
                for env in check_sizes(graph, 4):
                    assert sympy_value(theirs, env) == D.evaluate(ours, env), (vi.name, theirs, env)
            else:
                assert theirs == ours, vi.name
    covered = {vi.name for vi in described} | {vi.name for vi in model.graph.input}
    assert covered >= {n.name for n in graph.nodes}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["convgraph.version"] == cg.__version__
    assert json.loads(meta["convgraph.constraints"]) == [
        {"where": c.where, "line": c.loc.line, "rule": c.rule, "condition": c.condition()} for c in res.constraints]
    if graph.doc:
        assert meta["convgraph.doc"] == graph.doc == model.doc_string
    assert {i.name for i in model.graph.initializer} == set(param_specs(graph))


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(ROOT / "models")))
def test_model_values_match_reference_and_torch(path: Path, torch):
    """Formulas == onnxruntime's shapes at several sizes; values == numpy reference == torch, all
    with the same (exported) weights; BatchNorm statistics are non-trivial."""
    graph = cg.load(str(path))
    model = to_onnx(graph, params=init_params(graph, seed=1, realistic_bn=True))
    envs = valid_sizes(graph, 3)
    assert envs, "no valid size"
    cheap = [e for e in envs if _macs(graph, e) < CHEAP_MACS] or envs[:1]
    for env in cheap:
        assert_matches(graph, model, env, torch)


# --------------------------------------------------------------------------------------------
# Randomized single layers (hypothesis)
# --------------------------------------------------------------------------------------------


def _tup(draw, nd: int, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


@st.composite
def conv_layers(draw):
    nd = draw(st.integers(1, 2))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and g > 1
    cin = g if depthwise else g * draw(st.integers(1, 2))
    cout = g * draw(st.integers(1, 2))
    k, d = _tup(draw, nd, 1, 4), _tup(draw, nd, 1, 2)
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if draw(st.booleans()):
        s, padding = (1,) * nd, "same"
    else:
        s, padding = _tup(draw, nd, 1, 3), _tup(draw, nd, 0, 2)
    return nd, (f"Conv{nd}d", (cin, cout, k), dict(stride=s, padding=padding, dilation=d, groups=g,
                                                  padding_mode=mode, bias=draw(st.booleans())))


@st.composite
def conv_transpose_layers(draw):
    nd = draw(st.integers(1, 2))
    g = draw(st.sampled_from([1, 2]))
    k, s, d = _tup(draw, nd, 1, 4), _tup(draw, nd, 1, 3), _tup(draw, nd, 1, 3)
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))  # op >= s is lowered too
    return nd, (f"ConvTranspose{nd}d", (2 * g, g * draw(st.integers(1, 2)), k),
                dict(stride=s, padding=_tup(draw, nd, 0, 2), output_padding=op, dilation=d, groups=g))


@st.composite
def pool_layers(draw):
    nd = draw(st.integers(1, 3))
    k = _tup(draw, nd, 1, 4)
    kw = dict(stride=_tup(draw, nd, 1, 3), padding=tuple(draw(st.integers(0, ki // 2)) for ki in k),
              ceil_mode=draw(st.booleans()))
    if draw(st.booleans()):
        return nd, (f"MaxPool{nd}d", (k,), dict(kw, dilation=_tup(draw, nd, 1, 2)))
    return nd, (f"AvgPool{nd}d", (k,), dict(kw, count_include_pad=draw(st.booleans())))


@st.composite
def upsample_layers(draw):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]))
    nd = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(mode) or draw(st.integers(1, 2))
    kw = dict(mode=mode)
    if "linear" in mode:
        kw["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        kw["scale_factor"] = tuple(draw(st.sampled_from([0.5, 0.75, 1.5, 2.0, 2.5, 3.0])) for _ in range(nd))
    else:
        kw["size"] = _tup(draw, nd, 1, 9)
    return nd, ("Upsample", (), kw)


@st.composite
def adaptive_layers(draw):
    nd = draw(st.integers(1, 3))
    out = tuple(draw(st.one_of(st.none(), st.integers(1, 5))) for _ in range(nd))
    return nd, (f"AdaptiveAvgPool{nd}d", (out,), {})


SPATIAL = ("H", "W", "D")


def _single(case, sizes: list[int]):
    nd, (type_name, args, kw) = case
    try:
        net = Net().input("N", args[0] if args and type_name.startswith(("Conv", "ConvT")) else 2,
                          *SPATIAL[:nd]).layer(type_name, *args, **kw)
        graph = net.graph()
        infer(graph)
    except (LayerConfigError, ShapeError, ConvGraphError):
        assume(False)
    env = {"N": 2, **dict(zip(SPATIAL[:nd], sizes))}
    try:
        infer(graph).check(env)
    except ShapeError:
        assume(False)
    return graph, env


@pytest.mark.parametrize("strategy", [conv_layers(), conv_transpose_layers(), pool_layers(), upsample_layers(),
                                      adaptive_layers()],
                         ids=["conv", "conv_transpose", "pool", "upsample", "adaptive"])
def test_random_single_layer(strategy, torch):
    @FEW
    @given(case=strategy, sizes=st.lists(st.integers(1, 9), min_size=3, max_size=3),
           opset=st.sampled_from([None, 22, 24]))
    def run(case, sizes, opset):
        """opset 22/24: the newer spellings (Resize axes, ReduceMean axes input, Gelu, Swish)."""
        graph, env = _single(case, sizes)
        model = to_onnx(graph, params=init_params(graph, seed=3), opset=opset)
        assert_matches(graph, model, env, torch)

    run()


# --------------------------------------------------------------------------------------------
# Randomized multi-layer graphs: encoder/decoder with crop, cat and a residual add
# --------------------------------------------------------------------------------------------


@st.composite
def unet_like(draw):
    """x -> conv (any padding mode) -> pool (maybe ceil) -> up (ConvTranspose or Upsample) ->
    crop(skip, like=up) -> cat -> conv -> + a 1x1 projection of the cat."""
    nd = draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    net = Net().input("N", 2, *SPATIAL[:nd])
    net.layer(f"Conv{nd}d", 2, 4, k, padding=draw(st.integers(0, 1)), name="enc",
              padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])))
    pk = draw(st.integers(2, 3))
    net.layer(f"MaxPool{nd}d", pk, stride=2, padding=draw(st.integers(0, pk // 2)),
              ceil_mode=draw(st.booleans()), name="down")
    if draw(st.booleans()):
        net.layer(f"ConvTranspose{nd}d", 4, 4, 2, stride=2, output_padding=draw(st.integers(0, 1)), name="up")
    else:
        mode = draw(st.sampled_from(["nearest", "nearest-exact", ("linear", "bilinear")[nd - 1]]))
        net.layer("Upsample", scale_factor=2.0, mode=mode, name="up")
    net.merge("crop", "skip", "enc", "up").merge("cat", "joined", "skip", "up")
    net.layer(f"Conv{nd}d", 8, 4, 3, padding="same", name="fuse", src="joined")
    net.layer(f"Conv{nd}d", 8, 4, 1, name="proj", src="joined")
    net.merge("add", "out", "fuse", "proj").layer("GELU", name="act")
    return nd, net


@FEW
@given(case=unet_like(), sizes=st.lists(st.integers(3, 13), min_size=2, max_size=2))
def test_random_multi_layer_graph(case, sizes, torch):
    nd, net = case
    graph = net.graph()
    env = {"N": 2, **dict(zip(SPATIAL, sizes[:nd]))}
    try:
        infer(graph).check(env)
    except ShapeError:
        assume(False)
    model = to_onnx(graph, params=init_params(graph, seed=5))
    kinds = {n.op_type for n in model.graph.node}
    assert {"Slice", "Concat", "Add"} <= kinds
    assert_matches(graph, model, env, torch)


# --------------------------------------------------------------------------------------------
# Lowering details
# --------------------------------------------------------------------------------------------


def _ops(model: onnx.ModelProto, name: str | None = None) -> list[str]:
    return [n.op_type for n in model.graph.node if name is None or n.name == name]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_one_node_per_layer_with_explicit_pads():
    g = (Net().input("N", 3, "H", "W").layer("Conv2d", 3, 4, 4, padding="same", name="same")
         .layer("ConvTranspose2d", 4, 4, 3, stride=2, padding=1, output_padding=1, name="up")
         .layer("AvgPool2d", 3, stride=2, padding=1, name="avg").layer("MaxPool2d", 2, name="max")
         .layer("BatchNorm2d", 4, name="bn").layer("LeakyReLU", 0.2, name="lrelu")
         .layer("Upsample", scale_factor=2.0, name="ups").graph())
    model = to_onnx(g)
    by_name = {n.name: n for n in model.graph.node}
    expect = {"same": "Conv", "up": "ConvTranspose", "avg": "AveragePool", "max": "MaxPool",
              "bn": "BatchNormalization", "lrelu": "LeakyRelu", "ups": "Resize"}
    assert {k: by_name[k].op_type for k in expect} == expect
    assert _attrs(by_name["same"])["pads"] == [1, 1, 2, 2]
    assert _attrs(by_name["avg"])["count_include_pad"] == 1
    assert all("auto_pad" not in _attrs(n) for n in model.graph.node)
    resize = by_name["ups"]
    assert resize.input[1] == "" and resize.input[2]  # scales, not sizes
    assert _attrs(resize)["coordinate_transformation_mode"] == b"asymmetric"


@pytest.mark.parametrize("mode,onnx_mode", [("reflect", b"reflect"), ("replicate", b"edge"), ("circular", b"wrap")])
def test_padding_modes_are_a_pad_node(mode, onnx_mode):
    g = Net().input(1, 2, "L").layer("Conv1d", 2, 2, 3, padding=2, padding_mode=mode, name="c").graph()
    model = to_onnx(g)
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    assert _attrs(pad)["mode"] == onnx_mode
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert conv.input[0] == pad.output[0] and _attrs(conv)["pads"] == [0, 0]
    assert model.opset_import[0].version == (19 if mode == "circular" else 17)


def test_crop_slices_from_runtime_shapes():
    g = (Net().input("N", 1, "H", "W").layer("Conv2d", 1, 1, 3, name="small")
         .merge("crop", "c", "x", "small").graph())
    model = to_onnx(g)
    sl = next(n for n in model.graph.node if n.op_type == "Slice")
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers[sl.input[1]] == "Div" and "Shape" in producers.values()
    for env in ({"N": 1, "H": 5, "W": 8}, {"N": 2, "H": 9, "W": 4}):
        assert_matches(g, model, env)


def test_convtranspose_output_padding_above_stride_is_lowered_for_onnxruntime(torch):
    """torch allows output_padding < dilation with stride 1; onnxruntime does not: the exporter
    crops less at the end (and pads) instead, with the bias added after."""
    for pad in (0, 1, 3):
        g = Net().input(1, 2, "L").layer("ConvTranspose1d", 2, 3, 3, dilation=3, output_padding=2, padding=pad).graph()
        model = to_onnx(g)
        convt = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
        assert _attrs(convt)["output_padding"] == [0]
        for L in (1, 4):
            assert_matches(g, model, {"L": L}, torch)


def test_gelu_op_from_opset_20_else_erf():
    g = Net().input(1, 2, "L").layer("GELU", name="g").graph()
    assert "Erf" in _ops(to_onnx(g)) and "Gelu" not in _ops(to_onnx(g))
    assert _ops(to_onnx(g, opset=20), "g") == ["Gelu"]
    for opset in (17, 20):
        assert_matches(g, to_onnx(g, opset=opset), {"L": 7})


def test_flatten_and_linear_lowerings(torch):
    g = (Net().input("N", 2, 3, 4).layer("Flatten", name="f").layer("Linear", 24, 5, name="fc").graph())
    m = to_onnx(g)
    assert _ops(m, "f") == ["Flatten"] and _ops(m, "fc") == ["Gemm"]
    g2 = (Net().input("N", 2, 3, 4).layer("Flatten", 0, 1, name="f").layer("Linear", 4, 5, name="fc").graph())
    m2 = to_onnx(g2)
    assert _ops(m2, "f") == ["Reshape"] and "MatMul" in _ops(m2)
    for graph, model in ((g, m), (g2, m2)):
        assert_matches(graph, model, {"N": 2}, torch)


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"track_running_stats": False},
                                {"affine": False, "track_running_stats": False, "eps": 0.1}])
def test_batchnorm_variants(kw, torch):
    """Running statistics -> BatchNormalization; without them eval-mode torch uses the batch's own
    mean and biased variance, which the exporter spells out."""
    g = Net().input("N", 3, "L").layer("BatchNorm1d", 3, name="bn", **kw).graph()
    model = to_onnx(g, params=init_params(g, seed=7, realistic_bn=True))
    assert ("BatchNormalization" in _ops(model)) == kw.get("track_running_stats", True)
    assert_matches(g, model, {"N": 3, "L": 5}, torch)


@pytest.mark.parametrize("layer", [("ReLU",), ("LeakyReLU", 0.3), ("Sigmoid",), ("Tanh",), ("GELU",),
                                   ("GELU", "tanh"), ("SiLU",), ("Identity",), ("Dropout", 0.4),
                                   ("Dropout1d",)], ids=lambda t: "-".join(map(str, t)))
def test_every_activation(layer, torch):
    type_name, *args = layer
    kw = {"approximate": args.pop()} if type_name == "GELU" and args else {}
    g = Net().input("N", 2, "L").layer(type_name, *args, name="act", **kw).graph()
    for opset in (17, 20, 24):
        model = to_onnx(g, opset=opset)
        assert_matches(g, model, {"N": 2, "L": 9}, torch)
    assert len(_ops(to_onnx(g, opset=24))) == 1  # GELU from 20, SiLU (Swish) from 24


def test_inexact_upsample_scale_is_refused():
    g = Net().input(1, 1, "L").layer("Upsample", scale_factor=0.7, name="u").graph()
    with pytest.raises(ExportError, match=r"0.7 is not a float32 value"):
        to_onnx(g)


# --------------------------------------------------------------------------------------------
# Opset policy and shape-inference cross-check
# --------------------------------------------------------------------------------------------


def _ceil_pool() -> ir.Graph:
    return Net().input("N", 1, "H", "W").layer("MaxPool2d", 2, stride=3, padding=1, ceil_mode=True, name="p").graph()


def test_default_opset_is_the_lowest_faithful_one():
    plain = Net().input("N", 1, "L").layer("Conv1d", 1, 1, 3).graph()
    assert to_onnx(plain).opset_import[0].version == 17
    assert to_onnx(plain, opset=18).opset_import[0].version == 18
    assert to_onnx(_ceil_pool()).opset_import[0].version == 22


@pytest.mark.parametrize("opset,match", [(21, "needs opset 22"), (16, "opset 17 or later"),
                                         (MAX_OPSET + 1, "newer than the installed onnx")])
def test_pinned_opset_errors(opset, match):
    with pytest.raises(ExportError, match=match):
        to_onnx(_ceil_pool(), opset=opset)


def test_shape_inference_disagreement_raises(monkeypatch):
    """With the opset-22 requirement removed, ceil-mode pooling at opset 17 makes ONNX's inference
    keep a window torch drops: the exporter finds it at a concrete probe size and refuses."""
    monkeypatch.setitem(onnx_emit.LOWERINGS, ir.Pool, onnx_emit.Lowering(onnx_emit._pool, lambda spec: None))
    with pytest.raises(InferenceMismatch, match="dim 2"):
        to_onnx(_ceil_pool())
    with pytest.raises(InferenceMismatch):
        to_onnx(_ceil_pool(), sizes={"N": 1, "H": 4, "W": 4})


def test_static_export_bakes_sizes():
    g = _ceil_pool()
    model = to_onnx(g, sizes={"N": 1, "H": 4, "W": 7})
    assert dims_of(model.graph.input[0]) == [1, 1, 4, 7]
    assert dims_of(model.graph.output[0]) == [1, 1, 2, 3]
    partial = to_onnx(g, sizes={"N": 3})
    assert dims_of(partial.graph.input[0]) == [3, 1, "H", "W"]
    with pytest.raises(ShapeError):
        to_onnx(g, sizes={"Q": 3})


# --------------------------------------------------------------------------------------------
# Files: atomic writes, external data, weights, CLI errors
# --------------------------------------------------------------------------------------------

TINY = '"""A tiny model."""\ninput(N, 2, H, W)\nConv2d(2, 3, 3, padding=1)\nReLU()\nMaxPool2d(2, ceil_mode=True)\n'


def test_external_data_path(tmp_path: Path):
    g = Net().input("N", 2, "H", "W").layer("Conv2d", 2, 3, 3).graph()
    out = tmp_path / "big.onnx"
    export(g, out, external_data_threshold=0)
    assert (tmp_path / "big.onnx.data").stat().st_size >= 4 * 3 * 2 * 9
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    model = onnx.load(str(out))
    onnx.checker.check_model(str(out), full_check=True)
    env = {"N": 1, "H": 5, "W": 6}
    got = run_ort(str(out), random_inputs(g, env))["0"]
    ref = reference.run(g, random_inputs(g, env), model_params(model))["0"]
    assert np.abs(got - ref).max() < 1e-5


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch):
    g = Net().input("N", 2, "H", "W").layer("Conv2d", 2, 3, 3).graph()
    out = tmp_path / "m.onnx"
    out.write_bytes(b"good old model")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(ExportError, match="No space left"):
        export(g, out)
    assert out.read_bytes() == b"good old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_torch_state_dict_exports_and_matches_torch(tmp_path: Path, torch, capsys):
    """An nn.Sequential's state_dict saved with torch.save exports with --weights; onnxruntime
    then computes what the torch module computes."""
    seq = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2, ceil_mode=True)).eval()
    with torch.no_grad():
        seq[1].running_mean.uniform_(-0.5, 0.5)
        seq[1].running_var.uniform_(0.5, 1.5)
    torch.save(seq.state_dict(), tmp_path / "sd.pt")
    src = write_cg(tmp_path, TINY.replace("ReLU()", "BatchNorm2d(3)\nReLU()"))
    out = tmp_path / "m.onnx"
    assert cli("export", src, "-o", str(out), "--weights", str(tmp_path / "sd.pt")) == 0
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 9)).astype(np.float32)
    with torch.no_grad():
        want = seq(torch.from_numpy(x)).numpy()
    got = run_ort(str(out), {"x": x})["3"]
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


def _good_file(tmp_path: Path) -> tuple[str, Path, bytes]:
    src = write_cg(tmp_path, TINY)
    out = tmp_path / "m.onnx"
    assert cli("export", src, "-o", str(out)) == 0
    return src, out, out.read_bytes()


def _one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") <= 1, err
    for f in fragments:
        assert f in err, err
    return err


@pytest.mark.parametrize("edit,fragments", [
    (lambda p: p.pop("0.bias"), ("missing 0.bias",)),
    (lambda p: p.update({"9.weight": np.zeros(3, np.float32)}), ("extra 9.weight",)),
    (lambda p: p.update({"0.weight": np.zeros((3, 2, 5, 5), np.float32)}), ("misshapen 0.weight",)),
    (lambda p: (p.pop("0.bias"), p.update({"junk": np.zeros(1, np.float32)})), ("missing 0.bias", "extra junk")),
])
def test_bad_weights_exit_2_and_leave_destination(tmp_path: Path, capsys, edit, fragments):
    src, out, good = _good_file(tmp_path)
    params = init_params(cg.load(src))
    edit(params)
    np.savez(tmp_path / "w.npz", **params)
    capsys.readouterr()
    assert cli("export", src, "-o", str(out), "--weights", str(tmp_path / "w.npz")) == 2
    _one_line_error(capsys, "error:", *fragments)
    assert out.read_bytes() == good


def test_not_a_weights_file_exit_2(tmp_path: Path, capsys):
    src, out, good = _good_file(tmp_path)
    (tmp_path / "w.bin").write_text("these are not weights\n")
    capsys.readouterr()
    assert cli("export", src, "-o", str(out), "--weights", str(tmp_path / "w.bin")) == 2
    _one_line_error(capsys, "not a weights file")
    assert out.read_bytes() == good


def test_opset_too_low_exit_2(tmp_path: Path, capsys):
    src, out, good = _good_file(tmp_path)
    capsys.readouterr()
    assert cli("export", src, "-o", str(out), "--opset", "20") == 2
    assert "needs opset 22" in capsys.readouterr().err
    assert out.read_bytes() == good


@pytest.mark.parametrize("where", ["missing/dir/m.onnx", "afile/m.onnx", "."])
def test_unwritable_output_exit_2(tmp_path: Path, capsys, where):
    src = write_cg(tmp_path, TINY)
    (tmp_path / "afile").write_text("a file, not a directory")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli("export", src, "-o", str(tmp_path / where)) == 2
    _one_line_error(capsys, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_invalid_at_exit_2(tmp_path: Path, capsys):
    src, out, good = _good_file(tmp_path)
    capsys.readouterr()
    assert cli("export", src, "-o", str(out), "--at", "Q=4") == 2
    _one_line_error(capsys, "unknown size symbol")
    assert out.read_bytes() == good


@pytest.mark.parametrize("name", ["unet.cg", "dcgan_generator.cg"])
def test_written_file_is_the_model_with_its_weights(name, tmp_path):
    """export writes the weights from their arrays (protobuf fragments, no serialized copy): the
    file must read back as exactly the model to_onnx builds, initializers included, and pass the
    checker in full."""
    graph = cg.load(str(ROOT / "models" / name))
    params = init_params(graph, seed=3)
    path = tmp_path / "m.onnx"
    export(graph, path, params=params)
    loaded = onnx.load(str(path))
    assert loaded == to_onnx(graph, params=params)
    assert [t.name for t in loaded.graph.initializer] == list(params)
    for t in loaded.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(t), np.asarray(params[t.name], dtype=np.float32))
    onnx.checker.check_model(str(path), full_check=True)
