"""Solving one condition ``g(x) op 0`` on a quasi-affine dim exactly, as a digit tree.

A condition with ``g`` periodic (slope 0: a merge, a tiling rule) becomes a tree by **residue
lifting**: substitute ``x = p*z + r`` (dims' canonical constructors collapse the floors, so every
split shrinks a denominator), prune each branch where the range of ``g`` (interval arithmetic on
the floors) or its congruence (``g == K mod G``) already decides the condition, and memoise on the
canonical sub-expression. The cost grows with the number of distinct carries, not with the period.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from functools import cache, reduce

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._sizes import Sizes, Window
from convgraph.solve._tree import FALSE, TRUE, mk, negate, prime_factors

_X = "_x"


def rename(d: Dim, name: str) -> Dim:
    """d with symbol ``name`` written as the internal symbol (more sharing between conditions)."""
    return subst(d, name, 1, 0, _X)


def subst(d: Dim, name: str, p: int, r: int, new: str = _X) -> Dim:
    """d with ``name`` replaced by ``p*new + r``, in canonical form (ValueError on a non-dyadic
    scale: its conditions are solved window by window, ``convgraph.solve._scaled``)."""
    return substitute(d, name, D.add(D.mul(D.sym(new), p), r), exact_only=True)


def substitute(d: Dim, name: str, by: Dim, exact_only: bool = False) -> Dim:
    """d with the symbol ``name`` replaced by the dim ``by``, in canonical form; with
    ``exact_only``, a non-dyadic scale raises ValueError instead of being rebuilt."""
    if isinstance(d, int):
        return d
    if isinstance(d, D.Combo):
        parts = [substitute(a, name, by, exact_only) for a in d.args]
        return reduce(D.add if d.op == "add" else D.mul, parts)
    if d.base is None:
        return d.n
    if isinstance(d.base, D.Var):
        inner = by if d.base.name == name else D.sym(d.base.name)
    elif isinstance(d.base, D.FloorDiv):
        inner = D.floordiv(substitute(d.base.arg, name, by, exact_only), d.base.k)
    elif exact_only:
        raise ValueError("a non-dyadic scale: solved window by window (solve._scaled)")
    else:
        inner = D.scale_floor(substitute(d.base.arg, name, by), d.base.sf)
    return D.add(D.mul(inner, d.m), d.n)


def bounds(d: Dim) -> tuple[Fraction, Fraction, Fraction]:
    """(slope, lo, hi) with ``lo <= d(y) - slope*y <= hi`` for every integer y."""
    if isinstance(d, int):
        return Fraction(0), Fraction(d), Fraction(d)
    if isinstance(d, D.Combo):
        if d.op != "add":
            raise ValueError("not an affine combination")
        parts = [bounds(a) for a in d.args]
        return (sum((b[0] for b in parts), Fraction(0)), sum((b[1] for b in parts), Fraction(0)),
                sum((b[2] for b in parts), Fraction(0)))
    if d.base is None:
        return Fraction(0), Fraction(d.n), Fraction(d.n)
    if isinstance(d.base, D.Var):
        s, lo, hi = Fraction(1), Fraction(0), Fraction(0)
    elif isinstance(d.base, D.FScale):
        raise ValueError("a non-dyadic scale: solved window by window (solve._scaled)")
    else:
        s, lo, hi = bounds(d.base.arg)
        k = d.base.k
        s, lo, hi = s / k, lo / k - Fraction(k - 1, k), hi / k
    lo, hi = (lo * d.m, hi * d.m) if d.m >= 0 else (hi * d.m, lo * d.m)
    return s * d.m, lo + d.n, hi + d.n


def _congruence(d: Dim) -> tuple[int, int]:
    """(G, K): d(y) == K (mod G) for every y (G == 0: d is the constant K)."""
    if isinstance(d, int):
        return 0, d
    if isinstance(d, D.Combo):
        g, k = 0, 0
        for a in d.args:
            ga, ka = _congruence(a)
            g, k = math.gcd(g, ga), k + ka
        return g, k
    return (0, d.n) if d.base is None else (abs(d.m), d.n)


def _denominator(d: Dim) -> int:
    """The lcm of the floor denominators in d (1: d is affine)."""
    if isinstance(d, int):
        return 1
    if isinstance(d, D.Combo):
        return reduce(math.lcm, (_denominator(a) for a in d.args), 1)
    if d.base is None or isinstance(d.base, D.Var):
        return 1
    if isinstance(d.base, D.FScale):
        raise ValueError("no exact set for a non-dyadic scale")
    return d.base.k * _denominator(d.base.arg)


def _decide(g: Dim, op: str) -> int | None:
    """TRUE / FALSE when ``g op 0`` holds for every / no y; None when it depends on y."""
    _, lo0, hi0 = bounds(g)
    lo, hi = math.ceil(lo0), math.floor(hi0)
    if op == "==":
        m, k = _congruence(g)
        if lo > 0 or hi < 0 or (m and k % m):
            return FALSE
        return TRUE if lo == hi == 0 else None
    # op == ">="
    return TRUE if lo >= 0 else FALSE if hi < 0 else None


@cache
def periodic_trie(g: Dim, op: str, radix: tuple[int, ...] = ()) -> int:
    """The trie of ``{y : g(y) op 0}`` for g of slope 0 in the internal symbol; op '==' or '>='.
    Digits are split in the order ``radix`` (then by the smallest prime of a denominator left):
    conditions of one symbol split in one order intersect by zipping their tries."""
    flat = _flat(g)
    if flat is not None:
        return _flat_trie(flat, op, radix, 0)
    return _general_trie(g, op, radix)


@cache
def _general_trie(g: Dim, op: str, radix: tuple[int, ...]) -> int:
    """``periodic_trie`` on the dim itself: split, substitute, canonicalise."""
    got = _decide(g, op)
    if got is not None:
        return got
    den = _denominator(g)
    if den == 1:
        raise ValueError(f"undecided affine condition {D.dim_str(g)} {op} 0")  # pragma: no cover
    p, rest = (radix[0], radix[1:]) if radix else (radix_for([g])[0], ())  # innermost floor first
    return mk(p, tuple(periodic_trie(D.lower(subst(g, _X, p, r)), op, rest) for r in range(p)))


# A flat condition (every floor directly of x: what convs, pools and transposed convs give) is
# kept as ints: (K, L, ((m, b, D), ...)) for K + L*y + sum m*floor((y + b)/D), 0 <= b < D.

#: (K, L, ((m, b, D), ...)) as above
Flat = tuple[int, int, tuple[tuple[int, int, int], ...]]

_FLAT: dict[tuple[tuple[int, ...], str], dict[tuple[Flat, int], int]] = {}


def _flat(g: Dim) -> Flat | None:
    terms = list(g.args) if isinstance(g, D.Combo) and g.op == "add" else [g]
    k, lin, out = 0, 0, []
    for t in terms:
        if isinstance(t, D.Combo):
            return None
        if isinstance(t, int) or t.base is None:
            k += t if isinstance(t, int) else t.n
        elif isinstance(t.base, D.Var):
            lin, k = lin + t.m, k + t.n
        elif isinstance(t.base, D.FloorDiv) and t.base.arg.m == 1 and isinstance(t.base.arg.base, D.Var):
            out.append((t.m, t.base.arg.n, t.base.k))
            k += t.n
        else:
            return None
    return _flat_norm(k, lin, out)


def _flat_norm(k: int, lin: int, terms: Iterable[tuple[int, int, int]]) -> Flat:
    acc: dict[tuple[int, int], int] = {}
    for m, b, den in terms:
        if den == 1:
            lin, k = lin + m, k + m * b
            continue
        q, b = divmod(b, den)
        k += m * q
        acc[(b, den)] = acc.get((b, den), 0) + m
    return k, lin, tuple(sorted((m, b, den) for (b, den), m in acc.items() if m))


def _flat_decide(st: Flat, op: str) -> int | None:
    k, lin, terms = st
    n = reduce(math.lcm, (den for _, _, den in terms), 1)
    # each term is m*(y + b)/D - m*frac with frac in [0, (D-1)/D]; the y parts cancel (slope 0)
    lo = hi = k * n
    for m, b, den in terms:
        w = n // den
        lo += m * b * w - max(m, 0) * (den - 1) * w
        hi += m * b * w - min(m, 0) * (den - 1) * w
    lo, hi = -((-lo) // n), hi // n
    if op == "==":
        g = reduce(math.gcd, (m for m, _, _ in terms), abs(lin))
        if lo > 0 or hi < 0 or (g and k % g):
            return FALSE
        return TRUE if lo == hi == 0 else None
    return TRUE if lo >= 0 else FALSE if hi < 0 else None


def _flat_scaled(st: Flat, op: str) -> Flat | None:
    """The same condition with the common factor g of its variable part divided out: ``g*V + k >= 0``
    iff ``V + floor(k/g) >= 0``, and ``g*V + k == 0`` iff ``g | k`` and ``V + k/g == 0`` (None when
    no size meets it). States that differ only in the low digits of the constant become one: a
    residue condition such as ``H % 4096 <= 2047`` splits into one state per digit, not 4096."""
    k, lin, terms = st
    g = reduce(math.gcd, (abs(m) for m, _, _ in terms), abs(lin))
    if g <= 1:
        return st
    if op == "==" and k % g:
        return None
    return k // g, lin // g, tuple((m // g, b, den) for m, b, den in terms)


def _flat_trie(st: Flat, op: str, radix: tuple[int, ...], i: int) -> int:
    scaled = _flat_scaled(st, op)
    if scaled is None:
        return FALSE
    st = scaled
    memo = _FLAT.setdefault((radix, op), {})
    got = memo.get((st, i))
    if got is not None:
        return got
    got = _flat_decide(st, op)
    if got is None:
        k, lin, terms = st
        p = radix[i] if i < len(radix) else prime_factors(terms[0][2])[0]
        if any(den % p for _, _, den in terms):  # not flat after this split: the general path
            got = _general_trie(_flat_dim(st), op, radix[i:])
        else:
            got = mk(p, tuple(_flat_trie(_flat_norm(k + lin * r, lin * p, [(m, (r + b) // p, den // p)
                                                                             for m, b, den in terms]),
                                         op, radix, i + 1) for r in range(p)))
    memo[(st, i)] = got
    return got


def never_holds(lhs: Dim, op: str, rhs: Dim) -> bool:
    """True when ``lhs op rhs`` (on one symbol, every floor directly of it, periodic) holds for no
    integer value of the symbol, as the root of ``periodic_trie`` decides it (range and congruence
    of ``lhs - rhs``, ``_flat_decide``); False when that does not decide it."""
    diff, op2, neg = normal_op(lhs, op, rhs)
    st = _flat(D.lower(diff))
    if st is None:
        return False
    _, lin, terms = st
    n = reduce(math.lcm, (den for _, _, den in terms), 1)
    if lin * n + sum(m * (n // den) for m, _, den in terms):
        return False  # not periodic (a slope): not decided here
    scaled = _flat_scaled(st, op2)
    got = FALSE if scaled is None else _flat_decide(scaled, op2)
    return got == (TRUE if neg else FALSE)


def _flat_dim(st: Flat) -> Dim:
    k, lin, terms = st
    x = D.sym(_X)
    out = D.add(D.mul(x, lin), k)
    for m, b, den in terms:
        out = D.add(out, D.mul(D.floordiv(D.add(x, b), den), m))
    return D.lower(out)


def radix_for(ds: Iterable[Dim]) -> tuple[int, ...]:
    """One digit order for every condition of a symbol: the primes of the chain of its floor
    denominators (as seen from x), innermost first: (2, 3, 2, 3) for strides 2, 3, 2, 3."""
    dens: set[int] = set()
    for d in ds:
        _x_denominators(d, dens)
    return radix_of(dens)


def denominators(d: Dim) -> frozenset[int]:
    """The floor denominators of d as a function of x (what ``radix_for`` collects)."""
    dens: set[int] = set()
    _x_denominators(d, dens)
    return frozenset(dens)


def radix_of(dens: Iterable[int]) -> tuple[int, ...]:
    """``radix_for`` from the denominators of every dim of a symbol."""
    out: list[int] = []
    have = 1
    for k in sorted(dens):
        step = math.lcm(have, k) // have
        for q in prime_factors(step):
            while step % q == 0:
                out.append(q)
                step //= q
        have = math.lcm(have, k)
    return tuple(out)


def _x_denominators(d: Dim, out: set[int]) -> int:
    """Add the denominators of d as functions of x (inner floors multiply); return d's period."""
    if isinstance(d, int):
        return 1
    if isinstance(d, D.Combo):
        return reduce(math.lcm, (_x_denominators(a, out) for a in d.args), 1)
    if d.base is None or isinstance(d.base, D.Var):
        return 1
    if isinstance(d.base, D.FScale):
        return _x_denominators(d.base.arg, out)
    inner = _x_denominators(d.base.arg, out)
    out.add(inner * d.base.k)
    return inner * d.base.k


