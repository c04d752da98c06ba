"""``convgraph summary --plot``: MACs and activation memory against the input size, drawn with
Pillow (no plotting library), over sizes taken from the exact valid set.

The x axis is the first spatial symbol; every other spatial symbol takes the smallest valid size at
or above it, every batch symbol (a dim 0 of an input) is 1, and a size assignment is kept only
when every constraint holds (coupled sizes included).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

from convgraph.ir import Graph
from convgraph.shapes import infer
from convgraph.shapes.summary import Summary, evaluate
from convgraph.solve import solve

WIDTH, PANEL, MARGIN = 720, 260, 70
#: up to this many sizes, spread geometrically from the smallest valid size
POINTS, LARGEST = 24, 1024


@dataclass(frozen=True)
class Series:
    symbol: str
    sizes: tuple[dict[str, int], ...]
    macs: tuple[int, ...]
    activation_bytes: tuple[int, ...]


def _targets(start: int) -> list[int]:
    out: list[int] = []
    t = float(max(start, 1))
    while t <= LARGEST and len(out) < POINTS:
        out.append(int(t))
        t = max(t + 1, t * 1.25)
    return out


def series(graph: Graph, summary: Summary) -> Series:
    """The sizes and the costs at each (MACs; float32 activation bytes)."""
    batch = {n.dims[0] for n in graph.inputs if n.dims and isinstance(n.dims[0], str)}
    spatial = [s for s in graph.symbols if s not in batch]
    if not spatial:
        raise ValueError("no spatial size symbol to plot against")
    runs = {s: v.runs for s, v in solve(graph, tiling=False).symbols.items()}
    res, chosen = infer(graph), []
    for t in _targets(runs[spatial[0]].min or 1):
        above = {s: runs[s].near(t)[1] for s in spatial}
        sizes = {s: 1 for s in batch} | {s: v for s, v in above.items() if v is not None}
        if len(sizes) == len(batch) + len(spatial) and all(c.holds(sizes) for c in res.constraints) \
                and sizes not in chosen:
            chosen.append(sizes)
    macs = tuple(evaluate(summary.macs, s) for s in chosen)
    acts = tuple(4 * evaluate(summary.activations, s) for s in chosen)
    return Series(spatial[0], tuple(chosen), macs, acts)


def _panel(draw: ImageDraw.ImageDraw, top: int, xs: list[int], ys: list[float], title: str) -> None:
    left, right, bottom = MARGIN, WIDTH - 20, top + PANEL - 40
    draw.rectangle([left, top + 20, right, bottom], outline="black")
    draw.text((left, top + 4), title, fill="black")
    x0, x1, y1 = min(xs), max(xs), max(ys) or 1.0
    px = lambda x: left + (right - left) * ((x - x0) / ((x1 - x0) or 1))  # noqa: E731
    py = lambda y: bottom - (bottom - top - 30) * (y / y1)  # noqa: E731
    for k in range(5):
        y = y1 * k / 4
        draw.text((4, py(y) - 6), f"{y:,.0f}" if y1 >= 100 else f"{y:.3g}", fill="gray")
        draw.line([left, py(y), left + 4, py(y)], fill="black")
    for x in (x0, xs[len(xs) // 2], x1):
        draw.text((px(x) - 8, bottom + 4), str(x), fill="gray")
    points = [(px(x), py(y)) for x, y in zip(xs, ys)]
    draw.line(points, fill="navy", width=2)
    for x, y in points:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill="navy")


def plot_png(s: Series, title: str) -> bytes:
    """Two panels: GMACs and activation MB (float32) against the size symbol."""
    if not s.sizes:
        raise ValueError("no valid size to plot")
    image = Image.new("RGB", (WIDTH, 2 * PANEL + 50), "white")
    draw = ImageDraw.Draw(image)
    others = ", ".join(f"{k}={v}" for k, v in s.sizes[0].items() if k != s.symbol and v == 1)
    draw.text((MARGIN, 6), f"{title}: cost against {s.symbol} (other sizes: next valid >= {s.symbol}"
              f"{'; ' + others if others else ''})", fill="black")
    xs = [sz[s.symbol] for sz in s.sizes]
    _panel(draw, 24, xs, [m / 1e9 for m in s.macs], "multiply-accumulates (GMACs)")
    _panel(draw, 24 + PANEL, xs, [b / 2 ** 20 for b in s.activation_bytes], "activation memory (MiB, float32)")
    draw.text((WIDTH // 2, 2 * PANEL + 30), s.symbol, fill="black")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
