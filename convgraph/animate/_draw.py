"""Drawing the frames of an animation from its geometry (Pillow; nothing here decides geometry).

A frame shows two panels of square cells: the source side of the windows (input, padding,
stretch zeros; for the scatter view the plain input) and the target side (the output; for the
scatter view the full output before cropping), then a per-frame line and the caption.

Speed: the static picture is drawn once in RGB and mapped once onto a fixed palette; every frame
is that paletted image plus a few pasted cell tiles (cached per kind and state), so a 7×7
transposed conv (169 frames) renders in well under a second.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from convgraph.animate import _caption as cap
from convgraph.animate._geometry import (
    CROP,
    INPUT,
    OUT,
    OUTPAD,
    OVER,
    PAD,
    ZERO,
    Frame,
    GatherAxis,
    Geometry,
    ScatterAxis,
)
from convgraph.animate._text import Typeface, typeface
from convgraph.ir import Pool

RGB = tuple[int, int, int]
WHITE, BLACK, GREY = (255, 255, 255), (20, 20, 20), (110, 110, 110)
KERNEL_LINE, SOURCE_LINE = (15, 25, 80), (235, 130, 0)

UNUSED_INDEX, UNUSED_COLOUR = 255, (255, 0, 255)  # a palette entry no frame pixel uses

# cell states
BASE, KERNEL, DONE, CURRENT = "base", "kernel", "done", "current"


@dataclass(frozen=True)
class Style:
    fill: RGB
    border: RGB
    hatch: RGB | None = None
    cross: RGB | None = None
    label: RGB = BLACK
    dashed: bool = False


STYLES: dict[tuple[str, str], Style] = {
    (INPUT, BASE): Style((150, 190, 235), (80, 120, 180), label=(30, 50, 100)),
    (INPUT, KERNEL): Style((40, 85, 160), (15, 35, 90), label=WHITE),
    (INPUT, CURRENT): Style((40, 85, 160), (15, 35, 90), label=WHITE),
    (PAD, BASE): Style(WHITE, (165, 165, 165), hatch=(205, 205, 205), label=(90, 110, 150)),
    (PAD, KERNEL): Style((140, 140, 140), (60, 60, 60), hatch=(115, 115, 115), label=WHITE),
    ("padsrc", BASE): Style((222, 233, 247), (120, 150, 200), hatch=(185, 205, 232), label=(60, 80, 130)),
    ("padsrc", KERNEL): Style((85, 120, 175), (15, 35, 90), hatch=(70, 100, 150), label=WHITE),
    (ZERO, BASE): Style((250, 250, 250), (150, 175, 210), label=(165, 165, 165)),
    (ZERO, KERNEL): Style((150, 160, 180), (15, 35, 90), label=WHITE),
    (CROP, BASE): Style((238, 238, 238), (200, 200, 200), cross=(215, 120, 120), label=(150, 150, 150)),
    (CROP, KERNEL): Style((160, 160, 160), (90, 90, 90), cross=(200, 70, 70), label=WHITE),
    (CROP, DONE): Style((215, 215, 215), (170, 170, 170), cross=(200, 110, 110)),
    (OVER, BASE): Style(WHITE, (185, 185, 185), dashed=True),
    (OVER, KERNEL): Style((222, 222, 222), (120, 120, 120), dashed=True),
    (OUT, BASE): Style((205, 235, 205), (100, 165, 100)),
    (OUT, DONE): Style((140, 205, 140), (70, 140, 70)),
    (OUT, CURRENT): Style((25, 125, 55), (10, 70, 30)),
    (OUT, KERNEL): Style((25, 125, 55), (10, 70, 30)),
    (OUTPAD, BASE): Style((228, 242, 228), (130, 180, 130), hatch=(190, 222, 190)),
}

LEGEND = {INPUT: "input", PAD: "padding", "padsrc": "padding (copy)", ZERO: "stretch zero",
          CROP: "cropped", OVER: "past padding (ignored)", OUT: "output", OUTPAD: "output_padding"}


# --------------------------------------------------------------------------------------------
# Panels: the two grids of a frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One grid: ``kinds[r][c]`` and ``labels[r][c]`` per drawn cell; ``col_index``/``row_index``
    are the axis numbers printed beside it (None: no number); ``copies`` maps a padded cell that
    holds a copy (reflect/replicate/circular) to the drawn cell of the input it copies."""

    kinds: tuple[tuple[str, ...], ...]
    labels: tuple[tuple[str, ...], ...]
    row_index: tuple[int | None, ...]
    col_index: tuple[int | None, ...]
    copies: Mapping[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.kinds), len(self.kinds[0])


