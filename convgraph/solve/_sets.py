"""Exact size sets for single conditions: the building blocks of ``convgraph.solve``.

Every condition the shape stage records is ``lhs op rhs`` over dims. For one symbol x:

- a monotone inequality (every layer's own size rule: ``i + 2p >= ek``, ``o >= 1``) is a half-line,
  found by exponential + binary search (``dims.min_at_least``), exact for any period;
- a periodic condition (``d(x + P) == d(x) + slope*P``) is an eventually periodic set, found by
  residue lifting on the structure of the dims, never by enumerating the period
  (``convgraph.solve._conditions.condition_sizes``: exact for periods of 2**40 and beyond);
- ``F(x) == c`` with F a product of non-decreasing factors (a Linear after Flatten of one symbol)
  is an interval: F is non-decreasing once every factor is non-negative;
- a condition through a non-dyadic Upsample scale (``floor(float(v)*sf)``, no period) is solved on
  each window of the scale's exact pieces (``convgraph.solve._scaled``: a quasi-affine form per
  window, exact for every torch size);
- only a scale with no compact pieces (a float with many significant digits, ``dims.scale_pieces``
  gives None) is still checked size by size over ``1..BRUTE_LIMIT``: the result carries
  ``exact=False`` and the caller says so.

``ProductCoupling`` handles ``C*f(H)*g(W) == in_features`` exactly: each factor group must take a
divisor of the constant, and a monotone factor takes each value on an interval (a bound from
below, ``>= K``, is ``convgraph.solve._products``; two symbols through layers, ``_pairs``).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.shapes import ShapeResult
from convgraph.solve._conditions import condition_sizes, denominators, radix_of
from convgraph.solve._scaled import split_scales, union_all
from convgraph.solve._sizes import TRUE, Sizes

EPSet = Sizes  # the set type every solver result holds (an EPSet-compatible, exact, compact set)

#: sizes checked one by one when a condition has no exact form (a scale with no compact pieces)
BRUTE_LIMIT = 4096
#: a coupling that has no exact form (not a product, not ``f(A) == g(B)`` with f, g monotone:
#: three symbols, an inequality, a non-dyadic scale) is searched over this many valid sizes of each
PAIR_SPAN = 64


@dataclass(frozen=True)
class CondSet:
    """The sizes where one condition holds; ``exact`` is False when found by brute force over
    ``1..BRUTE_LIMIT`` (then nothing is claimed above the limit)."""

    sizes: EPSet
    exact: bool = True


def minus(a: EPSet, b: EPSet) -> EPSet:
    """a \\ b"""
    return Sizes.lift(a) - b


def subset(a: EPSet, b: EPSet) -> bool:
    return minus(a, b).empty


def finite_set(xs: Iterable[int]) -> EPSet:
    return Sizes.of(xs)


def interval(a: int, b: int | None) -> EPSet:
    """{a <= x < b} (b None: unbounded), x >= 1."""
    return Sizes.interval(a, None if b is None else b - 1)


def brute(pred: Callable[[int], bool], limit: int = BRUTE_LIMIT) -> EPSet:
    return finite_set(x for x in range(1, limit + 1) if pred(x))


# --------------------------------------------------------------------------------------------
# Monotonicity
# --------------------------------------------------------------------------------------------


def factors(d: Dim) -> list[Dim]:
    """The multiplicative factors of a dim (a product Combo), else [d]."""
    if isinstance(d, D.Combo) and d.op == "mul":
        return list(d.args)
    return [d]


def nonneg_from(d: Dim, name: str) -> int | None:
    """The smallest x >= 1 from which every factor of d is >= 0 and non-decreasing in ``name``
    (so d is non-decreasing from there); None when some factor is not monotone."""
    lo = 1
    for f in factors(d):
        if not D.is_monotone(f):
            return None
        x = D.min_at_least(f, 0, name)
        if x is None:
            return None
        lo = max(lo, x)
    return lo


def _value(d: Dim, name: str) -> Callable[[int], int]:
    return lambda x: D.evaluate(d, {name: x})


# --------------------------------------------------------------------------------------------
# One condition on one symbol
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def condition_set(lhs: Dim, op: str, rhs: Dim, name: str, radix: tuple[int, ...] = ()) -> CondSet:
    """The exact set of sizes x >= 1 of ``name`` where ``lhs op rhs`` holds (the condition must
    involve ``name`` alone). Cached: re-solving an edited graph only solves what changed.
    ``radix``: the digit order shared by the symbol's conditions (``_conditions.radix_for``)."""
    lhs, rhs = D.lower(lhs), D.lower(rhs)
    got = _monotone_inequality(lhs, op, rhs, name)
    got = got if got is not None else condition_sizes(lhs, op, rhs, name, radix)
    got = got if got is not None else _monotone_equality(lhs, op, rhs, name)
    if got is not None:
        return CondSet(got)
    scaled = _scaled(lhs, op, rhs, name)
    if scaled is not None:
        return scaled
    f, g = _value(lhs, name), _value(rhs, name)
    return CondSet(brute(lambda x: D.compare(f(x), op, g(x))), exact=False)


