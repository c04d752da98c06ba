"""A non-dyadic ``Upsample`` scale as exact quasi-affine pieces: ``floor(float(v) * sf)`` per window.

PyTorch sizes an ``Upsample(scale_factor=sf)`` output ``o(v) = floor(fl(fl(v) * sf))``: ``fl`` rounds
to the nearest double, ties to even, and ``sf`` is a double, ``alpha = N / 2**k`` exactly. This module
cuts the values ``v`` of the scaled size into windows, each with an optional residue guard, on which
``o`` *is* a quasi-affine dim of ``v`` without any ``FScale``: ``A * floor((p*U + c) / r)`` with
``U = v`` below 2**53 and ``U = floor((v + s) / 2**j)`` above, ``p/r`` a small convergent of the
(power-of-two scaled) scale. Nothing is sampled: every cut is a rational threshold, every form is
proved by the argument below, and the tests check it against ``math.floor(float(v) * sf)`` and torch.

Proof sketch. Below 2**53, ``fl(v) = v``; above, ``fl(v) = 2**j * U`` with ``j = bitlength(v) - 53``
and ``U = round-half-even(v / 2**j)``: ``floor((v + 2**(j-1)) / 2**j)`` except on the ties
``v = 2**(j-1) (mod 2**(j+1))``, whose even neighbour is ``floor((v + 2**(j-1) - 1) / 2**j)`` (a guard
splits the two). Then ``y = U * alpha'`` with ``alpha' = alpha * 2**j`` exactly, and for y in the
binade ``[2**E, 2**(E+1))`` the doubles are spaced ``g = 2**(E-52)``:

- ``E <= 51`` (``g <= 1/2``): ``floor(fl(y)) >= m`` iff y reaches the midpoint ``m - g/2`` below the
  integer m (a tie there goes to m, whose mantissa is even), so ``o = floor(y + g/2)``; the same holds
  for negative y by symmetry (``floor(-fl(|y|)) = -ceil(fl(|y|))``).
- ``E >= 52`` (``g >= 1``, an integer): ``o = fl(y) = g * rne(y / g)`` = ``g * floor(y/g + 1/2)``
  except on the ties that round down, ``U = 2**t * (N mod 4) (mod 2**(t+2))`` with ``2**t`` the power
  of two making ``y/g + 1/2`` an integer (a guard), where it is ``g * floor(y/g - 1/2)``.

So ``o = A * floor(U*beta + gamma)`` with A, beta, gamma constant on a window. For any rational p/r,
``floor(U*beta + gamma) = floor((p*U + c) / r)`` with ``c = floor(r * (U*(beta - p/r) + gamma))``
(``floor((n + x)/r) = floor((n + floor(x))/r)`` for an integer n), and c is monotone in U, so the
window splits where c steps, at rational thresholds. p/r is the convergent of beta with the fewest
steps among small denominators. 1/3: one piece ``floor(v/3)`` for all of 1..2**53-1. 1.1:
``floor(11*v/10)`` on 1..511772684928465 (about 2**48.9), 19 pieces below 2**53, 359 in all. 0.7
(a double just below 7/10): ``floor((7*v + c)/10)`` with c = 0 low in each binade and -1 at its
top (``170 * 0.7 = 118.99999999999999``), 105 pieces below 2**53. A scale with three significant
digits needs at most 17,078 pieces (8.29; measured over every non-dyadic ``n / 10**d``, n < 1000,
d = 1..4: 3,750 scales, 8 of them above 16,000; 8.29's pieces below 2**53 are 1,631 of them).

The largest sizes: the pieces are exact for every scaled size ``v`` with
``-min(2**53, 2**52/sf) < v < 2**63``, float(v)'s own rounding above 2**53 included: every size a
torch tensor can have (int64; a non-positive size is never a torch size at all). Outside that
range, the first and the last pieces' forms continue unchanged: a convention for values no torch
model reaches (a model whose scale input is 2**63 or more has already overflowed int64), which keeps
the solver's sets eventually periodic.

A scale with no small convergent (a float with many significant digits, such as 0.7234987123)
gives no pieces (``None``): its valid sets have no compact exact form in windows of residue tries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

#: torch sizes are int64: the pieces are exact for every scaled size below this
V_TOP = 1 << 63
#: the largest convergent denominator a piece may use (its residue tries split on r's primes)
R_MAX = 10_000
#: and the largest prime factor of r (a trie node has that many children)
P_MAX = 100
#: a scale needing more pieces than this in all has no compact exact form here
PIECE_MAX = 20_000


@dataclass(frozen=True)
class ScalePiece:
    """On ``lo <= v <= hi`` (None: unbounded), where the guards hold: ``o(v) = A*floor((p*U + c)/r)``
    with ``U = floor((v + s) / 2**j)``. ``vguard`` / ``uguard``: ``(M, t, eq)``, the piece applies
    where ``v % M == t`` (eq) or ``!= t`` (not eq); ``uguard`` is the same on U."""

    lo: int | None
    hi: int | None
    j: int
    s: int
    A: int
    p: int
    c: int
    r: int
    vguard: tuple[int, int, bool] | None = None
    uguard: tuple[int, int, bool] | None = None

    def value(self, v: int) -> int:
        """The piece's form at v (what ``o(v)`` is wherever the piece applies)."""
        u = (v + self.s) >> self.j if self.j else v
        return self.A * ((self.p * u + self.c) // self.r)

    def applies(self, v: int) -> bool:
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            return False
        u = (v + self.s) >> self.j if self.j else v
        return all(g is None or ((x % g[0] == g[1]) == g[2]) for x, g in ((v, self.vguard), (u, self.uguard)))


@lru_cache(maxsize=256)
def scale_pieces(sf: float) -> tuple[ScalePiece, ...] | None:
    """The pieces of ``v -> floor(float(v) * sf)`` (sf > 0), in order of v; None when the scale has
    no compact exact form (see the module docstring)."""
    alpha = Fraction(sf)
    if alpha <= 0:
        return None
    out: list[ScalePiece] = []
    try:
        out += _negative(alpha)
        out += _region(alpha, 0, 0, 1, (1 << 53) - 1, None)
        for j in range(1, V_TOP.bit_length() - 53):  # v in [2**(52+j), 2**(53+j)): fl(v) = 2**j * U
            lo, hi, m = 1 << (52 + j), (1 << (53 + j)) - 1, 1 << (j + 1)
            half = 1 << (j - 1)
            out += _region(alpha, j, half - 1, lo, hi, (m, half, True))
            out += _region(alpha, j, half, lo, hi, (m, half, False))
        return _open_ends(_merged(out))
    except _TooMany:
        return None


class _TooMany(Exception):
    pass


def _negative(alpha: Fraction) -> list[ScalePiece]:
    """v <= 0 down to ``-W`` (``W = min(2**53, 2**52/sf)``): ``o = floor(v*alpha + g/2)``, g the
    spacing of the doubles at |y|'s binade."""
    out: list[ScalePiece] = []
    w_top = min(math.ceil(Fraction(1 << 52) / alpha), 1 << 53) - 1  # |v| <= w_top: fl(v) = v, |y| < 2**52
    for e, (wa, wb) in _binades(alpha, 1, w_top):
        out += _windows(-wb, -wa, 0, 0, 1, alpha, _pow2(e - 53), None, None)  # |y| < 2**52: g/2 = 2**(e-53)
    out.append(ScalePiece(0, 0, 0, 0, 1, 0, 0, 1))  # o(0) = 0
    return out


def _region(alpha: Fraction, j: int, s: int, vlo: int, vhi: int,
            vguard: tuple[int, int, bool] | None) -> list[ScalePiece]:
    """The pieces of ``vlo <= v <= vhi`` (where ``vguard`` holds), ``U = floor((v + s)/2**j)``."""
    a2 = alpha * (1 << j)
    ulo, uhi = (vlo + s) >> j, (vhi + s) >> j
    out: list[ScalePiece] = []
    for e, (ua, ub) in _binades(a2, ulo, uhi):
        va, vb = max(vlo, (ua << j) - s), min(vhi, ((ub + 1) << j) - s - 1)
        if e <= 51:
            out += _windows(va, vb, j, s, 1, a2, _pow2(e - 53), vguard, None)
            continue
        g = 1 << (e - 52)
        beta = a2 / g
        tie = _tie_class(beta)
        if tie is None:
            out += _windows(va, vb, j, s, g, beta, Fraction(1, 2), vguard, None)
        else:
            out += _windows(va, vb, j, s, g, beta, Fraction(1, 2), vguard, (*tie, False))
            out += _windows(va, vb, j, s, g, beta, Fraction(-1, 2), vguard, (*tie, True))
    return out


def _tie_class(beta: Fraction) -> tuple[int, int] | None:
    """(M, t): ``U*beta + 1/2`` is an integer K with K odd (round-half-even goes down) exactly when
    ``U % M == t``; None when no U makes ``U*beta + 1/2`` an integer."""
    n, d = beta.numerator, beta.denominator  # d a power of two, n odd (beta is dyadic)
    if d == 1:
        return None
    tz = d.bit_length() - 2  # U*n/d + 1/2 integer iff U = 2**tz * odd
    # K = (odd*n + 1)/2 odd iff odd*n = 1 (mod 4) iff odd = n (mod 4)
    return 1 << (tz + 2), (1 << tz) * (n % 4)


def _binades(a: Fraction, ulo: int, uhi: int) -> list[tuple[int, tuple[int, int]]]:
    """The binades E of ``y = U*a`` over ``ulo <= U <= uhi`` (U >= 1), each with its U range."""
    out = []
    u = ulo
    while u <= uhi:
        y = u * a
        e = y.numerator.bit_length() - y.denominator.bit_length()
        if _pow2(e) > y:
            e -= 1
        nxt = math.ceil(_pow2(e + 1) / a)  # the first U in the next binade
        out.append((e, (u, min(uhi, nxt - 1))))
        u = nxt
    return out


def _pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _windows(va: int, vb: int, j: int, s: int, big_a: int, beta: Fraction, gamma: Fraction,
             vguard: tuple[int, int, bool] | None, uguard: tuple[int, int, bool] | None) -> list[ScalePiece]:
    """``o = A*floor(U*beta + gamma)`` on ``va <= v <= vb``: cut where ``c`` steps, for the convergent
    p/r of beta that needs the fewest steps (small denominators only)."""
    if va > vb:
        return []
    ua, ub = (va + s) >> j, (vb + s) >> j
    p, r = _convergent(beta, gamma, ua, ub)
    delta = beta - Fraction(p, r)
    out = []
    for cu_lo, cu_hi, c in _steps(ua, ub, r * delta, r * gamma):
        a, b = max(va, (cu_lo << j) - s), min(vb, ((cu_hi + 1) << j) - s - 1)
        if a <= b:
            out.append(ScalePiece(a, b, j, s, big_a, p, c, r, vguard, uguard))
    return out


def _c(u: int, slope: Fraction, off: Fraction) -> int:
    return math.floor(u * slope + off)


def _steps(ua: int, ub: int, slope: Fraction, off: Fraction) -> list[tuple[int, int, int]]:
    """The runs ``[u0, u1]`` of ``ua..ub`` on which ``c(u) = floor(u*slope + off)`` is constant."""
    out = []
    u = ua
    while u <= ub:
        c = _c(u, slope, off)
        if slope == 0:
            nxt = ub + 1
        elif slope > 0:  # the first u with u*slope + off >= c + 1
            nxt = math.ceil((c + 1 - off) / slope)
        else:  # the first u with u*slope + off < c
            nxt = math.floor((c - off) / slope) + 1
        nxt = min(max(nxt, u + 1), ub + 1)
        out.append((u, nxt - 1, c))
        u = nxt
    return out


def _convergents(x: Fraction) -> list[tuple[int, int]]:
    out = []
    p0, q0, p1, q1 = 0, 1, 1, 0
    while True:
        a = math.floor(x)
        p0, q0, p1, q1 = p1, q1, a * p1 + p0, a * q1 + q0
        out.append((p1, q1))
        frac = x - a
        if frac == 0 or q1 > R_MAX:
            return out
        x = 1 / frac


def _convergent(beta: Fraction, gamma: Fraction, ua: int, ub: int) -> tuple[int, int]:
    """The convergent p/r (r <= R_MAX) of beta with the fewest steps of c over ``ua..ub`` (ties: the
    larger r); _TooMany when even that one needs more than PIECE_MAX."""
    best = None
    for p, r in _convergents(beta):
        if r > R_MAX or max(_primes(r), default=1) > P_MAX:
            continue
        slope, off = r * (beta - Fraction(p, r)), r * gamma
        n = abs(_c(ub, slope, off) - _c(ua, slope, off)) + 1
        if best is None or n <= best[0]:  # ties: the larger r, so that neighbours share one form
            best = (n, p, r)
    if best is None or best[0] > PIECE_MAX:
        raise _TooMany
    return best[1], best[2]


def _primes(n: int) -> list[int]:
    out, q = [], 2
    while q * q <= n:
        while n % q == 0:
            out.append(q)
            n //= q
        q += 1
    return out + ([n] if n > 1 else [])


def _merged(pieces: list[ScalePiece]) -> list[ScalePiece]:
    """Pieces of one form and guard that meet become one; too many in all: _TooMany."""
    by_key: dict[tuple, list[ScalePiece]] = {}
    for pc in sorted(pieces, key=_lo):
        run = by_key.setdefault(_key(pc), [])
        if run and _hi(run[-1]) + 1 == pc.lo:
            run[-1] = ScalePiece(run[-1].lo, pc.hi, *_key(pc))
        else:
            run.append(pc)
    out = sorted((pc for run in by_key.values() for pc in run), key=lambda q: (_lo(q), _key(q)))
    if len(out) > PIECE_MAX:
        raise _TooMany
    return out


def _lo(pc: ScalePiece) -> int:
    """The lower end of a bounded piece (every piece is bounded until ``_open_ends``)."""
    assert pc.lo is not None
    return pc.lo


def _hi(pc: ScalePiece) -> int:
    assert pc.hi is not None
    return pc.hi


def _key(pc: ScalePiece) -> tuple:
    return (pc.j, pc.s, pc.A, pc.p, pc.c, pc.r, pc.vguard, pc.uguard)


def _open_ends(pieces: list[ScalePiece]) -> tuple[ScalePiece, ...]:
    """The first piece's window opens downwards, and the last ones (every guard class of the top
    window) upwards: the convention beyond the exact range."""
    first = pieces[0]
    top = max(pc.hi for pc in pieces if pc.hi is not None)
    return tuple(ScalePiece(None if pc is first else pc.lo, None if pc.hi == top else pc.hi, *_key(pc))
                 for pc in pieces)
