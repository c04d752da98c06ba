"""Couplings as a relation on monotone terms, exact: sums ``sum s_X * F_X(X) op c`` and products
``prod F_X(X) op c`` of non-decreasing one-chain dims, one symbol each.

A cat of two inputs along the length meeting a third input (``f(A) + g(B) == h(C)``),
``assume(A + B == C)``, ``assume(H + W <= 1000)``, ``assume(H + W == 64)`` (sides of opposite
monotonicity), ``assume(H != W)``, ``assume(H * W <= 4096)``. The valid tuples are exactly: each
symbol X in its projection ``P_X`` and the relation. Each projection is exact (every member takes
part in some valid tuple), computed, never searched:

- ``==`` on a sum: ``F_k(x)`` must lie in ``s_k*c + (sum of the opposite-signed terms' values)
  - (sum of the same-signed ones)``; each term's values are the exact image of its symbol's sizes
  (``_image``), the sums and the difference are computed on the digit tries with a carry
  (``_sums``), and the projection is the preimage of that set;
- ``<=`` (``<``, ``>``, ``>=`` turned into it) on a sum: the others at their extremes, ``s_k*F_k(x)
  <= c - sum_i inf(s_i*F_i)``: a half-line (none when some other side is unbounded the other way);
- on a product of positive terms: ``F_k(x) <= c // prod min F_i``, ``F_k(x) >= ceil(c / prod sup
  F_i)`` (no bound when some other term is unbounded);
- ``!=``: only when every other term has a single value is one value of ``F_k`` excluded.

The smallest solutions are built one symbol at a time: the least size of the first symbol's
projection (then the next ones), the rest fixed at the least size of their projections given the
sizes chosen so far (each projection exact, so every step has one).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._image import ZWindow, by_symbol, image, preimage, shift, steps
from convgraph.solve._pairs import _chain as _pairs_chain
from convgraph.solve._pairs import _from
from convgraph.solve._sets import split_product
from convgraph.solve._sizes import Sizes
from convgraph.solve._sums import TooComplex, add_all, diff_from

#: ``a op b`` with the sides swapped
SWAP = {"==": "==", "!=": "!=", "<=": ">=", ">=": "<=", "<": ">", ">": "<"}


@dataclass(frozen=True)
class Term:
    """``sign * f(name)`` (a sum) or a factor ``f(name)`` (a product, sign +1); f non-decreasing."""

    name: str
    f: Dim
    sign: int = 1


@dataclass(frozen=True)
class RelationCoupling:
    """``sum sign*f op const`` (``kind`` 'sum') or ``prod f op const`` ('product'), op one of
    '==', '<=', '>=', '!='; the valid tuples are exactly each symbol in ``sizes`` and the relation."""

    kind: str
    terms: tuple[Term, ...]
    op: str
    const: int
    sizes: tuple[tuple[str, Sizes], ...]
    smallest: tuple[dict, ...] = ()  # ``examples()``, computed once

    def per_symbol(self) -> dict[str, Sizes]:
        return dict(self.sizes)

    @property
    def empty(self) -> bool:
        return any(s.empty for _, s in self.sizes)

    @property
    def sides(self) -> tuple[Dim, str, Dim]:
        """(lhs, op, rhs) of the relation as dims: the positive terms on the left (all of them,
        turned round, when every term is negative)."""
        if self.kind == "product":
            return _prod([t.f for t in self.terms]), self.op, self.const
        pos = _sum([t.f for t in self.terms if t.sign > 0])
        neg = _sum([t.f for t in self.terms if t.sign < 0])
        if all(t.sign < 0 for t in self.terms):
            return neg, SWAP[self.op], -self.const
        return pos, self.op, D.add(neg, self.const)

    @property
    def relation(self) -> str:
        lhs, op, rhs = self.sides
        return f"{D.dim_str(lhs)} {op} {D.dim_str(rhs)}"

    def holds(self, env: Mapping[str, int]) -> bool:
        lhs, op, rhs = self.sides
        return D.compare(D.evaluate(lhs, env), op, D.evaluate(rhs, env))

    def examples(self, want: int = 3) -> tuple[dict, ...]:
        """The smallest solutions by the first symbol, each completed with the least size of every
        other symbol's projection given the sizes chosen before (computed, not searched)."""
        if self.empty:
            return ()
        first, s = self.sizes[0]
        out = []
        for x in s.first(want):
            env = _complete(self, {first: x})
            if env is not None:
                out.append(dict(sorted(env.items())))
        return tuple(out)


def _sum(ds: list[Dim]) -> Dim:
    out: Dim = 0
    for d in ds:
        out = D.add(out, d)
    return out


def _prod(ds: list[Dim]) -> Dim:
    out: Dim = 1
    for d in ds:
        out = D.mul(out, d)
    return out


