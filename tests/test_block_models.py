"""Models written with blocks load the state_dict of the PyTorch module tree they mirror, by name.

The PyTorch twins are written here in plain torch.nn, as their authors wrote them:
milesial/Pytorch-UNet's UNet (DoubleConv, Down, Up, OutConv; bilinear=False) and torchvision's
resnet18 (BasicBlock, attribute names identical to torchvision's, so its state_dict keys are
torchvision's). A state_dict saved with ``torch.save`` goes through ``convgraph export --weights``
unchanged; onnxruntime's output of that export equals the twin's output; a renamed or truncated
state_dict is refused with the closest keys and the prefix renaming that repairs it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import convgraph as cg
from convgraph.cli import main
from convgraph.export.weights import param_specs

MODELS = Path(__file__).resolve().parent.parent / "models"


# --- milesial/Pytorch-UNet, unet_parts.py and unet_model.py ---------------------------------------


def milesial_unet(torch, n_channels: int = 3, n_classes: int = 2):
    nn, F = torch.nn, torch.nn.functional

    class DoubleConv(nn.Module):
        def __init__(self, in_channels, out_channels, mid_channels=None):
            super().__init__()
            if not mid_channels:
                mid_channels = out_channels
            self.double_conv = nn.Sequential(
                nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(mid_channels), nn.ReLU(inplace=True),
                nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

        def forward(self, x):
            return self.double_conv(x)

    class Down(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

        def forward(self, x):
            return self.maxpool_conv(x)

    class Up(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

        def forward(self, x1, x2):
            x1 = self.up(x1)
            diff_y, diff_x = x2.size()[2] - x1.size()[2], x2.size()[3] - x1.size()[3]
            x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
            return self.conv(torch.cat([x2, x1], dim=1))

    class OutConv(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

        def forward(self, x):
            return self.conv(x)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inc = DoubleConv(n_channels, 64)
            self.down1, self.down2 = Down(64, 128), Down(128, 256)
            self.down3, self.down4 = Down(256, 512), Down(512, 1024)
            self.up1, self.up2 = Up(1024, 512), Up(512, 256)
            self.up3, self.up4 = Up(256, 128), Up(128, 64)
            self.outc = OutConv(64, n_classes)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x3 = self.down2(x2)
            x4 = self.down3(x3)
            x5 = self.down4(x4)
            x = self.up1(x5, x4)
            x = self.up2(x, x3)
            x = self.up3(x, x2)
            x = self.up4(x, x1)
            return self.outc(x)

    return UNet()


# --- torchvision.models.resnet18, written out with torchvision's attribute names -------------------


def resnet18(torch, num_classes: int = 1000):
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, 1)
            self.layer2 = self._make_layer(128, 2)
            self.layer3 = self._make_layer(256, 2)
            self.layer4 = self._make_layer(512, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _make_layer(self, planes, stride):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
            self.inplanes = planes
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


# --- the tests --------------------------------------------------------------------------------------


def _trained(torch, module):
    """Random weights and BatchNorm statistics, as a trained checkpoint has (eval mode)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif name.endswith(("running_mean", "bn1.bias", "bn2.bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
    return module.eval()


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


CASES = [
    ("unet_milesial.cg", milesial_unet, [(1, 3, 32, 48), (2, 3, 37, 50), (1, 3, 16, 23)]),
    ("resnet18.cg", resnet18, [(1, 3, 45, 37), (2, 3, 17, 32)]),
]


@pytest.mark.slow
@pytest.mark.parametrize("model, twin, shapes", CASES, ids=[c[0] for c in CASES])
def test_state_dict_of_the_pytorch_twin_loads_by_name_and_onnxruntime_agrees(torch, tmp_path, model, twin, shapes):
    module = _trained(torch, twin(torch))
    state = {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    graph = cg.load(str(MODELS / model))
    assert param_specs(graph) == state  # same keys, same shapes, same order: no renaming anywhere
    torch.save(module.state_dict(), tmp_path / "model.pt")
    out = tmp_path / "model.onnx"
    assert main(["export", str(MODELS / model), "-o", str(out), "--weights", str(tmp_path / "model.pt")]) == 0
    rng = np.random.default_rng(1)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        got = _ort(out, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * float(np.abs(want).max()))


def test_resnet18_has_torchvisions_keys_and_parameter_count(torch):
    module = resnet18(torch)
    keys = [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(param_specs(cg.load(str(MODELS / "resnet18.cg")))) == keys
    assert "layer2.0.downsample.1.running_var" in keys and sum(p.numel() for p in module.parameters()) == 11_689_512


def test_a_renamed_state_dict_gets_the_prefix_renaming_and_the_closest_keys(torch, tmp_path, capsys):
    """A checkpoint saved from a wrapper (DataParallel's 'module.' prefix) and one missing a key."""
    module = resnet18(torch, num_classes=10)
    src = tmp_path / "r.cg"
    src.write_text((MODELS / "resnet18.cg").read_text().replace("Linear(512, 1000)", "Linear(512, 10)"))
    sd = {"module." + k: v for k, v in module.state_dict().items()}
    torch.save(sd, tmp_path / "wrapped.pt")
    capsys.readouterr()
    assert main(["export", str(src), "-o", str(tmp_path / "r.onnx"), "--weights", str(tmp_path / "wrapped.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("does not match the graph: 102 missing, 102 extra (unused) keys")
    (fix,) = [ln for ln in err if "every key matches after renaming" in ln]
    assert "the prefix 'module.' to ''" in fix
    assert "  hint: missing conv1.weight [64, 3, 7, 7]: closest unused 'module.conv1.weight'" in err
    assert len(err) <= 14 and max(map(len, err)) < 300
    # the hint's code, pasted, repairs the file
    code = fix.split(": sd = ", 1)[1]
    sd = eval(code, {"sd": sd})  # the hint is this test's subject
    torch.save(sd, tmp_path / "fixed.pt")
    assert main(["export", str(src), "-o", str(tmp_path / "r.onnx"), "--weights", str(tmp_path / "fixed.pt")]) == 0
    # a key renamed by hand: the closest unused key of the same shape is named
    sd = dict(module.state_dict())
    sd["layer3.0.downsample.conv.weight"] = sd.pop("layer3.0.downsample.0.weight")
    torch.save(sd, tmp_path / "one.pt")
    capsys.readouterr()
    assert main(["export", str(src), "-o", str(tmp_path / "r.onnx"), "--weights", str(tmp_path / "one.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[1] == ("  hint: missing layer3.0.downsample.0.weight [256, 128, 1, 1]: "
                      "closest unused 'layer3.0.downsample.conv.weight'")
