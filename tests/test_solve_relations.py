"""Couplings that are a relation on monotone terms, exact (issue 12, item 2): three symbols in one
condition (a cat along the length meeting a third input: ``f(A) + g(B) == h(C)``), sides of opposite
monotonicity (``assume(H + W == 64)``), bounds and ``!=`` on sums and products.

Oracles: PyTorch's integer size rules (``test_solve_couplings.Layer.out``, checked against torch
there), brute force over boxes of sizes (value sets as Python int bitsets for the sums), and, at
periods of 2**20 .. 2**40, a CRT criterion evaluated at random points.
"""
from __future__ import annotations

import functools
import itertools
import json
import math
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_solve_couplings import SETTINGS, Layer, chains, partner, run

import convgraph as cg
from convgraph import dims as D
from convgraph.cli import main
from convgraph.cli._main import check_at
from convgraph.errors import ConvGraphError
from convgraph.solve import solve
from convgraph.solve._sums import diff_from, members, window_sum, zsum
from convgraph.solve._tree import from_residues, member, residue_class

# --------------------------------------------------------------------------------------------
# Sums and differences of windows against brute force
# --------------------------------------------------------------------------------------------


@st.composite
def windows(draw):
    m = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 9, 12, 16, 18]))
    t = from_residues(draw(st.sets(st.integers(0, m - 1), min_size=1)), m)
    lo = draw(st.integers(-30, 40))
    hi = None if draw(st.booleans()) else lo + draw(st.integers(0, 60))
    return lo, hi, t


def _in(w, x: int) -> bool:
    lo, hi, t = w
    return x >= lo and (hi is None or x <= hi) and member(t, x)


@settings(max_examples=300, **SETTINGS)
@given(windows(), windows(), st.integers(-40, 40))
def test_window_sums_and_differences_equal_brute_force(a, b, m):
    xs = [x for x in range(-40, 700) if _in(a, x)]
    ys = [y for y in range(-40, 700) if _in(b, y)]
    got = window_sum(a, b)
    assert members(got, -100, 300) == sorted({x + y for x in xs for y in ys if -100 <= x + y <= 300})
    diffs = {x - y for x in xs for y in ys if m <= x - y <= 250}
    assert members(diff_from([a], [b], m), m - 50, 250) == sorted(diffs)


