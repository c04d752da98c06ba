"""Exact sets of sizes without enumerating the period.

A periodic set of integers is kept as a **digit trie** (a multi-valued decision diagram): a node
``(p, children)`` splits ``y = p*z + r`` on the residue ``r`` of a prime ``p`` and hands ``z`` to
child ``r``; the leaves are ``FALSE`` (0) and ``TRUE`` (1). Along every path the primes never
decrease (all 2-digits before the 3-digits), nodes are hash-consed, and a node whose children are
all the same leaf is that leaf. ``{x : x % 2**40 == 5}`` is a chain of 40 nodes.

A condition ``g(x) op 0`` with ``g`` a periodic quasi-affine dim (slope 0: a merge, a tiling
rule) becomes a trie by **residue lifting**: substitute ``x = p*z + r`` (dims' canonical
constructors collapse the floors, so every split shrinks a denominator), prune each branch where
the range of ``g`` (interval arithmetic on the floors) or its congruence (``g == K mod G``)
already decides the condition, and memoise on the canonical sub-expression. The cost grows with
the number of distinct carries, not with the period.

``Sizes`` is the set of valid sizes of one symbol: disjoint windows ``[lo, hi]`` (``hi`` None:
unbounded), each carrying a trie. It offers ``dims.EPSet``'s interface (``start``, ``modulus``,
``residues``, ``exceptions``, ``near``, ...), with ``residues`` materialised only when asked.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache, reduce

from . import dims as D
from .dims import Dim

FALSE, TRUE = 0, 1
_NODES: list = [None, None]  # id -> (p, children)
_IDS: dict = {}

_OPS = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "minus": lambda a, b: a & (1 - b),
}


def mk(p: int, ch: tuple[int, ...]) -> int:
    """The node splitting on residues mod the prime p (hash-consed; uniform leaves collapse)."""
    if ch[0] <= TRUE and all(c == ch[0] for c in ch):
        return ch[0]
    key = (p, ch)
    got = _IDS.get(key)
    if got is None:
        got = _IDS[key] = len(_NODES)
        _NODES.append(key)
    return got


def _prime(n: int) -> int:
    return 1 << 62 if n <= TRUE else _NODES[n][0]


@cache
def restrict(n: int, m: int, c: int) -> int:
    """The trie of ``{w : m*w + c in n}`` (m >= 1)."""
    if n <= TRUE or (m == 1 and c == 0):
        return n
    p, ch = _NODES[n]
    if m % p == 0:
        return restrict(ch[c % p], m // p, c // p)
    return mk(p, tuple(restrict(ch[(m * t + c) % p], m, (m * t + c) // p) for t in range(p)))


@cache
def apply(op: str, a: int, b: int) -> int:
    """Pointwise ``op`` ('and', 'or', 'xor', 'minus') of two tries."""
    if a <= TRUE and b <= TRUE:
        return _OPS[op](a, b)
    if op == "and" and FALSE in (a, b) or op == "minus" and (a == FALSE or b == TRUE):
        return FALSE
    if op == "or" and TRUE in (a, b):
        return TRUE
    if a == b:
        return {"and": a, "or": a, "xor": FALSE, "minus": FALSE}[op]
    q = min(_prime(a), _prime(b))
    ca = _NODES[a][1] if _prime(a) == q else tuple(restrict(a, q, t) for t in range(q))
    cb = _NODES[b][1] if _prime(b) == q else tuple(restrict(b, q, t) for t in range(q))
    return mk(q, tuple(apply(op, x, y) for x, y in zip(ca, cb)))


def negate(a: int) -> int:
    return apply("minus", TRUE, a)


def member(n: int, y: int) -> bool:
    while n > TRUE:
        p, ch = _NODES[n]
        y, r = divmod(y, p)
        n = ch[r]
    return n == TRUE


@cache
def next_member(n: int, lo: int) -> int | None:
    """The smallest y >= lo in n (None when n is empty)."""
    if n <= TRUE:
        return lo if n == TRUE else None
    p, ch = _NODES[n]
    best = None
    for r, c in enumerate(ch):
        z = next_member(c, -((r - lo) // p))  # ceil((lo - r)/p)
        if z is not None and (best is None or p * z + r < best):
            best = p * z + r
    return best


@cache
def prev_member(n: int, hi: int) -> int | None:
    """The largest y <= hi in n (None when n is empty)."""
    if n <= TRUE:
        return hi if n == TRUE else None
    p, ch = _NODES[n]
    best = None
    for r, c in enumerate(ch):
        z = prev_member(c, (hi - r) // p)
        if z is not None and (best is None or p * z + r > best):
            best = p * z + r
    return best


@cache
def _path_period(n: int) -> int:
    if n <= TRUE:
        return 1
    p, ch = _NODES[n]
    return p * reduce(math.lcm, (_path_period(c) for c in ch), 1)


@cache
def period(n: int) -> int:
    """The smallest P > 0 with y in n iff y + P in n."""
    big = _path_period(n)
    for q in _prime_factors(big):
        while big % q == 0 and restrict(n, 1, big // q) == n or (
                big % q == 0 and apply("xor", restrict(n, 1, big // q), n) == FALSE):
            big //= q
    return big


def _prime_factors(n: int) -> list[int]:
    out, q = [], 2
    while q * q <= n:
        if n % q == 0:
            out.append(q)
            while n % q == 0:
                n //= q
        q += 1
    return out + ([n] if n > 1 else [])


def from_residues(residues: Iterable[int], modulus: int) -> int:
    """The trie of ``{y : y % modulus in residues}`` (built digit by digit: O(modulus))."""
    primes = []
    m = modulus
    for q in _prime_factors(modulus):
        while m % q == 0:
            primes.append(q)
            m //= q
    return _build(frozenset(r % modulus for r in residues), modulus, tuple(primes))


def _build(res: frozenset, modulus: int, primes: tuple[int, ...]) -> int:
    if not res:
        return FALSE
    if len(res) == modulus:
        return TRUE
    p, rest = primes[0], primes[1:]
    sub = modulus // p
    return mk(p, tuple(_build(frozenset((x - r) // p for x in res if x % p == r), sub, rest) for r in range(p)))


def residue_class(r: int, m: int) -> int:
    """The trie of ``{y : y % m == r}`` (O(log m) nodes)."""
    if m == 1:
        return TRUE
    out = TRUE
    primes = []
    mm = m
    for q in _prime_factors(m):
        while mm % q == 0:
            primes.append(q)
            mm //= q
    digits = []
    y = r % m
    for q in primes:
        y, d = divmod(y, q)
        digits.append(d)
    for q, d in zip(reversed(primes), reversed(digits)):
        out = mk(q, tuple(out if t == d else FALSE for t in range(q)))
    return out


def classes(n: int, limit: int = 64) -> list[tuple[int, int]] | None:
    """The set as disjoint classes ``(r, m)`` (``y % m == r``), one per TRUE leaf; None when there
    are more than ``limit``."""
    out: list[tuple[int, int]] = []

    def walk(node: int, r: int, m: int) -> bool:
        if node == TRUE:
            out.append((r, m))
            return len(out) <= limit
        if node == FALSE:
            return True
        p, ch = _NODES[node]
        return all(walk(c, r + m * t, m * p) for t, c in enumerate(ch))

    return sorted(out, key=lambda t: (t[1], t[0])) if walk(n, 0, 1) else None


@lru_cache(maxsize=4096)
def residues_of(n: int, modulus: int) -> frozenset[int]:
    """The members of n in [0, modulus), read off the trie's TRUE leaves (modulus a period of n)."""
    full = _path_period(n)  # a multiple of modulus: every leaf's class is a union of classes mod it
    if full > MATERIALISE:
        return frozenset(r for r in range(modulus) if member(n, r))
    out: list[int] = []

    def walk(node: int, r: int, m: int) -> None:
        if node == TRUE:
            out.extend(range(r, full, m))
        elif node != FALSE:
            p, ch = _NODES[node]
            for t, c in enumerate(ch):
                walk(c, r + m * t, m * p)

    walk(n, 0, 1)
    return frozenset(x % modulus for x in out)