def normal_op(lhs: Dim, op: str, rhs: Dim) -> tuple[Dim, str, bool]:
    """(g, '==' or '>=', negate): ``lhs op rhs`` iff ``(g op' 0) != negate``."""
    diff = D.add(lhs, D.mul(rhs, -1))
    if op in ("==", "!="):
        return diff, "==", op == "!="
    if op in (">=", "<"):
        return diff, ">=", op == "<"
    return D.add(D.mul(diff, -1), 0), ">=", op == ">"  # '<=' and '>' as -diff >= 0


def condition_sizes(lhs: Dim, op: str, rhs: Dim, name: str, radix: tuple[int, ...] = ()) -> Sizes | None:
    """The exact set of x >= 1 with ``lhs op rhs`` (one symbol ``name``); None when the dims hold a
    non-dyadic scale or a product (no exact form here). ``radix``: the digit order (``radix_for``)."""
    diff, op2, neg = normal_op(lhs, op, rhs)
    try:
        g = D.lower(rename(diff, name))
        slope, lo, hi = bounds(g)
        if slope == 0:
            t = periodic_trie(g, op2, radix)
            return Sizes.periodic(negate(t) if neg else t)
        s = _sloped(g, op2, slope, lo, hi)
    except ValueError:
        return None
    return s.complement() if neg else s


