"""Plain torch.nn modules that the ONNX import tests export with torch's legacy and dynamo
exporters (imported lazily, after the ``torch`` fixture: torch is a test oracle only)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def dconv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1), nn.ReLU())

class PaddedUNet(nn.Module):
    def __init__(s, c=4, depth=3):
        super().__init__()
        s.downs = nn.ModuleList([dconv(3 if i == 0 else c << (i-1), c << i) for i in range(depth)])
        s.mid = dconv(c << (depth-1), c << depth)
        s.ups = nn.ModuleList([nn.ConvTranspose2d(c << (i+1), c << i, 2, stride=2) for i in reversed(range(depth))])
        s.decs = nn.ModuleList([dconv(c << (i+1), c << i) for i in reversed(range(depth))])
        s.head = nn.Conv2d(c, 2, 1)
    def forward(s, x):
        skips = []
        for d in s.downs:
            x = d(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = s.mid(x)
        for u, d, sk in zip(s.ups, s.decs, reversed(skips)):
            x = d(torch.cat([sk, u(x)], 1))
        return s.head(x)

class InterpUNet(PaddedUNet):
    def __init__(s, c=4, depth=3):
        super().__init__(c, depth)
        s.ups = nn.ModuleList([nn.Conv2d(c << (i+1), c << i, 1) for i in reversed(range(depth))])
    def forward(s, x):
        skips = []
        for d in s.downs:
            x = d(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = s.mid(x)
        for u, d, sk in zip(s.ups, s.decs, reversed(skips)):
            x = F.interpolate(u(x), size=sk.shape[2:], mode="nearest")
            x = d(torch.cat([sk, x], 1))
        return s.head(x)

class MilesialUNet(PaddedUNet):
    def forward(s, x):
        skips = []
        for d in s.downs:
            x = d(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = s.mid(x)
        for u, d, sk in zip(s.ups, s.decs, reversed(skips)):
            x = u(x)
            dy, dx = sk.size(2) - x.size(2), sk.size(3) - x.size(3)
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            x = d(torch.cat([sk, x], 1))
        return s.head(x)

# DCGAN generator + discriminator
class DCGAN(nn.Module):
    def __init__(s, nz=8, c=8):
        super().__init__()
        s.g = nn.Sequential(nn.ConvTranspose2d(nz, c*4, 4, 1, 0), nn.BatchNorm2d(c*4), nn.ReLU(),
            nn.ConvTranspose2d(c*4, c*2, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c*2, c, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1), nn.Tanh())
        s.d = nn.Sequential(nn.Conv2d(3, c, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c*2, 4, 2, 1),
            nn.BatchNorm2d(c*2), nn.LeakyReLU(0.2), nn.Conv2d(c*2, 1, 4, 1, 0), nn.Sigmoid())
    def forward(s, z):
        return s.d(s.g(z))

class AE1d(nn.Module):
    def __init__(s):
        super().__init__()
        s.e = nn.Sequential(nn.Conv1d(1, 8, 9, stride=4, padding=4), nn.ReLU(),
                            nn.Conv1d(8, 16, 9, stride=4, padding=4), nn.ReLU())
        s.dd = nn.Sequential(nn.ConvTranspose1d(16, 8, 8, stride=4, padding=2), nn.ReLU(),
                             nn.ConvTranspose1d(8, 1, 8, stride=4, padding=2), nn.Tanh())
    def forward(s, x):
        return s.dd(s.e(x))

class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False)
        s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.b2 = nn.BatchNorm2d(o)
        s.sc = (nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o)) if st != 1 or i != o
                else nn.Identity())
    def forward(s, x):
        return F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + s.sc(x))

class ResNet(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1))
        s.layers = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 32, 2))
        s.pool = nn.AdaptiveAvgPool2d(1)
        s.fc = nn.Linear(32, 10)
    def forward(s, x):
        return s.fc(torch.flatten(s.pool(s.layers(s.stem(x))), 1))


class UpsampleUNet(PaddedUNet):
    """Decoder by nn.Upsample(scale_factor=2) + 1x1 conv (legacy: Resize with constant scales;
    dynamo: Resize with sizes computed from the input size)."""

    def __init__(s, c=4, depth=3, mode="nearest"):
        super().__init__(c, depth)
        align = None if mode == "nearest" else False
        s.ups = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode=mode, align_corners=align),
                                             nn.Conv2d(c << (i + 1), c << i, 1)) for i in reversed(range(depth))])


class BilinearUNet(UpsampleUNet):
    def __init__(s):
        super().__init__(mode="bilinear")
