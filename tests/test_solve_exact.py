"""The exact set algebra (convgraph.solve._tree, _sizes, _conditions) and the solver built on it, against brute force.

The oracle is ``test_solve.evaluate_graph``: every value's shape at concrete sizes, layer by layer,
from PyTorch's formulas (reference/conv-semantics.md), independent of convgraph's dim algebra.
Sets are compared with it on every size 1..20,000 and at random sizes up to 2**40 (multiples of
the period and their neighbours included), for random deep graphs with strides 2 and 3, skips,
crops, upsampling and transposed convs.
"""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_solve import B, check_fixes, evaluate_graph, exact_pred_for, layers_pred, runs_pred

import convgraph as cg
from convgraph import dims as D
from convgraph.dims import EPSet
from convgraph.errors import LayerConfigError
from convgraph.solve import _conditions as XC
from convgraph.solve import _tree as X
from convgraph.solve import solve
from convgraph.solve._report import describe_set
from convgraph.solve._sizes import Sizes

BIG = 1 << 40
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------------------------
# Tries against Python sets
# --------------------------------------------------------------------------------------------


@st.composite
def residue_sets(draw):
    m = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 27, 36, 48, 72]))
    res = draw(st.sets(st.integers(0, m - 1)))
    return frozenset(res), m


def _members(t: int, span: int) -> set[int]:
    return {y for y in range(-span, span) if X.member(t, y)}


@settings(max_examples=150, **SETTINGS)
@given(residue_sets(), residue_sets(), st.sampled_from(["and", "or", "xor", "minus"]))
def test_trie_algebra_equals_sets(a, b, op):
    (ra, ma), (rb, mb) = a, b
    ta, tb = X.from_residues(ra, ma), X.from_residues(rb, mb)
    span = math.lcm(ma, mb) * 2
    sa = {y for y in range(-span, span) if y % ma in ra}
    sb = {y for y in range(-span, span) if y % mb in rb}
    want = {"and": sa & sb, "or": sa | sb, "xor": sa ^ sb, "minus": sa - sb}[op]
    assert _members(X.apply(op, ta, tb), span) == want


@settings(max_examples=100, **SETTINGS)
@given(residue_sets(), st.integers(-500, 500), st.integers(1, 12), st.integers(0, 30))
def test_trie_search_and_period(a, lo, m, c):
    res, mod = a
    t = X.from_residues(res, mod)
    members = sorted(y for y in range(lo - 3 * mod, lo + 3 * mod + 1) if y % mod in res)
    nxt = next((y for y in members if y >= lo), None)
    prv = next((y for y in reversed(members) if y <= lo), None)
    assert X.next_member(t, lo) == nxt and X.prev_member(t, lo) == prv
    minimal = next(p for p in range(1, mod + 1) if mod % p == 0 and
                   all((y % mod in res) == ((y + p) % mod in res) for y in range(mod)))
    assert X.period(t) == (minimal if res and len(res) < mod else 1)
    r = X.restrict(t, m, c)
    assert all(X.member(r, w) == ((m * w + c) % mod in res) for w in range(-40, 40))


def test_huge_residue_class_is_small():
    t = X.residue_class(12345, BIG)
    assert X.member(t, 12345 + 7 * BIG) and not X.member(t, 12346)
    assert X.period(t) == BIG and X.classes(t) == [(12345, BIG)]
    s = Sizes.periodic(t)
    assert s.min == 12345 and s.near(3 * BIG) == (2 * BIG + 12345, 3 * BIG + 12345)
    assert describe_set(s, "H") == "H >= 12345, H % 2**40 == 12345"


# --------------------------------------------------------------------------------------------
# Sizes against EPSet
# --------------------------------------------------------------------------------------------


@st.composite
def epsets(draw):
    res, m = draw(residue_sets())
    start = draw(st.integers(1, 40))
    exc = draw(st.sets(st.integers(1, start - 1))) if start > 1 else set()
    return EPSet(start, m, res, frozenset(exc))


