"""The text of an animation: the size formula with its values, per axis, and notes (pure).

>>> from convgraph.ir import Conv
>>> from convgraph.animate._geometry import geometry
>>> g = geometry(Conv(type_name="Conv1d", nd=1, in_channels=1, out_channels=1, kernel_size=(4,), stride=(1,),
...                      padding=((2, 2),), dilation=(1,)), (5,))
>>> formula_lines(g)
['o = ⌊(i + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(5 + 4 − 3 − 1)/1⌋ + 1 = 6']
"""
from __future__ import annotations

from collections.abc import Callable

from convgraph.animate._geometry import Geometry
from convgraph.dims import effective_kernel, stretched_size
from convgraph.ir import Conv, ConvTranspose, LayerSpec, Pool


def num(v: int) -> str:
    """An int with a typographic minus."""
    return f"−{-v}" if v < 0 else str(v)


def dims_str(sizes: tuple[int, ...]) -> str:
    return "×".join(map(str, sizes))


def _conv(spec: Conv, a: int, i: int, o: int) -> list[str]:
    (pb, pe), k, s, d = spec.padding[a], spec.kernel_size[a], spec.stride[a], spec.dilation[a]
    if pb == pe:
        return [f"o = ⌊(i + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊({i} + {2 * pb} − {d * (k - 1)} − 1)/{s}⌋ + 1 = {o}"]
    return [f"o = ⌊(i + pb + pe − d(k−1) − 1)/s⌋ + 1 = ⌊({i} + {pb} + {pe} − {d * (k - 1)} − 1)/{s}⌋ + 1 = {o}"]


