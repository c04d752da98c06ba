"""Images and preimages of size sets under monotone quasi-affine maps: ``{f(a) : a in s}`` and
``{a : f(a) in s}``, exact.

A non-decreasing one-chain dim ``f = m*base + n`` (``base`` the symbol or ``floor(q/k)`` of such a
chain) is a composition of primitive steps, each applied to windows ``(lo, hi, trie)`` over the
integers (a window's members are the trie's members in ``[lo, hi]``):

- ``x + c``: the window shifts and the trie with it (``restrict(t, 1, -c)``);
- ``p*x`` (p prime): the window scales and the trie becomes its multiples: the node
  ``(p: t, no, ..., no)``, the inverse of ``restrict(., p, 0)``;
- ``floor(x/p)`` (p prime): the window maps onto ``[floor(lo/p), floor(hi/p)]`` (f is monotone);
  inside, z is an image iff some ``p*z + r`` (r < p) is in the trie: the OR over r of
  ``restrict(t, p, r)``; the two boundary fibres, cut by the window's ends, are decided exactly
  with ``next_member`` / ``prev_member``.

The preimage runs the steps backwards, each exact on windows and tries alike: ``x + c`` pulls
back by ``restrict(t, 1, c)``, ``p*x`` by ``restrict(t, p, 0)`` on ``[ceil(lo/p), floor(hi/p)]``,
and ``floor(x/p)`` by a new lowest digit ``(p: t, t, ..., t)`` on ``[p*lo, p*hi + p - 1]``.

No step enumerates a period: each costs O(p * trie size), so periods of 2**40 are cheap.
"""
from __future__ import annotations

from functools import reduce

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.solve._sizes import Sizes
from convgraph.solve._tree import FALSE, TRUE, apply, member, mk, next_member, prev_member, prime_factors, restrict

#: a window over the integers: (lo, hi or None for unbounded, trie)
ZWindow = tuple[int, int | None, int]
#: a primitive step: ('add', c) | ('mul', p) | ('div', p), p prime
Step = tuple[str, int]


def image(s: Sizes, f: Dim, name: str) -> Sizes | None:
    """``{f(a) : a in s} & {y >= 1}`` for f a non-decreasing one-chain dim of ``name`` (or a
    constant); None when f is not of that form.

    >>> from convgraph import dims as D
    >>> image(Sizes.interval(1, 10), D.floordiv(D.add(D.sym("A"), 1), 2), "A").first(9)
    [1, 2, 3, 4, 5]
    """
    f = D.lower(f)
    if isinstance(f, int):
        return Sizes.of([f]) if not s.empty else Sizes.none()
    chain = steps(f, name)
    if chain is None:
        return None
    windows: list[ZWindow] = list(s.windows)
    for step in chain:
        windows = _union([w for win in windows for w in _STEP[step[0]](win, step[1])])
    return Sizes.make(windows)


def preimage(s: Sizes, f: Dim, name: str) -> Sizes | None:
    """``{a >= 1 : f(a) in s}`` for f a non-decreasing one-chain dim of ``name`` (or a constant);
    None when f is not of that form.

    >>> from convgraph import dims as D
    >>> preimage(Sizes.of([3, 4]), D.floordiv(D.add(D.sym("A"), 1), 2), "A").first(9)
    [5, 6, 7, 8]
    """
    f = D.lower(f)
    if isinstance(f, int):
        return Sizes.all() if f in s else Sizes.none()
    chain = steps(f, name)
    if chain is None:
        return None
    windows: list[ZWindow] = list(s.windows)
    for op, c in reversed(chain):
        windows = [w for win in windows for w in _PRE[op](win, c)]
    return Sizes.make(windows)


def steps(f: Dim, name: str) -> list[Step] | None:
    """f as primitive steps applied to ``name`` in order; None when f is not a non-decreasing
    chain of floors, positive scales and shifts of ``name`` alone."""
    if not isinstance(f, D.QA) or f.base is None or f.m < 0:
        return None
    b = f.base
    if isinstance(b, D.Var):
        inner: list[Step] | None = [] if b.name == name else None
    elif isinstance(b, D.FloorDiv):
        inner = steps(b.arg, name)
        inner = None if inner is None else inner + [("div", p) for p in prime_list(b.k)]
    else:  # a non-dyadic scale: no exact image
        return None
    if inner is None:
        return None
    return inner + [("mul", p) for p in prime_list(f.m)] + ([("add", f.n)] if f.n else [])


def prime_list(n: int) -> list[int]:
    """n's prime factors with multiplicity: 12 -> [2, 2, 3]."""
    out = []
    for q in prime_factors(n):
        while n % q == 0:
            out.append(q)
            n //= q
    return out


def shift(w: ZWindow, c: int) -> ZWindow:
    """``{x + c : x in w}``"""
    lo, hi, t = w
    return lo + c, None if hi is None else hi + c, restrict(t, 1, -c)