def _sloped(g: Dim, op: str, slope: Fraction, lo: Fraction, hi: Fraction) -> Sizes:
    """``g(x) op 0`` with g = slope*x + (a part in [lo, hi]), slope != 0: outside the window where
    ``slope*x + [lo, hi]`` contains 0 the sign is fixed; inside, bisection decides whole intervals by
    monotone bounds."""
    e1, e2 = -hi / slope, -lo / slope
    a, b = max(1, math.floor(min(e1, e2)) - 1), max(1, math.ceil(max(e1, e2)) + 1)
    def f(x: int) -> int:
        return D.evaluate(g, {_X: x})

    def holds(v: int) -> bool:
        return v == 0 if op == "==" else v >= 0

    windows: list[Window] = []
    if a > 1 and holds(f(a - 1)):  # the sign below the window: fixed
        windows.append((1, a - 1, TRUE))
    windows += [(x, y, TRUE) for x, y in _bisect(g, f, op, a, b)]
    if holds(f(b + 1)):
        windows.append((b + 1, None, TRUE))
    return Sizes.make(windows)


def _bisect(g: Dim, f: Callable[[int], int], op: str, a: int, b: int) -> list[tuple[int, int]]:
    """The maximal intervals of [a, b] where ``f(x) op 0``: an interval whose range bound decides
    it is taken or dropped whole, else halved."""
    plus, minus = _monotone_parts(g)
    out: list[tuple[int, int]] = []
    todo = [(a, b)]
    while todo:
        lo, hi = todo.pop()
        if hi - lo < 8:
            out += [(x, x) for x in range(lo, hi + 1) if (f(x) == 0 if op == "==" else f(x) >= 0)]
            continue
        vmin = D.evaluate(plus, {_X: lo}) - D.evaluate(minus, {_X: hi})
        vmax = D.evaluate(plus, {_X: hi}) - D.evaluate(minus, {_X: lo})
        every = vmin == vmax == 0 if op == "==" else vmin >= 0
        nothing = (vmin > 0 or vmax < 0) if op == "==" else vmax < 0
        if every:
            out.append((lo, hi))
        elif not nothing:
            mid = (lo + hi) // 2
            todo += [(mid + 1, hi), (lo, mid)]
    out.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in out:
        if merged and merged[-1][1] + 1 == lo:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _monotone_parts(g: Dim) -> tuple[Dim, Dim]:
    """g = plus - minus with both non-decreasing (each QA term sorted by the sign of its slope)."""
    terms = list(g.args) if isinstance(g, D.Combo) and g.op == "add" else [g]
    plus: Dim = 0
    minus: Dim = 0
    for t in terms:
        if D.is_monotone(t):
            plus = D.add(plus, t)
        else:
            minus = D.add(minus, D.mul(t, -1))
    if not (D.is_monotone(plus) and D.is_monotone(minus)):
        raise ValueError("not a difference of monotone dims")  # pragma: no cover
    return plus, minus
