"""``convgraph animate``: convolution arithmetic drawn for any windowed layer.

    convgraph animate "ConvTranspose2d(1, 1, 3, stride=2, padding=1)" --input 3x3 -o t.gif
    convgraph animate unet.cg --layer down1 --at H=64 --at W=48 -o down1.gif [--png] [--scatter]

Stages: the layer and its input size (from a layer string and ``--input``, or from a .cg file and
the shape stage at the ``--at`` sizes) -> pure geometry (``animate_geometry``) -> frames
(``animate_draw``) -> a GIF, or with ``--png`` a static grid of frames.

>>> from convgraph.ir import Conv
>>> conv = Conv(type_name="Conv2d", nd=2, in_channels=1, out_channels=1, kernel_size=(3, 3), stride=(1, 1),
...             padding=((0, 0), (0, 0)), dilation=(1, 1))
>>> frames = render_frames(conv, (4, 4))
>>> len(frames)
4
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from convgraph.animate._caption import layer_text
from convgraph.animate._draw import UNUSED_INDEX, Layout, render
from convgraph.animate._geometry import CLI, Geometry, geometry
from convgraph.animate._gif import write_gif
from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import LayerSpec

__all__ = ["AnimationResult", "animate", "render_frames"]

MAX_FRAMES = 400  # every frame is held in memory until the GIF is written (~0.3 MB each)
MAX_STRIP_FRAMES = 12
STRIP_COLUMNS = 4


@dataclass(frozen=True)
class AnimationResult:
    path: str
    frames: int
    size: tuple[int, int]
    seconds: float  # geometry + drawing + encoding + writing


def render_frames(spec: LayerSpec, in_sizes: tuple[int, ...], scatter: bool = False,
                  title: str | None = None) -> list[Image.Image]:
    """The frames (paletted PIL images) of the animation of ``spec`` on spatial size ``in_sizes``."""
    frames, _ = _render(geometry(spec, in_sizes, scatter), title or layer_text(spec), None)
    return frames


def animate(spec: LayerSpec, in_sizes: tuple[int, ...], path: str, png: bool = False, scatter: bool = False,
            title: str | None = None, loc: Loc | None = None) -> AnimationResult:
    """Draw the animation of ``spec`` on ``in_sizes`` into ``path`` (GIF, or a PNG grid of frames).

    ``animate(parse_layer("Conv2d(1, 1, 3, padding=1)"), (5, 7), "conv.gif")``"""
    t0 = time.perf_counter()
    frames, layout = _render(geometry(spec, in_sizes, scatter, loc), title or layer_text(spec), loc)
    image_size = frames[0].size
    try:
        if png:
            strip_image(frames, layout).save(path, format="PNG", optimize=True)
        else:
            save_gif(frames, path)
    except OSError as e:
        raise ConvGraphError(f"animate: cannot write {path}: {e.strerror or e}", CLI) from e
    return AnimationResult(path, len(frames), image_size, time.perf_counter() - t0)


def _render(g: Geometry, title: str, loc: Loc | None) -> tuple[list[Image.Image], Layout]:
    drawn = g.frame_grid[-2:] if len(g.frame_grid) == 3 else g.frame_grid  # a 3-D layer: one slice
    n = math.prod(drawn)
    if n > MAX_FRAMES:
        what = "output" if g.view == "gather" else "input"
        raise ConvGraphError(f"animate: {n} frames ({what} {'x'.join(map(str, drawn))}) are too many to draw; "
                             f"the limit is {MAX_FRAMES}: animate a smaller size", loc or CLI)
    return render(g, title)


def frame_duration_ms(n: int) -> int:
    """About 12 s per loop: 700 ms a frame for a few frames, down to 120 ms for many."""
    return max(120, min(700, 12000 // max(n, 1)))


def save_gif(frames: Sequence[Image.Image], path: str) -> None:
    d = frame_duration_ms(len(frames))
    durations = [d] * (len(frames) - 1) + [max(d, 1500)]  # rest on the last frame before looping
    write_gif(path, frames, durations, transparent=UNUSED_INDEX)


def strip_image(frames: Sequence[Image.Image], layout: Layout) -> Image.Image:
    """A static grid of frames: the heading once, each frame's panels and frame line, the caption once."""
    picks = _evenly(len(frames), MAX_STRIP_FRAMES)
    w, h = frames[0].size
    top, bottom = layout.panels_y, layout.caption_y - 4
    thumb_h = bottom - top
    cols = min(len(picks), STRIP_COLUMNS)
    rows = math.ceil(len(picks) / cols)
    out = Image.new("P", (cols * w, top + rows * thumb_h + (h - bottom)), frames[0].getpixel((0, 0)))
    out.putpalette(frames[0].getpalette() or [])  # the frames' palette: crops paste exactly
    out.paste(frames[0].crop((0, 0, w, top)), (0, 0))
    for n, f in enumerate(picks):
        out.paste(frames[f].crop((0, top, w, bottom)), ((n % cols) * w, top + (n // cols) * thumb_h))
    out.paste(frames[0].crop((0, bottom, w, h)), (0, top + rows * thumb_h))
    return out


def _evenly(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    return sorted({round(j * (n - 1) / (most - 1)) for j in range(most)})


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_size(text: str | None, nd: int, what: str = "--input") -> tuple[int, ...]:
    """``"5x7"`` -> ``(5, 7)``; also ``5,7`` and ``5×7``. The count must match the layer's rank."""
    if not text:
        raise ConvGraphError(f"animate: a layer string needs {what} with {nd} size(s), e.g. {what} "
                             f"{'x'.join(['5', '7', '6'][:nd])}", CLI)
    parts = [p.strip() for p in re.split(r"[x×,]", text.lower())]
    if not all(p.isdigit() for p in parts):
        raise ConvGraphError(f"animate: {what} expects sizes like 5x7, got {text!r}", CLI)
    if len(parts) != nd:
        raise ConvGraphError(f"animate: {what} {text} has {len(parts)} size(s) but the layer has {nd} "
                             f"spatial axes", CLI)
    sizes = tuple(int(p) for p in parts)
    if min(sizes) < 1:
        raise ConvGraphError(f"animate: {what} sizes must be positive, got {text}", CLI)
    return sizes
