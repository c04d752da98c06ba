"""``convgraph summary``: MACs and receptive fields against PyTorch.

- MACs: the formula evaluated at several valid sizes equals the multiply-adds counted by torch
  forward hooks on the generated module (Conv: out.numel() * in/groups * prod(k); ConvTranspose:
  in.numel() * out/groups * prod(k); Linear: out.numel() * in_features), for every model.
- Parameters: ``sum(p.numel() for p in module.parameters())``.
- Receptive fields: back-propagating a one-hot gradient from one output element through the torch
  module (positive weights and inputs, so ReLU passes the gradient everywhere; max pools replaced by
  sum pools of the same geometry, which route the gradient to every tap) gives the input positions it
  depends on; their first and last index equal the window [start + o*jump, start + o*jump + size - 1]
  clipped to the input, for every model without upsampling; with upsampling the formula bounds it.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from test_models import MODEL_FILES, MODELS
from test_torch_source import load_source

import convgraph as cg
from convgraph import ir
from convgraph.shapes.summary import FIELDS, MACS, PARAMS, Field, evaluate, summarize
from convgraph.solve.sizes import check_sizes

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
ROOT = Path(__file__).resolve().parent.parent
UPSAMPLING = (ir.ConvTranspose, ir.Upsample)


def torch_module(torch, graph, tmp_path, name="m"):
    return load_source(cg.to_torch_source(graph), tmp_path, name).Model().double().eval()


def hook_macs(torch, module, inputs) -> int:
    nn, total = torch.nn, [0]

    def hook(m, args, out):
        x = args[0]
        if isinstance(m, nn.modules.conv._ConvTransposeNd):
            total[0] += x.numel() * m.out_channels // m.groups * math.prod(m.kernel_size)
        elif isinstance(m, nn.modules.conv._ConvNd):
            total[0] += out.numel() * m.in_channels // m.groups * math.prod(m.kernel_size)
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(*inputs)
    for h in handles:
        h.remove()
    return total[0]


def inputs_at(torch, graph, sizes):
    return [torch.rand(*[sizes.get(d, d) if isinstance(d, str) else d for d in n.dims], dtype=torch.float64)
            for n in graph.inputs]


def test_every_layer_kind_has_summary_rules():
    kinds = set(ir.LayerSpec.__args__)  # type: ignore[attr-defined]
    assert set(PARAMS) == set(MACS) == set(FIELDS) == kinds


@pytest.mark.slow
@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(MODELS)))
def test_macs_and_params_equal_torch_hooks(torch, tmp_path, path):
    graph = cg.load(path)
    s = summarize(graph)
    module = torch_module(torch, graph, tmp_path)
    assert s.params == sum(p.numel() for p in module.parameters())
    sizes_list = [sz for sz in check_sizes(graph, 6) if sz.get("N", 1) <= 2][:3]
    assert sizes_list
    for sizes in sizes_list:
        if graph.filename.endswith(("unet3d.cg", "unet_original.cg")) and max(sizes.values()) > 200:
            continue  # the large sizes cost seconds each on a CPU; the small ones cover the formula
        assert evaluate(s.macs, sizes) == hook_macs(torch, module, inputs_at(torch, graph, sizes)), sizes
        acts = sum(int(np.prod(v)) for k, v in graph.shapes(**sizes).items()
                   if k not in {n.name for n in graph.inputs})
        assert evaluate(s.activations, sizes) == acts


# --- receptive fields ------------------------------------------------------------------------------------


def _sum_pools(torch, module):
    """Max pools -> sum pools of the same geometry (depthwise conv with a ones kernel)."""
    F = torch.nn.functional

    class SumPool(torch.nn.Module):
        def __init__(self, pool, nd):
            super().__init__()
            self.pool, self.nd = pool, nd

        def forward(self, x):
            p = self.pool
            tup = lambda v: v if isinstance(v, tuple) else (v,) * self.nd  # noqa: E731
            assert not p.ceil_mode
            w = torch.ones(x.shape[1], 1, *tup(p.kernel_size), dtype=x.dtype)
            conv = getattr(F, f"conv{self.nd}d")
            return conv(x, w, stride=tup(p.stride), padding=tup(p.padding), dilation=tup(p.dilation), groups=x.shape[1])

    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            for nd in (1, 2, 3):
                if isinstance(child, getattr(torch.nn, f"MaxPool{nd}d")):
                    parent._modules[name] = SumPool(child, nd)


def _positive(torch, module):
    """Positive weights averaging over their fan-in (activations stay positive and moderate, so no
    tanh or sigmoid saturates to a zero gradient), small positive biases."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((p.abs() + 0.01) / p[0].numel() if p.dim() > 1 else torch.full_like(p, 0.01))


