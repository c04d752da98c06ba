"""``prod_X F_X(X) >= K`` over several symbols, exact, as a union of products of per-symbol sets.

InstanceNorm's "more than one spatial element" is ``floor(H/4)*floor(W/4) > 1``. With every
factor group F_X non-decreasing and non-negative on X's allowed sizes, the tuples of values with
product >= K form an up-set whose minimal corners are threshold tuples ``(t_1, ..., t_n)`` with
``t_1 * ... * t_n >= K``: the condition holds iff ``F_X(X) >= t_X`` for every X, for some corner.
Each ``{x : F_X(x) >= t}`` is a half-line (``min_at_least``), so the set is a union of products of
per-symbol sets, as ``ProductCoupling`` states the equality case. The smallest solutions (by the
sum of the sizes) are read off those products in order, not searched.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._sets import ProductCoupling, nonneg_from, split_product
from convgraph.solve._sizes import Sizes

#: the largest bound K with its threshold tuples enumerated (InstanceNorm needs K = 2)
MAX_BOUND = 256
#: the most tuples stated (beyond: the coupling has no exact form here)
MAX_TUPLES = 512

Tuple = tuple[tuple[str, Sizes], ...]


def product_at_least(lhs: Dim, op: str, rhs: Dim, allowed: Mapping[str, Sizes]) -> ProductCoupling | None:
    """``const * prod F_X(X) >= c`` (or ``>``; ``c <= prod``, ``c < prod``) as the union of the
    products of ``{x in allowed[X] : F_X(x) >= t_X}`` over the threshold tuples; None when the
    condition is not of that form (a bound on the product from above, a factor that is not
    monotone and non-negative on the allowed sizes, a bound over ``MAX_BOUND``)."""
    if D.is_const(lhs) and op in ("<=", "<"):
        lhs, rhs, op = rhs, lhs, {"<=": ">=", "<": ">"}[op]
    c = D.as_int(rhs)
    split = split_product(lhs) if c is not None and op in (">=", ">") else None
    if split is None or c is None:
        return None
    const, groups = split
    names = sorted(groups)
    if const <= 0 or len(names) < 2 or not all(_nonneg(groups[n], n, allowed[n]) for n in names):
        return None
    need = c + 1 if op == ">" else c
    k = -(-need // const)
    corners = _thresholds(k, len(names)) if k <= MAX_BOUND else None
    if corners is None or len(corners) > MAX_TUPLES:
        return None
    tuples = []
    for ts in corners:
        tup = tuple((n, Sizes.lift(allowed[n]) & _at_least(groups[n], n, t)) for n, t in zip(names, ts))
        if not any(s.empty for _, s in tup):
            tuples.append(tup)
    return ProductCoupling(k, tuple((n, groups[n]) for n in names), tuple(tuples), ">=")


def _nonneg(f: Dim, name: str, allowed: Sizes) -> bool:
    lo = nonneg_from(f, name)
    return lo is not None and (allowed.empty or lo <= allowed.least)


def _at_least(f: Dim, name: str, t: int) -> Sizes:
    """{x >= 1 : f(x) >= t} for f non-decreasing: a half-line."""
    x = D.min_at_least(f, t, name)
    return Sizes.none() if x is None else Sizes.interval(x, None)


def _thresholds(k: int, n: int) -> list[tuple[int, ...]]:
    """The minimal tuples of n non-negative thresholds whose product reaches k (all 0 when k <= 0)."""
    if k <= 0:
        return [(0,) * n]
    if n == 1:
        return [(k,)]
    out = []
    for t in sorted({-(-k // m) for m in range(1, k + 1)}):
        out += [(t, *rest) for rest in _thresholds(-(-k // t), n - 1)]
    return out


def smallest(tuples: tuple[Tuple, ...], want: int = 3) -> tuple[dict, ...]:
    """The ``want`` smallest members of the union of the tuples' products, by the sum of the sizes
    (then lexicographically): a best-first walk over each product, merged."""
    seen: set[tuple[int, ...]] = set()
    out: list[dict] = []
    for key in heapq.merge(*(_ordered(t) for t in tuples)):
        if key[1] not in seen:
            seen.add(key[1])
            out.append(dict(zip([n for n, _ in tuples[0]], key[1])))
            if len(out) == want:
                break
    return tuple(out)


def _ordered(tup: Tuple) -> Iterator[tuple[int, tuple[int, ...]]]:
    """The product of the tuple's sets in the order of (sum, values), lazily."""
    sets = [s for _, s in tup]
    start = tuple(s.least for s in sets)
    heap = [(sum(start), start)]
    done = {start}
    while heap:
        total, vals = heapq.heappop(heap)
        yield total, vals
        for i, s in enumerate(sets):
            nxt = next(iter(s.iter(vals[i] + 1)), None)
            if nxt is not None:
                cand = (*vals[:i], nxt, *vals[i + 1:])
                if cand not in done:
                    done.add(cand)
                    heapq.heappush(heap, (sum(cand), cand))