@settings(max_examples=150, **SETTINGS)
@given(epsets(), epsets())
def test_sizes_agree_with_epset(a, b):
    sa, sb = Sizes.lift(a), Sizes.lift(b)
    xs = range(1, 400)
    assert all((x in sa) == (x in a) for x in xs)
    for got, want in ((sa & sb, a & b), (sa | sb, a | b)):
        assert all((x in got) == (x in want) for x in xs)
        assert got == want and got.empty == want.empty and got.min == want.min
        assert got.first(7) == want.first(7) and got.near(333) == want.near(333)
        if not got.finite:
            assert got.modulus == want.normalized().modulus and got.residues == want.normalized().residues
    assert (sa - sb) == a.combine(b, lambda p, q: p and not q)


def test_long_residue_lists_print_as_ranges():
    s = Sizes.classes_of(range(64), 256, 256)
    assert describe_set(s, "H") == "H >= 256, H % 256 in {0..63}"
    half = Sizes.periodic(X.apply("and", X.negate(X.residue_class(0, 2)), X.TRUE))  # odd sizes
    assert describe_set(half & Sizes.all(3), "H") == "H >= 3, H % 2 == 1"
    top_bit = D.add(D.floordiv(D.sym(XC._X), 1 << 39), D.mul(D.floordiv(D.sym(XC._X), 1 << 40), -2))
    big = Sizes.periodic(XC.periodic_trie(D.lower(D.add(top_bit, -1)), "=="))  # half of 2**40 residues
    assert describe_set(big, "H") == "H >= 549755813888, H % 2**40 in {549755813888..1099511627775}"
    assert describe_set(Sizes.classes_of([0, 1, 2, 3], 16, 16), "L") == "L >= 16, L % 16 in {0, 1, 2, 3}"


# --------------------------------------------------------------------------------------------
# One condition: residue lifting against evaluation, far past the period
# --------------------------------------------------------------------------------------------


@st.composite
def chains(draw):
    """A conv-family dim of x: floors by products of 2 and 3, multiplications (upsampling)."""
    d = D.sym("x")
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["down", "down", "up", "shift"]))
        if kind == "down":
            d = D.floordiv(D.add(d, draw(st.integers(-3, 3))), draw(st.sampled_from([2, 3, 4, 6, 9])))
        elif kind == "up":
            d = D.add(D.mul(d, draw(st.sampled_from([2, 3]))), draw(st.integers(-2, 2)))
        else:
            d = D.add(d, draw(st.integers(-4, 4)))
    return d


