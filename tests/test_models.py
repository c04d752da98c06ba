"""Every model in models/ against PyTorch, the semantic oracle.

Each ``.cg`` file documents its sizes in its docstring, one line each (N defaults to 1):

    Example sizes: N=1, H=32, W=48; N=2, H=16, W=64      (valid: convgraph and torch agree on shapes)
    Invalid sizes: H=40, W=40 (why)                       (convgraph raises ShapeError, torch raises)

For every model (globbed, so new files are covered): it parses; at each example size the module
built by ``to_torch`` runs and every output's shape equals ``graph.output_shapes(**sizes)``; its
state_dict keys and shapes are convgraph's parameter names and shapes; at each invalid size both
sides refuse; for the cheap models, a sweep of sizes around the example checks that convgraph
accepts exactly the sizes torch accepts, with the same shapes; convgraph's numpy reference computes
the same values as torch (float64). Then the model-specific facts: the convolution-arithmetic
table, DCGAN, ResNet-18's formula, each docstring's "Valid sizes" as an exact set (the padded
U-Net's multiples of 16, the residue classes of unet_strided, encdec1d_stride4, fpn_lite, ...),
and to_torch on what the models do not reach (explicit asymmetric pads, odd layer names).
"""
from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from torch_equiv import load_params, run_torch, to_torch, torch_layer

import convgraph as cg
from convgraph import dims as D
from convgraph.errors import ShapeError
from convgraph.export.weights import init_params, param_specs
from convgraph.validate import reference

# torch's note that an even kernel with padding='same' pads a copy of the input (dilated_tcn.cg)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

MODELS = Path(__file__).resolve().parent.parent / "models"
MODEL_FILES = sorted(MODELS.rglob("*.cg"))
TABLE = json.loads((MODELS / "examples" / "table.json").read_text())["rows"]
#: a model whose example forward costs fewer multiply-adds than this also gets a size sweep
SWEEP_MACS = 1e9
SWEEP_RADIUS = 8


def _id(path: Path) -> str:
    return str(path.relative_to(MODELS))


def doc_sizes(path: Path, label: str) -> list[dict[str, int]]:
    """The size assignments on the docstring line ``{label} sizes: A=1, B=2; A=3, B=4 (note)``."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    out = []
    for line in doc.splitlines():
        if line.startswith(f"{label} sizes:"):
            text = re.sub(r"\(.*\)", "", line.split(":", 1)[1])
            for group in text.split(";"):
                pairs = [p.split("=") for p in group.replace(",", " ").split()]
                out.append({k: int(v) for k, v in pairs})
    return out


def full_sizes(graph: cg.Graph, sizes: dict[str, int]) -> dict[str, int]:
    """N defaults to 1; every other symbol must be given."""
    full = dict(sizes)
    if "N" in graph.symbols:
        full.setdefault("N", 1)
    assert set(full) == set(graph.symbols), f"sizes {sizes} vs symbols {graph.symbols}"
    return full


def make_inputs(torch, graph: cg.Graph, sizes: dict[str, int]) -> list:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*[d if isinstance(d, int) else sizes[d] for d in node.dims], generator=gen)
            for node in graph.inputs]


def torch_output_shapes(torch, module, graph: cg.Graph, sizes: dict[str, int]) -> dict[str, tuple]:
    with torch.no_grad():
        out = module(*make_inputs(torch, graph, sizes))
    outs = out if isinstance(out, tuple) else (out,)
    return {name: tuple(t.shape) for name, t in zip(graph.outputs, outs)}


def torch_refuses(torch, module, graph: cg.Graph, sizes: dict[str, int]) -> bool:
    """torch raises, or returns an empty output: torch 2.13 does not raise for some transposed convs
    whose output would be 0 long (ConvTranspose2d(1, 1, 4, padding=2) on 1x5 gives 0x4, while
    ConvTranspose2d(1, 1, 3, padding=2) on 2x5 raises "Output size is too small")."""
    try:
        shapes = torch_output_shapes(torch, module, graph, sizes)
    except (RuntimeError, ValueError):
        return True
    return any(0 in s for s in shapes.values())


def forward_macs(graph: cg.Graph, sizes: dict[str, int]) -> int:
    """Multiply-adds of the weighted layers at ``sizes`` (weight numel times output positions)."""
    shapes = graph.shapes(**sizes)
    specs = param_specs(graph)
    total = 0
    for node in graph.layers():
        w = specs.get(f"{node.layer_name}.weight")
        if w is not None and len(w) > 1:
            total += math.prod(w) * math.prod(shapes[node.name][2:]) * shapes[node.name][0]
    return total


class _Lazy(dict):
    """path -> value, built on first use (so one broken model fails only its own tests)."""

    def __init__(self, build):
        super().__init__()
        self._build = build

    def __missing__(self, path):
        self[path] = value = self._build(path)
        return value


@pytest.fixture(scope="module")
def graphs():
    return _Lazy(lambda p: cg.load(str(p)))


@pytest.fixture(scope="module")
def modules(torch, graphs):
    """One torch module per model, with convgraph's deterministic parameters loaded by name."""

    def build(path):
        g = graphs[path]
        m = to_torch(g)
        load_params(m, init_params(g, seed=1, realistic_bn=True))
        return m

    return _Lazy(build)


