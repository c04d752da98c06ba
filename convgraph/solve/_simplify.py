"""Dims simplified on the valid sizes: where every valid H is ``0 (mod 16)``, ``floor(H/2)`` is
exactly ``H/2`` and ``floor((H - 1)/32) + 1`` is ``H/32``.

``floor((a*H + b)/q)`` is affine on a set of sizes when ``(a*x + b) mod q`` takes one value c on
the whole set: on the periodic part that needs ``a*modulus == 0 (mod q)`` and one c over the
residues, and every exception must give the same c; then it equals ``(a*H + b - c)/q``. The
result is exact on the valid set only, so it is shown next to the general formula, never in
place of it where the general one is needed (rules, constraints).
"""
from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from math import lcm
from typing import TYPE_CHECKING

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._sets import EPSet

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Solution

#: an affine map of one symbol: (symbol, a, b) meaning a*symbol + b, exact rationals
Affine = tuple[str, Fraction, Fraction]

#: a set with more classes (or finite sizes past CLASSES**2) is not simplified on
CLASSES = 256


def simplified(d: Dim, sets: Mapping[str, EPSet]) -> str:
    """The dim as text, every floor that is affine on ``sets`` written without it."""
    if isinstance(d, int):
        return str(d)
    if isinstance(d, D.Combo):
        parts = [simplified(a, sets) for a in d.args]
        if d.op == "mul":
            return "*".join(p if _atomic(p) else f"({p})" for p in parts)
        return " + ".join(parts).replace("+ -", "- ")
    got = _affine(d, sets)
    return affine_str(got) if got is not None else D.dim_str(d)


def _atomic(text: str) -> bool:
    return text.replace("_", "").isalnum()


def _affine(d: Dim, sets: Mapping[str, EPSet]) -> Affine | None:
    """d as an exact affine map of its one symbol on ``sets``, or None."""
    if not isinstance(d, D.QA) or d.base is None:
        return None
    base = _base(d.base, sets)
    if base is None:
        return None
    name, a, b = base
    return name, a * d.m, b * d.m + d.n


def _base(b: D.Base, sets: Mapping[str, EPSet]) -> Affine | None:
    if isinstance(b, D.Var):
        return b.name, Fraction(1), Fraction(0)
    if not isinstance(b, D.FloorDiv):
        return None
    inner = D.lower(b.arg)
    arg = (_var_name(inner), Fraction(1), Fraction(0)) if isinstance(inner, D.QA) and isinstance(inner.base, D.Var) \
        and inner.m == 1 and inner.n == 0 else _affine(inner, sets)
    if arg is None or arg[0] not in sets:
        return None
    name, a, c0 = arg
    q = lcm(a.denominator, c0.denominator) * b.k  # floor((A*x + B)/q) with integers A, B
    big_a, big_b = int(a * q / b.k), int(c0 * q / b.k)
    rem = _one_remainder(sets[name], big_a, big_b, q)
    if rem is None:
        return None
    return name, Fraction(big_a, q), Fraction(big_b - rem, q)


def _var_name(d: D.QA) -> str:
    return d.base.name  # type: ignore[union-attr]


def _one_remainder(s: EPSet, a: int, b: int, q: int) -> int | None:
    """The one value of ``(a*x + b) mod q`` over the set, or None when it takes several."""
    if s.empty:
        return None
    if not s.finite and (a * s.modulus) % q:
        return None
    classes = s.classes(CLASSES) if not s.finite else []  # x == r (mod m) for each (r, m)
    if classes is None or any((a * m) % q for _, m in classes):
        return None  # too many classes to list, or one on which the value is not constant
    fin = s.finite_windows()
    if sum(hi - lo + 1 for lo, hi, _ in fin) > CLASSES * CLASSES:
        return None
    got = {(a * r + b) % q for r, _ in classes} | {(a * x + b) % q for x in s.exceptions}
    return got.pop() if len(got) == 1 else None


def affine_str(f: Affine) -> str:
    """``H/2``, ``(H + 1)/2``, ``3*H/4 - 1``, ``H``: sympy-parsable."""
    name, a, b = f
    if a == 0:
        return str(b)
    den = lcm(a.denominator, b.denominator)
    num_a, num_b = int(a * den), int(b * den)
    head = name if num_a == 1 else f"-{name}" if num_a == -1 else f"{num_a}*{name}"
    if den == 1:
        return head if num_b == 0 else f"{head} {'+' if num_b > 0 else '-'} {abs(num_b)}"
    if num_b % den == 0 and num_b:  # (A*H)/den + integer
        k = num_b // den
        return f"{head}/{den} {'+' if k > 0 else '-'} {abs(k)}"
    if num_b == 0:
        return f"{head}/{den}"
    return f"({head} {'+' if num_b > 0 else '-'} {abs(num_b)})/{den}"


def valid_sets(sol: Solution) -> dict[str, EPSet]:
    """Each symbol's valid set (``runs``) from a Solution."""
    return {n: s.runs for n, s in sol.symbols.items()}