def _scaled(lhs: Dim, op: str, rhs: Dim, name: str) -> CondSet | None:
    """A condition through a non-dyadic scale: solved on each window of the scale's pieces
    (``_scaled.split_scales``), exact when every window's condition is; None when a scale has no
    pieces."""
    parts = split_scales(D.add(lhs, D.mul(rhs, -1)), name)
    if parts is None:
        return None
    got = [(w, condition_set(D.lower(g), op, 0, name)) for w, g in parts]
    return CondSet(union_all([w & cs.sizes for w, cs in got]), all(cs.exact for _, cs in got))


def _monotone_inequality(lhs: Dim, op: str, rhs: Dim, name: str) -> EPSet | None:
    """``lhs >= c`` style with lhs non-decreasing (or the mirror image): a half-line."""
    flip = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}
    if op not in flip:
        return None
    if D.is_const(lhs) and not D.is_const(rhs):
        lhs, rhs, op = rhs, lhs, flip[op]
    c = D.as_int(rhs)
    if c is None or not D.is_monotone(lhs):
        return None
    need = {">=": c, ">": c + 1, "<=": c + 1, "<": c}[op]
    x = D.min_at_least(lhs, need, name)
    at_least = interval(x, None) if x is not None else Sizes.none()
    return at_least if op in (">=", ">") else minus(Sizes.all(), at_least)


def _monotone_equality(lhs: Dim, op: str, rhs: Dim, name: str) -> EPSet | None:
    """``F(x) == c`` (or !=) with F a product of monotone factors: an interval past the point where
    every factor is non-negative, sizes below it checked one by one."""
    if op not in ("==", "!=") or D.is_const(lhs) == D.is_const(rhs):
        return None
    if D.is_const(lhs):
        lhs, rhs = rhs, lhs
    lo, c = nonneg_from(lhs, name), D.as_int(rhs)
    if lo is None or lo > BRUTE_LIMIT or c is None:
        return None
    f = _value(lhs, name)
    a = D.min_at_least(lhs, c, name, lo=lo)
    b = D.min_at_least(lhs, c + 1, name, lo=lo) if a is not None else None
    hit = Sizes.none() if a is None or f(a) != c else interval(a, b)
    hit = hit | finite_set(x for x in range(1, lo) if f(x) == c)
    return hit if op == "==" else minus(Sizes.all(), hit)


# --------------------------------------------------------------------------------------------
# Products of several symbols: Linear after Flatten
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductCoupling:
    """``prod_X F_X(X) op target`` (op '==', or '>=': ``_products``) for monotone F_X: the
    admissible tuples, each a dict symbol -> set of sizes (every combination of sizes from one
    tuple's sets is admissible, and every admissible combination is in some tuple)."""

    target: int
    groups: tuple[tuple[str, Dim], ...]
    tuples: tuple[tuple[tuple[str, EPSet], ...], ...]
    op: str = "=="

    def per_symbol(self) -> dict[str, EPSet]:
        out = {name: Sizes.none() for name, _ in self.groups}
        for tup in self.tuples:
            for name, s in tup:
                out[name] = out[name] | s
        return out