# --- every model -----------------------------------------------------------------------------------


def test_models_exist():
    names = {_id(p) for p in MODEL_FILES}
    for required in ["unet.cg", "dcgan_generator.cg", "dcgan_discriminator.cg", "resnet18.cg",
                     "audio_autoencoder.cg", "unet3d.cg", "unet_original.cg", "unet_strided.cg",
                     "encdec1d_stride4.cg", "needs_output_padding.cg"]:
        assert required in names
    assert {r["file"] for r in TABLE} <= {p.name for p in (MODELS / "examples").glob("*.cg")}


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_parses_and_documents_sizes(path, graphs):
    g = graphs[path]
    assert g.doc and "Valid sizes" in g.doc, f"{_id(path)}: the docstring must say which sizes are valid"
    examples = doc_sizes(path, "Example")
    assert examples, f"{_id(path)}: add an 'Example sizes: ...' line to the docstring"
    symbolic = g.output_shapes()
    assert symbolic and all(len(s) >= 2 for s in symbolic.values())
    for sizes in examples + doc_sizes(path, "Invalid"):
        full_sizes(g, sizes)


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_state_dict_names_are_convgraphs(path, torch, graphs, modules):
    state = {k: tuple(v.shape) for k, v in modules[path].state_dict().items()
             if not k.endswith(".num_batches_tracked")}
    assert state == param_specs(graphs[path])


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_shapes_match_torch(path, torch, graphs, modules):
    g = graphs[path]
    for sizes in doc_sizes(path, "Example"):
        sizes = full_sizes(g, sizes)
        assert torch_output_shapes(torch, modules[path], g, sizes) == g.output_shapes(**sizes), sizes


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_invalid_sizes_refused_by_both(path, torch, graphs, modules):
    g = graphs[path]
    for sizes in doc_sizes(path, "Invalid"):
        sizes = full_sizes(g, sizes)
        with pytest.raises(ShapeError):
            g.output_shapes(**sizes)
        assert torch_refuses(torch, modules[path], g, sizes), f"torch runs {sizes}"


