"""Exact dim algebra: quasi-affine expressions of integer size symbols, in a canonical form.

Conv-family sizes are compositions of ``floor((a*x + b)/c)`` and integer affine maps of one input
symbol ``x``. This module keeps them as small frozen trees and decides facts about them exactly;
sympy only renders (``to_sympy``) and parses back (``from_sympy``), it never decides.

Canonical form of a one-symbol dim (``QA``): ``m*base + n`` with ``base`` one of

- ``Var(x)``;
- ``FloorDiv(q, k)`` = ``floor(q/k)`` with ``q`` a QA, ``k >= 2``, ``gcd(q.m, k) == 1`` and the
  constant of ``q`` in ``(-k/2, k/2]`` (larger parts move out of the floor);
- ``FScale(q, sf)`` = ``floor(q*sf)`` in double precision, for non-dyadic float scale factors.

Nested floors collapse: ``floor((floor(A/c) + n)/k) == floor((A + n*c)/(c*k))`` for integer A, n
and positive c, k; and ``floor((g*m*b + n)/(g*k)) == floor((m*b + floor(n/g))/k)``.

Every QA ``f`` without FScale satisfies ``f(x + P) == f(x) + slope*P`` for all integers x, where
``(P, slope) = period_slope(f)``: it is affine on each residue class mod P. ``EPSet`` is the exact
set of sizes where a condition holds, found from that property without sampling.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Any

# --------------------------------------------------------------------------------------------
# Expression trees
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class FloorDiv:
    """floor(arg / k)."""

    arg: QA
    k: int


@dataclass(frozen=True)
class FScale:
    """floor(arg * sf), sf a Python float, computed in double precision as PyTorch does."""

    arg: QA
    sf: float


Base = Var | FloorDiv | FScale


class DimOps:
    """Arithmetic shared by every dim expression; ints mix in freely."""

    def _expr(self) -> Expr:
        assert isinstance(self, (QA, Combo)), "DimOps is mixed into QA and Combo only"
        return self

    def __add__(self, o: Dim) -> Dim:
        return add(self._expr(), o)

    def __radd__(self, o: Dim) -> Dim:
        return add(o, self._expr())

    def __sub__(self, o: Dim) -> Dim:
        return add(self._expr(), mul(o, -1))

    def __rsub__(self, o: Dim) -> Dim:
        return add(o, mul(self._expr(), -1))

    def __neg__(self) -> Dim:
        return mul(self._expr(), -1)

    def __mul__(self, o: Dim) -> Dim:
        return mul(self._expr(), o)

    def __rmul__(self, o: Dim) -> Dim:
        return mul(o, self._expr())

    def __floordiv__(self, k: int) -> Dim:
        return floordiv(self._expr(), k)

    def __mod__(self, k: int) -> Dim:
        return add(self._expr(), mul(floordiv(self._expr(), k), -k))

    def __str__(self) -> str:
        return dim_str(self._expr())


@dataclass(frozen=True, eq=True)
class QA(DimOps):
    """m*base + n; a constant when base is None (then m == 0)."""

    m: int
    n: int
    base: Base | None = None

    __str__ = DimOps.__str__


@dataclass(frozen=True, eq=True)
class Combo(DimOps):
    """A sum or product of dims that no QA can hold (different symbols, or different bases)."""

    op: str  # 'add' | 'mul'
    args: tuple[Dim, ...]

    __str__ = DimOps.__str__


Dim = int | QA | Combo
Expr = QA | Combo


def const(n: int) -> QA:
    return QA(0, int(n), None)


def sym(name: str) -> QA:
    return QA(1, 0, Var(name))


def lift(d: object) -> Expr:
    """int -> constant QA; dims unchanged."""
    if isinstance(d, (QA, Combo)):
        return d
    if isinstance(d, bool) or not isinstance(d, int):
        raise TypeError(f"not a dim: {d!r}")
    return const(d)


def lower(d: Dim) -> Dim:
    """A constant QA -> int; everything else unchanged."""
    if isinstance(d, QA) and d.base is None:
        return d.n
    return d


def is_const(d: Dim) -> bool:
    return isinstance(lower(d), int)


def as_int(d: Dim) -> int | None:
    """The value of a constant dim; None when it depends on a symbol."""
    v = lower(d)
    return v if isinstance(v, int) else None


# --------------------------------------------------------------------------------------------
# Canonicalising constructors
# --------------------------------------------------------------------------------------------


def add(x: Dim, y: Dim) -> Dim:
    if type(x) is int and type(y) is int:  # concrete sizes: the common case outside the solver
        return x + y
    a, b = lift(x), lift(y)
    if isinstance(a, QA) and isinstance(b, QA):
        if b.base is None:
            return lower(QA(a.m, a.n + b.n, a.base))
        if a.base is None:
            return lower(QA(b.m, a.n + b.n, b.base))
        if a.base == b.base:
            m = a.m + b.m
            return lower(QA(m, a.n + b.n, a.base if m else None))
    terms = _flatten("add", a) + _flatten("add", b)
    return _combo_add(terms)


def _flatten(op: str, d: Expr) -> list:
    return list(d.args) if isinstance(d, Combo) and d.op == op else [d]


def _combo_add(terms: list) -> Dim:
    acc: list[QA | Combo] = []
    for t in terms:  # merge QA terms that share a base
        for i, u in enumerate(acc):
            if isinstance(t, QA) and isinstance(u, QA) and (t.base == u.base or t.base is None or u.base is None):
                acc[i] = lift(add(u, t))
                break
        else:
            acc.append(t)
    acc = [t for t in acc if not (isinstance(t, QA) and t.base is None and t.n == 0)] or [const(0)]
    return lower(acc[0]) if len(acc) == 1 else Combo("add", tuple(sorted(acc, key=_sort_key)))


def _sort_key(d: object) -> str:
    return ("1" if isinstance(d, QA) and d.base is None else "0") + repr(d)


def mul(x: Dim, y: Dim) -> Dim:
    if type(x) is int and type(y) is int:
        return x * y
    a, b = lift(x), lift(y)
    if isinstance(b, QA) and b.base is None:
        a, b = b, a
    if isinstance(a, QA) and a.base is None:  # constant * dim
        c = a.n
        if c == 0:
            return 0
        if isinstance(b, QA):
            return lower(QA(b.m * c, b.n * c, b.base))
        if b.op == "add":
            return reduce(add, (mul(c, t) for t in b.args))
    return _product(_flatten("mul", a) + _flatten("mul", b))


def _product(factors: list) -> Dim:
    """Canonical product: integer coefficients pulled out of ``m*base`` factors into one
    constant (rendered first), the other factors sorted."""
    coef, rest = 1, []
    for f in factors:
        if isinstance(f, QA) and f.base is None:
            coef *= f.n
        elif isinstance(f, QA) and f.n == 0:
            coef *= f.m
            rest.append(QA(1, 0, f.base))
        else:
            rest.append(f)
    if coef == 0:
        return 0
    if len(rest) == 1:
        return mul(coef, rest[0])
    args = sorted(rest, key=_sort_key) + ([const(coef)] if coef != 1 else [])
    return Combo("mul", tuple(args))


class NotQuasiAffine(ValueError):
    """A floor (a stride, a pool, a scale) of a dim that is not quasi-affine in one symbol, e.g.
    ``floor((A + B - 3)/2)`` after a cat along a spatial axis of two inputs: outside the algebra."""


def floordiv(d: Dim, k: int) -> Dim:
    """floor(q / k) for a positive int k, in canonical form."""
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"floor division by {k!r}: need a positive int")
    if type(d) is int:
        return d // k
    q = lift(d)
    if not isinstance(q, QA):
        if k == 1:
            return q
        raise NotQuasiAffine(f"cannot floor-divide {dim_str(q)}: not quasi-affine in one symbol")
    if k == 1:
        return lower(q)
    if q.base is None:
        return q.n // k
    m, n = q.m, q.n
    g = math.gcd(m, k)
    m, k, n = m // g, k // g, n // g
    if k == 1:
        return lower(QA(m, n, q.base))
    if m == 1 and isinstance(q.base, FloorDiv):  # collapse the nested floor
        inner = q.base.arg
        return floordiv(QA(inner.m, inner.n + n * q.base.k, inner.base), q.base.k * k)
    if m < 0:  # floor((-a)/k) = -ceil(a/k) = -floor((a + k - 1)/k)
        return mul(floordiv(QA(-m, -n + k - 1, q.base), k), -1)
    out, rem = divmod(n, k)
    if 2 * rem > k:
        out, rem = out + 1, rem - k
    return lower(QA(1, out, FloorDiv(QA(m, rem, q.base), k)))


def ceildiv(q: Dim, k: int) -> Dim:
    """ceil(q / k) = floor((q + k - 1) / k)."""
    return floordiv(add(q, k - 1), k)


def scale_floor(d: Dim, sf: float) -> Dim:
    """floor(q * sf) with PyTorch's double-precision product (nn.Upsample's output size)."""
    q = lift(d)
    fr = Fraction(sf)
    if fr.denominator <= 1 << 16:  # dyadic: q * sf is exact in double for any real size
        return floordiv(mul(q, fr.numerator), fr.denominator)
    if not isinstance(q, QA):
        raise NotQuasiAffine(f"cannot scale {dim_str(q)} by {sf!r}: not quasi-affine in one symbol")
    if q.base is None:
        return math.floor(q.n * sf)
    return lower(QA(1, 0, FScale(q, float(sf))))


# --------------------------------------------------------------------------------------------
# Evaluation and inspection
# --------------------------------------------------------------------------------------------


def evaluate(d: Dim, env: Mapping[str, int]) -> int:
    """Exact integer value at the given symbol sizes (KeyError when a symbol is missing)."""
    if isinstance(d, int):
        return d
    if isinstance(d, QA):
        return d.n if d.base is None else d.m * _eval_base(d.base, env) + d.n
    vals = [evaluate(a, env) for a in d.args]
    return sum(vals) if d.op == "add" else math.prod(vals)


def _eval_base(b: Base, env: Mapping[str, int]) -> int:
    if isinstance(b, Var):
        return int(env[b.name])
    if isinstance(b, FloorDiv):
        return evaluate(b.arg, env) // b.k
    return math.floor(float(evaluate(b.arg, env)) * b.sf)


def symbols(d: Dim) -> frozenset[str]:
    if isinstance(d, int):
        return frozenset()
    if isinstance(d, QA):
        b = d.base
        if b is None:
            return frozenset()
        return frozenset([b.name]) if isinstance(b, Var) else symbols(b.arg)
    return frozenset().union(*(symbols(a) for a in d.args))


def period_slope(d: Dim) -> tuple[int, Fraction] | None:
    """(P, slope) with d(x + P) == d(x) + slope*P for every integer x; None when d has no
    period (a non-dyadic Upsample scale) or is not a function of one symbol."""
    if isinstance(d, int):
        return 1, Fraction(0)
    if len(symbols(d)) > 1:
        return None
    if isinstance(d, Combo):
        if d.op != "add":
            return None
        parts = [ps for ps in (period_slope(a) for a in d.args) if ps is not None]
        if len(parts) < len(d.args):
            return None
        return reduce(math.lcm, (p[0] for p in parts)), sum((p[1] for p in parts), Fraction(0))
    if d.base is None:
        return 1, Fraction(0)
    if isinstance(d.base, Var):
        return 1, Fraction(d.m)
    if isinstance(d.base, FScale):
        return None
    inner = period_slope(d.base.arg)
    if inner is None:
        return None
    p, s = inner
    k = d.base.k
    step = int(s * p)  # increase of the argument over one period: an integer
    p2 = p * (k // math.gcd(step, k)) if step else p
    return p2, s / k * d.m


# --------------------------------------------------------------------------------------------
# sympy: rendering and parsing back
# --------------------------------------------------------------------------------------------


def sympy_symbol(name: str) -> Any:
    import sympy as sp

    return sp.Symbol(name, integer=True, positive=True)


def to_sympy(d: Dim) -> Any:
    """The evaluated sympy expression (what ``sympify(dim_str(d))`` gives back)."""
    import sympy as sp

    if isinstance(d, int):
        return sp.Integer(d)
    if isinstance(d, Combo):
        args = [to_sympy(a) for a in d.args]
        return sp.Add(*args) if d.op == "add" else sp.Mul(*args)
    if d.base is None:
        return sp.Integer(d.n)
    return d.m * _base_sympy(d.base) + d.n


def _base_sympy(b: Base) -> Any:
    import sympy as sp

    if isinstance(b, Var):
        return sympy_symbol(b.name)
    if isinstance(b, FloorDiv):
        return sp.floor(to_sympy(b.arg) / b.k)
    return sp.floor(to_sympy(b.arg) * sp.Float(b.sf, 17))


def dim_str(d: Dim) -> str:
    """Readable, sympy-parsable text: ``floor((H - 1)/32) + 1``, ``2*floor((W + 1)/2) - 3``."""
    if isinstance(d, int):
        return str(d)
    if isinstance(d, Combo):
        if d.op == "mul":  # the constant coefficient (sorted last) is written first
            return "*".join(_paren(a) for a in sorted(d.args, key=lambda a: not is_const(a)))
        return _join_terms([(1, dim_str(a)) if not (isinstance(a, QA) and a.base is None) else (a.n, "")
                            for a in d.args])
    if d.base is None:
        return str(d.n)
    return _join_terms([(d.m, _base_str(d.base)), (d.n, "")])


def _paren(d: Dim) -> str:
    s = dim_str(d)
    simple = isinstance(d, int) or (isinstance(d, QA) and (d.base is None or (d.n == 0 and d.m == 1)))
    return s if simple else f"({s})"


def _join_terms(terms: list[tuple[int, str]]) -> str:
    out = ""
    for coef, body in terms:
        if body and coef == 0:
            continue
        if not body and coef == 0:
            continue
        mag = abs(coef)
        text = (body if mag == 1 else f"{mag}*{body}") if body else str(mag)
        if not out:
            out = ("-" if coef < 0 else "") + text
        else:
            out += (" - " if coef < 0 else " + ") + text
    return out or "0"


def _base_str(b: Base) -> str:
    if isinstance(b, Var):
        return b.name
    if isinstance(b, FloorDiv):
        a = dim_str(b.arg)
        a = a if isinstance(b.arg, QA) and b.arg.n == 0 else f"({a})"
        return f"floor({a}/{b.k})"
    return f"floor({b.sf!r}*{_paren(b.arg)})"


def parse_dim(text: str) -> Dim:
    """Parse a dim string (as printed by ``dim_str`` or in an ONNX dim_param) back to a dim."""
    import sympy as sp

    expr = sp.sympify(text, locals={n: sympy_symbol(n) for n in _names(text)})
    return from_sympy(expr)


def _names(text: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)) - {"floor", "ceiling"}


def from_sympy(e: Any) -> Dim:
    """Rebuild a dim from sympy (Integer, Symbol, Add, Mul by integers, floor)."""
    import sympy as sp

    if e.is_Integer:
        return int(e)
    if e.is_Symbol:
        return sym(e.name)
    if isinstance(e, sp.Add):
        return reduce(add, (from_sympy(a) for a in e.args))
    if isinstance(e, sp.Mul):
        return reduce(mul, (from_sympy(a) for a in e.args))
    if isinstance(e, sp.floor):
        rest, f = _split_float(e.args[0])
        if f is not None:
            return scale_floor(from_sympy(rest), f)
        num, den = sp.fraction(sp.together(e.args[0]))
        if num.is_number is False and den.is_Integer:
            return floordiv(from_sympy(sp.expand(num)), int(den))
    raise ValueError(f"not a dim expression: {e}")


def _split_float(e: Any) -> tuple[Any, float | None]:
    import sympy as sp

    if isinstance(e, sp.Mul):
        floats = [a for a in e.args if a.is_Float]
        if len(floats) == 1:
            return sp.Mul(*[a for a in e.args if a is not floats[0]]), float(floats[0])
    return e, None


# --------------------------------------------------------------------------------------------
# Exact sets of sizes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EPSet:
    """An eventually periodic set of positive sizes:
    ``{x >= start : x % modulus in residues} | exceptions`` with every exception < start.
    The empty set has no residues and no exceptions."""

    start: int
    modulus: int
    residues: frozenset[int]
    exceptions: frozenset[int] = frozenset()

    def __contains__(self, x: int) -> bool:
        if x < self.start:
            return x in self.exceptions
        return (x % self.modulus) in self.residues

    @property
    def empty(self) -> bool:
        return not self.residues and not self.exceptions

    @property
    def finite(self) -> bool:
        return not self.residues

    @property
    def min(self) -> int | None:
        return next(iter(self.iter()), None)

    @property
    def least(self) -> int:
        """``min`` of a set known to be non-empty (raises ValueError on the empty set)."""
        x = self.min
        if x is None:
            raise ValueError("the empty set has no least element")
        return x

    def iter(self, lo: int = 1) -> Iterable[int]:
        yield from sorted(e for e in self.exceptions if e >= lo)
        if not self.residues:
            return
        x = max(lo, self.start)
        while True:
            if x % self.modulus in self.residues:
                yield x
            x += 1

    def first(self, n: int = 10, lo: int = 1) -> list[int]:
        out: list[int] = []
        for x in self.iter(lo):
            if len(out) == n:
                break
            out.append(x)
        return out

    def near(self, x: int) -> tuple[int | None, int | None]:
        """The largest member <= x and the smallest >= x (None where there is none).
        At most ``modulus`` steps each way, so a huge x costs no more than a small one."""
        below = None
        if self.residues and x >= self.start:  # a full period below x holds every residue
            lo = max(self.start, x - self.modulus + 1)
            below = next((y for y in range(x, lo - 1, -1) if y % self.modulus in self.residues), None)
        if below is None:
            below = max((e for e in self.exceptions if e <= x), default=None)
        above = next(iter(self.iter(x)), None)
        return below, above

    def to_json(self) -> dict:
        return {
            "min": self.min,
            "modulus": self.modulus,
            "residues": sorted(self.residues),
            "exceptions": sorted(self.exceptions),
            "first": self.first(10),
        }

    def describe(self, name: str) -> str:
        if self.empty:
            return "no valid size"
        parts = []
        if self.residues:
            cls = "" if len(self.residues) == self.modulus else (
                f", {name} % {self.modulus} in {{{', '.join(map(str, sorted(self.residues)))}}}"
                if len(self.residues) > 1 else f", {name} % {self.modulus} == {min(self.residues)}")
            parts.append(f"{name} >= {self.start}{cls}")
        if self.exceptions:
            kw = "or " if self.residues else ""
            parts.append(f"{kw}{name} in {{{', '.join(map(str, sorted(self.exceptions)))}}}")
        return " ".join(parts)

    # -- algebra -------------------------------------------------------------------------------

    @staticmethod
    def all(start: int = 1) -> EPSet:
        return EPSet(start, 1, frozenset([0]))

    @staticmethod
    def none() -> EPSet:
        return EPSet(1, 1, frozenset())

    @staticmethod
    def build(start: int, modulus: int, pred: Callable[[int], bool]) -> EPSet:
        """The set of x >= 1 where pred holds, given that pred is periodic (modulus) from start."""
        start = max(1, start)
        res = frozenset(r for r in range(modulus) if pred(start + ((r - start) % modulus)))
        exc = frozenset(x for x in range(1, start) if pred(x))
        return EPSet(start, modulus, res, exc).normalized()

    def combine(self, other: EPSet, op: Callable[[bool, bool], bool]) -> EPSet:
        start = max(self.start, other.start)
        mod = math.lcm(self.modulus, other.modulus)
        return EPSet.build(start, mod, lambda x: op(x in self, x in other))

    def __and__(self, other: EPSet) -> EPSet:
        return self.combine(other, lambda a, b: a and b)

    def __or__(self, other: EPSet) -> EPSet:
        return self.combine(other, lambda a, b: a or b)

    def normalized(self) -> EPSet:
        """Smallest modulus, then the lowest start, exceptions re-derived."""
        mod, res = self.modulus, self.residues
        for d in _divisors(mod):  # ascending; d is a period when res is a union of classes mod d
            folded = frozenset(r % d for r in res)
            if len(folded) * (mod // d) == len(res):
                mod, res = d, folded
                break
        start = self.start
        while start > 1 and (((start - 1) % mod) in res) == ((start - 1) in self.exceptions):
            start -= 1
        exc = frozenset(x for x in self.exceptions if x < start)
        if not res:
            start = (max(exc) + 1) if exc else 1
        return EPSet(start, mod, res, exc)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


_CMP: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def compare(a: int, op: str, b: int) -> bool:
    return _CMP[op](a, b)


def solve_condition(lhs: Dim, op: str, rhs: Dim, name: str, lo: int = 1) -> EPSet | None:
    """The exact set of sizes x >= lo of symbol ``name`` where ``lhs op rhs`` holds; the condition
    must involve ``name`` alone. None when the dims are not periodic (non-dyadic Upsample scale)."""
    diff = add(lhs, mul(rhs, -1))
    ps = period_slope(diff)
    if ps is None:
        return None
    period, slope = ps
    f = lambda x: evaluate(diff, {name: x})  # noqa: E731
    pred = lambda x: x >= lo and _CMP[op](f(x), 0)  # noqa: E731
    start = lo + _settle(f, period, slope, lo)
    return EPSet.build(start, period, pred)


def _settle(f: Callable[[int], int], period: int, slope: Fraction, lo: int) -> int:
    """An offset after which sign(f) is periodic: f never changes sign again past it."""
    if slope == 0:
        return 0
    # f(lo + r + P*t) = f(lo + r) + slope*P*t; every class is past zero once t exceeds this bound
    vals = [f(lo + r) for r in range(period)]
    inc = abs(slope) * period
    t = max(math.ceil((abs(v) + 1) / inc) for v in vals)
    return t * period


def is_monotone(d: Dim) -> bool:
    """True when d is non-decreasing in its (single) symbol: every coefficient along the tree is
    non-negative (conv-family sizes always are)."""
    if isinstance(d, int):
        return True
    if isinstance(d, Combo):
        return d.op == "add" and all(is_monotone(a) for a in d.args)
    if d.base is None or isinstance(d.base, Var):
        return d.m >= 0
    if isinstance(d.base, FScale) and d.base.sf < 0:
        return False
    return d.m >= 0 and is_monotone(d.base.arg)


def min_at_least(d: Dim, c: int, name: str, lo: int = 1, limit: int = 1 << 62) -> int | None:
    """The smallest x >= lo with d(x) >= c, for d non-decreasing in ``name`` (exponential then
    binary search: exact, and fast even when the period is astronomically large; a chain of
    floors is inverted directly, with the same answer, None included)."""
    x = _least_arg(d, c, name)
    if x is not None:
        return _searched(x, lo, limit)
    f = lambda x: evaluate(d, {name: x})  # noqa: E731
    if f(lo) >= c:
        return lo
    a, hi = lo, lo + 1  # invariant: f(a) < c
    while f(hi) < c:
        if hi > limit:
            return None
        a, hi = hi, lo + 2 * (hi - lo)
    while hi - a > 1:  # f(a) < c <= f(hi)
        mid = (a + hi) // 2
        a, hi = (mid, hi) if f(mid) < c else (a, mid)
    return hi


def _least_arg(d: Dim, c: int, name: str) -> int | None:
    """The least integer x with d(x) >= c when d is ``m*B + n`` with m > 0 and B the symbol or
    ``floor(arg/k)`` of such a chain (``floor(a/k) >= t`` iff ``a >= k*t``); None for any other form."""
    if not isinstance(d, QA) or d.base is None or d.m <= 0:
        return None
    t = -((d.n - c) // d.m)  # the least B with m*B + n >= c
    if isinstance(d.base, Var):
        return t if d.base.name == name else None
    if isinstance(d.base, FloorDiv) and d.base.k > 0:
        return _least_arg(d.base.arg, d.base.k * t, name)
    return None


def _searched(x: int, lo: int, limit: int) -> int | None:
    """What ``min_at_least``'s search answers when the least x with d(x) >= c is ``x``: x (or lo),
    or None when its doubling steps pass ``limit`` below x."""
    if x <= lo:
        return lo
    hi = lo + 1
    while hi < x:
        if hi > limit:
            return None
        hi = lo + 2 * (hi - lo)
    return x