def measured_support(torch, module, graph, sizes, out_index):
    """Per spatial axis, (first, last) input index with a nonzero gradient of one output element."""
    x = inputs_at(torch, graph, sizes)[0].requires_grad_(True)
    y = module(x)
    grad = torch.zeros_like(y)
    grad[(0, 0, *out_index)] = 1.0
    y.backward(grad)
    g = x.grad[0].abs().sum(0)
    out = []
    for axis in range(g.dim()):
        other = tuple(a for a in range(g.dim()) if a != axis)
        nz = torch.nonzero(g.sum(other) if other else g).flatten()
        out.append((int(nz.min()), int(nz.max())))
    return out


def _deepest_local_value(graph, s):
    """The last value with spatial axes whose every field is known (not global)."""
    for i in range(len(graph.nodes) - 1, 0, -1):
        row = s.rows[i]
        if row.fields and all(f is not None for f in row.fields) and len(row.shape) > 2:
            return i
    return None


def _truncated(graph, i):
    nodes = graph.nodes[: i + 1]
    return cg.api.wrap(ir.Graph(nodes, (nodes[-1].name,), graph.filename))


def _window(field, o, n):
    lo = field.start + o * field.jump
    hi = lo + field.size - 1
    return max(int(sp.ceiling(lo)), 0), min(int(sp.floor(hi)), n - 1)


def _no_ceil_max_pools(graph):
    """Max pools become sum pools (a conv, which has no ceil mode)."""
    return not any(isinstance(n.layer, ir.Pool) and n.layer.mode == "max" and n.layer.ceil_mode
                   for n in graph.layers())


