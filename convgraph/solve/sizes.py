"""Concrete input sizes at which an export is probed (shape inference) and validated (onnxruntime).

Per symbol x, from its exact set of valid sizes (``solve(graph).symbols[x].runs``):

- the smallest valid size;
- sizes in distinct residue classes of P, the period of every dim that depends on x (the product
  of the strides along the way: ``floor((H - 1)/32) + 1`` has P = 32), spread over the classes
  when fewer sizes than classes are asked for;
- a larger size, past two periods.

A symbol whose dims are all affine in it (P = 1, e.g. the batch size N) gets its two smallest
valid sizes: nothing depends on its residue, and large batches only cost time.

Assignments take the i-th candidate of the first symbol with the (i+k)-th of the k-th symbol, so
H != W, and are kept only when every constraint holds (cat/+/crop/Linear couplings, assumes and
expects included: exactly the sizes ``convgraph shapes --at`` accepts). When that leaves too few
(symbols coupled by a Linear after Flatten), the coupling's exact admissible tuples (or the
smallest solutions found of another coupling) fill in. This is the one size picker: export's
probing and check both draw from it; a graph with no valid size gets none.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from convgraph import dims as D
from convgraph.ir import Graph
from convgraph.shapes import ShapeResult, infer
from convgraph.solve._sets import EPSet

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Solution

#: largest period enumerated by residue class
MAX_PERIOD = 1024


def check_sizes(graph: Graph, count: int = 6) -> list[dict[str, int]]:
    """Up to ``count`` valid size assignments (every symbol), the smallest sizes first."""
    res = infer(graph)
    names = list(res.sym_names)
    if not names:
        return [{}]
    sol = _solution(graph)
    if sol.no_valid_size() is not None:
        return []
    sets = {n: s.runs for n, s in sol.symbols.items()}
    per = {n: candidates(sets[n], period(res, n), count) for n in names}
    out: list[dict[str, int]] = []
    for env in _assignments(names, per) if all(per.values()) else ():
        if env not in out and all(c.holds(env) for c in res.constraints):
            out.append(env)
            if len(out) == count:
                return out
    return out + _coupled_sizes(sol, out, count - len(out))


def _assignments(names: list[str], per: dict[str, list[int]]) -> Iterable[dict[str, int]]:
    """First the diagonals (symbol k takes candidate i + k: H != W), then every other combination,
    the smaller indices first."""
    width = max(len(v) for v in per.values())
    yield {n: per[n][0] for n in names}
    for i in range(1, width + len(names)):
        yield {n: per[n][(i + k) % len(per[n])] for k, n in enumerate(names)}
    for idx in sorted(itertools.product(*(range(len(per[n])) for n in names)), key=lambda t: (sum(t), t)):
        yield {n: per[n][j] for n, j in zip(names, idx)}


def period(res: ShapeResult, name: str) -> int:
    """lcm of the periods of every dim depending on ``name`` alone (capped at MAX_PERIOD)."""
    p = 1
    for dims in res.values.values():
        for d in dims:
            if D.symbols(d) == {name}:
                ps = D.period_slope(d)
                if ps is not None:
                    p = math.lcm(p, ps[0])
    return min(p, MAX_PERIOD)


def candidates(valid: EPSet, p: int, count: int) -> list[int]:
    """Smallest valid; one size in each of up to ``count`` residue classes mod p, spread; larger."""
    lo = valid.min
    if lo is None:
        return []
    if p == 1:  # every dim is affine in this symbol (a batch size): two sizes say it all
        return [lo, *_take(valid.iter(lo + 1), 1)]
    out = [lo]
    wanted = sorted({(lo + 1 + round(j * p / count)) % p for j in range(count)}) if p > 1 else []
    for r in wanted:
        x = _first(valid, lo + 1, _in_class(p, r), limit=lo + 4 * p + 8)
        if x is not None and x not in out:
            out.append(x)
    if len(out) == 1:  # every residue class but lo's is invalid: the next sizes
        out += [x for x in _take(valid.iter(lo + 1), 2)]
    for start in (lo + 2 * p + 7, 2 * lo):  # past two periods; at least twice the smallest: early
        big = _first(valid, start, lambda v: True, limit=start + 8 * max(p, valid.modulus))
        if big is not None and big not in out:
            out.insert(min(2, len(out)), big)
    return out


def _in_class(p: int, r: int) -> Callable[[int], bool]:
    return lambda v: v % p == r


def _first(valid: EPSet, start: int, pred: Callable[[int], bool], limit: int) -> int | None:
    for x in valid.iter(start):
        if x > limit:
            return None
        if pred(x):
            return x
    return None


def _take(it: Iterable[int], n: int) -> list[int]:
    out: list[int] = []
    for x in it:
        if len(out) == n:
            break
        out.append(x)
    return out


def _solution(graph: Graph) -> Solution:
    from convgraph.solve._solve import solve

    return solve(graph, tiling=False)


def _coupled_sizes(sol: Solution, have: list[dict[str, int]], want: int) -> list[dict[str, int]]:
    """Assignments from the exact tuples of a Linear coupling (or a coupling's smallest solutions),
    the other symbols at their smallest valid size; only those at which the graph runs."""
    out: list[dict[str, int]] = []
    base = {n: (s.runs.min if s.runs.min is not None else 1) for n, s in sol.symbols.items()}
    for cp in sol.couplings:
        picks = [dict(e) for e in cp.examples]
        if cp.product is not None:
            picks = [{n: st.first(1)[0] for n, st in tup} for tup in cp.product.tuples[:max(want, 0)]]
        for p in picks:
            env = {**base, **p}
            if env not in have and env not in out and sol.valid_at(env):
                out.append(env)
    return out[:max(want, 0)]
