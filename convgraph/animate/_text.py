"""Text for the animations with Pillow's built-in font, drawing the glyphs it lacks.

``ImageFont.load_default(size=...)`` (Pillow >= 10) needs no system font, but its font has no
⌊ ⌋ ⌈ ⌉ − × ← → ≥: each missing glyph is drawn with lines, so captions keep their notation.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

from PIL import ImageDraw, ImageFont

SPECIAL = "⌊⌋⌈⌉−×←→≥∞"
_ASCII = {"≥": ">=", "∞": "inf"}  # drawn as text when the font lacks them


class Typeface:
    """A default-font face of one pixel size; ``width`` and ``draw`` handle the missing glyphs."""

    def __init__(self, size: int):
        self.size = size
        self.font = _load_default(size)
        tofu = bytes(self.font.getmask("\ue000"))  # a private-use char: the font's missing glyph
        self.missing = frozenset(ch for ch in SPECIAL if bytes(self.font.getmask(ch)) == tofu)
        _, top, _, bottom = self.font.getbbox("(")
        self.top, self.bottom = int(top), int(bottom)
        _, t, _, b = self.font.getbbox("+")
        self.mid = (t + b) / 2
        self.unit = self.font.getlength("+")
        self.line_height = self.bottom + max(2, size // 4)

    def _runs(self, text: str) -> Iterator[tuple[str, bool]]:
        """Split into runs of plain text and single missing glyphs."""
        buf = ""
        for ch in text:
            if ch in self.missing and ch in _ASCII:
                buf += _ASCII[ch]
            elif ch in self.missing:
                if buf:
                    yield buf, False
                    buf = ""
                yield ch, True
            else:
                buf += ch
        if buf:
            yield buf, False

    def _glyph_width(self, ch: str) -> float:
        return self.font.getlength("(") if ch in "⌊⌋⌈⌉" else self.unit

    def width(self, text: str) -> int:
        return int(sum(self._glyph_width(r) if special else self.font.getlength(r)
                       for r, special in self._runs(text)) + 0.999)

    def draw(self, draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: tuple[int, int, int]) -> None:
        x, y = xy
        for run, special in self._runs(text):
            if special:
                self._draw_glyph(draw, x, y, run, fill)
                x += self._glyph_width(run)
            else:
                draw.text((x, y), run, font=self.font, fill=fill)
                x += self.font.getlength(run)

    def _draw_glyph(self, draw: ImageDraw.ImageDraw, x: float, y: float, ch: str, fill: tuple[int, int, int]) -> None:
        w, lw = self._glyph_width(ch), max(1, round(self.size / 13))
        top, bot, mid = y + self.top, y + self.bottom - 1, y + self.mid
        left, right = x + w * 0.25, x + w * 0.75
        for seg in _GLYPH_SEGMENTS[ch](left, right, top, bot, mid, x + 1, x + w - 1):
            draw.line(seg, fill=fill, width=lw)


Segments = list[tuple[tuple[float, float], tuple[float, float]]]


def _brackets(floor: bool, left_side: bool) -> Callable[..., Segments]:
    def segs(l: float, r: float, top: float, bot: float, mid: float, x0: float, x1: float) -> Segments:
        stem = l if left_side else r
        foot = bot if floor else top
        return [((stem, top), (stem, bot)), ((l, foot), (r, foot))]
    return segs


_GLYPH_SEGMENTS = {
    "⌊": _brackets(True, True),
    "⌋": _brackets(True, False),
    "⌈": _brackets(False, True),
    "⌉": _brackets(False, False),
    "−": lambda l, r, top, bot, mid, x0, x1: [((x0, mid), (x1, mid))],
    "×": lambda l, r, top, bot, mid, x0, x1: [((x0 + 1, mid - (x1 - x0) / 2 + 1), (x1 - 1, mid + (x1 - x0) / 2 - 1)),
                                               ((x0 + 1, mid + (x1 - x0) / 2 - 1), (x1 - 1, mid - (x1 - x0) / 2 + 1))],
    "→": lambda l, r, top, bot, mid, x0, x1: [((x0, mid), (x1, mid)), ((x1 - 3, mid - 3), (x1, mid)),
                                               ((x1 - 3, mid + 3), (x1, mid))],
    "←": lambda l, r, top, bot, mid, x0, x1: [((x0, mid), (x1, mid)), ((x0 + 3, mid - 3), (x0, mid)),
                                               ((x0 + 3, mid + 3), (x0, mid))],
}


def _load_default(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size=; its bitmap font is fixed-size
        return ImageFont.load_default()


@cache
def typeface(size: int) -> Typeface:
    return Typeface(size)