def _complete(rel: RelationCoupling, env: dict[str, int]) -> dict[str, int] | None:
    """env extended, symbol by symbol, by the least size of each projection given env."""
    env = dict(env)
    for n, _ in rel.sizes:
        if n in env:
            continue
        sizes = _fix(rel, env)[n]
        if sizes.empty:
            return None
        env[n] = sizes.least
    return env if rel.holds(env) else None


def _fix(rel: RelationCoupling, env: Mapping[str, int]) -> dict[str, Sizes]:
    """The projections of the relation on the symbols not in env."""
    known = [t for t in rel.terms if t.name in env]
    rest = tuple(t for t in rel.terms if t.name not in env)
    values = [D.evaluate(t.f, {t.name: env[t.name]}) for t in known]
    if rel.kind == "sum":
        const, op = rel.const - sum(t.sign * v for t, v in zip(known, values)), rel.op
    else:
        const, op = _product_rest(rel.const, rel.op, math.prod(values))
    allowed = {n: s for n, s in rel.sizes if n not in env}
    return _project(rel.kind, rest, op, const, allowed)


def _product_rest(c: int, op: str, known: int) -> tuple[int, str]:
    """``known * P op c`` (known > 0) as ``P op' c'``."""
    if op == "<=":
        return c // known, op
    if op == ">=":
        return -(-c // known), op
    return (c // known, op) if c % known == 0 else (0, op)  # '!=' / '==': P >= 1 is never 0


# --------------------------------------------------------------------------------------------
# Recognising the form
# --------------------------------------------------------------------------------------------


def relation_coupling(lhs: Dim, op: str, rhs: Dim, allowed: Mapping[str, Sizes]) -> RelationCoupling | None:
    """Solve ``lhs op rhs`` exactly when it is a sum of monotone one-symbol chains compared with a
    constant (any op), or a product of such chains, positive on the allowed sizes, compared with a
    constant by ``<=``, ``<``, ``>=``, ``>``, ``!=`` (or ``==`` with a value below 1, which no such
    product reaches); None for any other form."""
    got = _as_sum(lhs, op, rhs) or _as_product(lhs, op, rhs, allowed)
    if got is None:
        return None
    kind, terms, op, const = got
    if kind == "sum" and op == "==" and any(steps(D.lower(t.f), t.name) is None for t in terms):
        return None  # a non-dyadic scale: no exact image
    sets = {t.name: Sizes.lift(allowed[t.name]) for t in terms}
    try:
        sizes = _project(kind, terms, op, const, sets)
        rel = RelationCoupling(kind, terms, op, const, tuple(sorted(sizes.items())))
        return replace(rel, smallest=rel.examples())  # completing them sums again, within the bound
    except TooComplex:
        return None


def _normal(op: str, const: int) -> tuple[str, int, int]:
    """(op', const', sign): ``x op const`` as ``sign*x op' const'`` with op' in ==, !=, <=."""
    if op in ("==", "!=", "<="):
        return op, const, 1
    if op == "<":
        return "<=", const - 1, 1
    if op == ">=":
        return "<=", -const, -1
    return "<=", -const - 1, -1  # '>'


def _as_sum(lhs: Dim, op: str, rhs: Dim) -> tuple[str, tuple[Term, ...], str, int] | None:
    split = by_symbol(lhs, rhs, apart=True)
    if split is None:
        return None
    groups, const = split
    if len(groups) < 2 or op not in SWAP:
        return None
    op, c, flip = _normal(op, -const)
    terms = []
    for n, t in sorted(groups.items()):
        if _chain(t):
            terms.append(Term(n, t, flip))
        elif _chain(D.mul(t, -1)):
            terms.append(Term(n, D.mul(t, -1), -flip))
        else:
            return None
    if all(t.sign < 0 for t in terms) and op in ("==", "!="):  # the positive terms on the left
        terms, c = [replace(t, sign=1) for t in terms], -c
    return "sum", tuple(terms), op, c


def _as_product(lhs: Dim, op: str, rhs: Dim, allowed: Mapping[str, Sizes]
                ) -> tuple[str, tuple[Term, ...], str, int] | None:
    if D.is_const(lhs):
        lhs, rhs, op = rhs, lhs, SWAP[op]
    c = D.as_int(rhs)
    split = split_product(lhs) if c is not None else None
    if split is None or c is None:
        return None
    k, groups = split
    if k <= 0 or len(groups) < 2 or (op == "==" and c % k == 0 and c // k >= 1):
        return None  # an equality with a positive quotient is product_coupling's (its divisors)
    for n, f in groups.items():
        s = Sizes.lift(allowed[n])
        if not _chain(f) or (not s.empty and D.evaluate(f, {n: s.least}) < 1):
            return None
    op, c = {"<": ("<=", c - 1), ">": (">=", c + 1)}.get(op, (op, c))
    c, op = _product_rest(c, op, k)
    return "product", tuple(Term(n, f) for n, f in sorted(groups.items())), op, c


def _chain(d: Dim) -> bool:
    """A non-decreasing one-chain term (``_pairs``' chain) that grows with its symbol."""
    return _pairs_chain(d) and isinstance(d, D.QA) and d.m > 0


# --------------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------------


def _project(kind: str, terms: tuple[Term, ...], op: str, const: int, sets: Mapping[str, Sizes]
             ) -> dict[str, Sizes]:
    if any(sets[t.name].empty for t in terms):
        return {t.name: Sizes.none() for t in terms}
    if kind == "product":
        return {t.name: _product_side(t, terms, op, const, sets) for t in terms}
    if op == "==":
        return _sum_equal(terms, const, sets)
    return {t.name: _sum_side(t, terms, op, const, sets) for t in terms}


def _lo(t: Term, s: Sizes) -> int:
    return D.evaluate(t.f, {t.name: s.least})


def _hi(t: Term, s: Sizes) -> int | None:
    """The largest value of t.f on s (None: unbounded)."""
    if not s.finite:
        return None
    top = s.windows[-1][1]
    assert top is not None
    return D.evaluate(t.f, {t.name: top})


def _at_most(t: Term, s: Sizes, c: int) -> Sizes:
    """``{x in s : f(x) <= c}``"""
    x = D.min_at_least(t.f, c + 1, t.name)
    return s if x is None else s & Sizes.interval(1, x - 1)


def _at_least(t: Term, s: Sizes, c: int) -> Sizes:
    """``{x in s : f(x) >= c}``"""
    return s & _from(t.f, t.name, c)


def _except(t: Term, s: Sizes, c: int) -> Sizes:
    """``{x in s : f(x) != c}``"""
    return s - (_at_least(t, s, c) & _at_most(t, s, c))


def _sum_side(t: Term, terms: tuple[Term, ...], op: str, c: int, sets: Mapping[str, Sizes]) -> Sizes:
    """``<=`` and ``!=`` on a sum: the other terms at their extremes / their single values."""
    others = [o for o in terms if o is not t]
    s = sets[t.name]
    if op == "!=":
        vals = [(_lo(o, sets[o.name]), _hi(o, sets[o.name])) for o in others]
        if any(a != b for a, b in vals):
            return s
        rest = c - sum(o.sign * a for o, (a, _) in zip(others, vals))
        return _except(t, s, rest * t.sign)
    bound = c
    for o in others:
        so = sets[o.name]
        low = _lo(o, so) if o.sign > 0 else _hi(o, so)
        if low is None:  # -sup of an unbounded term: no bound at all
            return s
        bound -= o.sign * low
    return _at_most(t, s, bound) if t.sign > 0 else _at_least(t, s, -bound)


def _product_side(t: Term, terms: tuple[Term, ...], op: str, c: int, sets: Mapping[str, Sizes]) -> Sizes:
    others = [o for o in terms if o is not t]
    s = sets[t.name]
    if op == "==":  # only with a quotient below 1 here (a product of positive terms never reaches it)
        return Sizes.none()
    lows = [_lo(o, sets[o.name]) for o in others]
    highs = [_hi(o, sets[o.name]) for o in others]
    if op == "<=":
        return _at_most(t, s, c // math.prod(lows))
    if op == ">=":
        if any(h is None for h in highs):
            return s
        return _at_least(t, s, -(-c // math.prod(h for h in highs if h is not None)))
    if lows != highs:  # '!=': some other factor takes two values
        return s
    rest = math.prod(lows)
    return _except(t, s, c // rest) if c % rest == 0 else s


def _values(t: Term, s: Sizes) -> list[ZWindow]:
    """``{f(x) : x in s}`` as windows over the integers (exact: ``_image`` on a positive shift)."""
    k = max(0, 1 - _lo(t, s))
    img = image(s, D.add(t.f, k), t.name)
    if img is None:
        raise ValueError(f"no exact image of {D.dim_str(t.f)}")
    return [shift(w, -k) for w in img.windows]


def _sum_equal(terms: tuple[Term, ...], c: int, sets: Mapping[str, Sizes]) -> dict[str, Sizes]:
    """``sum sign*f == c``: f_k(x) in sign_k*c + (sum of opposite terms) - (sum of same-signed)."""
    vals = {t.name: _values(t, sets[t.name]) for t in terms}
    out = {}
    for t in terms:
        same = [vals[o.name] for o in terms if o is not t and o.sign == t.sign]
        opp = [vals[o.name] for o in terms if o is not t and o.sign != t.sign]
        plus = [shift(w, t.sign * c) for w in add_all(opp)]
        low = _lo(t, sets[t.name])
        target = diff_from(plus, add_all(same), low)
        k = max(0, 1 - low)
        pos = Sizes.make([shift(w, k) for w in target])
        pre = preimage(pos, D.add(t.f, k), t.name)
        if pre is None:
            raise ValueError(f"no exact preimage of {D.dim_str(t.f)}")
        out[t.name] = pre & sets[t.name]
    return out