def _pool(spec: Pool, a: int, i: int, o: int) -> list[str]:
    (p, pe), k, s, d = spec.padding[a], spec.kernel_size[a], spec.stride[a], spec.dilation[a]
    two_p, pads = ("2p", f"{2 * p}") if p == pe else ("p + pe", f"{p} + {pe}")
    vals = f"({i} + {pads} − {d * (k - 1)} − 1)/{s}"
    if not spec.ceil_mode:
        return [f"o = ⌊(i + {two_p} − d(k−1) − 1)/s⌋ + 1 = ⌊{vals}⌋ + 1 = {o}"]
    oc = -(-(i + p + pe - effective_kernel(k, d)) // s) + 1
    first = f"o = ⌈(i + {two_p} − d(k−1) − 1)/s⌉ + 1 = ⌈{vals}⌉ + 1 = {oc}"
    start = (oc - 1) * s
    if oc != o:
        rule = (f"ceil mode: the last window would start at (o − 1)s = {start} ≥ i + p = {i + p}, "
                f"in the right padding: dropped, o = {o}")
    else:
        rule = f"ceil mode: the last window starts at (o − 1)s = {start} < i + p = {i + p}: kept"
    return [first, rule]


def _conv_transpose(spec: ConvTranspose, a: int, i: int, o: int) -> list[str]:
    k, s, d, (p, p_end), op = (spec.kernel_size[a], spec.stride[a], spec.dilation[a], spec.padding[a],
                               spec.output_padding[a])
    pe, pe_end = d * (k - 1) - p, d * (k - 1) - p_end
    crop = " (negative: crop)" if pe < 0 or pe_end + op < 0 else ""
    if p != p_end:
        return [
            f"o = (i − 1)s − pb − pe + d(k−1) + op + 1 = ({i} − 1)·{s} − {p} − {p_end} + {d * (k - 1)} + {op} + 1 "
            f"= {o}",
            f"as a direct conv: i' = (i − 1)s + 1 = {stretched_size(i, s)}, padding d(k−1) − pb = {num(pe)} "
            f"at the start, d(k−1) − pe = {num(pe_end)} + op = {op} at the end{crop}, stride 1",
        ]
    return [
        f"o = (i − 1)s − 2p + d(k−1) + op + 1 = ({i} − 1)·{s} − {2 * p} + {d * (k - 1)} + {op} + 1 = {o}",
        f"as a direct conv: i' = (i − 1)s + 1 = {stretched_size(i, s)}, padding d(k−1) − p = {num(pe)} "
        f"each side + op = {op} at the end{crop}, stride 1",
    ]


def _scatter(spec: ConvTranspose, a: int, i: int, o: int) -> list[str]:
    k, s, d, (p, p_end), op = (spec.kernel_size[a], spec.stride[a], spec.dilation[a], spec.padding[a],
                               spec.output_padding[a])
    full = stretched_size(i, s) + d * (k - 1) + op
    if p != p_end:
        return [
            f"o = (i − 1)s − pb − pe + d(k−1) + op + 1 = ({i} − 1)·{s} − {p} − {p_end} + {d * (k - 1)} + {op} + 1 "
            f"= {o}",
            f"scatter: input a adds its value × tap t at a·s + t·d on the full output ({full} long), "
            f"then {p} cropped at the start and {p_end} at the end",
        ]
    return [
        f"o = (i − 1)s − 2p + d(k−1) + op + 1 = ({i} − 1)·{s} − {2 * p} + {d * (k - 1)} + {op} + 1 = {o}",
        f"scatter: input a adds its value × tap t at a·s + t·d on the full output ({full} long), "
        f"then {p} cropped at each end",
    ]


AXIS_FORMULAS: dict[type, Callable[..., list[str]]] = {Conv: _conv, Pool: _pool, ConvTranspose: _conv_transpose}


def formula_lines(g: Geometry) -> list[str]:
    """The size formula with its values: one block when every axis is alike, else one per axis."""
    rule: Callable[..., list[str]] = _scatter if g.view == "scatter" else AXIS_FORMULAS[type(g.spec)]
    blocks = [rule(g.spec, a, ax.in_size, ax.out_size) for a, ax in enumerate(g.axes)]
    if all(b == blocks[0] for b in blocks):
        return blocks[0]
    return [f"{ax.name}: {line}" if j == 0 else f"     {line}"
            for ax, block in zip(g.axes, blocks) for j, line in enumerate(block)]


def notes(g: Geometry) -> list[str]:
    """What the colours mean beyond the legend, for this layer."""
    spec = g.spec
    out = []
    if isinstance(spec, Conv) and spec.padding_mode != "zeros":
        out.append(f"padding_mode='{spec.padding_mode}': each padded cell holds a copy of an input cell "
                   "(orange: the copied cells)")
    if isinstance(spec, Pool):
        if spec.mode == "max":
            out.append("max pool: padding is −inf, never the maximum")
        else:
            how = "counted as zeros" if spec.count_include_pad else "not counted (count_include_pad=False)"
            out.append(f"avg pool: padding cells are {how}")
            if spec.divisor_override is not None:
                out.append(f"divisor_override={spec.divisor_override}: every window sum is divided by it")
    if isinstance(spec, ConvTranspose) and g.view == "gather":
        out.append("transposed conv drawn as a direct conv (kernel flipped) over the input stretched "
                   "by s − 1 zeros between cells")
    return out


def frame_line(g: Geometry, pos: tuple[int, ...], cells: int, divisor: int | None) -> str:
    where = "[" + ", ".join(map(str, pos)) + "]"
    if g.view == "scatter":
        return f"input {where} writes to {cells} output cell{'s' * (cells != 1)}"
    extra = f", divided by {divisor}" if divisor is not None else ""
    return f"output {where} ← {cells} input cell{'s' * (cells != 1)}{extra}"


def layer_text(spec: LayerSpec) -> str:
    """A compact description of a spec, e.g. ``ConvTranspose2d k=(3, 3) s=(2, 2) p=(1, 1)``."""
    parts = [spec.type_name]
    for key, label in (("kernel_size", "k"), ("stride", "s"), ("padding", "p"), ("dilation", "d"),
                       ("output_padding", "op")):
        v = getattr(spec, key, None)
        if v is not None and not (key in ("dilation", "output_padding") and set(v) <= {1 if key == "dilation" else 0}):
            parts.append(f"{label}={v if len(v) > 1 else v[0]}")
    if getattr(spec, "ceil_mode", False):
        parts.append("ceil_mode")
    if isinstance(spec, Conv) and spec.padding_mode != "zeros":
        parts.append(f"padding_mode={spec.padding_mode!r}")
    return " ".join(parts)
