"""Couplings of two symbols through monotone dims, exact: ``f(A) == g(B)``.

A cat of two inputs, ``assume(W == H)``, a ``+`` of two branches: each side a non-decreasing
one-chain dim of one symbol (the layers between the input and the merge). With ``S_A``, ``S_B``
the sizes each symbol is allowed on its own, the valid pairs are exactly

    {(a, b) : a in P_A, b in P_B, f(a) == g(b)},
    P_A = S_A & preimage(image(S_B, g), f),   P_B = S_B & preimage(image(S_A, f), g)

(``_image.image``, ``_conditions.preimage``: digit by digit, never by enumerating a period), and
every a in P_A has a partner in P_B. The smallest solutions are computed, not searched: for each
of the smallest a in P_A (A the side of the smaller slope), the smallest b of P_B on the interval
where g equals f(a).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._conditions import preimage
from convgraph.solve._image import image
from convgraph.solve._sizes import Sizes


@dataclass(frozen=True)
class PairCoupling:
    """``f(a) == g(b)`` with f, g non-decreasing dims of the symbols a, b: the valid pairs are
    exactly ``a in sizes_a``, ``b in sizes_b`` and the relation (each projection is exact)."""

    a: str
    b: str
    f: Dim
    g: Dim
    sizes_a: Sizes
    sizes_b: Sizes

    def per_symbol(self) -> dict[str, Sizes]:
        return {self.a: self.sizes_a, self.b: self.sizes_b}

    @property
    def relation(self) -> str:
        return f"{D.dim_str(self.f)} == {D.dim_str(self.g)}"

    def sides(self) -> tuple[tuple[str, Dim, Sizes], tuple[str, Dim, Sizes]]:
        """(symbol, dim, set) of both sides, the one with the smaller slope (the more sizes per
        value: every one of its sizes is listed) first."""
        one, two = (self.a, self.f, self.sizes_a), (self.b, self.g, self.sizes_b)
        return (two, one) if _slope(self.g) < _slope(self.f) else (one, two)

    def examples(self, want: int = 3) -> tuple[dict, ...]:
        """The smallest solutions by the symbol of the smaller slope, each with its smallest
        partner (every one listed is a solution, and no smaller size of that symbol has one)."""
        (n, f, s), (m, g, t) = self.sides()
        out = []
        for x in s.first(want):
            y = partner(D.evaluate(f, {n: x}), g, m, t)
            if y is not None:
                out.append(dict(sorted({n: x, m: y}.items())))
        return tuple(out)


def partner(value: int, g: Dim, name: str, sizes: Sizes) -> int | None:
    """The smallest y in sizes with g(y) == value (g non-decreasing: its fibre is an interval)."""
    lo = D.min_at_least(g, value, name)
    y = None if lo is None else next(iter(sizes.iter(lo)), None)
    return y if y is not None and D.evaluate(g, {name: y}) == value else None


def _slope(d: Dim) -> Fraction:
    ps = D.period_slope(d)
    return Fraction(0) if ps is None else ps[1]


#: the former name: ``f(A) == B + e`` is the case g bare
BareCoupling = PairCoupling


def pair_coupling(lhs: Dim, rhs: Dim, allowed: Mapping[str, Sizes]) -> PairCoupling | None:
    """Solve ``lhs == rhs`` exactly when it separates into ``f(A) == g(B)`` with f, g both
    non-decreasing (or both non-increasing) one-chain dims; None when not of that form."""
    sides = _separate(lhs, rhs)
    if sides is None:
        return None
    (a, f), (b, g) = sides
    # shift both sides so that every value is a positive size (f, g monotone: least at 1)
    k = max(0, 1 - min(D.evaluate(f, {a: 1}), D.evaluate(g, {b: 1})))
    fk, gk = D.add(f, k), D.add(g, k)
    sa, sb = Sizes.lift(allowed[a]), Sizes.lift(allowed[b])
    img_a, img_b = image(sa, fk, a), image(sb, gk, b)
    if img_a is None or img_b is None:
        return None
    pa, pb = preimage(img_b, fk, a), preimage(img_a, gk, b)
    if pa is None or pb is None:
        return None
    return PairCoupling(a, b, f, g, pa & sa, pb & sb)


def _separate(lhs: Dim, rhs: Dim) -> tuple[tuple[str, Dim], tuple[str, Dim]] | None:
    """``lhs - rhs == 0`` as ``f(a) == g(b)`` (a < b, f and g non-decreasing one-chain dims, the
    constant on g's side); None when it does not separate so."""
    diff = D.add(lhs, D.mul(rhs, -1))
    terms = list(diff.args) if isinstance(diff, D.Combo) and diff.op == "add" else [diff]
    parts: dict[str, Dim] = {}
    const = 0
    for t in terms:
        syms = D.symbols(t)
        if not syms:
            const += D.evaluate(t, {})
        elif len(syms) > 1:
            return None
        else:
            (n,) = syms
            parts[n] = D.add(parts.get(n, 0), t)
    if len(parts) != 2:
        return None
    (a, f), (b, mg) = sorted(parts.items())
    g = D.add(D.mul(mg, -1), -const)
    if not (_chain(f) and _chain(g)):
        f, g = D.mul(f, -1), D.mul(g, -1)
    return ((a, f), (b, g)) if _chain(f) and _chain(g) else None


def _chain(d: Dim) -> bool:
    return isinstance(d, D.QA) and d.base is not None and D.is_monotone(d)