def _sweep(torch, g, module, base: dict[str, int], radius: int):
    """Vary each spatial symbol around ``base`` (the others fixed): convgraph accepts a size iff
    torch runs it, and then the shapes agree."""
    for sym in (s for s in g.symbols if s != "N"):
        for v in range(max(1, base[sym] - radius), base[sym] + radius + 1):
            sizes = {**base, sym: v}
            try:
                want = g.output_shapes(**sizes)
            except ShapeError as e:
                assert torch_refuses(torch, module, g, sizes), f"torch runs {sizes}, convgraph refuses: {e}"
                continue
            assert torch_output_shapes(torch, module, g, sizes) == want, sizes


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_valid_sizes_match_torch(path, torch, graphs, modules):
    """A sweep around the first example size (N=1); only +-1 for models too costly on CPU."""
    g = graphs[path]
    base = full_sizes(g, {**doc_sizes(path, "Example")[0], "N": 1} if "N" in g.symbols
                      else doc_sizes(path, "Example")[0])
    radius = SWEEP_RADIUS if forward_macs(g, base) <= SWEEP_MACS else 1
    _sweep(torch, g, modules[path], base, radius)


@pytest.mark.parametrize("path", MODEL_FILES, ids=_id)
def test_model_values_match_reference(path, torch, graphs):
    """convgraph's numpy reference and torch compute the same model (float64, same parameters)."""
    g = graphs[path]
    sizes = full_sizes(g, doc_sizes(path, "Example")[0])
    params = init_params(g, seed=2, realistic_bn=True)
    rng = np.random.default_rng(0)
    inputs = {n.name: rng.standard_normal([d if isinstance(d, int) else sizes[d] for d in n.dims])
              for n in g.inputs}
    want = run_torch(g, inputs, params)
    got = reference.run(g, inputs, params)
    assert set(want) == set(g.outputs) and set(want) <= set(got)
    for name in want:
        scale = max(1.0, float(np.abs(want[name]).max()))
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9 * scale, err_msg=name)


# --- the convolution-arithmetic table (models/examples) --------------------------------------------


def _torch_from_layer_string(torch, layer: str):
    """``"ConvTranspose2d(1, 1, 3, stride=2)"`` -> the torch module, literals only (no eval)."""
    call = ast.parse(layer, mode="eval").body
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return getattr(torch.nn, call.func.id)(*args, **kwargs)


@pytest.mark.parametrize("row", TABLE, ids=[r["file"] for r in TABLE])
def test_example_table_row(row, torch):
    path = MODELS / "examples" / row["file"]
    g = cg.load(str(path))
    assert row["layer"] in path.read_text()
    ((out_name, formula),) = g.output_shapes().items()
    syms = {s: D.sympy_symbol(s) for s in ("H", "W")}
    want = tuple(sp.sympify(f, locals=syms) for f in row["formula"])
    assert tuple(sp.simplify(a - b) for a, b in zip(formula, want)) == (0,) * 4, formula
    _, _, h, w = row["input"]
    env = {syms["H"]: h, syms["W"]: w}
    assert tuple(int(sp.sympify(f).subs(env)) for f in formula) == tuple(row["output"])
    assert g.output_shapes(H=h, W=w) == {out_name: tuple(row["output"])}
    # the layer convgraph builds is exactly the layer the table names, and torch agrees on the size
    ref = _torch_from_layer_string(torch, row["layer"])
    assert repr(torch_layer(g.layers()[0].layer)) == repr(ref)
    assert tuple(ref(torch.zeros(*row["input"])).shape) == tuple(row["output"])
    for hh, ww in [(h + 1, h + 4), (row["min_size"], row["min_size"] + 2)]:
        assert g.output_shapes(H=hh, W=ww)[out_name] == tuple(ref(torch.zeros(1, 1, hh, ww)).shape)


# --- model-specific facts -------------------------------------------------------------------------

