"""Couplings of two symbols through monotone dims, exact: ``f(A) == g(B)``, ``f(A) >= g(B)``.

A cat of two inputs, ``assume(W == H)``, a ``+`` of two branches, ``assume(W >= H)``: each side a
non-decreasing one-chain dim of one symbol (the layers between the input and the merge). With
``S_A``, ``S_B`` the sizes each symbol is allowed on its own, the valid pairs are exactly
``{(a, b) : a in P_A, b in P_B, f(a) op g(b)}`` where, for ``==``,

    P_A = S_A & preimage(image(S_B, g), f),   P_B = S_B & preimage(image(S_A, f), g)

(``_image.image``, ``_image.preimage``: step by step, never by enumerating a period), and
for ``>=`` (f, g monotone) ``P_A = {a in S_A : f(a) >= g(min S_B)}``, ``P_B = {b in S_B : g(b) <=
sup f(S_A)}``: half-lines. Every member of a projection has a partner in the other. The smallest
solutions are computed, not searched: for each of the smallest sizes of the side with the smaller
slope, the smallest partner (an interval of the other side, found by ``min_at_least``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._image import by_symbol, image, preimage
from convgraph.solve._sizes import Sizes

#: ``f op g`` read from g's side: ``g(b) FLIP[op] f(a)``
FLIP = {"==": "==", ">=": "<=", "<=": ">="}


@dataclass(frozen=True)
class PairCoupling:
    """``f(a) op g(b)`` (op '==', '>=' or '<=') with f, g non-decreasing dims of the symbols a, b:
    the valid pairs are exactly ``a in sizes_a``, ``b in sizes_b`` and the relation (each
    projection is exact: every member has a partner)."""

    a: str
    b: str
    f: Dim
    g: Dim
    sizes_a: Sizes
    sizes_b: Sizes
    op: str = "=="

    def per_symbol(self) -> dict[str, Sizes]:
        return {self.a: self.sizes_a, self.b: self.sizes_b}

    @property
    def relation(self) -> str:
        return f"{D.dim_str(self.f)} {self.op} {D.dim_str(self.g)}"

    def sides(self) -> tuple[tuple[str, Dim, Sizes], tuple[str, Dim, Sizes]]:
        """(symbol, dim, set) of both sides, the one with the smaller slope (the more sizes per
        value: every one of its sizes is listed) first."""
        one, two = (self.a, self.f, self.sizes_a), (self.b, self.g, self.sizes_b)
        return (two, one) if _slope(self.g) < _slope(self.f) else (one, two)

    def examples(self, want: int = 3) -> tuple[dict, ...]:
        """The smallest solutions by the symbol of the smaller slope, each with its smallest
        partner (every one listed is a solution, and no smaller size of that symbol has one)."""
        (n, f, s), (m, g, t) = self.sides()
        need = FLIP[self.op] if n == self.a else self.op  # how the partner's side must compare
        out = []
        for x in s.first(want):
            y = partner(D.evaluate(f, {n: x}), need, g, m, t)
            if y is not None:
                out.append(dict(sorted({n: x, m: y}.items())))
        return tuple(out)


    def solved_for(self) -> tuple[tuple[str, str, Dim], ...]:
        """(kept, dropped, by) for each side that is bare: an equality ``B + e == f(A)`` fixes B as
        ``by(A) = f(A) - e`` (then another condition on B is one on A); () for an inequality."""
        if self.op != "==":
            return ()
        out = []
        for (keep, fk), (drop, fd) in (((self.a, self.f), (self.b, self.g)), ((self.b, self.g), (self.a, self.f))):
            if isinstance(fd, D.QA) and isinstance(fd.base, D.Var) and fd.m == 1:
                out.append((keep, drop, D.add(fk, -fd.n)))
        return tuple(out)


def partner(value: int, need: str, g: Dim, name: str, sizes: Sizes) -> int | None:
    """The smallest y in sizes with ``g(y) need value`` (g non-decreasing: ``g(y) >= value`` and
    ``g(y) == value`` hold on intervals from ``min_at_least``; ``g(y) <= value`` holds at the
    smallest size or nowhere)."""
    if need == "<=":
        y = sizes.min
        return y if y is not None and D.evaluate(g, {name: y}) <= value else None
    lo = D.min_at_least(g, value, name)
    y = None if lo is None else next(iter(sizes.iter(lo)), None)
    return y if y is not None and (need == ">=" or D.evaluate(g, {name: y}) == value) else None


def pair_coupling(lhs: Dim, op: str, rhs: Dim, allowed: Mapping[str, Sizes]) -> PairCoupling | None:
    """Solve ``lhs op rhs`` exactly when it separates into ``f(A) op' g(B)`` with f, g both
    non-decreasing (or both non-increasing) one-chain dims; None when not of that form ('!=',
    three symbols, a sum of chains, a non-dyadic scale, sides of opposite monotonicity)."""
    sides = _separate(lhs, rhs)
    if sides is None or op not in ("==", ">=", ">", "<=", "<"):
        return None
    (a, f), (b, g), negated = sides
    if negated:  # lhs - rhs == -(f - g): the inequality turns round
        op = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}.get(op, op)
    if op in (">", "<"):  # integers: f > g iff f >= g + 1
        g, op = D.add(g, 1 if op == ">" else -1), op + "="
    sa, sb = Sizes.lift(allowed[a]), Sizes.lift(allowed[b])
    got = _equal(a, f, sa, b, g, sb) if op == "==" else _ordered(a, f, sa, b, g, sb, op)
    return None if got is None else PairCoupling(a, b, f, g, got[0], got[1], op)


def _equal(a: str, f: Dim, sa: Sizes, b: str, g: Dim, sb: Sizes) -> tuple[Sizes, Sizes] | None:
    """The projections of ``f(a) == g(b)``: each side's preimage of the other side's image."""
    # shift both sides so that every value is a positive size (f, g monotone: least at 1)
    k = max(0, 1 - min(D.evaluate(f, {a: 1}), D.evaluate(g, {b: 1})))
    fk, gk = D.add(f, k), D.add(g, k)
    img_a, img_b = image(sa, fk, a), image(sb, gk, b)
    if img_a is None or img_b is None:
        return None
    pa, pb = preimage(img_b, fk, a), preimage(img_a, gk, b)
    return None if pa is None or pb is None else (pa & sa, pb & sb)


def _ordered(a: str, f: Dim, sa: Sizes, b: str, g: Dim, sb: Sizes, op: str) -> tuple[Sizes, Sizes]:
    """The projections of ``f(a) >= g(b)`` (or ``<=``): half-lines cut at the other side's extreme."""
    if sa.empty or sb.empty:
        return Sizes.none(), Sizes.none()
    if op == "<=":
        pb, pa = _ordered(b, g, sb, a, f, sa, ">=")
        return pa, pb
    pa = sa & _from(f, a, D.evaluate(g, {b: sb.least}))  # f(a) >= the least g
    if sa.finite:  # g(b) <= the largest f
        (largest,) = (hi for _, hi, _ in sa.windows[-1:] if hi is not None)
        return pa, sb - _from(g, b, D.evaluate(f, {a: largest}) + 1)
    return pa, sb


