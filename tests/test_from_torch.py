"""``cg.from_torch``: PyTorch modules traced with torch.fx into the IR.

- Round trip: every model in models/ -> ``to_torch_source`` -> import -> ``from_torch`` gives the
  same IR: the same layers (specs and layer names) in the same order wired the same way, the same
  outputs, shape formulas and valid sets. Value names of merges (cat, +, crop) are fx's (``cat``,
  ``add_1``) rather than the file's: fx names a function call's result after the function.
- Modules written here in plain torch.nn (padded U-Net, ResNet-style classifier, 1-D encoder/decoder,
  DCGAN generator and discriminator, milesial's U-Net with F.pad): the valid sizes convgraph derives
  equal those found by running the module at every size in a range (torch brute force), and the
  output shapes agree wherever it runs.
- Errors name the fx node and what is supported.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_models import MODEL_FILES, MODELS
from test_torch_source import load_source

import convgraph as cg
from convgraph import dims as D
from convgraph import ir
from convgraph.errors import ConvGraphError, ShapeError

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
ROOT = Path(__file__).resolve().parent.parent


def structure(graph) -> list[tuple]:
    """The IR up to value names: per node its op, spec, layer name, dim and inputs by position."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    return [(n.op, n.layer, _module_name(n), n.dim if n.op == "cat" else None,
             tuple(index[i] for i in n.inputs), n.dims, n.attrs) for n in graph.nodes]


def _module_name(node):
    """A layer's name, but for F.pad, which the source writes in forward (fx names it 'pad')."""
    if node.op != "layer" or (isinstance(node.layer, ir.Pad) and node.layer.nd == 0):
        return None
    return node.layer_name


def valid_sets(graph) -> dict[str, str]:
    sol = cg.solve(graph, tiling=False)
    return {s: sol.describe_runs(s) for s in graph.symbols}


@pytest.mark.slow
@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(MODELS)))
def test_round_trip_through_torch_source(torch, tmp_path, path):
    graph = cg.load(path)
    model = load_source(cg.to_torch_source(graph), tmp_path).Model()
    back = cg.from_torch(model, *(n.dims for n in graph.inputs))
    assert structure(back) == structure(graph)
    out = {back.nodes[i].name for i, n in enumerate(graph.nodes) if n.name in graph.outputs}
    assert set(back.outputs) == out
    shapes = lambda g: [tuple(D.dim_str(d) for d in g.infer().values[o]) for o in g.outputs]  # noqa: E731
    assert shapes(back) == shapes(graph)
    assert valid_sets(back) == valid_sets(graph)
    # a module's value is named by its module path, as in the file (inputs: the forward's argument)
    assert [n.name for n in back.layers() if _module_name(n)] == \
        [n.layer_name for n in graph.layers() if _module_name(n)]


# --- modules written in plain torch.nn --------------------------------------------------------------------