def residue_runs(n: int, modulus: int, limit: int = 8) -> list[tuple[int, int]] | None:
    """The members of n in [0, modulus) as maximal runs ``(a, b)``; None when there are more than
    ``limit`` (found by jumping from run to run: no residue is visited one by one)."""
    out: list[tuple[int, int]] = []
    gaps = negate(n)
    pos = 0
    while True:
        a = next_member(n, pos)
        if a is None or a >= modulus:
            return out
        end = next_member(gaps, a)
        b = modulus - 1 if end is None or end > modulus else end - 1
        out.append((a, b))
        if len(out) > limit:
            return None
        pos = b + 1


# --------------------------------------------------------------------------------------------
# Conditions g(x) op 0 on a quasi-affine dim
# --------------------------------------------------------------------------------------------

_X = "_x"


def rename(d: Dim, name: str) -> Dim:
    """d with symbol ``name`` written as the internal symbol (more sharing between conditions)."""
    return subst(d, name, 1, 0, _X)


def subst(d: Dim, name: str, p: int, r: int, new: str = _X) -> Dim:
    """d with ``name`` replaced by ``p*new + r``, in canonical form."""
    if isinstance(d, int):
        return d
    if isinstance(d, D.Combo):
        parts = [subst(a, name, p, r, new) for a in d.args]
        return reduce(D.add if d.op == "add" else D.mul, parts)
    if d.base is None:
        return d.n
    if isinstance(d.base, D.Var):
        inner = D.add(D.mul(D.sym(new), p), r) if d.base.name == name else D.sym(d.base.name)
    elif isinstance(d.base, D.FloorDiv):
        inner = D.floordiv(subst(d.base.arg, name, p, r, new), d.base.k)
    else:
        raise ValueError("no exact set for a non-dyadic scale")
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
    return d.base.k * _denominator(d.base.arg)