def split_product(d: Dim) -> tuple[int, dict[str, Dim]] | None:
    """d as const * prod over symbols of one-symbol dims, or None when some factor mixes symbols."""
    const, groups = 1, dict[str, Dim]()
    for f in factors(d):
        syms = D.symbols(f)
        if not syms:
            const *= D.evaluate(f, {})
        elif len(syms) == 1:
            (name,) = syms
            groups[name] = D.mul(groups[name], f) if name in groups else f
        else:
            return None
    return const, groups


def product_coupling(lhs: Dim, rhs: Dim, allowed: Mapping[str, EPSet]) -> ProductCoupling | None:
    """Solve ``lhs == rhs`` with one side a constant and the other a product of monotone
    one-symbol factors, over the sizes each symbol is ``allowed``; None when not of that form."""
    if D.is_const(lhs):
        lhs, rhs = rhs, lhs
    c = D.as_int(rhs)
    split = split_product(lhs) if c is not None else None
    if split is None or c is None:
        return None
    const, groups = split
    names = sorted(groups)
    if const <= 0 or c <= 0 or any(nonneg_from(groups[n], n) is None for n in names):
        return None
    if c % const:  # the constant factor alone rules out every size
        return ProductCoupling(0, tuple((n, groups[n]) for n in names), ())
    target = c // const
    divs = divisors(target)
    by_value = {n: _preimages(groups[n], n, divs, allowed[n]) for n in names}
    tuples = []
    for combo in itertools.product(*(sorted(by_value[n].items()) for n in names)):
        if math.prod(v for v, _ in combo) == target:
            tuples.append(tuple((n, s) for n, (_, s) in zip(names, combo)))
    return ProductCoupling(target, tuple((n, groups[n]) for n in names), tuple(tuples))


