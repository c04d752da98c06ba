"""A GIF writer for frames that share one palette (what ``animate_draw`` produces).

Each frame after the first stores only the rectangle that changed, with the pixels that did not
change made transparent, so a frame costs about as much as the cells it moves. Pillow's own
multi-frame writer derives the same from whole images with several passes per frame; this one
compares two arrays once, which keeps a 169-frame animation well under a second.
Frames are encoded with Pillow's GIF helpers (``getheader``/``getdata``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import GifImagePlugin, Image


def write_gif(path: str, frames: Sequence[Image.Image], durations: Sequence[int], transparent: int,
              loop: int = 0) -> None:
    """Write paletted ``frames`` (one shared palette that never uses index ``transparent``)."""
    first = frames[0]
    header, _ = GifImagePlugin.getheader(first.copy(), info={"loop": loop, "duration": durations[0]})
    with open(path, "wb") as fp:
        fp.write(b"".join(header))
        fp.write(b"".join(GifImagePlugin.getdata(first, (0, 0), duration=durations[0], disposal=1)))
        prev = np.asarray(first)
        for im, ms in zip(frames[1:], durations[1:]):
            cur = np.asarray(im)
            patch, offset = delta_patch(prev, cur, transparent)
            fp.write(b"".join(GifImagePlugin.getdata(patch, offset, duration=ms, disposal=1,
                                                     transparency=transparent)))
            prev = cur
        fp.write(b";")  # trailer


def delta_patch(prev: np.ndarray, cur: np.ndarray, transparent: int) -> tuple[Image.Image, tuple[int, int]]:
    """The bounding box of the pixels that changed, unchanged ones set to ``transparent``."""
    changed = prev != cur
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return Image.new("P", (1, 1), transparent), (0, 0)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    patch = np.where(changed[y0:y1, x0:x1], cur[y0:y1, x0:x1], np.uint8(transparent))
    return Image.frombytes("P", (int(x1 - x0), int(y1 - y0)), np.ascontiguousarray(patch).tobytes()), (int(x0), int(y0))