def _probe_sizes(s: Sizes, rng: random.Random) -> list[int]:
    p = s.modulus if not s.finite else 1
    xs = [rng.randrange(1, BIG) for _ in range(30)]
    for k in (1, 2, 3, rng.randrange(1, 1 << 20), BIG // max(p, 1)):
        xs += [k * p - 1, k * p, k * p + 1]
    return [x for x in xs if x >= 1]


@settings(max_examples=120, **SETTINGS)
@given(chains(), st.sampled_from(["==", ">=", "<=", "!=", ">", "<"]), chains(), st.integers(-3, 3),
       st.randoms(use_true_random=False))
def test_condition_sets_equal_evaluation(a, op, b, k, rng):
    got = XC.condition_sizes(a, op, D.add(b, k), "x")
    assume(got is not None)
    f = lambda x: D.compare(D.evaluate(a, {"x": x}), op, D.evaluate(b, {"x": x}) + k)  # noqa: E731
    assert {x for x in range(1, 3000) if x in got} == {x for x in range(1, 3000) if f(x)}
    for x in _probe_sizes(got, rng):
        assert (x in got) == f(x), x


# --------------------------------------------------------------------------------------------
# Random deep graphs with strides 2 and 3
# --------------------------------------------------------------------------------------------

C = 2


@st.composite
def deep_graphs(draw):
    b = B()
    x = b.input("x", 1, C, "L")

    def down(src):
        s = draw(st.sampled_from([2, 3]))
        if draw(st.booleans()):
            k = draw(st.sampled_from([s, s, s + 1]))
            return b.layer("Conv1d", src, C, C, k, stride=s, padding=draw(st.integers(0, k // 2))), s
        return b.layer("MaxPool1d", src, s, ceil_mode=draw(st.booleans())), s

    def up(src, s):
        if draw(st.booleans()):
            return b.layer("ConvTranspose1d", src, C, C, s, stride=s, output_padding=draw(st.integers(0, s - 1)))
        return b.layer("Upsample", src, scale_factor=float(s))

    def level(src, depth):
        if draw(st.booleans()):  # mostly size-preserving, so that most graphs have valid sizes
            k = draw(st.sampled_from([1, 3]))
            src = b.layer("Conv1d", src, C, C, k, padding=draw(st.sampled_from([k // 2, k // 2, 0])))
        if depth == 0:
            return src
        d, s = down(src)
        u = up(level(d, depth - 1), s)
        op = draw(st.sampled_from(["cat", "add", "crop", "crop", "none"]))
        if op == "crop":
            src = b.merge("crop", src, u)
        if op in ("cat", "crop"):
            return b.layer("Conv1d", b.merge("cat", src, u), 2 * C, C, 1)
        return u if op == "none" else b.merge(op, src, u)

    try:
        level(x, draw(st.integers(1, 5)))
        g = b.graph()
        g.infer()
    except (LayerConfigError, cg.ConvGraphError):
        assume(False)
    return g


def _brute_sets(graph, xs):
    runs, exact, layers = set(), set(), set()
    ex = exact_pred_for(graph, "L")
    for x in xs:
        f = evaluate_graph(graph, {"L": x})[1]
        runs |= {x} if runs_pred(f) else set()
        exact |= {x} if ex(f) else set()
        layers |= {x} if layers_pred(f) else set()
    return runs, exact, layers


@pytest.mark.slow
@settings(max_examples=25, **SETTINGS)
@given(deep_graphs(), st.randoms(use_true_random=False))
def test_deep_graphs_equal_brute_force(graph, rng):
    sol = solve(graph)
    s = sol.symbols["L"]
    assert s.decided and s.exact_decided
    limit = 20_000
    runs, exact, layers = _brute_sets(graph, range(1, limit + 1))
    assert {x for x in range(1, limit + 1) if x in s.runs} == runs
    assert {x for x in range(1, limit + 1) if x in s.exact} == exact
    assert {x for x in range(1, limit + 1) if x in s.layers} == layers
    probes = _probe_sizes(s.runs, rng) + _probe_sizes(s.exact, rng)
    r, e, l_ = _brute_sets(graph, probes)
    assert all((x in s.runs) == (x in r) and (x in s.exact) == (x in e) and (x in s.layers) == (x in l_)
               for x in probes)


@settings(max_examples=12, **SETTINGS)
@given(deep_graphs())
def test_deep_graph_fixes_verified(graph):
    check_fixes(solve(graph), 150)


def _nest(strides):
    b = B()
    x = b.input("x", 1, C, "L")
    skips = []
    for s in strides:
        skips.append(x)
        x = b.layer("Conv1d", x, C, C, s + 1, stride=s, padding=s // 2)
    for s, skip in zip(reversed(strides), reversed(skips)):
        x = b.layer("ConvTranspose1d", x, C, C, s, stride=s)
        x = b.layer("Conv1d", b.merge("cat", skip, x), 2 * C, C, 1)
    return b.graph()


def test_period_2_40_is_exact():
    graph = _nest([2] * 40)
    sol = solve(graph)
    s = sol.symbols["L"]
    assert s.decided and s.runs.modulus == BIG
    assert sol.describe_runs("L") == "L >= 1099511627776, L % 2**40 == 0"
    for x in (BIG - 1, BIG, BIG + 1, 3 * BIG - 1, 3 * BIG, 3 * BIG + 1, 5 * BIG + 2):
        assert (x in s.runs) == runs_pred(evaluate_graph(graph, {"L": x})[1]), x


def test_mixed_period_2_12_3_12_is_exact():
    graph = _nest([2, 3] * 12)
    sol = solve(graph)
    s = sol.symbols["L"]
    p = 6 ** 12
    assert s.runs.modulus == p
    rng = random.Random(7)
    for x in [p - 1, p, p + 1, 7 * p - 1, 7 * p, 7 * p + 1] + [rng.randrange(1, 1 << 44) for _ in range(20)]:
        assert (x in s.runs) == runs_pred(evaluate_graph(graph, {"L": x})[1]), x


def test_no_valid_size_is_never_claimed_for_a_huge_period():
    """Period 93,312 = 2**7 * 3**6 (where the enumeration used to give up): runs at its multiples."""
    graph = _nest([2, 3] * 6 + [2])
    s = solve(graph).symbols["L"]
    assert s.runs.min == 93312 and s.runs.modulus == 93312
    assert runs_pred(evaluate_graph(graph, {"L": 93312})[1])


def test_sizes_pickle_into_a_fresh_process():
    import pickle
    import subprocess
    import sys

    s = Sizes.classes_of([1, 5, 7], 12, 30) | Sizes.of([2, 3])
    code = "import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); print(s.first(6), s.start)"
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(s), capture_output=True, check=True)
    assert out.stdout.decode().strip() == f"{s.first(6)} {s.start}"


def test_json_of_a_complex_set_is_its_trie():
    sol = solve(_stack_2_3(200))  # period 2**10 * 3**10
    got = sol.to_json()["symbols"]["H"]["exact"]
    s = sol.exact("H")
    assert ("classes" in got) != ("trie" in got)
    if "trie" in got:
        t = X.load((got["trie"]["root"], tuple((p, tuple(ch)) for p, ch in got["trie"]["nodes"])))
        assert all(X.member(t, x) == (x in s) for x in range(s.start, s.start + 5000))


def _stack_2_3(n):
    b = B()
    x = b.input("x", 1, C, "H")
    for i in range(n):
        s = (2 if (i // 10) % 2 == 0 else 3) if i % 10 == 9 else 1
        x = b.layer("Conv1d", x, C, C, 3, stride=s, padding=1)
    return b.graph()


# --------------------------------------------------------------------------------------------
# Couplings: a cat of two inputs, assume(W == H)
# --------------------------------------------------------------------------------------------


@settings(max_examples=20, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(1, 4), st.integers(0, 1)), min_size=1, max_size=6),
       )
@pytest.mark.slow
def test_cat_of_two_inputs_is_exact(layers):
    b = B()
    x = b.input("x", 1, C, "L")
    y = b.input("y", 1, C, "K")
    for s, k, p in layers:
        try:
            x = b.layer("Conv1d", x, C, C, k, stride=s, padding=min(p, k // 2))
        except LayerConfigError:
            assume(False)
    b.merge("cat", x, y)
    graph = b.graph()
    sol = solve(graph)
    (cp,) = sol.couplings
    assert cp.bare is not None
    want = set()
    for lv in range(1, 3000):
        vals, _fails = evaluate_graph(graph, {"L": lv, "K": 1})
        kv = vals[x][2]
        if kv >= 1 and runs_pred(evaluate_graph(graph, {"L": lv, "K": kv})[1]):
            want.add(lv)
    assert {lv for lv in range(1, 3000) if lv in sol.runs("L")} == want
    assert [e["L"] for e in cp.examples] == sorted(want)[:3]
    assert all(runs_pred(evaluate_graph(graph, e)[1]) for e in cp.examples)
    assert (sol.merges[0].verdict == "never") == (not want)


def test_assume_w_equals_h_is_exact():
    from convgraph.errors import Loc
    from convgraph.ir import Assume

    b = B()
    x = b.input("x", 1, C, "H", "W")
    x = b.layer("Conv2d", x, C, C, (3, 2), stride=(2, 3), padding=(1, 0))
    x = b.layer("MaxPool2d", x, (2, 3))
    b.assumes.append(Assume(Loc("<test>", 9, 1), "W == H", ((D.sym("W"), "==", D.sym("H")),)))
    graph = b.graph()
    sol = solve(graph)
    both = {h for h in range(1, 2000) if runs_pred(evaluate_graph(graph, {"H": h, "W": h})[1])}
    assert {h for h in range(1, 2000) if h in sol.runs("H")} == both
    assert {w for w in range(1, 2000) if w in sol.runs("W")} == both
