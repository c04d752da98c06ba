"""Several couplings together: eliminating symbols fixed by an equality, and finding cycles.

Each coupling is solved on its own (``_pairs``, ``_sets.product_coupling``) over the sets its
symbols are allowed; the solver narrows every symbol by every coupling's projections until nothing
changes. On a tree of couplings that gives each symbol exactly the sizes that take part in a valid
tuple. Two things close a cycle, and are handled here:

- an equality with a bare side, ``B == f(A)`` (``assume(W == H)``, a cat with an input), fixes B
  by A: every other condition that holds B is rewritten with ``f(A)`` in its place, and one that is
  then a condition on a single symbol is solved exactly as such (``condition_set``). The
  equalities used form a forest (each symbol eliminated at most once, never around a cycle);
- a cycle that remains (three non-bare couplings A-B, B-C, C-A) is only narrowed coupling by
  coupling: ``cycle_symbols`` names its symbols, so the solver can say so.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.shapes import Constraint
from convgraph.solve._conditions import substitute
from convgraph.solve._pairs import PairCoupling
from convgraph.solve._sets import condition_set
from convgraph.solve._sizes import Sizes

#: a coupling as seen here: its constraint, and its exact pair form when it has one
Link = tuple[Constraint, PairCoupling | None]


class _Roots:
    """Union-find over symbol names."""

    def __init__(self) -> None:
        self.up: dict[str, str] = {}

    def root(self, n: str) -> str:
        while self.up.get(n, n) != n:
            n = self.up[n]
        return n

    def join(self, names: Iterable[str]) -> bool:
        """Join the names' groups; False when two of them were already in one group (a cycle)."""
        roots = [self.root(n) for n in names]
        for r in roots:
            self.up[r] = min(roots)
        return len(set(roots)) == len(roots)


def substitutions(links: Sequence[Link]) -> tuple[dict[str, Dim], set[int]]:
    """(symbol -> the dim that fixes it, ids of the constraints used): a forest of equalities
    with a bare side, first come first used."""
    subs: dict[str, Dim] = {}
    used: set[int] = set()
    roots = _Roots()
    for c, pair in links:
        for keep, drop, by in pair.solved_for() if pair is not None else ():
            if drop in subs or roots.root(keep) == roots.root(drop):
                continue
            subs[drop] = by
            used.add(id(c))
            roots.join((keep, drop))
            break
    return subs, used


def resolve(c: Constraint, subs: dict[str, Dim]) -> tuple[Dim, Dim]:
    """c's sides with every eliminated symbol replaced (repeatedly: the forest has no cycle)."""
    lhs, rhs = c.lhs, c.rhs
    for n in sorted((D.symbols(lhs) | D.symbols(rhs)) & subs.keys()):
        by = _fixed(n, subs)
        lhs, rhs = substitute(lhs, n, by), substitute(rhs, n, by)
    return lhs, rhs


def unary_sets(constraints: Iterable[Constraint], subs: dict[str, Dim], used: set[int]
               ) -> tuple[list[tuple[str, Sizes]], set[int]]:
    """For each condition on several symbols that the eliminations turn into a condition on one
    (or none): (symbol, its exact sizes); and the ids of those conditions."""
    out: list[tuple[str, Sizes]] = []
    done: set[int] = set()
    for c in constraints:
        if len(c.symbols) < 2 or id(c) in used:
            continue
        lhs, rhs = resolve(c, subs)
        syms = D.symbols(lhs) | D.symbols(rhs)
        if not syms:  # holds for every tuple, or for none
            done.add(id(c))
            if not D.compare(D.evaluate(lhs, {}), c.op, D.evaluate(rhs, {})):
                out += [(n, Sizes.none()) for n in c.symbols]
        elif len(syms) == 1:
            (n,) = syms
            cs = condition_set(lhs, c.op, rhs, n)
            if cs.exact:
                done.add(id(c))
                out.append((n, Sizes.lift(cs.sizes)))
    return out, done


def cycle_symbols(links: Sequence[Link], resolved: set[int]) -> list[str]:
    """The symbols of the groups in which the couplings not resolved by eliminations close a cycle."""
    roots = _Roots()
    closing = [c for c, _ in links if id(c) not in resolved and not roots.join(sorted(c.symbols))]
    bad = {roots.root(next(iter(c.symbols))) for c in closing}
    names = {n for c, _ in links for n in c.symbols}
    return sorted(n for n in names if roots.root(n) in bad)


def joint_examples(c: Constraint, subs: dict[str, Dim], runs: Mapping[str, Sizes], want: int = 3
                   ) -> tuple[dict, ...] | None:
    """For a condition that the eliminations turn into one on a single symbol n: the smallest valid
    sizes of n, each with the eliminated symbols of c at the values the equalities fix (so every
    one is a solution of c and of those equalities together); None for any other condition."""
    lhs, rhs = resolve(c, subs)
    free = D.symbols(lhs) | D.symbols(rhs)
    if len(free) != 1:
        return None
    (n,) = free
    fixed = {s: _fixed(s, subs) for s in c.symbols if s != n}
    out = []
    for x in runs[n].first(want):
        env = {n: x, **{s: D.evaluate(d, {n: x}) for s, d in fixed.items()}}
        out.append(dict(sorted(env.items())))
    return tuple(out)


def _fixed(s: str, subs: dict[str, Dim]) -> Dim:
    """The dim an eliminated symbol equals, in the symbols that are kept."""
    d: Dim = D.sym(s)
    for _ in range(len(subs) + 1):
        hit = sorted(D.symbols(d) & subs.keys())
        if not hit:
            break
        for m in hit:
            d = substitute(d, m, subs[m])
    return d