def divisors(n: int) -> list[int]:
    small = [q for q in range(1, math.isqrt(n) + 1) if n % q == 0]
    return sorted(set(small + [n // q for q in small]))


def _preimages(f: Dim, name: str, values: list[int], allowed: EPSet) -> dict[int, EPSet]:
    """value -> the allowed sizes where f takes it (only non-empty ones)."""
    out = {}
    for v in values:
        s = condition_set(f, "==", v, name).sizes & allowed
        if not s.empty:
            out[v] = s
    return out


def symbol_radix(res: ShapeResult) -> dict[str, tuple[int, ...]]:
    """symbol -> the digit order its conditions are solved in (``radix_for``), from
    every dim of the shape result that depends on that symbol alone."""
    dens: dict[str, set[int]] = {}
    for shape in res.values.values():
        for n, ks in _shape_denominators(shape):
            dens.setdefault(n, set()).update(ks)
    return {n: radix_of(ks) for n, ks in dens.items()}


def edited_radix(base: ShapeResult, res: ShapeResult) -> dict[str, tuple[int, ...]]:
    """``symbol_radix(res)`` for a result that keeps most of ``base``'s shapes (the same objects
    under the same names): ``symbol_radix`` reads the set of (symbol, denominator) pairs over
    every shape, so the base's count of each pair, less the shapes that were replaced or dropped
    and plus the new ones, gives the same set: a pair is in it when its count is positive.
    Remembered on ``res``'s graph."""
    key = (edited_radix, id(base))
    got = res.graph._memo.get(key)
    if isinstance(got, tuple) and got[0] is base and got[1] is res:
        return got[2]
    rx = _edited_radix(base, res)
    res.graph._memo[key] = (base, res, rx)
    return rx


def _edited_radix(base: ShapeResult, res: ShapeResult) -> dict[str, tuple[int, ...]]:
    counts = dict(_pair_counts(base))
    before = base.values
    kept = 0
    for name, shape in res.values.items():
        old = before.get(name)
        if old is shape:
            kept += 1
            continue
        if old is not None:
            kept += 1
            _count(counts, old, -1)
        _count(counts, shape, 1)
    if kept != len(before):
        for name in before.keys() - res.values.keys():
            _count(counts, before[name], -1)
    dens: dict[str, set[int]] = {}
    for (n, k), c in counts.items():
        if c > 0:
            got = dens.setdefault(n, set())
            if k:
                got.add(k)
    return {n: radix_of(ks) for n, ks in dens.items()}


def _pair_counts(base: ShapeResult) -> dict[tuple[str, int], int]:
    """(symbol, denominator) -> how many dims of ``base``'s shapes have it (denominator 0: a dim
    on that symbol alone), once per result (memoised on its graph)."""
    def count() -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for shape in base.values.values():
            _count(out, shape, 1)
        return out

    got = base.graph.memo((_pair_counts, id(base)), lambda: (base, count()))
    return got[1] if got[0] is base else count()


def _count(counts: dict[tuple[str, int], int], shape: tuple[Dim, ...], sign: int) -> None:
    for n, ks in _shape_denominators(shape):
        counts[(n, 0)] = counts.get((n, 0), 0) + sign
        for k in ks:
            counts[(n, k)] = counts.get((n, k), 0) + sign


def _shape_denominators(shape: tuple[Dim, ...]) -> tuple[tuple[str, frozenset[int]], ...]:
    """(symbol, floor denominators) of each dim of a shape that depends on one symbol; remembered
    per shape object (an edited graph's result shares most of its shapes with the solved one's)."""
    got = _DENS.get(id(shape))
    if got is None or got[0] is not shape:
        out = []
        for d in shape:
            if type(d) is not int:  # an int depends on no symbol
                one = _dim_denominators(d)
                if one is not None:
                    out.append(one)
        if len(_DENS) > 1 << 16:
            _DENS.clear()
        got = _DENS[id(shape)] = (shape, tuple(out))
    return got[1]


def _dim_denominators(d: Dim) -> tuple[str, frozenset[int]] | None:
    """(symbol, floor denominators) of a dim on one symbol, else None; remembered per dim object:
    the shapes of an edited graph are new tuples, but most of their dims are the solved graph's
    (the batch dim, an axis the edit left alone)."""
    got = _DIM_DENS.get(id(d))
    if got is None or got[0] is not d:
        syms = D.symbols(d)
        if len(_DIM_DENS) > 1 << 16:
            _DIM_DENS.clear()
        got = _DIM_DENS[id(d)] = (d, (next(iter(syms)), denominators(d)) if len(syms) == 1 else None)
    return got[1]


_DENS: dict[int, tuple[tuple[Dim, ...], tuple[tuple[str, frozenset[int]], ...]]] = {}
_DIM_DENS: dict[int, tuple[Dim, tuple[str, frozenset[int]] | None]] = {}


def intersect_all(sets: Iterable[EPSet]) -> EPSet:
    """The intersection; half-lines (most size rules) fold into one bound first, and a set met
    twice (the same cached object) is intersected once. Without a bound above 1 the meet starts
    from the first set itself: every set here is of sizes >= 1, so meeting it with ``x >= 1``
    gives the same set, in the same canonical windows (``Sizes.make``)."""
    lo, rest = 1, dict[int, Sizes]()
    for s0 in sets:
        s = Sizes.lift(s0)
        if s.empty:
            return Sizes.none()
        if len(s.windows) == 1 and s.windows[0][1] is None and s.windows[0][2] == TRUE:
            lo = max(lo, s.windows[0][0])
        else:
            rest[id(s)] = s
    if lo == 1 and rest:
        return reduce(lambda a, b: a & b, rest.values())
    return reduce(lambda a, b: a & b, rest.values(), Sizes.all(lo))
