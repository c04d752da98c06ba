"""The fix search's set shortcuts against the plain computation: ``intersect_all`` without a bound
above 1 starts from its first set (the same set, in the same canonical windows, as meeting it
with ``x >= 1``); ``Sizes.all`` returns one object per start; the (symbol, denominators) of a
shape's dims are read per dim object; ``_fixes._ends``' prefix meets are ``prefix_layers``';
``_point._base`` reads its per-condition checks from a table made once per solution;
``_symmetry._swapped`` of a spec with itself skips what cannot differ."""
from __future__ import annotations

import random
from functools import reduce

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fix_search_reference import unet_like

from convgraph import dims as D
from convgraph.ir import Graph
from convgraph.solve import Solution, _fixes, _point, _symmetry, solve
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


def _plain_base(sol: Solution, env: dict[str, int], n: str) -> tuple | None:
    """``_point._base`` condition by condition (``_fails_at_size``), without its per-solution table."""
    _dims, conds, fixed = _point._split(sol, n, env)
    sizes = sol.symbols.get(n)
    inside = sizes is not None and sizes.decided and env[n] in sizes.layers
    verdicts = _point._verdicts(sol) if inside else {}
    if not all(c.holds(env) for c in conds if c.kind == "assume" and not (inside and c.symbols == {n})):
        return None
    failing = {k: list(v) for k, v in fixed.items()}
    for c in conds:
        if c.kind not in ("assume", "expect") and _point._fails_at_size(c, env, n, inside, verdicts):
            failing.setdefault(c.value, []).append(c)
    return failing, tuple(k for k, cs in failing.items() if any(c.kind != "merge" for c in cs))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(unet_like(), st.lists(st.integers(1, 300), min_size=1, max_size=6))
def test_base_is_the_plain_check(graph: Graph, xs: list[int]) -> None:
    sol = solve(graph)
    for n in sol.result.sym_names:
        others = _point._others(sol, n)
        if others is None:
            continue
        for x in xs:
            env = {**others, n: x}
            got = _point._base(sol, env, n)
            plain = _plain_base(sol, env, n)
            assert (got is None) == (plain is None)
            if got is not None and plain is not None:
                assert (got[1], got[2]) == plain


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_own_swap_check_equals_swapping(data: st.DataObject) -> None:
    """``_symmetry._swapped`` of a spec with itself (is the spec its own swap?), in 2-D and 3-D, on
    every pair of axes: the same answer as building the swapped spec."""
    from convgraph.front.catalogue import construct

    nd = data.draw(st.sampled_from([2, 3]))
    kind = data.draw(st.sampled_from(["Conv", "ConvTranspose", "MaxPool"]))

    def tup(lo: int, hi: int) -> tuple[int, ...]:
        return tuple(data.draw(st.integers(lo, hi)) for _ in range(nd))

    if kind == "MaxPool":
        spec = construct(f"MaxPool{nd}d", (tup(2, 3),), {"stride": tup(1, 2), "padding": tup(0, 1)})
    else:
        spec = construct(f"{kind}{nd}d", (2, 2, tup(1, 3)), {"stride": tup(1, 2), "padding": tup(0, 1)})
    for a in range(nd):
        for b in range(nd):
            if a != b:
                assert _symmetry._swapped(spec, spec, a, b) == (_symmetry.swap_spec(spec, a, b) == spec)
