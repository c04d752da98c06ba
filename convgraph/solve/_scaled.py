"""Conditions through a non-dyadic ``Upsample`` scale, solved exactly window by window.

``floor(float(v) * sf)`` (a ``dims.FScale``) has no period, but ``dims.scale_pieces`` cuts the
values of its argument v into windows (with a residue guard where rounding ties break) on each of
which it *is* a quasi-affine dim. The argument is a non-decreasing dim of the symbol, so each window
of v is an interval of sizes; on it, the condition with the scale replaced by the window's form is
solved by the periodic machinery (``condition_set``), and the windows' answers are joined. Nested
scales (an Upsample of an Upsample) and several scales in one condition are split one after the
other. Nothing is sampled; a scale with no compact form (``scale_pieces`` gives None) leaves the
caller without an exact set.
"""
from __future__ import annotations

from functools import lru_cache, reduce

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.dims._scale import ScalePiece, scale_pieces
from convgraph.solve._conditions import condition_sizes
from convgraph.solve._sizes import Sizes

#: sizes searched for a window's ends: far past 2**63 (a slow argument reaches its windows late)
_LIMIT = 1 << 200
#: (the sizes where a piece applies, the condition's dim there without that scale)
Split = list[tuple[Sizes, Dim]]


def innermost_scale(d: Dim) -> D.FScale | None:
    """An FScale base of d whose argument holds no FScale (None: d has none)."""
    if isinstance(d, int):
        return None
    if isinstance(d, D.Combo):
        return next((b for b in map(innermost_scale, d.args) if b is not None), None)
    if d.base is None or isinstance(d.base, D.Var):
        return None
    inner = innermost_scale(d.base.arg)
    if inner is not None:
        return inner
    return d.base if isinstance(d.base, D.FScale) else None


def replace_base(d: Dim, old: D.FScale, new: Dim) -> Dim:
    """d with the base ``old`` (floor(v*sf)) replaced by the dim ``new``, in canonical form."""
    if isinstance(d, int):
        return d
    if isinstance(d, D.Combo):
        return reduce(D.add if d.op == "add" else D.mul, (replace_base(a, old, new) for a in d.args))
    if d.base is None or isinstance(d.base, D.Var):
        return d
    if d.base == old:
        inner = new
    elif isinstance(d.base, D.FloorDiv):
        inner = D.floordiv(replace_base(d.base.arg, old, new), d.base.k)
    else:
        inner = D.scale_floor(replace_base(d.base.arg, old, new), d.base.sf)
    return D.add(D.mul(inner, d.m), d.n)


def split_scales(d: Dim, name: str, lo: int = 1, hi: int | None = None, where: Sizes | None = None) -> Split | None:
    """Sizes windows (each with its guard) covering every size in ``lo..hi`` (or ``where``) once,
    each with d written without FScale; None when a scale has no pieces or its argument is not
    non-decreasing."""
    base = innermost_scale(d)
    if base is None:
        return [(Sizes.interval(lo, hi) if where is None else where, d)]
    pieces = scale_pieces(base.sf)
    arg = D.lower(base.arg)
    if pieces is None or not D.is_monotone(arg) or D.is_const(arg):
        return None
    vlo = D.evaluate(arg, {name: lo})
    vhi = None if hi is None else D.evaluate(arg, {name: hi})
    out: Split = []
    for pc in pieces:
        if (pc.hi is not None and pc.hi < vlo) or (vhi is not None and pc.lo is not None and pc.lo > vhi):
            continue  # the argument takes none of the piece's values on lo..hi
        got = _where(pc, arg, name, lo, hi)
        if got is None:
            continue
        if where is not None and (got := got & where).empty:
            continue
        first, last = got.windows[0][0], got.windows[-1][1]
        rest = split_scales(replace_base(d, base, _form(pc, arg)), name, first, last, got)
        if rest is None:
            return None
        out += rest
    return out


def _u(pc: ScalePiece, v: Dim) -> Dim:
    return D.floordiv(D.add(v, pc.s), 1 << pc.j) if pc.j else v


def _form(pc: ScalePiece, v: Dim) -> Dim:
    """The piece's quasi-affine form of floor(float(v)*sf)."""
    return D.lower(D.mul(D.floordiv(D.add(D.mul(_u(pc, v), pc.p), pc.c), pc.r), pc.A))


def _where(pc: ScalePiece, v: Dim, name: str, lo: int, hi: int | None) -> Sizes | None:
    """The sizes of ``lo..hi`` where the piece applies: v in its window (an interval of sizes, v
    non-decreasing) and its guards hold; None when there are none."""
    if pc.lo is not None:
        first = D.min_at_least(v, pc.lo, name, lo=lo, limit=_LIMIT)
        if first is None:
            return None
        lo = first
    if pc.hi is not None:
        top = D.min_at_least(v, pc.hi + 1, name, lo=lo, limit=_LIMIT)
        if top is not None:
            hi = top - 1 if hi is None else min(hi, top - 1)
    if hi is not None and hi < lo:
        return None
    out = Sizes.interval(lo, hi)
    for x, g in ((v, pc.vguard), (_u(pc, v), pc.uguard)):
        if g is not None:
            out = out & _guard(x, *g, name)
    return None if out.empty else out


@lru_cache(maxsize=1 << 12)
def _guard(x: Dim, m: int, t: int, eq: bool, name: str) -> Sizes:
    """The sizes where ``x % m == t`` (eq) or ``!= t``: a residue condition, periodic and exact."""
    got = condition_sizes(x % m, "==" if eq else "!=", t, name)
    assert got is not None, "a residue condition on a quasi-affine dim is periodic"
    return got


def union_all(sets: list[Sizes]) -> Sizes:
    """The union, joined pairwise in a balanced tree (each join costs the windows of its two sets)."""
    if not sets:
        return Sizes.none()
    while len(sets) > 1:
        sets = [sets[i] | sets[i + 1] if i + 1 < len(sets) else sets[i] for i in range(0, len(sets), 2)]
    return sets[0]
