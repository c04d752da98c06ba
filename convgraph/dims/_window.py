"""The window and dilation formulas of convolution and pooling, in one place.

Each takes ints or dims (``convgraph.dims``) and gives an int for ints: the shape stage applies them
to symbolic sizes, the animation to concrete ones, the solver's tiling test and the export reuse
them. (``convgraph.validate.reference`` restates them on purpose: it is the independent check.)

>>> window_count(7, 2, effective_kernel(3, 2), 2)   # Conv1d(k=3, d=2, s=2, p=1) on 7
3
>>> ceil_window_count(6, 1, 3, 2), transposed_size(3, 3, 2, 1, 1, 1)
(4, 6)
"""
from __future__ import annotations

from typing import overload

from convgraph.dims._algebra import Dim, add, floordiv, mul


def effective_kernel(k: int, d: int) -> int:
    """ek = d*(k - 1) + 1: the extent of a dilated kernel."""
    return d * (k - 1) + 1


@overload
def window_count(i: int, pad_total: int, ek: int, s: int) -> int: ...


@overload
def window_count(i: Dim, pad_total: int, ek: int, s: int) -> Dim: ...


def window_count(i: Dim, pad_total: int, ek: int, s: int) -> Dim:
    """o = floor((i + pad_total - ek)/s) + 1: windows of extent ek at stride s in the padded input."""
    return add(floordiv(add(i, pad_total - ek), s), 1)


@overload
def ceil_window_count(i: int, p: int, ek: int, s: int, p_end: int | None = None) -> int: ...


@overload
def ceil_window_count(i: Dim, p: int, ek: int, s: int, p_end: int | None = None) -> Dim: ...


def ceil_window_count(i: Dim, p: int, ek: int, s: int, p_end: int | None = None) -> Dim:
    """ceil mode, dropping a last window that starts in the right padding; p pads the start and
    p_end (default p) the end: o = floor((i + min(p + p_end - ek + s - 1, p - 1))/s) + 1.
    (torch: o = ceil((i + 2p - ek)/s) + 1, minus 1 if (o - 1)*s >= i + p; at most one window can
    start in the right padding because p <= ek/2, so the two bounds fold into one floor.)"""
    end = p if p_end is None else p_end
    return add(floordiv(add(i, min(p + end - ek + s - 1, p - 1)), s), 1)


@overload
def transposed_size(i: int, k: int, s: int, p: int, op: int, d: int, p_end: int | None = None) -> int: ...


@overload
def transposed_size(i: Dim, k: int, s: int, p: int, op: int, d: int, p_end: int | None = None) -> Dim: ...


def transposed_size(i: Dim, k: int, s: int, p: int, op: int, d: int, p_end: int | None = None) -> Dim:
    """o = (i - 1)*s - p - p_end + d*(k - 1) + op + 1 (p cropped at the start, p_end, default p, at the end)"""
    end = p if p_end is None else p_end
    return add(mul(i, s), -s - p - end + effective_kernel(k, d) + op)


@overload
def stretched_size(i: int, s: int) -> int: ...


@overload
def stretched_size(i: Dim, s: int) -> Dim: ...


def stretched_size(i: Dim, s: int) -> Dim:
    """(i - 1)*s + 1: the input with s - 1 zeros between neighbouring cells (a transposed conv as a
    direct one)."""
    return add(mul(i, s), 1 - s)