def _shift(w: ZWindow, c: int) -> list[ZWindow]:
    return [shift(w, c)]


def _scale(w: ZWindow, p: int) -> list[ZWindow]:
    """{p*x}: the multiples of p whose quotient is in t"""
    lo, hi, t = w
    return [(p * lo, None if hi is None else p * hi, mk(p, (t,) + (FALSE,) * (p - 1)))]


def _floor(w: ZWindow, p: int) -> list[ZWindow]:
    """{floor(x/p)}: the OR of the p residue restrictions inside, the cut fibres decided exactly."""
    lo, hi, t = w
    z0, z1 = lo // p, None if hi is None else hi // p
    first = next_member(t, lo)
    in0 = first is not None and first <= (p * z0 + p - 1 if hi is None else min(hi, p * z0 + p - 1))
    if z1 == z0:
        return [(z0, z0, TRUE)] if in0 else []
    inner = reduce(lambda a, b: apply("or", a, b), (restrict(t, p, r) for r in range(p)))
    out = [*_edge(z0, in0, inner), (z0 + 1, None if z1 is None else z1 - 1, inner)]
    if z1 is not None and hi is not None:
        last = prev_member(t, hi)
        out += _edge(z1, last is not None and last >= p * z1, inner)
    return out


def _edge(z: int, inside: bool, inner: int) -> list[ZWindow]:
    """The boundary point z as its own window (absorbed by ``_union`` when inner agrees)."""
    return [(z, z, TRUE if inside else FALSE)] if inside != member(inner, z) else [(z, z, inner)]


_STEP = {"add": _shift, "mul": _scale, "div": _floor}


def _pre_shift(w: ZWindow, c: int) -> list[ZWindow]:
    """{x : x + c in w}"""
    return [shift(w, -c)]


def _pre_scale(w: ZWindow, p: int) -> list[ZWindow]:
    """{x : p*x in w}"""
    lo, hi, t = w
    a, b = -(-lo // p), None if hi is None else hi // p
    return [] if b is not None and a > b else [(a, b, restrict(t, p, 0))]


def _pre_floor(w: ZWindow, p: int) -> list[ZWindow]:
    """{x : floor(x/p) in w}: every residue of a new lowest digit leads to t"""
    lo, hi, t = w
    return [(p * lo, None if hi is None else p * hi + p - 1, mk(p, (t,) * p))]


_PRE = {"add": _pre_shift, "mul": _pre_scale, "div": _pre_floor}


def _union(windows: list[ZWindow]) -> list[ZWindow]:
    """Disjoint sorted windows for the union of possibly overlapping ones; neighbours with the
    same trie, or a point that agrees with its neighbour's trie, merge."""
    cuts = sorted({w[0] for w in windows} | {w[1] + 1 for w in windows if w[1] is not None})
    out: list[list] = []
    for i, lo in enumerate(cuts):
        hi = cuts[i + 1] - 1 if i + 1 < len(cuts) else None
        cover = [t for a, b, t in windows if a <= lo and (b is None or lo <= b)]
        if not cover:
            continue
        t = reduce(lambda a, b: apply("or", a, b), cover)
        _append(out, [lo, hi, t])
    return [(lo, hi, t) for lo, hi, t in out if t != FALSE]


def _append(out: list[list], w: list) -> None:
    """Append w, merging it into the last window when they are adjacent and agree."""
    if out and out[-1][1] is not None and out[-1][1] + 1 == w[0]:
        last = out[-1]
        if last[2] == w[2] or (w[1] == w[0] and member(w[2], w[0]) == member(last[2], w[0])):
            last[1] = w[1]
            return
        if last[1] == last[0] and member(last[2], last[0]) == member(w[2], last[0]):
            last[1], last[2] = w[1], w[2]
            return
    out.append(w)


def by_symbol(lhs: Dim, rhs: Dim, apart: bool = False) -> tuple[dict[str, Dim], int] | None:
    """``lhs - rhs`` as a sum of one-symbol terms (symbol -> its term) plus a constant; None when a
    term involves several symbols. ``apart``: each term's own constant moves to the constant too."""
    diff = D.add(lhs, D.mul(rhs, -1))
    parts = list(diff.args) if isinstance(diff, D.Combo) and diff.op == "add" else [diff]
    groups: dict[str, Dim] = {}
    const = 0
    for t in parts:
        syms = D.symbols(t)
        if not syms:
            const += D.evaluate(t, {})
            continue
        if len(syms) > 1:
            return None
        (n,) = syms
        if apart and isinstance(t, D.QA) and t.n:  # the constant apart: f(A) + n
            const, t = const + t.n, D.add(t, -t.n)
        groups[n] = D.add(groups.get(n, 0), t)
    return groups, const