def _crt_sum_oracle(r1: int, m1: int, l1: int, r2: int, m2: int, l2: int, z: int) -> bool:
    """z = x + y with x >= l1, x % m1 == r1, y >= l2, y % m2 == r2: the least such x (CRT:
    x % m1 == r1 and x % m2 == (z - r2) % m2), then y = z - x >= l2."""
    g = math.gcd(m1, m2)
    if (r1 - (z - r2)) % g:
        return False
    lcm = m1 // g * m2
    k = ((z - r2 - r1) // g * pow(m1 // g, -1, m2 // g)) % (m2 // g) if m2 // g > 1 else 0
    x0 = (r1 + m1 * k) % lcm
    x = x0 + max(0, -(-(l1 - x0) // lcm)) * lcm
    return z - x >= l2


@pytest.mark.parametrize("m1,m2", [(1 << 20, 1 << 20), (1 << 40, 1 << 40), (1 << 40, 3 * (1 << 30)),
                                   (2 ** 30 * 3 ** 5, 2 ** 31 * 3 ** 5), (2 ** 20 * 3 ** 12, 3 * 2 ** 20)])
def test_sums_at_huge_periods_are_fast_and_exact(m1, m2):
    rng = random.Random(m1 ^ m2)
    r1, r2 = rng.randrange(m1), rng.randrange(m2)
    l1, l2 = rng.randrange(1, 1 << 45), rng.randrange(1, 1 << 45)
    t1, t2 = residue_class(r1, m1), residue_class(r2, m2)
    t0 = time.perf_counter()
    tails = window_sum((l1, None, t1), (l2, None, t2))
    bounded = window_sum((l1, l1 + (1 << 50), t1), (l2, None, t2))
    periodic = zsum(t1, t2)
    assert time.perf_counter() - t0 < 5
    g = math.gcd(m1, m2)
    base = l1 + l2
    probes = [base + d for d in range(-3, 3)] + [rng.randrange(base, base + 8 * m1 * m2) for _ in range(300)]
    # the least sum, and its neighbours in its class
    first = _least_in_class(r1, m1, l1) + _least_in_class(r2, m2, l2)
    probes += [first + k * g for k in range(-3, 4)]
    probes += [first + math.lcm(m1, m2) * k + j for k in (0, 1) for j in (-1, 0, 1)]
    for z in probes:
        want = _crt_sum_oracle(r1, m1, l1, r2, m2, l2, z)
        assert any(_in(w, z) for w in tails) == want, z
        assert member(periodic, z) == ((z - r1 - r2) % g == 0)
        cut = z - l1 <= (1 << 50) or not want
        if cut:  # x below l1 + 2**50 whenever z is
            assert any(_in(w, z) for w in bounded) == (want and _least_x(r1, m1, l1, r2, m2, z) <= l1 + (1 << 50))


def test_large_coprime_periods_stop_at_the_state_bound():
    """2**20*i + 3**12*j leaves about 2**19 gaps below its Frobenius number, in no shorter
    pattern: the sum stops at ``STATES`` (fast) instead of building it; over the integers the sum
    of the two classes is every integer (gcd 1)."""
    from convgraph.solve._sums import TooComplex

    t1, t2 = residue_class(5, 1 << 20), residue_class(7, 3 ** 12)
    t0 = time.perf_counter()
    with pytest.raises(TooComplex):
        window_sum((1, None, t1), (1, None, t2))
    assert zsum(t1, t2) == 1 and time.perf_counter() - t0 < 20


def _least_in_class(r: int, m: int, lo: int) -> int:
    return lo + (r - lo) % m


def _least_x(r1: int, m1: int, l1: int, r2: int, m2: int, z: int) -> int:
    g, lcm = math.gcd(m1, m2), math.lcm(m1, m2)
    k = ((z - r2 - r1) // g * pow(m1 // g, -1, m2 // g)) % (m2 // g) if m2 // g > 1 else 0
    x0 = (r1 + m1 * k) % lcm
    return x0 + max(0, -(-(l1 - x0) // lcm)) * lcm


# --------------------------------------------------------------------------------------------
# Three inputs: a cat along the length meets a third input
# --------------------------------------------------------------------------------------------


def three_inputs(cx, cy, cz, extra: str = "") -> str:
    lines = ["x = input(N, 2, A)", "y = input(N, 2, B)", "z = input(N, 2, C)", *([extra] if extra else [])]
    for name, chain in (("x", cx), ("y", cy), ("z", cz)):
        for j, layer in enumerate(chain):
            prev = name if j == 0 else f"{name}{j - 1}"
            lines.append(f"{name}{j} = {layer.dsl()}({prev})")
    last = [f"{n}{len(c) - 1}" if c else n for n, c in (("x", cx), ("y", cy), ("z", cz))]
    lines += [f"c = cat([{last[0]}, {last[1]}], dim=2)", f"d = cat([c, {last[2]}], dim=1)"]
    return "\n".join(lines) + "\n"


VMAX = 12000


def _values(chain) -> dict[int, int]:
    """size -> value for every size whose value is at most VMAX (values are non-decreasing)."""
    out, a = {}, 1
    while a < 40 * VMAX:
        v = run(chain, a)
        if v is not None and v > VMAX:
            break
        if v is not None:
            out[a] = v
        a += 1
    return out


def _bits(values) -> int:
    out = 0
    for v in values:
        out |= 1 << v
    return out


def _brute_projections(cx, cy, cz, box: int) -> dict[str, set[int]]:
    """a in P_A iff f(a) + g(b) == h(c) for some b, c: as bitsets of values up to VMAX."""
    fx, gy, hz = _values(cx), _values(cy), _values(cz)
    gv, hv = _bits(gy.values()), _bits(hz.values())
    minus_g = 0  # {h - g >= 0}
    for g in set(gy.values()):
        minus_g |= hv >> g
    minus_f = 0
    for f in set(fx.values()):
        minus_f |= hv >> f
    plus = 0
    for f in set(fx.values()):
        plus |= gv << f
    return {"A": {a for a, v in fx.items() if a <= box and minus_g >> v & 1},
            "B": {b for b, v in gy.items() if b <= box and minus_f >> v & 1},
            "C": {c for c, v in hz.items() if c <= box and plus >> v & 1}}


@pytest.mark.slow
@settings(max_examples=40, **SETTINGS)
@given(chains(0, 2), chains(0, 2), chains(0, 2))
def test_three_inputs_through_layers(cx, cy, cz):
    graph = cg.parse(three_inputs(cx, cy, cz))
    sol = solve(graph, tiling=False)
    (cp,) = sol.couplings
    assert cp.exact and cp.relation is not None and "not exact" not in cp.message
    box = 300
    want = _brute_projections(cx, cy, cz, box)
    for n in "ABC":  # the values of sizes up to 300 stay well inside VMAX (at most 9*300 + 8)
        assert {x for x in range(1, box) if x in sol.runs(n)} == {x for x in want[n] if x < box}, n
    # the relation and the projections describe exactly the valid tuples (a box, thinned)
    js = next(c for c in sol.to_json()["symbols"]["A"]["coupled"])
    rel = js["relation"]
    lhs, rhs = D.parse_dim(rel["lhs"]), D.parse_dim(rel["rhs"])
    assert rel["text"] == f"{rel['lhs']} {rel['op']} {rel['rhs']}" and js["exact"] is True
    for a, b, c in itertools.product(range(1, 30), range(1, 30), range(1, 90, 3)):
        env = {"N": 1, "A": a, "B": b, "C": c}
        fa, gb, hc = run(cx, a), run(cy, b), run(cz, c)
        valid = None not in (fa, gb, hc) and fa + gb == hc  # type: ignore[operator]
        stated = all(env[n] in sol.runs(n) for n in "ABC") and \
            D.compare(D.evaluate(lhs, env), rel["op"], D.evaluate(rhs, env))
        assert valid == stated == sol.valid_at(env), env
    _check_examples(graph, sol, cp, cx, cy, cz)


def _check_examples(graph, sol, cp, cx, cy, cz) -> None:
    """The smallest solutions: by A (its least sizes in order), each with the least B, then the least C."""
    first = sol.runs("A").first(3)
    assert [e["A"] for e in cp.examples] == first
    for e in cp.examples:
        fa = run(cx, e["A"])
        assert fa is not None
        bs = [b for b in range(1, e["B"] + 1) if (gb := run(cy, b)) is not None and partner(cz, fa + gb) is not None]
        assert bs and bs[0] == e["B"]
        assert e["C"] == partner(cz, fa + run(cy, e["B"]))  # type: ignore[operator]
        check_at(graph, {"N": 1, **e})  # what `convgraph shapes --at` runs


def test_three_inputs_at_huge_periods():
    """A through 20 stride-2 convs (f(A) about A/2**20), B through 10 stride-2 transposed convs
    (g = 2**10*B), C through 20 (h = 2**20*C): f(A) + g(B) == h(C) holds for some B, C iff
    f(A) % 2**10 == 0, a set of A of period 2**30; checked at random sizes up to 2**45."""
    down = Layer("conv", 3, 2, 0)
    up = Layer("convT", 2, 2, 0)
    cx, cy, cz = (down,) * 20, (up,) * 10, (up,) * 20
    t0 = time.perf_counter()
    sol = solve(cg.parse(three_inputs(cx, cy, cz)), tiling=False)
    assert time.perf_counter() - t0 < 20
    (cp,) = sol.couplings
    assert cp.exact and sol.runs("A").modulus == 1 << 30
    rng = random.Random(7)
    a_min = (1 << 21) - 1  # each conv needs 3 rows: 2*i + 1 before it
    assert run(cx, a_min) == 1 and run(cx, a_min - 1) is None
    probes = [rng.randrange(1, 1 << 45) for _ in range(300)]
    probes += [k * (1 << 30) + a_min + j for k in (1, 2, 1 << 10) for j in range(-2, 3)]
    for a in probes:
        f = run(cx, a)
        assert (a in sol.runs("A")) == (f is not None and f % (1 << 10) == 0), a
    for n in "BC":  # any b (c): f(a) = 2**20*c - 2**10*b is a multiple of 2**10 for a large c (b)
        assert sol.runs(n).least == 1 and sol.runs(n).modulus == 1
    for e in cp.examples:
        assert sol.valid_at({"N": 1, **e})


# --------------------------------------------------------------------------------------------
# assume: sums with any signs, bounds, !=, and products
# --------------------------------------------------------------------------------------------


@st.composite
def linear_assumes(draw) -> tuple[str, tuple]:
    names = draw(st.sampled_from([("H", "W"), ("H", "W", "C")]))
    terms = []
    for n in names:
        a = draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
        k = draw(st.sampled_from([1, 1, 2, 3]))
        s = draw(st.integers(0, 2))
        terms.append((a, n, k, s))
    op = draw(st.sampled_from(["==", "!=", "<=", "<", ">=", ">"]))
    c = draw(st.integers(-40, 120))
    text = " + ".join(f"{a}*(({n} + {s}) // {k})" for a, n, k, s in terms)
    return f"assume({text} {op} {c})", (tuple(terms), op, c)


def _holds(spec, env) -> bool:
    terms, op, c = spec
    return D.compare(sum(a * ((env[n] + s) // k) for a, n, k, s in terms), op, c)


@settings(max_examples=60, **SETTINGS)
@given(linear_assumes())
def test_linear_assumes_are_exact(case):
    text, spec = case
    names = [t[1] for t in spec[0]]
    src = f"x = input(N, 2, H, W)\nz = input(N, 2, C, C)\n{text}\noutput(x, z)\n"
    try:
        graph = cg.parse(src)
        sol = solve(graph, tiling=False)
    except ConvGraphError:  # the assume leaves no valid size: an error, as it should be
        assert not any(_holds(spec, dict(zip(names, v))) for v in itertools.product(range(1, 200), repeat=len(names)))
        return
    (cp,) = sol.couplings
    assert cp.exact and (cp.relation is not None or cp.pair is not None) and "not exact" not in cp.message
    box = 120 if len(names) == 2 else 40
    for n in names:  # x in P_n iff t_n(x) + v op c for some v in the sum of the other terms' values
        want = {x for x in range(1, box) if _partner(spec, n, x)}
        assert {x for x in range(1, box) if x in sol.runs(n)} == want, n
    js = sol.to_json()["symbols"][names[0]]["coupled"][0]
    assert js["exact"] is True
    form = js.get("relation") or js["pairs"]
    assert form["op"] in ("==", "!=", "<=", ">=")
    lhs, rhs = D.parse_dim(form["lhs"]), D.parse_dim(form["rhs"])
    for v in itertools.product(range(1, 30 if len(names) == 2 else 14), repeat=len(names)):
        env = {"N": 1, "H": 1, "W": 1, "C": 1, **dict(zip(names, v))}
        stated = all(env[n] in sol.runs(n) for n in names) and \
            D.compare(D.evaluate(lhs, env), form["op"], D.evaluate(rhs, env))
        assert _holds(spec, env) == stated == sol.valid_at(env), env
    for e in cp.examples:
        env = {"N": 1, "H": 1, "W": 1, "C": 1, **e}
        assert _holds(spec, env)
        check_at(graph, env)


def _partner(spec, n: str, x: int) -> bool:
    """Some sizes of the other symbols satisfy the condition with n = x (``_other_sums``)."""
    terms, op, c = spec
    sums = _other_sums(spec, n)
    (a, _, k, s), = [t for t in terms if t[1] == n]
    mine = a * ((x + s) // k)
    if op in ("==", "!="):
        return (c - mine in sums) if op == "==" else bool(sums - {c - mine})
    return D.compare(mine + min(sums), op, c) or D.compare(mine + max(sums), op, c)


@functools.lru_cache(maxsize=64)
def _other_sums(spec, n: str) -> frozenset[int]:
    """Every value of the sum of the other terms, their sizes in 1..wide (the terms are eventually
    periodic with periods <= 3 and slopes <= 3: a solution has one within). wide: the others' sum
    must reach c - a*((x + s)//k), at most 120 + 3*(box + 1) (486 for two symbols, 243 for three),
    with a term as slow as (y + s)//3 against one as low as -3*((1 + 2)//1) = -9: y up to 3*(486 +
    9) + 3 = 1488 and 3*(243 + 9) + 3 = 759 (500 missed H = 39 in -3*H - 3*W + C//3 == 47, C = 501)."""
    terms = spec[0]
    wide = 1500 if len(terms) == 2 else 800
    sums = {0}
    for a, m, k, s in terms:
        if m != n:
            vals = {a * ((y + s) // k) for y in range(1, wide)}
            sums = {u + v for u in sums for v in vals}
    return frozenset(sums)


def test_opposite_monotonicity_is_a_finite_exact_set(tmp_path: Path, capsys):
    src = tmp_path / "o.cg"
    src.write_text("x = input(N, 3, H, W)\nh = Conv2d(3, 4, 3, stride=2)(x)\nassume(H + W == 64)\n")
    assert main(["solve", str(src), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (cp,) = data["symbols"]["H"]["coupled"]
    assert cp["exact"] is True and cp["relation"]["text"] == "H + W == 64"
    pairs = {(h, 64 - h) for h in range(3, 62)}  # the conv needs H, W >= 3
    assert set(cp["relation"]["projections"]["H"]["exceptions"]) == {h for h, _ in pairs}
    assert set(cp["relation"]["projections"]["W"]["exceptions"]) == {w for _, w in pairs}
    assert cp["examples"][0] == {"H": 3, "W": 61}
    assert main(["shapes", str(src)]) == 0
    out = capsys.readouterr().out
    assert "H, W (coupled): (H in {3..61}), (W in {3..61}), and H + W == 64" in out
    assert main(["shapes", str(src), "--at", "N=1", "--at", "H=3", "--at", "W=61"]) == 0
    capsys.readouterr()
    assert main(["shapes", str(src), "--at", "N=1", "--at", "H=62", "--at", "W=2"]) == 2
    assert "hint: valid H, W (coupled): (H in {3..61}), (W in {3..61}), and H + W == 64" in capsys.readouterr().err


@pytest.mark.parametrize("cond,ok", [
    ("H * W <= 4096", lambda h, w: h * w <= 4096),
    ("H * W < 1000", lambda h, w: h * w < 1000),
    ("H * W >= 5000", lambda h, w: h * w >= 5000),  # a bound from below over MAX_BOUND
    ("(H // 2) * W >= 300", lambda h, w: (h // 2) * w >= 300),
    ("H * W != 64", lambda h, w: h * w != 64),
    ("3 * H * W <= 1000", lambda h, w: 3 * h * w <= 1000),
    ("H != W", lambda h, w: h != w),
    ("H - W != 3", lambda h, w: h - w != 3),
    ("H + W <= 1000", lambda h, w: h + w <= 1000),
    ("2*H - W >= 7", lambda h, w: 2 * h - w >= 7),
])
def test_bounds_and_inequalities_on_two_symbols(cond, ok):
    graph = cg.parse(f"x = input(N, 3, H, W)\nh = MaxPool2d(2)(x)\nassume({cond})\n")
    sol = solve(graph, tiling=False)
    (cp,) = sol.couplings
    assert cp.exact and "not exact" not in cp.message, cp.message
    span = 1100 if "1000" in cond else 5100
    for n, other in (("H", "W"), ("W", "H")):
        def good(x: int, n: str = n, other: str = other) -> bool:
            return x >= 2 and any(y >= 2 and ok(**{n.lower(): x, other.lower(): y}) for y in
                                  (*range(2, 200), span, 10 * span, 3 * span + 1))
        assert {x for x in range(1, 200) if x in sol.runs(n)} == {x for x in range(1, 200) if good(x)}, n
        top = sol.runs(n)
        if top.finite:
            assert not good(max(top.windows[-1][1] + 1, 2))  # type: ignore[operator]
    for h, w in itertools.product(range(1, 80), repeat=2):
        assert sol.valid_at({"N": 1, "H": h, "W": w}) == (h >= 2 and w >= 2 and ok(h, w))
    for e in cp.examples:
        check_at(graph, {"N": 1, **e})


def test_huge_product_bound_stays_compact():
    sol = solve(cg.parse(f"x = input(N, 3, H, W)\nassume(H * W <= {1 << 30})\n"), tiling=False)
    (cp,) = sol.couplings
    assert cp.exact and sol.runs("H") == sol.runs("W") and sol.runs("H").windows[-1][1] == 1 << 30
    assert "(H in {1..1073741824})" in cp.message
    assert sol.valid_at({"N": 1, "H": 1 << 15, "W": 1 << 15})
    assert not sol.valid_at({"N": 1, "H": 1 << 15, "W": (1 << 15) + 1})


def test_what_stays_a_search_says_so():
    """A term that is not monotone (``A % 4``: a sum of A and -4*floor(A/4)) has no exact form
    here: the bounded search is said to be one, in the text and the JSON."""
    sol = solve(cg.parse("x = input(N, 2, A, B)\nassume(A % 4 == B % 3)\n"))
    (cp,) = sol.couplings
    assert not cp.exact and "not exact" in cp.message
    js = sol.to_json()["symbols"]["A"]["coupled"][0]
    assert js["exact"] is False and "relation" not in js
    assert all(sol.valid_at({"N": 1, **e}) for e in cp.examples)


def test_three_inputs_in_every_verb(tmp_path: Path, capsys):
    src = tmp_path / "three.cg"
    src.write_text("x = input(N, 2, A)\ny = input(N, 2, B)\nz = input(N, 2, C)\n"
                   "a = Conv1d(2, 2, 3, stride=2)(x)\nb = ConvTranspose1d(2, 2, 2, stride=3)(y)\n"
                   "c = cat([a, b], dim=2)\nd = Conv1d(2, 2, 5, stride=2, padding=1)(z)\ne = cat([c, d], dim=1)\n")
    assert main(["solve", str(src)]) == 0
    out = capsys.readouterr().out
    assert "couples A, B, C exactly: the valid tuples are (A >= 3), (B >= 1), (C >= 7) with " in out
    assert "not exact" not in out
    assert main(["solve", str(src), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (cp,) = data["symbols"]["C"]["coupled"]
    assert cp["exact"] is True and set(cp["relation"]["projections"]) == {"A", "B", "C"}
    for e in cp["examples"]:  # each printed example, pasted into shapes --at, runs
        argv = ["shapes", str(src), "--at", "N=1", *[f"--at={k}={v}" for k, v in e.items()]]
        assert main(argv) == 0, e
        capsys.readouterr()
    assert main(["shapes", str(src), "--at", "N=1", "--at", "A=3", "--at", "B=1", "--at", "C=9"]) == 2
    err = capsys.readouterr().err
    assert "hint: valid A, B, C (coupled): (A >= 3), (B >= 1), (C >= 7), and " in err
