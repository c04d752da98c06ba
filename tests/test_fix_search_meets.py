"""The fix search's set shortcuts against the plain computation: ``intersect_all`` without a bound
above 1 starts from its first set (the same set, in the same canonical windows, as meeting it
with ``x >= 1``); ``Sizes.all`` returns one object per start; the (symbol, denominators) of a
shape's dims are read per dim object; ``_fixes._ends``' prefix meets are ``prefix_layers``'."""
from __future__ import annotations

import random
from functools import reduce

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fix_search_reference import unet_like

from convgraph import dims as D
from convgraph.ir import Graph
from convgraph.solve import _fixes, solve
from convgraph.solve._conditions import denominators
from convgraph.solve._incremental import prefix_layers, solved_radix
from convgraph.solve._sets import _shape_denominators, condition_set, intersect_all
from convgraph.solve._sizes import TRUE, Sizes


def _sets(seed: int, n: int = 40) -> list[Sizes]:
    h = D.sym("H")
    rng = random.Random(seed)
    out: list[Sizes] = []
    for _ in range(n):
        k, r = rng.choice([2, 3, 4, 6, 8, 16]), rng.randrange(8)
        out.append(rng.choice([
            condition_set(h % k, "==", r % k, "H").sizes,
            condition_set(h // k, ">=", r + 1, "H").sizes,
            condition_set(h % k, "<=", r % k, "H").sizes & Sizes.interval(r + 2, 30 + 7 * r),
            Sizes.all(r + 1),
            Sizes.of(rng.sample(range(1, 60), 5)),
        ]))
    for _ in range(n):
        a, b = rng.sample(out, 2)
        out.append(rng.choice([a & b, a | b, a - b]))
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4))
def test_intersect_all_is_the_plain_meet(seed: int, k: int) -> None:
    sets = _sets(seed, 12)
    rng = random.Random(seed + 1)
    for _ in range(10):
        pick = rng.sample(sets, k)
        plain = reduce(lambda a, b: a & b, pick, Sizes.make([(1, None, TRUE)]))
        assert intersect_all(pick).windows == plain.windows


def test_half_lines_are_the_made_ones() -> None:
    for start in [1, 2, 3, 17, 256, 1 << 20]:
        assert Sizes.all(start).windows == Sizes.make([(start, None, TRUE)]).windows
        assert Sizes.all(start) is Sizes.all(start)


def test_shape_denominators_per_dim() -> None:
    h, w = D.sym("H"), D.sym("W")
    dims = [1, 7, h, w, h // 2, (h + 1) // 4, h + w, (h // 3 + 5) // 2, D.add(D.mul(w, 3), 2)]
    rng = random.Random(3)
    for _ in range(50):
        shape = tuple(rng.choice(dims) for _ in range(rng.randint(1, 5)))
        plain = tuple((next(iter(D.symbols(d))), denominators(d)) for d in shape if len(D.symbols(d)) == 1)
        assert _shape_denominators(shape) == plain


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(unet_like())
def test_ends_prefix_is_prefix_layers(graph: Graph) -> None:
    sol = solve(graph)
    for n in sol.result.sym_names:
        rx = solved_radix(sol).get(n, ())
        pre, _ = _fixes._ends(sol, n, _fixes.LAYER_KINDS, rx)
        sets = [condition_set(c.lhs, c.op, c.rhs, n, rx).sizes if c.kind in _fixes.LAYER_KINDS and c.symbols == {n}
                else None for c in sol.result.constraints]
        assert [x.windows for x in pre] == [x.windows for x in _fixes._running(sets)]
        assert [x.windows for x in pre] == [x.windows for x, _ in prefix_layers(sol.result, n, rx)]