_RANK = {INPUT: 0, ZERO: 1, PAD: 2, OVER: 3, CROP: 4, OUT: 0, OUTPAD: 1}


def _combine(kinds: Sequence[str]) -> str:
    """The kind of a 2-D cell from its per-axis kinds: the strongest wins (padding beats input)."""
    return max(kinds, key=_RANK.__getitem__)


def _gather_source(axes: Sequence[GatherAxis], labelled: bool) -> Panel:
    """The source grid of the gather view; a 1-D layer is one row."""
    cols = axes[-1]
    rows_cells, rows_src = (axes[0].cells, axes[0].src) if len(axes) == 2 else ((INPUT,), (0,))
    kinds, labels, copies = [], [], {}
    for r, (kr, sr) in enumerate(zip(rows_cells, rows_src)):
        row = [_combine((kr, kc)) for kc in cols.cells]
        for c, sc in enumerate(cols.src):
            if row[c] == PAD and sr is not None and sc is not None:
                row[c] = "padsrc"
                copies[(r, c)] = (_home(rows_cells, rows_src, sr), _home(cols.cells, cols.src, sc))
        kinds.append(tuple(row))
        labels.append(tuple(_src_label(sr, sc, len(axes) == 2) if labelled else "" for sc in cols.src))
    idx = lambda cells, src: tuple(s if k in (INPUT, CROP) else None for k, s in zip(cells, src))  # noqa: E731
    row_index = idx(rows_cells, rows_src) if len(axes) == 2 else (None,)
    return Panel(tuple(kinds), tuple(labels), row_index, idx(cols.cells, cols.src), copies)


def _home(cells: Sequence[str], src: Sequence[int | None], q: int) -> int:
    """The drawn index of input cell q on one axis."""
    return next(i for i, (k, s) in enumerate(zip(cells, src)) if k == INPUT and s == q)


def _src_label(r: int | None, c: int | None, two_d: bool) -> str:
    if r is None or c is None:
        return ""
    return f"{r},{c}" if two_d else str(c)


def _plain(kind: str, n_rows: int, n_cols: int) -> Panel:
    kinds = tuple((kind,) * n_cols for _ in range(n_rows))
    labels = tuple(("",) * n_cols for _ in range(n_rows))
    return Panel(kinds, labels, tuple(range(n_rows)) if n_rows > 1 else (None,), tuple(range(n_cols)))


def _scatter_target(axes: Sequence[ScatterAxis]) -> Panel:
    rows = axes[0].cells if len(axes) == 2 else (OUT,)
    kinds = tuple(tuple(_combine((kr, kc)) for kc in axes[-1].cells) for kr in rows)
    labels = tuple(("",) * len(axes[-1].cells) for _ in rows)
    idx = lambda ax: tuple(f - ax.padding if k != CROP else None for f, k in enumerate(ax.cells))  # noqa: E731
    return Panel(kinds, labels, idx(axes[0]) if len(axes) == 2 else (None,), idx(axes[-1]))


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


MARGIN = 12


@dataclass(frozen=True)
class Layout:
    cell: int
    gap: int
    src_xy: tuple[int, int]
    dst_xy: tuple[int, int]
    panels_y: int  # top of what changes per frame (frame line, panels); above: the heading
    frame_line_y: int
    caption_y: int
    size: tuple[int, int]
    index_labels: bool

    @property
    def pitch(self) -> int:
        return self.cell + self.gap

    def cell_box(self, origin: tuple[int, int], r: int, c: int) -> tuple[int, int, int, int]:
        x, y = origin[0] + c * self.pitch, origin[1] + r * self.pitch
        return x, y, x + self.cell - 1, y + self.cell - 1

    def span_box(self, origin: tuple[int, int], rows: Sequence[int], cols: Sequence[int]) -> tuple[int, ...]:
        x0, y0, _, _ = self.cell_box(origin, min(rows), min(cols))
        _, _, x1, y1 = self.cell_box(origin, max(rows), max(cols))
        return x0 - 2, y0 - 2, x1 + 2, y1 + 2