def _nets(torch):
    nn, F = torch.nn, torch.nn.functional

    def double_conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class PaddedUNet(nn.Module):
        """Two levels, padded convs, transposed-conv up, cat skip."""

        def __init__(self):
            super().__init__()
            self.inc, self.down1, self.down2 = double_conv(3, 4), double_conv(4, 8), double_conv(8, 8)
            self.up1, self.conv1 = nn.ConvTranspose2d(8, 8, 2, stride=2), double_conv(16, 8)
            self.up2, self.conv2 = nn.ConvTranspose2d(8, 4, 2, stride=2), double_conv(8, 4)
            self.outc = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down1(F.max_pool2d(x1, 2))
            x3 = self.down2(F.max_pool2d(x2, 2))
            y = self.conv1(torch.cat([x2, self.up1(x3)], dim=1))
            y = self.conv2(torch.cat([x1, self.up2(y)], dim=1))
            return self.outc(y)

    class Up(nn.Module):
        """milesial/Pytorch-UNet's Up: pad x1 to x2's size, then cat."""

        def __init__(self, cin, cout):
            super().__init__()
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = double_conv(cin, cout)

        def forward(self, x1, x2):
            x1 = self.up(x1)
            diffY = x2.size()[2] - x1.size()[2]
            diffX = x2.size()[3] - x1.size()[3]
            x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
            return self.conv(torch.cat([x2, x1], dim=1))

    class MilesialUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inc = double_conv(3, 4)
            self.down1 = nn.Sequential(nn.MaxPool2d(2), double_conv(4, 8))
            self.up1 = Up(8, 4)
            self.outc = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            x1 = self.inc(x)
            return self.outc(self.up1(self.down1(x1), x1))

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.downsample(x))

    class ResNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16, 1))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
            x = self.avgpool(self.layer1(x))
            return self.fc(torch.flatten(x, 1))

    class EncDec1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Conv1d(2, 8, 5, stride=2, padding=2)
            self.enc2 = nn.Conv1d(8, 16, 5, stride=2, padding=2)
            self.dec2 = nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
            self.dec1 = nn.ConvTranspose1d(16, 2, 4, stride=2, padding=1)

        def forward(self, x):
            e1 = torch.tanh(self.enc1(x))
            e2 = torch.tanh(self.enc2(e1))
            d2 = F.relu(self.dec2(e2))
            return self.dec1(torch.cat([d2, e1], 1))

    class DCGANGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(16, 32, 4, 1, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(True),
                nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
                nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, z):
            return self.main(z)

    class DCGANDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(3, 8, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(16, 1, 4, 1, 0, bias=False), nn.Sigmoid())

        def forward(self, x):
            return self.main(x)

    class Functional(nn.Module):
        """Statistics, shuffles, resize to the input's size, slicing, numbers, chunk."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.gn, self.norm = nn.GroupNorm(2, 8), nn.InstanceNorm2d(8)
            self.shuffle, self.conv2 = nn.PixelShuffle(2), nn.Conv2d(2, 4, 3, padding=1)

        def forward(self, x):
            a = self.gn(F.relu(self.conv1(x)))
            t = F.pad(self.conv2(self.shuffle(a)), [1, 0, 0, 1])[:, :, 1:, :-2]
            u = F.interpolate(self.norm(a), size=t.shape[2:], mode="bilinear", align_corners=False)
            m = u[:, :4] * 0.5 - t
            q1, q2 = torch.chunk(m, 2, dim=1)
            return torch.cat([q2, 1.0 - q1, x], 1)

    return {"padded_unet": (PaddedUNet, ("N", 3, "H", "W")), "functional": (Functional, ("N", 3, "H", "W")),
            "milesial_unet": (MilesialUNet, ("N", 3, "H", "W")),
            "resnet": (ResNetish, ("N", 3, "H", "W")), "encdec1d": (EncDec1d, ("N", 2, "L")),
            "dcgan_generator": (DCGANGenerator, ("N", 16, "H", "W")),
            "dcgan_discriminator": (DCGANDiscriminator, ("N", 3, "H", "W"))}


NETS = ["padded_unet", "functional", "milesial_unet", "resnet", "encdec1d", "dcgan_generator", "dcgan_discriminator"]
#: sizes tried per spatial symbol (the others held at a valid size)
RANGE = range(1, 41)


def _runs(torch, module, dims, sizes):
    x = torch.zeros(*[sizes.get(d, d) if isinstance(d, str) else d for d in dims])
    try:
        with torch.no_grad():
            return tuple(module(x).shape)
    except RuntimeError:
        return None


def _traced(torch, name):
    cls, dims = _nets(torch)[name]
    module = cls().eval()
    return module, dims, cg.from_torch(module, dims)


def _accepts(graph, sizes) -> bool:
    try:
        graph.output_shapes(**sizes)
    except ShapeError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("name", NETS)
def test_valid_sets_equal_torch_brute_force(torch, name):
    """At every size of a sweep: torch runs iff convgraph accepts, with the same output shape. A
    symbol not coupled to another (by InstanceNorm's element count, say) is in its exact valid set
    iff torch runs; a coupled one is checked on the whole assignment (the solver states the coupled
    set separately)."""
    module, dims, graph = _traced(torch, name)
    sol = cg.solve(graph, tiling=False)
    spatial = [d for d in dims[2:] if isinstance(d, str)]
    coupled = {s for c in sol.couplings for s in c.symbols}
    base = {s: next(iter(sol.runs(s).iter(8))) for s in spatial} | {"N": 1}
    for s in spatial:
        for v in RANGE:
            sizes = base | {s: v}
            got = _runs(torch, module, dims, sizes)
            assert (got is not None) == _accepts(graph, sizes), (s, v)
            if s not in coupled:
                assert (got is not None) == (v in sol.runs(s)), (s, v, sol.describe_runs(s))
            if got is not None:
                assert got == graph.output_shapes(**sizes)[graph.outputs[0]]


def test_names_are_module_paths(torch):
    module, _dims, graph = _traced(torch, "resnet")
    layers = {n.layer_name for n in graph.layers()}
    assert {"conv1", "layer1.0.conv1", "layer1.0.downsample.0", "layer1.1.bn2", "fc"} <= layers
    from convgraph.export.weights import param_specs

    state = {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert param_specs(graph) == state


def test_milesial_pad_is_a_pad_to_the_skip(torch):
    _module, _dims, graph = _traced(torch, "milesial_unet")
    pad = next(n for n in graph.nodes if n.op == "pad_like")
    assert pad.inputs == ("up1.up", "inc.5") and pad.attr("mode") == "constant"
    assert cg.solve(graph, tiling=False).describe_runs("H") == "H >= 2"


# --- errors ---------------------------------------------------------------------------------------------------


def test_untraceable_control_flow_is_an_error(torch):
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.conv(x)
            return x

    with pytest.raises(ConvGraphError, match=r"torch.fx cannot trace Branchy.forward"):
        cg.from_torch(Branchy(), ("N", 3, "H", "W"))


def test_unsupported_op_names_node_and_supported_set(torch):
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3)

        def forward(self, x):
            return torch.nn.functional.softplus(self.conv(x))

    with pytest.raises(ConvGraphError) as info:
        cg.from_torch(Scaled(), ("N", 3, "H", "W"))
    assert "fx node 'softplus'" in info.value.message and "supported: catalogue modules" in info.value.message


def test_module_outside_catalogue_uses_parameters_directly(torch):
    class Raw(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3, 3, 1, 1))

        def forward(self, x):
            return torch.nn.functional.conv2d(x, self.w)

    with pytest.raises(ConvGraphError, match="fx node 'w' \\(get_attr w\\)"):
        cg.from_torch(Raw(), ("N", 3, "H", "W"))


def test_wrong_number_of_inputs(torch):
    with pytest.raises(ConvGraphError, match="takes 1 input"):
        cg.from_torch(torch.nn.Conv2d(3, 3, 3), ("N", 3, "H", "W"), ("N", 3, "H", "W"))


# --- the command line -------------------------------------------------------------------------------------------

NET_PY = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x)))
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "convgraph", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


@pytest.mark.slow
def test_cli_python_module(torch, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET_PY)
    proc = cli("solve", f"{path}:Net", "--dims", "x=N,3,H,W")
    assert proc.returncode == 0, proc.stderr
    assert "H >= 5" in proc.stdout
    proc = cli("shapes", f"{path}:Net", "--dims", "x=N,3,H,W", "--at", "N=1", "--at", "H=21", "--at", "W=30")
    assert proc.returncode == 0 and "(1, 8, 5, 7)" in proc.stdout, proc.stdout + proc.stderr
    proc = cli("export", f"{path}:Net", "--dims", "N,3,H,W", "-o", tmp_path / "net.onnx")
    assert proc.returncode == 0 and (tmp_path / "net.onnx").exists(), proc.stderr


@pytest.mark.slow
def test_cli_python_module_errors(torch, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET_PY)
    for args, expected in [((f"{path}:Net",), "needs --dims"),
                           ((f"{path}:Nope", "--dims", "N,3,H,W"), "defines no 'Nope'"),
                           ((f"{tmp_path}/missing.py:Net", "--dims", "N,3,H,W"), "no such file")]:
        proc = cli("shapes", *args)
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('boom')\n")
    proc = cli("shapes", f"{broken}:Net", "--dims", "N,3,H,W")
    assert proc.returncode == 2 and "ValueError: boom" in proc.stderr and "Traceback" not in proc.stderr


def test_help_says_python_files_are_run():
    for verb in ("shapes", "solve", "export"):
        out = cli(verb, "--help").stdout
        assert "IMPORTS AND RUNS" in out and "--dims" in out


# --- random stacks -------------------------------------------------------------------------------------------

LAYER = st.sampled_from(["conv", "convt", "maxpool", "avgpool", "relu"])


@settings(max_examples=25)
@given(kinds=st.lists(LAYER, min_size=1, max_size=4), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2),
       d=st.integers(1, 2), h=st.integers(1, 30), w=st.integers(1, 30))
def test_random_stacks_agree_with_torch(torch, kinds, k, s, p, d, h, w):
    """A random torch stack read by from_torch: it accepts exactly the (H, W) torch runs, with the
    same output shape (asymmetric kernels and strides: (k, k + 1), (s, s % 3 + 1))."""
    nn = torch.nn
    layers = []
    for kind in kinds:
        kk, ss = (k, k + 1), (s, s % 3 + 1)
        if kind == "conv":
            layers.append(nn.Conv2d(2, 2, kk, ss, padding=(min(p, k // 2), 0), dilation=(d, 1)))
        elif kind == "convt":
            layers.append(nn.ConvTranspose2d(2, 2, kk, ss, padding=(0, min(p, k // 2))))
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(kk, ss, padding=(min(p, k // 2), 0), dilation=(1, d)))
        elif kind == "avgpool":
            layers.append(nn.AvgPool2d(kk, ss, padding=(0, min(p, k // 2)), ceil_mode=bool(p % 2)))
        else:
            layers.append(nn.ReLU())
    module = nn.Sequential(*layers).eval()
    graph = cg.from_torch(module, ("N", 2, "H", "W"))
    got = _runs(torch, module, ("N", 2, "H", "W"), {"N": 1, "H": h, "W": w})
    sizes = {"N": 1, "H": h, "W": w}
    assert (got is not None) == _accepts(graph, sizes)
    if got is not None:
        assert got == graph.output_shapes(**sizes)[graph.outputs[0]]


@pytest.mark.parametrize("text", ["SINK", "SHAPE_FUNCTIONS", "BLOCK_FORMS", "BLOCKS"])
def test_round_trip_of_every_function(torch, tmp_path, text):
    """The DSL's functions and the published-net layers through the generated source and back."""
    import test_torch_source

    graph = cg.parse(getattr(test_torch_source, text))
    model = load_source(cg.to_torch_source(graph), tmp_path).Model()
    back = cg.from_torch(model, *(n.dims for n in graph.inputs))
    assert structure(back) == structure(graph)
    assert valid_sets(back) == valid_sets(graph)
