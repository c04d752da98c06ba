"""Sums and differences of eventually periodic sets of integers, exact, on the digit tries.

A set is a list of windows ``(lo, hi, trie)`` over the integers (``hi`` None: unbounded; the
members are the trie's members in ``[lo, hi]``), as ``_image`` uses them. The sum of two windows
is computed in coordinates relative to their lower ends, ``u = x' + y'`` with ``x', y' >= 0``:

- choose a mixed radix ``R`` (the tries' primes, in the tries' order, then more of the largest
  prime) whose product ``L`` is a common period of both tries and exceeds both finite widths;
- read both tries digit by digit, least significant first, with a carry (Presburger addition):
  ``NC`` is ``{x' + y' : x', y' in [0, L)}`` where that sum stays below ``L``, ``OV`` where it
  overflows (minus ``L``). A state is a pair of sub-tries and the carry; a trie that is full below
  a digit (``TRUE``) ends the recursion with an interval of digits (``interval``);
- the sum is ``NC`` on ``[0, L)`` and, when either window is unbounded, ``NC | OV`` (the sum of the
  two periodic sets over the integers) from ``L`` on: a residue pair ``(a, b)`` reaches every
  ``u >= a + b`` of its class, and ``a + b < L`` or ``a + b - L`` is what ``NC`` / ``OV`` hold.

A difference ``U - V`` is a sum with ``V`` reflected (``neg``): two unbounded windows give every
integer of ``T_U - T_V``; a bounded ``U`` only needs ``V`` below ``max U - m`` for results
``>= m``. The cost is the number of (sub-trie, sub-trie, carry) states, times ``p**2`` per digit:
it depends on the tries' structure, never on the size of the period (``x % 2**40 == 5`` is a chain
of 40 nodes, and so is its sum with another such class).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cache

from convgraph.solve._image import ZWindow, _union, prime_list, shift
from convgraph.solve._tree import (
    FALSE,
    TRUE,
    _path_period,
    apply,
    mk,
    next_member,
    node,
    prev_member,
    restrict,
)

Radix = tuple[int, ...]

#: the most (sub-trie, sub-trie, carry) states one sum may visit
STATES = 20000


class TooComplex(Exception):
    """A sum whose carry automaton passes ``STATES`` states: sets of large coprime periods (the
    sums of ``2**20*i`` and ``3**12*j`` leave about 2**19 gaps in no pattern shorter than that)."""


# --------------------------------------------------------------------------------------------
# Tries
# --------------------------------------------------------------------------------------------


@cache
def neg(n: int) -> int:
    """The trie of ``{-y : y in n}``: ``y = p*w + d`` has ``-y = p*(-w - 1) + (p - d)`` for d > 0."""
    if n <= TRUE:
        return n
    p, ch = node(n)
    return mk(p, (neg(ch[0]), *(restrict(neg(ch[p - d]), 1, 1) for d in range(1, p))))


def radix(tries: Iterable[int], bound: int = 0) -> Radix:
    """Primes in non-decreasing order whose product is a common period of ``tries`` and exceeds
    ``bound``."""
    period = 1
    for t in tries:
        period = math.lcm(period, _path_period(t))
    out = prime_list(period)
    top, prod = (out[-1] if out else 2), math.prod(out)
    while prod <= bound:
        out.append(top)
        prod *= top
    return tuple(out)


@cache
def interval(a: int, b: int, r: Radix) -> int:
    """The trie of ``{z : a <= z mod L <= b}``, L the product of r (O(len(r)) distinct nodes)."""
    size = math.prod(r)
    a, b = max(a, 0), min(b, size - 1)
    if a > b:
        return FALSE
    if a == 0 and b == size - 1:
        return TRUE
    p, rest = r[0], r[1:]
    return mk(p, tuple(interval(-((d - a) // p), (b - d) // p, rest) for d in range(p)))


def carry_sum(x: int, y: int, r: Radix) -> tuple[int, int]:
    """(NC, OV) of two tries over the digits r (product L, a common period): ``NC`` the residues
    ``x' + y'`` below L, ``OV`` those at or above L (minus L), for x' in x, y' in y within [0, L)."""
    memo: dict[tuple[int, int, int, int], tuple[int, int]] = {}

    def rec(a: int, b: int, c: int, i: int) -> tuple[int, int]:
        if a > b:
            a, b = b, a
        key = (a, b, c, i)
        got = memo.get(key)
        if got is None:
            if len(memo) > STATES:
                raise TooComplex(f"more than {STATES} carry states")
            got = memo[key] = _step(a, b, c, i)
        return got

    def _step(a: int, b: int, c: int, i: int) -> tuple[int, int]:
        if a == FALSE:  # a <= b: FALSE sorts first
            return FALSE, FALSE
        rest = r[i:]
        if i == len(r):  # both leaves (L is a period of both): the single residue 0
            return (TRUE, FALSE) if c == 0 else (FALSE, TRUE)
        if a == TRUE or b == TRUE:
            other = b if a == TRUE else a
            size = math.prod(rest)
            lo, hi = next_member(other, 0), prev_member(other, size - 1)
            assert lo is not None and hi is not None  # a non-empty trie has members in a period
            return interval(lo + c, size - 1, rest), interval(0, hi + c - 1, rest)
        p = r[i]
        nc: list[int] = [FALSE] * p
        ov: list[int] = [FALSE] * p
        kids_a = [restrict(a, p, t) for t in range(p)]
        kids_b = [restrict(b, p, t) for t in range(p)]
        for s, ka in enumerate(kids_a):
            if ka == FALSE:
                continue
            for t, kb in enumerate(kids_b):
                if kb == FALSE:
                    continue
                total = s + t + c
                d, c2 = total % p, total // p
                sub_nc, sub_ov = rec(ka, kb, c2, i + 1)
                nc[d] = apply("or", nc[d], sub_nc)
                ov[d] = apply("or", ov[d], sub_ov)
        return mk(p, tuple(nc)), mk(p, tuple(ov))

    return rec(x, y, 0, 0)


def zsum(x: int, y: int) -> int:
    """``{a + b : a in x, b in y}`` over all integers: periodic with every period of x and every
    period of y, so with their gcd g; both are reduced mod g first (``reduce_mod``)."""
    if x == FALSE or y == FALSE:
        return FALSE
    g = math.gcd(_path_period(x), _path_period(y))
    x, y = reduce_mod(x, g), reduce_mod(y, g)
    r = radix((x, y))
    nc, ov = carry_sum(x, y, r)
    return apply("or", nc, ov)


def reduce_mod(t: int, g: int) -> int:
    """The trie of ``{y : y = x mod g for some x in t}`` (period g)."""
    return _reduce(t, tuple(prime_list(g)))


@cache
def _reduce(t: int, primes: Radix) -> int:
    if t <= TRUE or not primes:
        return FALSE if t == FALSE else TRUE
    p = primes[0]
    return mk(p, tuple(_reduce(restrict(t, p, d), primes[1:]) for d in range(p)))


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


def clip(w: ZWindow, lo: int | None = None, hi: int | None = None) -> list[ZWindow]:
    """w within [lo, hi] (None: no bound)."""
    a, b, t = w
    a = a if lo is None else max(a, lo)
    b = hi if b is None else (b if hi is None else min(b, hi))
    return [] if b is not None and a > b else [(a, b, t)]


def reflect(w: ZWindow, h: int) -> ZWindow:
    """``{h - x : x in w}`` of a bounded window."""
    lo, hi, t = w
    assert hi is not None
    return h - hi, h - lo, neg(restrict(t, 1, h))


def window_sum(w1: ZWindow, w2: ZWindow) -> list[ZWindow]:
    """``{x + y : x in w1, y in w2}`` (see the module doc)."""
    (lo1, hi1, t1), (lo2, hi2, t2) = w1, w2
    x, y = restrict(t1, 1, lo1), restrict(t2, 1, lo2)  # x' = x - lo1 >= 0
    if x == FALSE or y == FALSE:
        return []
    n1 = None if hi1 is None else hi1 - lo1
    n2 = None if hi2 is None else hi2 - lo2
    r = radix((x, y), (n1 or 0) + (n2 or 0))
    size = math.prod(r)
    if n1 is not None:
        x = apply("and", x, interval(0, n1, r))
    if n2 is not None:
        y = apply("and", y, interval(0, n2, r))
    nc, ov = carry_sum(x, y, r)
    base = lo1 + lo2
    if n1 is not None and n2 is not None:
        return [shift((0, n1 + n2, nc), base)]
    return [shift((0, size - 1, nc), base), shift((size, None, apply("or", nc, ov)), base)]


def add(u: Sequence[ZWindow], v: Sequence[ZWindow]) -> list[ZWindow]:
    """``U + V``"""
    return _union([w for a in u for b in v for w in window_sum(a, b)])


def add_all(sets: Sequence[Sequence[ZWindow]]) -> list[ZWindow]:
    """The sum of several sets (``{0}`` for none)."""
    out: list[ZWindow] = [(0, 0, TRUE)]
    for s in sets:
        out = add(out, s)
    return out


def diff_from(u: Sequence[ZWindow], v: Sequence[ZWindow], m: int) -> list[ZWindow]:
    """``{x - y : x in U, y in V, x - y >= m}``"""
    out: list[ZWindow] = []
    for a in u:
        for b in v:
            out += _window_diff(a, b, m)
    return _union(out)


def _window_diff(a: ZWindow, b: ZWindow, m: int) -> list[ZWindow]:
    if a[1] is None and b[1] is None:  # both unbounded: every difference of the periodic sets
        return [(m, None, zsum(a[2], neg(b[2])))]
    if a[1] is not None and b[1] is None:  # y <= max x - m: a bounded part of b
        return [c for part in clip(b, hi=a[1] - m) for c in _window_diff(a, part, m)]
    top = b[1]
    assert top is not None
    return [c for w in window_sum(a, reflect(b, top + 1)) for c in clip(shift(w, -top - 1), lo=m)]


def members(ws: Sequence[ZWindow], lo: int, hi: int) -> list[int]:
    """The members in [lo, hi] (for tests and small sets)."""
    out = []
    for a, b, t in ws:
        x = next_member(t, max(a, lo))
        while x is not None and x <= hi and (b is None or x <= b):
            out.append(x)
            x = next_member(t, x + 1)
    return sorted(set(out))