def _from(h: Dim, name: str, c: int) -> Sizes:
    """``{x >= 1 : h(x) >= c}`` for h non-decreasing: a half-line."""
    x = D.min_at_least(h, c, name)
    return Sizes.none() if x is None else Sizes.interval(x, None)


def _separate(lhs: Dim, rhs: Dim) -> tuple[tuple[str, Dim], tuple[str, Dim], bool] | None:
    """``lhs - rhs`` as ``f(a) - g(b)`` (a < b, f and g non-decreasing one-chain dims, the constant
    on g's side), or as ``-(f(a) - g(b))`` (then True); None when it does not separate so."""
    split = by_symbol(lhs, rhs)
    if split is None:
        return None
    parts, const = split
    if len(parts) != 2:
        return None
    (a, f), (b, mg) = sorted(parts.items())
    g = D.add(D.mul(mg, -1), -const)
    if _chain(f) and _chain(g):
        return (a, f), (b, g), False
    f, g = D.mul(f, -1), D.mul(g, -1)
    return ((a, f), (b, g), True) if _chain(f) and _chain(g) else None


def _chain(d: Dim) -> bool:
    return isinstance(d, D.QA) and d.base is not None and D.is_monotone(d)


def _slope(d: Dim) -> Fraction:
    ps = D.period_slope(d)
    return Fraction(0) if ps is None else ps[1]