def _decide(g: Dim, op: str) -> int | None:
    """TRUE / FALSE when ``g op 0`` holds for every / no y; None when it depends on y."""
    _, lo, hi = bounds(g)
    lo, hi = math.ceil(lo), math.floor(hi)
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

_FLAT: dict = {}


def _flat(g: Dim):
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


def _flat_norm(k: int, lin: int, terms) -> tuple:
    acc: dict = {}
    for m, b, den in terms:
        if den == 1:
            lin, k = lin + m, k + m * b
            continue
        q, b = divmod(b, den)
        k += m * q
        acc[(b, den)] = acc.get((b, den), 0) + m
    return k, lin, tuple(sorted((m, b, den) for (b, den), m in acc.items() if m))


def _flat_decide(st: tuple, op: str) -> int | None:
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


def _flat_trie(st: tuple, op: str, radix: tuple[int, ...], i: int) -> int:
    memo = _FLAT.setdefault((radix, op), {})
    got = memo.get((st, i))
    if got is not None:
        return got
    got = _flat_decide(st, op)
    if got is None:
        k, lin, terms = st
        p = radix[i] if i < len(radix) else _prime_factors(terms[0][2])[0]
        if any(den % p for _, _, den in terms):  # not flat after this split: the general path
            got = _general_trie(_flat_dim(st), op, radix[i:])
        else:
            got = mk(p, tuple(_flat_trie(_flat_norm(k + lin * r, lin * p, [(m, (r + b) // p, den // p)
                                                                             for m, b, den in terms]),
                                         op, radix, i + 1) for r in range(p)))
    memo[(st, i)] = got
    return got


def _flat_dim(st: tuple) -> Dim:
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
    out: list[int] = []
    have = 1
    for k in sorted(dens):
        step = math.lcm(have, k) // have
        for q in _prime_factors(step):
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


def preimage(s: Sizes, f: Dim, name: str) -> Sizes | None:
    """``{a >= 1 : f(a) in s}`` for f a non-decreasing one-chain dim of ``name``; None when f is not
    of that form. Each window of s pulls back to an interval (f is monotone), each trie digit by
    digit (``f(a) == p*q + r`` on the classes where ``f(a) % p == r``, then ``q = floor((f - r)/p)``)."""
    if not isinstance(f, D.QA) or not D.is_monotone(f):
        return None
    try:
        g = D.lower(rename(f, name))
        bounds(g)
    except ValueError:
        return None
    windows = []
    for lo, hi, t in s.windows:
        a1 = D.min_at_least(f, lo, name)
        if a1 is None:
            continue
        a2 = D.min_at_least(f, hi + 1, name) if hi is not None else None
        windows.append((a1, None if a2 is None else a2 - 1, _pre_trie(t, g)))
    return Sizes.make(windows)


@cache
def _pre_trie(t: int, g: Dim) -> int:
    if t <= TRUE or isinstance(g, int):
        return t if not isinstance(g, int) or t <= TRUE else (TRUE if member(t, g) else FALSE)
    p, ch = _NODES[t]
    out = FALSE
    for r in range(p):
        q = D.lower(D.floordiv(D.add(g, -r), p))
        cond = periodic_trie(D.lower(D.add(D.add(g, -r), D.mul(q, -p))), "==")
        if cond != FALSE:
            out = apply("or", out, apply("and", cond, _pre_trie(ch[r], q)))
    return out


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
    f = lambda x: D.evaluate(g, {_X: x})
    holds = (lambda v: v == 0) if op == "==" else (lambda v: v >= 0)
    windows = []
    if a > 1 and holds(f(a - 1)):  # the sign below the window: fixed
        windows.append((1, a - 1, TRUE))
    windows += [(x, y, TRUE) for x, y in _bisect(g, f, op, a, b)]
    if holds(f(b + 1)):
        windows.append((b + 1, None, TRUE))
    return Sizes.make(windows)


def _bisect(g: Dim, f, op: str, a: int, b: int) -> list[tuple[int, int]]:
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
    plus, minus = 0, 0
    for t in terms:
        if D.is_monotone(t):
            plus = D.add(plus, t)
        else:
            minus = D.add(minus, D.mul(t, -1))
    if not (D.is_monotone(plus) and D.is_monotone(minus)):
        raise ValueError("not a difference of monotone dims")  # pragma: no cover
    return plus, minus


# --------------------------------------------------------------------------------------------
# Sets of sizes
# --------------------------------------------------------------------------------------------

#: ``residues`` / ``exceptions`` are materialised only up to this many candidates
MATERIALISE = 1 << 20

Window = tuple  # (lo, hi or None, trie)


@dataclass(frozen=True, eq=False)
class Sizes:
    """A set of positive sizes: disjoint windows ``[lo, hi]`` (the last one may be unbounded), each
    holding the sizes of a trie. Equality is equality of sets (also against a ``dims.EPSet``)."""

    windows: tuple[Window, ...]

    # -- construction ----------------------------------------------------------------------------

    @staticmethod
    def make(windows: Iterable[Window]) -> Sizes:
        """Canonicalise: drop empty windows, trim each to its members, merge neighbours, and start
        the periodic tail as early as the set allows (as ``EPSet.normalized`` does)."""
        out: list[list] = []
        for lo, hi, t in sorted(windows, key=lambda w: w[0]):
            lo = next_member(t, max(1, lo)) if t != FALSE else None
            if lo is None or (hi is not None and lo > hi):
                continue
            if hi is not None:
                hi = prev_member(t, hi)
            if out and out[-1][2] == t and out[-1][1] is not None and \
                    (next_member(t, out[-1][1] + 1) or lo) >= lo:
                out[-1][1] = hi
            else:
                out.append([lo, hi, t])
        if out and out[-1][1] is None:
            out = _lower_start(out)
        return Sizes(tuple(tuple(w) for w in out))

    @staticmethod
    def periodic(t: int, start: int = 1) -> Sizes:
        return Sizes.make([(start, None, t)])

    @staticmethod
    def all(start: int = 1) -> Sizes:
        return Sizes.make([(start, None, TRUE)])

    @staticmethod
    def none() -> Sizes:
        return Sizes(())

    @staticmethod
    def interval(a: int, b: int | None) -> Sizes:
        """{a <= x <= b} (b None: unbounded)."""
        return Sizes.make([(a, b, TRUE)])

    @staticmethod
    def of(xs: Iterable[int]) -> Sizes:
        """A finite set."""
        runs: list[list[int]] = []
        for x in sorted(set(int(x) for x in xs if x >= 1)):
            if runs and runs[-1][1] + 1 == x:
                runs[-1][1] = x
            else:
                runs.append([x, x])
        return Sizes.make([(a, b, TRUE) for a, b in runs])

    @staticmethod
    def classes_of(residues: Iterable[int], modulus: int, start: int = 1) -> Sizes:
        return Sizes.periodic(from_residues(residues, modulus), start)

    @staticmethod
    def lift(s) -> Sizes:
        """A ``dims.EPSet`` (or a Sizes) as a Sizes."""
        if isinstance(s, Sizes):
            return s
        tail = [(s.start, None, from_residues(s.residues, s.modulus))] if s.residues else []
        return Sizes.make(list(Sizes.of(s.exceptions).windows) + tail)

    # -- EPSet's interface -----------------------------------------------------------------------

    @property
    def tail(self) -> int:
        """The trie of the periodic part (FALSE for a finite set)."""
        return self.windows[-1][2] if self.windows and self.windows[-1][1] is None else FALSE

    @property
    def start(self) -> int:
        if not self.windows:
            return 1
        lo, hi, _ = self.windows[-1]
        return lo if hi is None else hi + 1

    @property
    def modulus(self) -> int:
        return period(self.tail)

    @property
    def residues(self) -> frozenset[int]:
        m = self.modulus
        if m > MATERIALISE:
            raise OverflowError(f"{m} residues: use classes() for a compact form")
        return residues_of(self.tail, m)

    @property
    def exceptions(self) -> frozenset[int]:
        return frozenset(self._finite_members())

    def _finite_members(self) -> Iterator[int]:
        for lo, hi, t in self.windows:
            if hi is None:
                break
            if hi - lo > MATERIALISE:
                raise OverflowError(f"{hi - lo + 1} sizes: use finite_ranges() for a compact form")
            yield from (x for x in range(lo, hi + 1) if member(t, x))

    def finite_windows(self) -> list[Window]:
        return [w for w in self.windows if w[1] is not None]

    def classes(self, limit: int = 64) -> list[tuple[int, int]] | None:
        """The periodic part as classes ``(r, m)``; None when there are more than ``limit``."""
        return classes(self.tail, limit)

    def __contains__(self, x: int) -> bool:
        for lo, hi, t in self.windows:
            if x < lo:
                return False
            if hi is None or x <= hi:
                return member(t, x)
        return False

    @property
    def empty(self) -> bool:
        return not self.windows

    @property
    def finite(self) -> bool:
        return self.tail == FALSE

    @property
    def min(self) -> int | None:
        return next(iter(self.iter()), None)

    def iter(self, lo: int = 1) -> Iterator[int]:
        for a, b, t in self.windows:
            if b is not None and b < lo:
                continue
            x = next_member(t, max(a, lo))
            while x is not None and (b is None or x <= b):
                yield x
                x = next_member(t, x + 1)

    def first(self, n: int = 10, lo: int = 1) -> list[int]:
        out = []
        for x in self.iter(lo):
            if len(out) == n:
                break
            out.append(x)
        return out

    def near(self, x: int) -> tuple[int | None, int | None]:
        """The largest member <= x and the smallest >= x (None where there is none)."""
        below = None
        for a, b, t in self.windows:
            if a > x:
                break
            y = prev_member(t, x if b is None else min(b, x))
            if y is not None and y >= a:
                below = y
        return below, next(iter(self.iter(x)), None)

    def to_json(self) -> dict:
        out = {"min": self.min, "modulus": self.modulus}
        if self.modulus <= 4096:
            out["residues"] = sorted(self.residues)
        else:
            cls = self.classes(256)
            if cls is not None:
                out["classes"] = [[r, m] for r, m in cls]
            else:  # the digit trie itself: exact, and as small as the set's structure
                root, nodes = export(self.tail)
                out["trie"] = {"root": root, "nodes": [[p, list(ch)] for p, ch in nodes],
                               "how": "node [p, children]: x = p*q + r goes to child r with q; "
                                      "refs 0 = no, 1 = yes, k >= 2 = nodes[k - 2]"}
        fin = self.finite_windows()
        if sum(b - a + 1 for a, b, _ in fin) <= 4096:
            out["exceptions"] = sorted(self.exceptions)
        else:
            out["finite_windows"] = [[a, b] for a, b, _ in fin]
        out["first"] = self.first(10)
        return out

    def describe(self, name: str) -> str:
        from .solve_report import describe_set

        return describe_set(self, name)

    # -- algebra ---------------------------------------------------------------------------------

    def _op(self, other, op: str) -> Sizes:
        other = Sizes.lift(other)
        cuts = sorted({w[0] for w in self.windows + other.windows} |
                      {w[1] + 1 for w in self.windows + other.windows if w[1] is not None} | {1})
        out = []
        for i, lo in enumerate(cuts):
            hi = cuts[i + 1] - 1 if i + 1 < len(cuts) else None
            t = apply(op, self._trie_at(lo), other._trie_at(lo))
            out.append((lo, hi, t))
        return Sizes.make(out)

    def _trie_at(self, x: int) -> int:
        for lo, hi, t in self.windows:
            if lo <= x and (hi is None or x <= hi):
                return t
        return FALSE

    def __and__(self, other) -> Sizes:
        return self._op(other, "and")

    __rand__ = __and__

    def __or__(self, other) -> Sizes:
        return self._op(other, "or")

    __ror__ = __or__

    def __sub__(self, other) -> Sizes:
        return self._op(other, "minus")

    def __xor__(self, other) -> Sizes:
        return self._op(other, "xor")

    def complement(self) -> Sizes:
        return Sizes.all() - self

    def __le__(self, other) -> bool:
        return (self - other).empty

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sizes) and not isinstance(other, D.EPSet):
            return NotImplemented
        return (self ^ other).empty

    def __hash__(self) -> int:
        return hash((self.min, self.finite))

    def __reduce__(self):
        """Tries are ids into this process's node table: pickle them as their node lists."""
        return _unpickle, (tuple((lo, hi, export(t)) for lo, hi, t in self.windows),)

    def __repr__(self) -> str:
        from .solve_report import describe_set

        return f"Sizes({describe_set(self, 'x')})"