def _layout(src: Panel, dst: Panel, text_lines: Sequence[str], stacked: bool) -> Layout:
    (sr, sc), (dr, dc) = src.shape, dst.shape
    across = max(sc, dc) if stacked else sc + dc + 3
    down = sr + dr + 4 if stacked else max(sr, dr) + 2
    cell = max(8, min(24, 640 // across, 420 // down))
    gap = 2 if cell >= 14 else 1
    pitch, lab = cell + gap, (14 if cell >= 14 else 0)
    line = typeface(12).line_height
    head = typeface(15).line_height + line + 10  # title and subtitle
    frame_line_y = MARGIN + head  # the per-frame line sits right above the panels: small GIF deltas
    panel_head = line + 4
    src_xy = (MARGIN + lab, frame_line_y + line + 8 + panel_head + lab)
    if stacked:
        dst_xy = (src_xy[0], src_xy[1] + sr * pitch + 12 + panel_head + lab)
    else:
        dst_xy = (src_xy[0] + sc * pitch + 3 * pitch + lab, src_xy[1])
    bottom = max(src_xy[1] + sr * pitch, dst_xy[1] + dr * pitch) + 8
    right = max(src_xy[0] + sc * pitch, dst_xy[0] + dc * pitch)
    caption_y = bottom + 6
    width = max([right] + [MARGIN + typeface(12).width(t) for t in text_lines]) + MARGIN
    height = caption_y + line * (len(text_lines) + 1) + 8 + MARGIN
    return Layout(cell, gap, src_xy, dst_xy, frame_line_y, frame_line_y, caption_y, (width, height), lab > 0)


# --------------------------------------------------------------------------------------------
# Tiles and palette
# --------------------------------------------------------------------------------------------


def _style(kind: str, state: str) -> Style:
    return STYLES.get((kind, state)) or STYLES[(kind, BASE)]


def _tile(style: Style, size: int, label: str, face: Typeface) -> Image.Image:
    im = Image.new("RGB", (size, size), style.fill)
    d = ImageDraw.Draw(im)
    if style.hatch:
        for off in range(-size, size, 5):
            d.line([(off, size), (off + size, 0)], fill=style.hatch)
    if style.cross:
        d.line([(3, 3), (size - 4, size - 4)], fill=style.cross)
        d.line([(3, size - 4), (size - 4, 3)], fill=style.cross)
    if style.dashed:
        for t in range(0, size, 4):
            for xy in ((t, 0), (t, size - 1), (0, t), (size - 1, t)):
                d.point(xy, fill=style.border)
    else:
        d.rectangle([0, 0, size - 1, size - 1], outline=style.border)
    if label and face.width(label) <= size - 2:
        w = face.width(label)
        face.draw(d, ((size - w) / 2, (size - face.bottom) / 2 - 1), label, style.label)
    return im


def _palette_image() -> Image.Image:
    """Every style and text colour, blends between them for anti-aliased text, and a grey ramp."""
    colours: list[RGB] = [WHITE, BLACK, GREY, KERNEL_LINE, SOURCE_LINE]
    for s in STYLES.values():
        colours += [s.fill, s.border, s.label] + [c for c in (s.hatch, s.cross) if c]
        colours += [_blend(s.label, s.fill, t / 5) for t in range(1, 5)]
    colours += [_blend(BLACK, WHITE, t / 16) for t in range(1, 16)]
    colours += [_blend(GREY, WHITE, t / 6) for t in range(1, 6)]
    uniq = list(dict.fromkeys(colours))[:UNUSED_INDEX]
    # fill the rest with a colour far from every drawn one, so quantizing never picks it and
    # UNUSED_INDEX stays free for the GIF writer's transparency
    flat = [v for c in uniq for v in c] + list(UNUSED_COLOUR) * (256 - len(uniq))
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat)
    return pal


def _blend(a: RGB, b: RGB, t: float) -> RGB:
    r, g, bl = (round(x * (1 - t) + y * t) for x, y in zip(a, b))
    return r, g, bl


class Painter:
    """Pastes cell tiles onto paletted frames; tiles are rendered once per (kind, state, label)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.palette = _palette_image()
        self.face = typeface(max(7, min(10, layout.cell // 2 - 1)))
        self._rgb: dict[tuple[str, str, str], Image.Image] = {}
        self._p: dict[tuple[str, str, str], Image.Image] = {}
        self.index = {c: i for i, c in enumerate(_palette_colours(self.palette))}

    def rgb_tile(self, kind: str, state: str, label: str) -> Image.Image:
        key = (kind, state, label)
        if key not in self._rgb:
            self._rgb[key] = _tile(_style(kind, state), self.layout.cell, label, self.face)
        return self._rgb[key]

    def p_tile(self, kind: str, state: str, label: str) -> Image.Image:
        key = (kind, state, label)
        if key not in self._p:
            self._p[key] = self.quantize(self.rgb_tile(kind, state, label))
        return self._p[key]

    def quantize(self, im: Image.Image) -> Image.Image:
        return im.quantize(palette=self.palette, dither=Image.Dither.NONE)

    def colour(self, rgb: RGB) -> int:
        return self.index[rgb]


def _palette_colours(pal: Image.Image) -> list[RGB]:
    flat = pal.getpalette() or []
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat) - 2, 3)]


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """What the frames of one animation draw: panels, frames, text."""

    geometry: Geometry
    source: Panel
    target: Panel
    frames: tuple[Frame, ...]
    drawn_axes: tuple[int, ...]  # the geometry axes drawn as (rows, cols) or (cols,)
    title: str
    subtitle: str
    source_title: str
    target_title: str
    text: tuple[str, ...]


def build_scene(g: Geometry, title: str) -> Scene:
    nd = len(g.axes)
    drawn = tuple(range(nd)) if nd <= 2 else (nd - 2, nd - 1)
    fixed = {0: g.frame_grid[0] // 2} if nd == 3 else {}
    frames = tuple(g.frames(fixed))
    notes = cap.notes(g)
    if nd == 3:
        z = fixed[0]
        notes.append(f"3-D layer: one slice shown, {'output' if g.view == 'gather' else 'input'} depth "
                     f"{z} of {g.frame_grid[0]}; the frame lists its cells across all depths")
    if g.view == "gather":
        gather = [g.gather_axes[a] for a in drawn]
        labelled = any(k == PAD and s is not None for ax in gather for k, s in zip(ax.cells, ax.src))
        source = _gather_source(gather, labelled)
        target = _plain(OUT, *(_two(g.out_sizes, drawn)))
        src_title = _source_title(g, gather)
        dst_title = f"output {cap.dims_str(g.out_sizes)}"
    else:
        source = _plain(INPUT, *(_two(g.in_sizes, drawn)))
        target = _scatter_target([g.scatter_axes[a] for a in drawn])
        full = tuple(len(ax.cells) for ax in g.axes)
        src_title = f"input {cap.dims_str(g.in_sizes)}"
        dst_title = f"full output {cap.dims_str(full)}, cropped to {cap.dims_str(g.out_sizes)}"
    subtitle = f"input {cap.dims_str(g.in_sizes)} → output {cap.dims_str(g.out_sizes)}, {len(frames)} frames"
    return Scene(g, source, target, frames, drawn, title, subtitle, src_title, dst_title,
                 tuple(cap.formula_lines(g) + notes))


def _two(sizes: tuple[int, ...], drawn: tuple[int, ...]) -> tuple[int, int]:
    return (sizes[drawn[0]], sizes[drawn[1]]) if len(drawn) == 2 else (1, sizes[drawn[0]])


def _source_title(g: Geometry, axes: Sequence[GatherAxis]) -> str:
    grid = cap.dims_str(tuple(len(ax.cells) for ax in g.axes))
    if g.view == "gather" and type(g.spec).__name__ == "ConvTranspose":
        return f"input {cap.dims_str(g.in_sizes)} stretched and padded: {grid}"
    return f"input {cap.dims_str(g.in_sizes)} with padding: {grid}"


def _draw_static(scene: Scene, layout: Layout, painter: Painter) -> Image.Image:
    im = Image.new("RGB", layout.size, WHITE)
    d = ImageDraw.Draw(im)
    typeface(15).draw(d, (MARGIN, MARGIN), scene.title, BLACK)
    typeface(12).draw(d, (MARGIN, MARGIN + typeface(15).line_height + 4), scene.subtitle, GREY)
    for panel, xy, title in ((scene.source, layout.src_xy, scene.source_title),
                             (scene.target, layout.dst_xy, scene.target_title)):
        _draw_panel(im, d, panel, xy, title, layout, painter)
    _draw_arrow(d, scene, layout)
    y = layout.caption_y
    for line in scene.text:
        typeface(12).draw(d, (MARGIN, y), line, BLACK)
        y += typeface(12).line_height
    _draw_legend(im, d, scene, (MARGIN, y + 4), painter)
    return im


def _draw_panel(im: Image.Image, d: ImageDraw.ImageDraw, panel: Panel, xy: tuple[int, int], title: str,
                layout: Layout, painter: Painter) -> None:
    lab = 14 if layout.index_labels else 0
    face, small = typeface(12), typeface(9)
    face.draw(d, (xy[0] - lab, xy[1] - lab - face.line_height - 2), title, GREY)
    for r, c in itertools.product(*map(range, panel.shape)):
        tile = painter.rgb_tile(panel.kinds[r][c], BASE, panel.labels[r][c])
        im.paste(tile, layout.cell_box(xy, r, c)[:2])
    if not layout.index_labels:
        return
    for c, v in enumerate(panel.col_index):
        if v is not None:
            x0, y0, x1, _ = layout.cell_box(xy, 0, c)
            small.draw(d, ((x0 + x1 - small.width(str(v))) / 2, y0 - lab), str(v), GREY)
    for r, v in enumerate(panel.row_index):
        if v is not None:
            x0, y0, _, y1 = layout.cell_box(xy, r, 0)
            small.draw(d, (x0 - small.width(str(v)) - 3, (y0 + y1 - small.bottom) / 2), str(v), GREY)


def _draw_arrow(d: ImageDraw.ImageDraw, scene: Scene, layout: Layout) -> None:
    sr, sc = scene.source.shape
    if layout.dst_xy[1] != layout.src_xy[1]:
        return  # stacked: the panels' titles say which is which
    x0 = layout.src_xy[0] + sc * layout.pitch + layout.pitch // 2
    x1 = layout.dst_xy[0] - layout.pitch // 2 - (14 if layout.index_labels else 0)
    y = layout.src_xy[1] + (min(sr, scene.target.shape[0]) * layout.pitch) // 2
    d.line([(x0, y), (x1, y)], fill=GREY, width=2)
    d.polygon([(x1, y), (x1 - 7, y - 5), (x1 - 7, y + 5)], fill=GREY)


def _draw_legend(im: Image.Image, d: ImageDraw.ImageDraw, scene: Scene, xy: tuple[int, int],
                 painter: Painter) -> None:
    kinds = {k for row in scene.source.kinds + scene.target.kinds for k in row}
    x, y = xy
    face, sw = typeface(11), 12
    for kind in LEGEND:
        if kind in kinds:
            im.paste(_tile(_style(kind, BASE), sw, "", face), (x, y))
            face.draw(d, (x + sw + 4, y), LEGEND[kind], GREY)
            x += sw + 12 + face.width(LEGEND[kind])
    d.rectangle([x, y, x + sw - 1, y + sw - 1], outline=KERNEL_LINE, width=2)
    face.draw(d, (x + sw + 4, y), "kernel window", GREY)


class FrameRenderer:
    """Renders the frames of a scene as paletted images sharing one palette."""

    def __init__(self, scene: Scene):
        self.scene = scene
        stacked = len(scene.drawn_axes) == 1
        self.layout = _layout(scene.source, scene.target, scene.text, stacked)
        self.painter = Painter(self.layout)
        static = _draw_static(scene, self.layout, self.painter)
        self.base = self.painter.quantize(static)
        self.gather = scene.geometry.view == "gather"
        self._words: dict[str, Image.Image] = {}

    def frames(self) -> list[Image.Image]:
        running = self.base.copy()
        out = []
        for n, frame in enumerate(self.scene.frames):
            im = running.copy()
            self._draw_frame(im, n, frame)
            out.append(im)
            for r, c in self._target_cells(frame):
                self._paste(running, self.scene.target, self.layout.dst_xy, r, c, DONE)
        return out

    # -- per frame -------------------------------------------------------------------------

    def _drawn(self, per_axis: Sequence) -> tuple[Sequence[int], Sequence[int]]:
        """Per-axis values of the drawn axes as (rows, cols); a 1-D layer has the single row 0."""
        vals = [per_axis[a] for a in self.scene.drawn_axes]
        return (vals[0], vals[1]) if len(vals) == 2 else ((0,), vals[0])

    def _target_cells(self, frame: Frame) -> Iterable[tuple[int, int]]:
        if self.gather:
            rows, cols = self._drawn([(p,) for p in frame.position])
        else:
            rows, cols = self._drawn(frame.footprint)
        return itertools.product(rows, cols)

    def _draw_frame(self, im: Image.Image, n: int, frame: Frame) -> None:
        lay, sc = self.layout, self.scene
        d = ImageDraw.Draw(im)
        if self.gather:
            rows, cols = self._drawn(frame.footprint)
            for r, c in itertools.product(rows, cols):
                self._paste(im, sc.source, lay.src_xy, r, c, KERNEL)
            for r, c in self._target_cells(frame):
                self._paste(im, sc.target, lay.dst_xy, r, c, CURRENT)
            d.rectangle(lay.span_box(lay.src_xy, rows, cols), outline=self.painter.colour(KERNEL_LINE), width=2)
            self._outline_copied(d, rows, cols)
        else:
            prow, pcol = self._drawn([(p,) for p in frame.position])
            self._paste(im, sc.source, lay.src_xy, prow[0], pcol[0], CURRENT)
            rows, cols = self._drawn(frame.footprint)
            for r, c in itertools.product(rows, cols):
                self._paste(im, sc.target, lay.dst_xy, r, c, KERNEL)
            d.rectangle(lay.span_box(lay.dst_xy, rows, cols), outline=self.painter.colour(KERNEL_LINE), width=2)
        self._frame_text(im, n, frame)

    def _paste(self, im: Image.Image, panel: Panel, xy: tuple[int, int], r: int, c: int, state: str) -> None:
        tile = self.painter.p_tile(panel.kinds[r][c], state, panel.labels[r][c])
        im.paste(tile, self.layout.cell_box(xy, r, c)[:2])

    def _outline_copied(self, d: ImageDraw.ImageDraw, rows: Sequence[int], cols: Sequence[int]) -> None:
        """Orange outlines on the input cells that padded cells under the kernel copy."""
        copies, col = self.scene.source.copies, self.painter.colour(SOURCE_LINE)
        for r, c in itertools.product(rows, cols):
            if (r, c) in copies:
                x0, y0, x1, y1 = self.layout.cell_box(self.layout.src_xy, *copies[(r, c)])
                d.rectangle([x0 - 1, y0 - 1, x1 + 1, y1 + 1], outline=col, width=2)

    def _frame_text(self, im: Image.Image, n: int, frame: Frame) -> None:
        g = self.scene.geometry
        text = f"frame {n + 1}/{len(self.scene.frames)}: " + cap.frame_line(g, frame.position, len(frame.cells),
                                                                             _divisor(g, frame))
        x, space = MARGIN, typeface(12).width(" ")
        for word in text.split(" "):
            tile = self._word(word)
            im.paste(tile, (x, self.layout.frame_line_y))
            x += tile.width + space

    def _word(self, word: str) -> Image.Image:
        """A word of the frame line, drawn once and kept (fonts render slowly; words repeat)."""
        if word not in self._words:
            face = typeface(12)
            strip = Image.new("RGB", (max(1, face.width(word)), face.line_height), WHITE)
            face.draw(ImageDraw.Draw(strip), (0, 0), word, BLACK)
            self._words[word] = self.painter.quantize(strip)
        return self._words[word]


def _divisor(g: Geometry, frame: Frame) -> int | None:
    """AvgPool's divisor for this window (torch semantics, conv-semantics §3.1)."""
    if not isinstance(g.spec, Pool) or g.spec.mode != "avg":
        return None
    if g.spec.divisor_override is not None:
        return g.spec.divisor_override
    total = 1
    for ax, j in zip(g.gather_axes, frame.position):
        total *= ax.counted(j) if g.spec.count_include_pad else ax.real_count(j)
    return total


def render(g: Geometry, title: str) -> tuple[list[Image.Image], Layout]:
    """Every frame of the animation of ``g``, as paletted images."""
    r = FrameRenderer(build_scene(g, title))
    return r.frames(), r.layout