@pytest.mark.slow
@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(MODELS)))
def test_receptive_fields_equal_gradients(torch, tmp_path, path):
    full = cg.load(path)
    i = _deepest_local_value(full, summarize(full))
    if i is None or full.inputs[0].dims[2:] == () or len(full.inputs) > 1:
        pytest.skip("no value with a local receptive field on a single spatial input")
    graph = _truncated(full, i)
    assert _no_ceil_max_pools(graph)
    row = summarize(graph).rows[-1]
    module = torch_module(torch, graph, tmp_path)
    _sum_pools(torch, module)
    _positive(torch, module)
    exact = not any(isinstance(n.layer, UPSAMPLING) for n in graph.layers())
    for sizes in [sz for sz in check_sizes(graph, 4) if max(sz.values()) <= 160][:2]:
        sizes = {**sizes, **({"N": 1} if "N" in sizes else {})}
        out_shape = graph.output_shapes(**sizes)[graph.outputs[0]][2:]
        in_shape = [sizes.get(d, d) if isinstance(d, str) else d for d in graph.inputs[0].dims[2:]]
        o = tuple(n // 2 for n in out_shape)
        measured = measured_support(torch, module, graph, sizes, o)
        fields = [f.at(sizes) for f in row.fields]
        predicted = [_window(f, oi, n) for f, oi, n in zip(fields, o, in_shape)]
        if exact:
            assert measured == predicted, (sizes, o, fields)
        else:
            for (mlo, mhi), (plo, phi) in zip(measured, predicted):
                assert plo <= mlo and mhi <= phi, (sizes, o, fields, measured)


# --- the verb -------------------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "convgraph", "summary", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_cli_json_at_sizes_is_numbers():
    proc = run_cli(MODELS / "resnet18.cg", "--json", "--at", "N=2", "--at", "H=97", "--at", "W=131")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    s = summarize(cg.load(MODELS / "resnet18.cg"))
    sizes = {"N": 2, "H": 97, "W": 131}
    assert int(out["total"]["macs"]) == evaluate(s.macs, sizes)
    assert out["total"]["params"] == 11689512
    conv1 = next(v for v in out["values"] if v["name"] == "conv1")
    assert conv1["shape"] == ["2", "64", "49", "66"]
    assert conv1["fields"] == [{"size": "7", "jump": "2", "start": "-3"}] * 2


def test_cli_formulas_and_totals():
    proc = run_cli(MODELS / "unet.cg")
    assert proc.returncode == 0, proc.stderr
    assert "864*H*N*W" in proc.stdout and "total: 7,763,074 parameters" in proc.stdout


def test_cli_violated_size_is_one_line():
    proc = run_cli(MODELS / "unet.cg", "--at", "H=40", "--at", "W=48", "--at", "N=1")
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


def test_cli_plot(tmp_path):
    from PIL import Image

    out = tmp_path / "unet.png"
    proc = run_cli(MODELS / "unet.cg", "--plot", out)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600


def test_plot_series_uses_valid_sizes_only():
    from convgraph.animate.plot import series

    graph = cg.load(MODELS / "unet.cg")
    s = series(graph, summarize(graph))
    assert len(s.sizes) >= 8 and all(sz["H"] % 16 == 0 and sz["W"] % 16 == 0 for sz in s.sizes)
    assert list(s.macs) == sorted(s.macs) and s.macs[0] == evaluate(summarize(graph).macs, s.sizes[0])


LOCAL = """\
x = input(N, 3, H, W)
a = ReflectionPad2d((1, 2, 0, 1))(x)
b = Conv2d(3, 8, 3, stride=2)(a)
c = PixelUnshuffle(2)(b)
d = Conv2d(32, 8, 1)(c)
e = F.pad(d, (1, 0, 0, 2))
f = e[:, :, 1:, 2:]
g = Softmax(dim=1)(f)
h = PReLU(8)(g)
i = MaxPool2d(3, stride=1)(h)
j = pad(i, like=h)
k = crop(h, like=i)
m = j * 2.0
n, o = chunk(m, 2, dim=1)
y = cat([n, o], dim=1)
"""

UP = """\
x = input(N, 3, H, W)
a = Conv2d(3, 8, 3, stride=2, padding=1)(x)
b = PixelShuffle(2)(a)
c = Conv2d(2, 4, 3, padding=1)(b)
y = c * 1.5
"""


@pytest.mark.parametrize("text", [LOCAL, UP], ids=["local", "upsampling"])
def test_fields_of_pads_shuffles_slices_and_merges(torch, tmp_path, text):
    """Exact without upsampling; a bound after PixelShuffle (as after any upsampling)."""
    graph = cg.parse(text)
    row = summarize(graph).rows[-1]
    module = torch_module(torch, graph, tmp_path)
    _sum_pools(torch, module)
    _positive(torch, module)
    sol = cg.solve(graph, tiling=False)
    for h, w in ((23, 30), (36, 27)):
        sizes = {"N": 1, "H": sol.runs("H").near(h)[1], "W": sol.runs("W").near(w)[1]}
        out_shape = graph.output_shapes(**sizes)[graph.outputs[0]][2:]
        o = tuple(n // 2 for n in out_shape)
        measured = measured_support(torch, module, graph, sizes, o)
        fields = [f.at(sizes) for f in row.fields]
        predicted = [_window(f, oi, n) for f, oi, n in zip(fields, o, (sizes["H"], sizes["W"]))]
        if text is LOCAL:
            assert measured == predicted, (sizes, o, fields)
        else:
            assert all(p[0] <= m[0] and m[1] <= p[1] for m, p in zip(measured, predicted)), (measured, predicted)
        assert evaluate(summarize(graph).macs, sizes) == hook_macs(torch, module, inputs_at(torch, graph, sizes))


def test_resize_to_another_value_and_statistics_are_global():
    g = cg.parse("x = input(N, 3, H, W)\na = Conv2d(3, 4, 3, stride=2)(x)\n"
                 "b = interpolate(a, like=x)\nc = InstanceNorm2d(3)(x)\nd = GroupNorm(1, 3)(x)")
    rows = {r.name: r for r in summarize(g).rows}
    assert rows["b"].fields == rows["c"].fields == rows["d"].fields == (None, None)
    assert rows["a"].fields[0] == Field(3, 2, 0)