def _lower_start(out: list[list]) -> list[list]:
    """Move the periodic tail's start down past every finite size that agrees with it."""
    t = out[-1][2]
    cur = out[-1][0]
    keep = out[:-1]
    while True:
        below = prev_member(t, cur - 1)
        gap_top = keep[-1][1] if keep else 0
        if below is not None and below > gap_top:  # a tail member missing in the gap
            cur = below + 1
            break
        if not keep:
            cur = 1
            break
        a, b, u = keep[-1]
        d = prev_member(apply("xor", u, t), b)
        if d is not None and d >= a:
            cur = d + 1
            last = prev_member(u, d)
            keep[-1] = [a, last, u]
            if last is None or last < a:
                keep.pop()
            break
        cur = a
        keep.pop()
    return keep + [[cur, None, t]]


def export(n: int) -> tuple:
    """A trie as a portable node list: ``((p, child refs), ...)``, refs 0/1 leaves, else 2 + index."""
    order: dict[int, int] = {}

    def visit(node: int) -> int:
        if node <= TRUE:
            return node
        if node not in order:
            p, ch = _NODES[node]
            refs = tuple(visit(c) for c in ch)
            order[node] = len(order)
            nodes.append((p, refs))
        return 2 + order[node]

    nodes: list = []
    root = visit(n)
    return root, tuple(nodes)


def load(portable: tuple) -> int:
    root, nodes = portable
    ids: list[int] = []
    for p, refs in nodes:
        ids.append(mk(p, tuple(r if r <= TRUE else ids[r - 2] for r in refs)))
    return root if root <= TRUE else ids[root - 2]


def _unpickle(windows) -> Sizes:
    return Sizes(tuple((lo, hi, load(t)) for lo, hi, t in windows))
