"""The values an ONNX graph carries at import time, and exact arithmetic on symbolic elements.

A value is one of

- ``Tensor``: a feature map, an IR node with known dims;
- ``Weight``: an initializer of which only the shape is needed (its data may be external);
- ``Known``: a small tensor whose elements are known at import time (a numpy array, of dtype
  object when some element is symbolic: a ``convgraph.dims`` dim or a ``Frac``);
- ``Padded``: a ``Pad`` with constant pads waiting for the ``Conv`` that absorbs it.

Elements are exact: int, float (a float32 constant), dim, or ``Frac`` (a dim over a positive int,
what ``Cast(float)`` then ``Div`` makes). ONNX integer ``Div`` truncates toward zero: on a
symbolic numerator it is a floor once the numerator's sign is proved for every size, else an error.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from convgraph import dims as D
from convgraph.dims import Dim

Shape = tuple
#: an element: int, float, a dim or a Frac
Elem = Any


@dataclass(frozen=True)
class Tensor:
    name: str  # the IR node
    dims: Shape


@dataclass(frozen=True)
class Weight:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Known:
    arr: np.ndarray
    kind: str  # 'int' | 'float' | 'bool'

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arr.shape)

    @property
    def symbolic(self) -> bool:
        return self.arr.dtype == object and any(not isinstance(v, (int, float, bool, np.generic))
                                                for v in self.arr.flat)

    def ints(self) -> list[int] | None:
        """The elements as ints, or None when some element is symbolic or fractional."""
        out = []
        for v in self.arr.flat:
            v = D.lower(v) if isinstance(v, (D.QA, D.Combo)) else v
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                v = int(v)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                return None
            out.append(int(v))
        return out

    def dims(self) -> list[Dim]:
        return [_as_dim(v) for v in self.arr.flat]


@dataclass(frozen=True)
class Padded:
    """``Pad`` of ``src`` by constant (begin, end) pads per axis (all axes, N and C included)."""

    src: Tensor
    pads: tuple[tuple[int, int], ...]
    mode: str
    value: float
    node: str  # the Pad node's location text
    dims: Shape
    name: str = ""  # the Pad's output value


class SignUnknown(ValueError):
    """A symbolic element whose sign decides the result is not of one sign for every size."""


@dataclass(frozen=True)
class Frac:
    """num / den exactly, den >= 2."""

    num: Dim
    den: int


@dataclass(frozen=True)
class Trunc:
    """trunc(num / den) where the dim algebra cannot hold the floor (a sum of different floors of
    one symbol, growing with it): kept as an atom, so that sums that cancel it still resolve."""

    num: Dim
    den: int


@dataclass(frozen=True)
class Lin:
    """base + sum(coef * atom): what arithmetic on ``Trunc`` atoms makes."""

    base: Dim
    terms: tuple[tuple[Trunc, int], ...]


def _lin(v: Elem) -> Lin:
    return v if isinstance(v, Lin) else Lin(_as_dim(v), ())


def _lin_add(a: Elem, b: Elem) -> Elem:
    x, y = _lin(a), _lin(b)
    coefs: dict[Trunc, int] = dict(x.terms)
    for t, c in y.terms:
        coefs[t] = coefs.get(t, 0) + c
    terms = tuple((t, c) for t, c in coefs.items() if c)
    base = D.lower(D.add(x.base, y.base))
    return Lin(base, terms) if terms else base


def _lin_scale(a: Lin, k: Elem) -> Elem:
    k = D.lower(_as_dim(k))
    if not isinstance(k, int):
        raise ValueError(f"{_show(a)} times {_show(k)}: not expressible")
    terms = tuple((t, c * k) for t, c in a.terms if c * k)
    base = D.lower(D.mul(a.base, k))
    return Lin(base, terms) if terms else base


# --------------------------------------------------------------------------------------------
# Elements
# --------------------------------------------------------------------------------------------


def _as_dim(v: Elem) -> Dim:
    if isinstance(v, (D.QA, D.Combo)):
        return D.lower(v)
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise ValueError(f"{_show(v)} is not an integer")


def _show(v: Elem) -> str:
    if isinstance(v, Lin):
        parts = [D.dim_str(v.base)] + [f"{c}*trunc(({D.dim_str(t.num)})/{t.den})" for t, c in v.terms]
        return " + ".join(parts)
    if isinstance(v, Frac):
        return f"({D.dim_str(v.num)})/{v.den}"
    if isinstance(v, (D.QA, D.Combo)):
        return D.dim_str(v)
    return repr(v.item() if isinstance(v, np.generic) else v)


def _rat(v: Elem) -> tuple[Dim, int]:
    """(numerator dim, positive int denominator)."""
    if isinstance(v, Frac):
        return v.num, v.den
    if isinstance(v, (float, np.floating)):
        f = Fraction(float(v))
        if f.denominator > 1 << 24:
            raise ValueError(f"{float(v)!r} is not a short binary fraction")
        return f.numerator, f.denominator
    return _as_dim(v), 1


def _make(num: Dim, den: int) -> Elem:
    num = D.lower(num)
    g = 1 if isinstance(num, D.Combo) else math.gcd(den, _content(num))
    num, den = (D.lower(D.floordiv(num, g)) if g > 1 else num), den // g
    if den == 1:
        return num
    if isinstance(num, int):
        return num / den
    return Frac(num, den)


def _content(d: Dim) -> int:
    """A positive int dividing every value of d (the gcd of its affine coefficients)."""
    if isinstance(d, int):
        return abs(d) or 1
    if isinstance(d, D.QA):
        return math.gcd(abs(d.m), abs(d.n)) or 1
    if d.op == "add":
        return math.gcd(*(_content(a) for a in d.args))
    return 1


def _symbolic(*vs: Elem) -> bool:
    return any(isinstance(v, (D.QA, D.Combo, Frac, Lin)) for v in vs)


def sign(d: Dim) -> int | None:
    """1 when d >= 0 for every size, -1 when d <= 0 for every size (0 when d == 0), else None."""
    d = D.lower(d)
    if isinstance(d, int):
        return (d > 0) - (d < 0)
    if _nonneg(d):
        return 1
    if _nonneg(D.mul(d, -1)):
        return -1
    return None


def _nonneg(d: Dim) -> bool:
    d = D.lower(d)
    if isinstance(d, int):
        return d >= 0
    syms = D.symbols(d)
    if len(syms) == 1:
        s = D.solve_condition(d, ">=", 0, next(iter(syms)))
        return s is not None and s == D.EPSet.all()
    if isinstance(d, D.Combo):
        return all(_nonneg(a) for a in d.args)
    return False


def add(a: Elem, b: Elem) -> Elem:
    if not _symbolic(a, b):
        return a + b
    if isinstance(a, Lin) or isinstance(b, Lin):
        return _lin_add(a, b)
    (n1, d1), (n2, d2) = _rat(a), _rat(b)
    return _make(D.add(D.mul(n1, d2), D.mul(n2, d1)), d1 * d2)


def mul(a: Elem, b: Elem) -> Elem:
    if not _symbolic(a, b):
        return a * b
    if isinstance(a, Lin) or isinstance(b, Lin):
        return _lin_scale(a, b) if isinstance(a, Lin) else _lin_scale(b, a)
    (n1, d1), (n2, d2) = _rat(a), _rat(b)
    return _make(D.mul(n1, n2), d1 * d2)


def sub(a: Elem, b: Elem) -> Elem:
    return add(a, mul(b, -1))


def true_div(a: Elem, b: Elem) -> Elem:
    """Float division (a float tensor): exact, the divisor a nonzero constant."""
    (n1, d1), (n2, d2) = _rat(a), _rat(b)
    n2 = D.lower(n2)
    if not isinstance(n2, int) or n2 == 0:
        raise ValueError(f"division by {_show(b)}: needs a nonzero constant divisor")
    if not _symbolic(a, b):
        return a / b
    if n2 < 0:
        n1, n2 = D.mul(n1, -1), -n2
    return _make(D.mul(n1, d2), d1 * n2)


def int_div(a: Elem, b: Elem) -> Elem:
    """ONNX integer Div: truncation toward zero."""
    b = D.lower(_as_dim(b))
    if not isinstance(b, int) or b == 0:
        raise ValueError(f"integer division by {_show(b)}: needs a nonzero constant divisor")
    if not _symbolic(a):
        q = abs(int(a)) // abs(b)
        return q if (int(a) >= 0) == (b > 0) else -q
    return _trunc(_as_dim(a), b)


#: the longest period over which a bounded one-symbol dim is tabulated (``_periodic_floor``)
MAX_TABLE = 4096


def _periodic_floor(num: Dim, den: int) -> Dim | None:
    """floor(num/den) for a dim the algebra cannot floor (a sum of different floors of one symbol)
    when num is periodic with slope 0: the floor is then the constant it takes over one period, if
    it takes one value (``num(x + P) == num(x)`` for every integer x)."""
    syms = D.symbols(num)
    ps = D.period_slope(num) if len(syms) == 1 else None
    if ps is None or ps[1] != 0 or ps[0] > MAX_TABLE:
        return None
    name = next(iter(syms))
    vals = {D.evaluate(num, {name: x}) // den for x in range(1, ps[0] + 1)}
    return vals.pop() if len(vals) == 1 else None


def _floordiv(num: Dim, den: int) -> Dim:
    try:
        return D.lower(D.floordiv(num, den))
    except ValueError:
        got = _periodic_floor(num, den)
        if got is None:
            raise ValueError(f"floor({D.dim_str(num)} / {den}) is not quasi-affine in one symbol (convgraph's dim "
                             "algebra cannot hold it)") from None
        return got


def _trunc(num: Dim, den: int) -> Elem:
    if den < 0:
        return mul(_trunc(num, -den), -1)
    s = sign(num)
    if s is None:
        raise SignUnknown(f"the sign of {D.dim_str(num)} is not the same for every size, so its "
                          f"truncating division by {den} is not one floor")
    try:
        if s >= 0:
            return _floordiv(num, den)
        return D.lower(D.mul(_floordiv(D.lower(D.mul(num, -1)), den), -1))
    except ValueError:
        return Lin(0, ((Trunc(num, den), 1),))


def floor(a: Elem) -> Elem:
    if isinstance(a, Frac):
        return _floordiv(a.num, a.den)
    if isinstance(a, (float, np.floating)):
        return float(math.floor(a))
    return a


def ceil(a: Elem) -> Elem:
    if isinstance(a, Frac):
        return D.lower(D.ceildiv(a.num, a.den))
    if isinstance(a, (float, np.floating)):
        return float(math.ceil(a))
    return a


def to_int(a: Elem) -> Elem:
    """Cast to an integer type: truncation."""
    if isinstance(a, Frac):
        return _trunc(a.num, a.den)
    if isinstance(a, (float, np.floating)):
        return int(a)
    return _as_dim(a) if not isinstance(a, (D.QA, D.Combo)) else a


def compare(a: Elem, b: Elem) -> int:
    """-1, 0 or 1 for a < b, a == b, a > b, proved for every size (SignUnknown otherwise)."""
    if not _symbolic(a, b):
        return (a > b) - (a < b)
    (n1, d1), (n2, d2) = _rat(a), _rat(b)
    diff = D.lower(D.add(D.mul(n1, d2), D.mul(D.mul(n2, d1), -1)))
    if diff == 0:
        return 0
    s = sign(diff)
    if s is None or (s != 0 and sign(D.add(D.mul(diff, s), -1)) != 1):
        raise SignUnknown(f"{_show(a)} vs {_show(b)}: the order is not the same for every size")
    return s


def maximum(a: Elem, b: Elem) -> Elem:
    return a if compare(a, b) >= 0 else b


def minimum(a: Elem, b: Elem) -> Elem:
    return a if compare(a, b) <= 0 else b


def modulo(a: Elem, b: Elem) -> Elem:
    """ONNX Mod with fmod=0 (the sign of the divisor), b a nonzero constant."""
    if not _symbolic(a, b):
        return a % b
    b = _as_dim(b)
    return D.lower(D.add(_as_dim(a), D.mul(D.floordiv(_as_dim(a), b), -b))) if b > 0 else None


def show(v: Elem) -> str:
    return _show(v)


def elementwise(fn: Callable[..., Elem], *arrays: Any) -> np.ndarray:
    """fn over broadcast arrays, element by element (object dtype when symbolic)."""
    bs = np.broadcast_arrays(*[np.asarray(a, dtype=object) for a in arrays])
    out = np.empty(bs[0].shape, dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(*(b[idx] for b in bs))
    return out


def numeric(arr: np.ndarray, kind: str) -> np.ndarray:
    """An object array back to a numeric one when no element is symbolic."""
    if arr.dtype != object or _symbolic(*arr.flat):
        return arr
    dtype = {"int": np.int64, "float": np.float64, "bool": np.bool_}[kind]
    return np.array([(_as_dim(v) if kind == "int" else v) for v in arr.flat], dtype=dtype).reshape(arr.shape)