#: file -> (symbol, the other sizes, range to scan, the documented "Valid sizes" as a predicate)
VALID_SETS = {
    "unet.cg": ("H", {"W": 32}, range(1, 100), lambda h: h % 16 == 0),
    "unet3d.cg": ("D", {"H": 8, "W": 12}, range(1, 40), lambda d: d % 4 == 0),
    "unet_strided.cg": ("W", {"H": 16}, range(1, 70), lambda w: w % 8 == 0),
    "needs_output_padding.cg": ("H", {"W": 5}, range(1, 40), lambda h: h % 2 == 1),
    "encdec1d_stride4.cg": ("L", {}, range(1, 120), lambda n: n >= 16 and n % 16 in (0, 1, 2, 3)),
    "fpn_lite.cg": ("H", {"W": 8}, range(1, 60), lambda h: h >= 7 and h % 8 in (0, 7)),
    "audio_autoencoder.cg": ("L", {}, range(1, 80), lambda n: n >= 32),
    "dcgan_discriminator.cg": ("W", {"H": 64}, range(1, 100), lambda w: w >= 64),
    "transformer_net.cg": ("H", {"W": 8}, range(1, 30), lambda h: h >= 5),
    "resnet18.cg": ("H", {"W": 7}, range(1, 70), lambda h: True),
    "dilated_tcn.cg": ("T", {}, range(1, 40), lambda n: True),
    "unet_original.cg": ("H", {"W": 188}, range(150, 260), lambda h: h >= 188),
    "unet_milesial.cg": ("H", {"W": 17}, range(1, 60), lambda h: h >= 16),
    "espcn.cg": ("H", {"W": 3}, range(1, 30), lambda h: True),
    "mobilenetv3_small.cg": ("H", {"W": 5}, range(1, 40), lambda h: True),
    "cyclegan_resnet.cg": ("H", {"W": 7}, range(1, 40), lambda h: h >= 5),
    "wavenet_gated.cg": ("L", {}, range(1, 40), lambda n: True),
    "tcn_causal.cg": ("L", {}, range(1, 40), lambda n: True),
}


@pytest.mark.parametrize("name", sorted(VALID_SETS))
def test_documented_valid_sizes(name, graphs):
    """The docstring's "Valid sizes" is exactly the set convgraph accepts (torch agrees on the
    sizes swept by test_model_valid_sizes_match_torch)."""
    sym, others, scan, valid = VALID_SETS[name]
    g = graphs[MODELS / name]
    sizes = {**others, "N": 1} if "N" in g.symbols else dict(others)
    accepted = []
    for v in scan:
        try:
            g.output_shapes(**sizes, **{sym: v})
            accepted.append(v)
        except ShapeError:
            pass
    assert accepted == [v for v in scan if valid(v)]


def test_unet_original_paper_tile(graphs):
    g = graphs[MODELS / "unet_original.cg"]
    assert g.output_shapes(N=1, H=572, W=572) == {"head": (1, 2, 388, 388)}
    for h in range(188, 400, 16):  # tile-exact sizes: the output is 184 pixels smaller
        assert g.output_shapes(N=1, H=h, W=h + 16)["head"][2:] == (h - 184, h - 168)


def test_dcgan_generator_maps_latent_to_64x64(torch, graphs, modules):
    path = MODELS / "dcgan_generator.cg"
    g = graphs[path]
    assert isinstance(modules[path], torch.nn.Sequential)
    assert [n for n, _ in modules[path].named_children()] == [str(i) for i in range(14)]
    assert list(g.output_shapes(N=2).values()) == [(2, 3, 64, 64)]
    with torch.no_grad():
        assert tuple(modules[path](torch.randn(2, 100, 1, 1)).shape) == (2, 3, 64, 64)


def test_dcgan_discriminator_64x64_to_a_score(torch, graphs, modules):
    path = MODELS / "dcgan_discriminator.cg"
    g = graphs[path]
    assert list(g.output_shapes(N=2, H=64, W=64).values()) == [(2, 1, 1, 1)]
    ((_, shape),) = g.output_shapes().items()
    h = D.sympy_symbol("H")
    assert sp.simplify(shape[2] - (sp.floor(h / 16) - 3)) == 0
    with torch.no_grad():
        assert tuple(modules[path](torch.randn(2, 3, 64, 64)).shape) == (2, 1, 1, 1)


