"""Regenerate docs/animations/: convolution arithmetic for a few classic configurations.

    python3 scripts/make_animations.py            # writes docs/animations/*.gif and a PNG strip
    python3 scripts/make_animations.py --time     # also times a 7x7-input ConvTranspose2d

Each entry is exactly what ``convgraph animate LAYER --input SIZE -o FILE`` draws.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from convgraph.animate import animate  # noqa: E402
from convgraph.front.dsl import parse_layer  # noqa: E402

OUT_DIR = os.path.join(ROOT, "docs", "animations")

#: (file name, layer, input size, options)
CLASSICS = [
    ("no_padding_no_strides.gif", "Conv2d(1, 1, 3)", "4x4", {}),
    ("no_padding_no_strides.png", "Conv2d(1, 1, 3)", "4x4", {"png": True}),
    ("arbitrary_padding.gif", "Conv2d(1, 1, 4, padding=2)", "5x5", {}),
    ("padding_strides.gif", "Conv2d(1, 1, 3, stride=2, padding=1)", "5x5", {}),
    ("dilation.gif", "Conv2d(1, 1, 3, dilation=2)", "7x7", {}),
    ("reflect_padding.gif", "Conv2d(1, 1, 3, padding=1, padding_mode='reflect')", "4x5", {}),
    ("transposed_stride2_padding1.gif", "ConvTranspose2d(1, 1, 3, stride=2, padding=1)", "3x3", {}),
    ("transposed_scatter.gif", "ConvTranspose2d(1, 1, 3, stride=2, padding=1)", "3x3", {"scatter": True}),
    ("maxpool_ceil_mode.gif", "MaxPool2d((2, 3), stride=(3, 2), padding=1, ceil_mode=True)", "4x6", {}),
    ("non_square_asymmetric_stride.gif", "Conv2d(1, 1, (3, 2), stride=(1, 2), padding=(1, 0))", "5x7", {}),
    ("conv1d_dilation_stride.gif", "Conv1d(1, 1, 3, stride=2, padding=2, dilation=2)", "9", {}),
]

TIMED = ("ConvTranspose2d(1, 1, 3, stride=2, padding=1)", "7x7")


def sizes(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split("x"))


def make(name: str, layer: str, size: str, opts: dict) -> None:
    path = os.path.join(OUT_DIR, name)
    res = animate(parse_layer(layer), sizes(size), path, title=layer, **opts)
    kb = os.path.getsize(path) / 1024
    print(f"{name:36s} {layer} on {size}: {res.frames} frames, {kb:.0f} KB, {res.seconds:.2f} s")


def time_7x7(repeats: int = 5) -> None:
    layer, size = TIMED
    spec = parse_layer(layer)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.gif")
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = animate(spec, sizes(size), path, title=layer)
            times.append(time.perf_counter() - t0)
    print(f"timing: {layer} on {size}: {res.frames} frames, {res.size[0]}x{res.size[1]} px; "
          f"render + GIF encode + write: best {min(times):.3f} s, first {times[0]:.3f} s of {repeats}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", action="store_true", help="time a 7x7-input ConvTranspose2d animation")
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    for entry in CLASSICS:
        make(*entry)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"docs/animations: {total / 1024:.0f} KB in all")
    if args.time:
        time_7x7()
    return 0


if __name__ == "__main__":
    sys.exit(main())
