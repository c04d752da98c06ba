"""Conditions that relate several symbols (couplings), solved and narrowed together.

Each coupling is solved exactly where it has an exact form: a Linear after Flatten
(``_sets.product_coupling``), a bound from below on a product (``_products``), ``f(A) op g(B)``
through monotone layers (``_pairs``), a sum of monotone terms compared with a constant (three
symbols, opposite monotonicity, ``!=``) or a bound or ``!=`` on a product of them
(``_relations``); else (a term that is not monotone, ``A % 4``; a non-dyadic scale inside a sum
equality; sums of large coprime periods past ``_sums.STATES``) its smallest solutions come from
a bounded search over the first ``PAIR_SPAN`` valid sizes of each symbol, said to be one. The solver narrows every
symbol's set by the couplings' projections in sweeps until nothing changes (``narrow``), with the
equalities that fix a symbol eliminating it (``_joint``).
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

from convgraph.shapes import Constraint, ShapeResult
from convgraph.solve._joint import Link, cycle_symbols, joint_examples, substitutions, unary_sets
from convgraph.solve._pairs import PairCoupling, pair_coupling
from convgraph.solve._products import product_at_least, smallest
from convgraph.solve._relations import RelationCoupling, relation_coupling
from convgraph.solve._sets import PAIR_SPAN, EPSet, ProductCoupling, product_coupling

CYCLE_NOTE = ("the couplings of {} form a cycle: each symbol's set is narrowed by one coupling at a time and may "
              "hold sizes that take part in no valid tuple, and each coupling's smallest solutions are its own "
              "(the valid sizes are exactly those sets together with every coupling's condition)")
ROUNDS_NOTE = ("the couplings of {1} were narrowed {0} rounds without reaching a fixed point: each symbol's "
               "set may hold sizes that take part in no valid tuple (the valid sizes are exactly those sets "
               "together with every coupling's condition)")
#: rounds of narrowing each coupled symbol by its couplings (exact projections on a tree of pairs)
COUPLING_ROUNDS = 8


@dataclass(frozen=True)
class Coupling:
    """A condition that relates several symbols. For a Linear after Flatten (``product``) the
    admissible tuples are exact; for ``f(A) == g(B)`` with f, g monotone (``pair``: a cat of two
    inputs, ``assume(W == H)``) and for a relation on monotone terms (``relation``: a sum of them
    compared with a constant, a bound or ``!=`` on a product) the projections and the relation are
    exact and ``examples`` are the smallest solutions; otherwise (``exact`` False) ``examples``
    come from a bounded search over the first ``PAIR_SPAN`` valid sizes of each symbol."""

    constraint: Constraint
    symbols: tuple[str, ...]
    message: str
    product: ProductCoupling | None = None
    examples: tuple[dict, ...] = ()
    pair: PairCoupling | None = None
    relation: RelationCoupling | None = None

    @property
    def bare(self) -> PairCoupling | None:
        """The former name of ``pair``."""
        return self.pair

    @property
    def exact(self) -> bool:
        """True when the coupling is solved exactly (a product, a monotone pair or a relation)."""
        return self.product is not None or self.pair is not None or self.relation is not None

    @property
    def empty(self) -> bool:
        """True when it is solved exactly and holds for no valid sizes."""
        if self.product is not None:
            return not self.product.tuples
        solved = self.pair or self.relation
        return solved is not None and any(s.empty for s in solved.per_symbol().values())

    def per_symbol(self) -> dict[str, EPSet]:
        """symbol -> its exact projection (empty for a coupling searched, not solved)."""
        solved = self.product or self.pair or self.relation
        return {} if solved is None else dict(solved.per_symbol())


def narrow(res: ShapeResult, runs: dict[str, EPSet], messages: bool = True) -> tuple[list[Coupling], list[str]]:
    """Narrow ``runs`` (in place) by every exact coupling's projections, each solved over the sets
    the ones before it narrowed (sweeps alternately forwards and backwards), and by the conditions
    that equalities with a bare side turn into one-symbol ones (``_joint``), until nothing changes
    (at most ``COUPLING_ROUNDS`` sweeps): then each symbol's set is exactly the sizes that take part
    in a valid tuple, unless a cycle of couplings remains (named in the returned notes). Returns the
    couplings of the last sweep, and the notes. Without ``messages`` the couplings' texts are left
    empty (a verification solve never shows them)."""
    resolved: set[int] = set()
    changed = False
    for i in range(COUPLING_ROUNDS):
        before = dict(runs)
        couplings = _sweep(res, runs, i % 2 == 1, messages)
        subs, used = substitutions(_links(couplings))
        unary, resolved = unary_sets(res.constraints, subs, used)
        for n, st in unary:
            runs[n] = runs[n] & st
        changed = any(runs[n] != before[n] for n in runs)
        if not changed or not _shared(couplings):  # a lone coupling's projections are final at once
            break
    subs, _ = substitutions(_links(couplings))
    couplings = [_jointly(cp, joint_examples(cp.constraint, subs, runs), messages) if id(cp.constraint) in resolved
                 else cp for cp in couplings]
    cyclic = cycle_symbols(_links(couplings), resolved)
    if cyclic:
        return couplings, [CYCLE_NOTE.format(", ".join(cyclic))]
    if changed and _shared(couplings):  # stopped by the round limit, not at a fixed point
        names = sorted({n for cp in couplings for n in cp.symbols})
        return couplings, [ROUNDS_NOTE.format(COUPLING_ROUNDS, ", ".join(names))]
    return couplings, []


def _jointly(cp: Coupling, examples: tuple[dict, ...] | None, messages: bool) -> Coupling:
    """cp with the smallest solutions of it and the equalities that resolved it, together."""
    from convgraph.solve._report import coupling_message

    if examples is None:
        return cp
    out = replace(cp, examples=examples)
    return replace(out, message=coupling_message(out)) if messages else out


def _links(couplings: list[Coupling]) -> list[Link]:
    return [(cp.constraint, cp.pair) for cp in couplings]


def _shared(couplings: list[Coupling]) -> bool:
    """Whether some symbol takes part in two couplings (only then can narrowing propagate)."""
    seen: set[str] = set()
    for cp in couplings:
        if seen & set(cp.symbols):
            return True
        seen |= set(cp.symbols)
    return False


def _sweep(res: ShapeResult, runs: dict[str, EPSet], backwards: bool, messages: bool) -> list[Coupling]:
    """Solve every coupling in turn (in source order, or backwards), each over the sets the ones
    before it have narrowed, narrowing ``runs`` in place; the couplings in source order."""
    cons = [c for c in res.constraints if len(c.symbols) >= 2]
    out: dict[int, Coupling] = {}
    for c in reversed(cons) if backwards else cons:
        cp = out[id(c)] = _coupling(c, runs, messages)
        for n, st in cp.per_symbol().items():
            runs[n] = runs[n] & st
    return [out[id(c)] for c in cons]


def _coupling(c: Constraint, allowed: Mapping[str, EPSet], messages: bool = True) -> Coupling:
    from convgraph.solve._report import coupling_message

    prod = product_coupling(c.lhs, c.rhs, allowed) if c.op == "==" else \
        product_at_least(c.lhs, c.op, c.rhs, allowed)
    pair = pair_coupling(c.lhs, c.op, c.rhs, allowed) if prod is None else None
    rel = relation_coupling(c.lhs, c.op, c.rhs, allowed) if prod is None and pair is None else None
    examples = rel.smallest if rel is not None else \
        _solved_examples(prod, pair) if prod or pair else _pair_examples(c, allowed)
    cp = Coupling(c, tuple(sorted(c.symbols)), "", prod, examples, pair, rel)
    return replace(cp, message=coupling_message(cp)) if messages else cp


def _solved_examples(prod: ProductCoupling | None, pair: PairCoupling | None) -> tuple[dict, ...]:
    """The smallest solutions of an exactly solved coupling (none listed for a product equality:
    its tuples say it all)."""
    if pair is not None:
        return pair.examples()
    return smallest(prod.tuples) if prod is not None and prod.op == ">=" else ()


def _pair_examples(c: Constraint, allowed: Mapping[str, EPSet], want: int = 3) -> tuple[dict, ...]:
    """The first few size tuples (each symbol from its allowed set, smallest first) that satisfy
    a coupling condition that is not a product; a bounded search, stated as such."""
    names = sorted(c.symbols)
    span = PAIR_SPAN if len(names) == 2 else 12
    pools = [allowed[n].first(span) for n in names]
    found = []
    for combo in sorted(itertools.product(*pools), key=lambda t: (sum(t), t)):
        env = dict(zip(names, combo))
        if c.holds(env):
            found.append(env)
            if len(found) == want:
                break
    return tuple(found)