def test_resnet18_formula_before_pool(graphs):
    g = graphs[MODELS / "resnet18.cg"]
    res = g.infer()
    _n, c, h, w = res.dims("layer4_1")
    assert c == 512
    assert D.dim_str(h) == "floor((H - 1)/32) + 1"
    assert D.dim_str(w) == "floor((W - 1)/32) + 1"
    assert sp.sympify(D.dim_str(h), locals={"H": D.sympy_symbol("H")}) == g.shapes()["layer4_1"][2]
    assert g.output_shapes(N=3, H=224, W=200) == {"fc": (3, 1000)}
    assert g.shapes(N=1, H=224, W=200)["layer4_1"] == (1, 512, 7, 7)


def test_resnet18_matches_torchvision_layout(torch, graphs, modules):
    """The same parameters, in torchvision's order, under torchvision's names."""
    keys = [k for k in modules[MODELS / "resnet18.cg"].state_dict() if not k.endswith("num_batches_tracked")]
    assert len(keys) == 102 and keys[:2] == ["conv1.weight", "bn1.weight"] and keys[-2:] == ["fc.weight", "fc.bias"]
    assert "layer3.0.downsample.0.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    n_params = sum(p.numel() for p in modules[MODELS / "resnet18.cg"].parameters())
    assert n_params == 11_689_512  # torchvision resnet18()


def test_unet_valid_exactly_for_multiples_of_16(torch, graphs, modules):
    path = MODELS / "unet.cg"
    g = graphs[path]
    for h in range(1, 97):
        if h % 16 == 0:
            assert g.output_shapes(N=1, H=h, W=h + 16) == {"head": (1, 2, h, h + 16)}
        else:
            with pytest.raises(ShapeError):
                g.output_shapes(N=1, H=h, W=h)
    for h, w in [(16, 48), (48, 32)]:
        assert torch_output_shapes(torch, modules[path], g, {"N": 1, "H": h, "W": w}) == {"head": (1, 2, h, w)}
    for bad in [40, 24]:
        with pytest.raises(RuntimeError):
            torch_output_shapes(torch, modules[path], g, {"N": 1, "H": bad, "W": bad})


# --- to_torch itself, on what the models do not reach --------------------------------------------


def test_to_torch_explicit_asymmetric_pads_crop_and_two_outputs(torch):
    """IR built by hand: asymmetric pads on a strided conv (PaddedConv: F.pad, then the conv), a
    layer named like an nn.Module method, a crop, a cat and two outputs."""
    from convgraph import ir
    from convgraph.errors import Loc

    here = Loc("<test>", 1, 1)
    x = ir.Node("x", "input", (), here, dims=(2, 2, "H", "W"))
    a = ir.Node("a", "layer", ("x",), here, layer_name="train",
                layer=ir.Conv(type_name="Conv2d", nd=2, in_channels=2, out_channels=4, kernel_size=(4, 3),
                              stride=(1, 1), padding=((1, 2), (1, 1)), dilation=(1, 1)))
    b = ir.Node("b", "layer", ("a",), here, layer_name="b",
                layer=ir.Conv(type_name="Conv2d", nd=2, in_channels=4, out_channels=4, kernel_size=(3, 3),
                              stride=(2, 1), padding=((0, 1), (2, 0)), dilation=(1, 1), padding_mode="reflect"))
    c = ir.Node("c", "crop", ("a", "b"), here)
    d = ir.Node("d", "cat", ("c", "b"), here, dim=1)
    g = ir.Graph((x, a, b, c, d), ("d", "b"))
    module = to_torch(g)
    assert [n for n, _ in module.named_children()] == ["train", "b"]
    assert module.train is not module._modules["train"]  # the method is untouched
    params = init_params(g, seed=3)
    inputs = {"x": np.random.default_rng(1).standard_normal((2, 2, 7, 9))}
    out = run_torch(g, inputs, params)
    assert out["d"].shape == (2, 8, 3, 9) and out["b"].shape == (2, 4, 3, 9)
    ref = reference.run(g, inputs, params)
    for name in ("d", "b"):
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-10, atol=1e-12)
    with pytest.raises(KeyError, match="missing"):
        load_params(module, {k: v for k, v in params.items() if k != "b.bias"})
