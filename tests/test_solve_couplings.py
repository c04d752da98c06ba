"""Couplings of two symbols through layers, exact (issue 12, item 2): ``image`` of a size set under a
monotone dim, and ``f(A) == g(B)`` (a cat of two inputs) with both projections and the relation.

The oracle is written here from PyTorch's size rules (reference/conv-semantics.md): plain integer
formulas per layer, no convgraph dim algebra; ``test_plain_rules_are_torchs`` checks them against
torch itself. Sets are compared with brute force over A, B in 1..600 and at sizes up to 2**40
(multiples of the period and their neighbours), for periods of 2**16 and more.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph import dims as D
from convgraph.cli import main
from convgraph.cli._main import check_at
from convgraph.errors import ConvGraphError
from convgraph.solve import solve
from convgraph.solve._image import image, preimage
from convgraph.solve._sizes import Sizes

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))
SPAN = 600


# --------------------------------------------------------------------------------------------
# Layers: DSL text and PyTorch's integer rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    kind: str  # 'conv' | 'pool' | 'convT'
    k: int
    s: int
    p: int
    d: int = 1
    ceil: bool = False
    op: int = 0

    def dsl(self) -> str:
        common = f"stride={self.s}, padding={self.p}, dilation={self.d}"
        if self.kind == "conv":
            return f"Conv1d(2, 2, {self.k}, {common})"
        if self.kind == "pool":
            return f"MaxPool1d({self.k}, {common}, ceil_mode={self.ceil})"
        return f"ConvTranspose1d(2, 2, {self.k}, {common}, output_padding={self.op})"

    def out(self, i: int) -> int | None:
        """PyTorch's output size, None where PyTorch raises."""
        ek = self.d * (self.k - 1) + 1
        if self.kind == "convT":
            o = (i - 1) * self.s - 2 * self.p + ek + self.op
            return o if o >= 1 else None
        num = i + 2 * self.p - ek
        if self.kind == "conv":
            return num // self.s + 1 if num >= 0 else None
        o = (-(-num // self.s) if self.ceil else num // self.s) + 1
        if self.ceil and (o - 1) * self.s >= i + self.p:  # the last window may not start in the padding
            o -= 1
        return o if o >= 1 else None


def run(chain: tuple[Layer, ...], i: int) -> int | None:
    for layer in chain:
        got = layer.out(i)
        if got is None:
            return None
        i = got
    return i


@st.composite
def layers(draw) -> Layer:
    kind = draw(st.sampled_from(["conv", "pool", "convT"]))
    k, s, d = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 1, 2]))
    if kind == "pool":
        return Layer(kind, k, s, draw(st.integers(0, k // 2)), d, draw(st.booleans()))
    op = draw(st.integers(0, max(s, d) - 1)) if kind == "convT" else 0
    return Layer(kind, k, s, draw(st.integers(0, 2)), d, op=op)


def chains(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[tuple[Layer, ...]]:
    return st.lists(layers(), min_size=min_size, max_size=max_size).map(tuple)


def two_inputs(cx: tuple[Layer, ...], cy: tuple[Layer, ...], extra: str = "") -> str:
    lines = ["x = input(N, 2, A)", "y = input(N, 2, B)", *([extra] if extra else [])]
    for name, chain in (("x", cx), ("y", cy)):
        for j, layer in enumerate(chain):
            prev = name if j == 0 else f"{name}{j - 1}"
            lines.append(f"{name}{j} = {layer.dsl()}({prev})")
    last = [f"{n}{len(c) - 1}" if c else n for n, c in (("x", cx), ("y", cy))]
    lines.append(f"c = cat([{last[0]}, {last[1]}], dim=1)")
    return "\n".join(lines) + "\n"


def one_input_dim(chain: tuple[Layer, ...]) -> D.Dim:
    lines = ["x = input(1, 2, A)"] + [f"x{j} = {layer.dsl()}({'x' if j == 0 else f'x{j - 1}'})"
                                      for j, layer in enumerate(chain)]
    graph = cg.parse("\n".join(lines) + "\n")
    return graph.infer().values[f"x{len(chain) - 1}"][2]


def _least_valid(chain: tuple[Layer, ...]) -> int | None:
    """The smallest size the chain accepts (the layers' rules are monotone: every larger one too)."""
    hi = 1
    while run(chain, hi) is None:
        hi *= 2
        if hi > 1 << 62:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if run(chain, mid) is not None else (mid, hi)
    return hi if hi == 1 or run(chain, hi - 1) is None else lo


def partner(chain: tuple[Layer, ...], value: int) -> int | None:
    """The smallest size b the chain accepts with output ``value`` (binary search: the output is
    non-decreasing in b), None when there is none."""
    lo = _least_valid(chain)
    if lo is None or run(chain, lo) > value:  # type: ignore[operator]
        return None
    hi = lo
    while run(chain, hi) < value:  # type: ignore[operator]
        hi = lo + 2 * (hi - lo) + 1
    while hi > lo:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if run(chain, mid) < value else (lo, mid)  # type: ignore[operator]
    return lo if run(chain, lo) == value else None


# --------------------------------------------------------------------------------------------
# The oracle agrees with torch
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=25, **SETTINGS)
@given(chains(1, 3))
def test_plain_rules_are_torchs(torch, chain):
    nn = torch.nn
    mods = []
    for la in chain:
        if la.kind == "conv":
            mods.append(nn.Conv1d(2, 2, la.k, la.s, la.p, la.d))
        elif la.kind == "pool":
            mods.append(nn.MaxPool1d(la.k, la.s, la.p, la.d, ceil_mode=la.ceil))
        else:
            mods.append(nn.ConvTranspose1d(2, 2, la.k, la.s, la.p, la.op, dilation=la.d))
    model = nn.Sequential(*mods)
    for i in range(1, 40):
        try:
            with torch.no_grad():
                got: int | None = model(torch.zeros(1, 2, i)).shape[2]
        except RuntimeError:
            got = None
        assert got == run(chain, i), (chain, i)


# --------------------------------------------------------------------------------------------
# image(S, f) against brute force
# --------------------------------------------------------------------------------------------


@st.composite
def size_sets(draw) -> Sizes:
    m = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 8, 9, 12, 16, 18]))
    res = draw(st.sets(st.integers(0, m - 1), min_size=1))
    s = Sizes.classes_of(res, m) & Sizes.interval(draw(st.integers(1, 40)), None)
    s = s | Sizes.of(draw(st.sets(st.integers(1, 80), max_size=6)))
    if draw(st.booleans()):
        s = s & Sizes.interval(1, draw(st.integers(1, 400)))
    return s


@settings(max_examples=120, **SETTINGS)
@given(chains(1, 5), size_sets())
def test_image_equals_brute_force(chain, s):
    f = one_input_dim(chain)
    assert all(D.evaluate(f, {"A": a}) == run(chain, a) for a in range(1, SPAN) if run(chain, a) is not None)
    got = image(s, f, "A")
    assert got is not None
    top = D.evaluate(f, {"A": SPAN})  # f is non-decreasing: a value below f(SPAN) comes from a < SPAN
    want = {D.evaluate(f, {"A": a}) for a in range(1, SPAN) if a in s}
    assert {y for y in range(1, top) if y in got} == {y for y in want if 1 <= y < top}


@settings(max_examples=120, **SETTINGS)
@given(chains(1, 5), size_sets())
def test_preimage_equals_brute_force(chain, s):
    f = one_input_dim(chain)
    got = preimage(s, f, "A")
    assert got is not None
    assert {a for a in range(1, SPAN) if a in got} == {a for a in range(1, SPAN) if D.evaluate(f, {"A": a}) in s}


def test_preimage_through_nested_strides_is_cheap():
    """12 x (ConvTranspose1d stride 3, Conv1d stride 2): floors nested 12 deep, period 3**22."""
    f = D.sym("A")
    for _ in range(12):
        f = D.add(D.floordiv(D.add(D.mul(D.add(f, -1), 3), 0), 2), 1)
    s = Sizes.classes_of([1, 5, 6], 7) & Sizes.interval(10, None)
    t0 = time.perf_counter()
    img = image(s, f, "A")
    assert img is not None
    back = preimage(img, f, "A")
    assert back is not None and time.perf_counter() - t0 < 5
    assert s <= back
    for a in [*range(1, 400), *((1 << 40) + j for j in range(-50, 50))]:
        assert (a in back) == (D.evaluate(f, {"A": a}) in img)
        assert (D.evaluate(f, {"A": a}) in img) == (a in s or any(
            D.evaluate(f, {"A": b}) == D.evaluate(f, {"A": a}) for b in range(max(1, a - 40), a + 40) if b in s))


def test_image_of_a_huge_period_is_cheap():
    f = D.sym("A")
    for _ in range(40):  # 40 stride-2 convs, k=3, p=0: one floor by 2**40 after collapsing
        f = D.add(D.floordiv(D.add(f, -3), 2), 1)
    s = Sizes.classes_of([5], 7) & Sizes.interval(1 << 41, None)
    t0 = time.perf_counter()
    got = image(s, D.add(D.mul(f, 6), 1), "A")
    assert got is not None and time.perf_counter() - t0 < 2
    assert got.min == 6 * D.evaluate(f, {"A": s.least}) + 1 and got.modulus == 6
    base = D.sym("A")
    up = D.add(D.mul(base, 1 << 40), 3)  # 40 ConvTranspose stride 2: A*2**40 + 3, period 2**40
    got = image(Sizes.classes_of([1, 2], 3), up, "A")
    assert got is not None and got.modulus == 3 << 40
    for a in (1, 2, 4, 5, (1 << 30) + 1, (3 << 38) - 1):
        assert (a * (1 << 40) + 3 in got) == (a % 3 in (1, 2))
        assert a * (1 << 40) + 4 not in got


# --------------------------------------------------------------------------------------------
# Two inputs and a cat: projections and pairs against brute force
# --------------------------------------------------------------------------------------------


def _brute(cx, cy) -> tuple[dict[int, int], dict[int, int]]:
    ox = {a: v for a in range(1, SPAN + 1) if (v := run(cx, a)) is not None}
    oy = {b: v for b in range(1, SPAN + 1) if (v := run(cy, b)) is not None}
    return ox, oy


def _relation(js: dict) -> tuple[D.Dim, D.Dim]:
    pairs = js["pairs"]
    assert pairs["op"] == "==" and pairs["relation"] == f"{pairs['lhs']} == {pairs['rhs']}"
    return D.parse_dim(pairs["lhs"]), D.parse_dim(pairs["rhs"])


@settings(max_examples=60, **SETTINGS)
@given(chains(0, 4), chains(0, 4))
def test_cat_of_two_inputs_through_layers(cx, cy):
    graph = cg.parse(two_inputs(cx, cy))
    sol = solve(graph, tiling=False)
    ox, oy = _brute(cx, cy)
    by_value: dict[int, list[int]] = {}
    for b, v in oy.items():
        by_value.setdefault(v, []).append(b)
    want = {(a, b) for a, v in ox.items() for b in by_value.get(v, [])}
    (cp,) = sol.couplings
    assert cp.exact and cp.pair is not None
    js = next(c for c in sol.to_json()["symbols"]["A"]["coupled"])
    assert js["exact"] is True and "not exact" not in js["text"]
    f, g = _relation(js)
    proj = {n: sol.runs(n) for n in "AB"}
    fa = {a: D.evaluate(f, {"A": a}) for a in range(1, SPAN + 1) if a in proj["A"]}
    gb: dict[int, list[int]] = {}
    for b in range(1, SPAN + 1):
        if b in proj["B"]:
            gb.setdefault(D.evaluate(g, {"B": b}), []).append(b)
    got = {(a, b) for a, v in fa.items() for b in gb.get(v, [])}
    assert got == want
    # projections: every size whose partners (if any) lie inside the span is decided by it
    top_y, top_x = run(cy, SPAN), run(cx, SPAN)
    for a, v in ox.items():
        if top_y is not None and v < top_y:
            assert (a in proj["A"]) == (v in by_value), a
    xs = {v for v in ox.values()}
    for b, v in oy.items():
        if top_x is not None and v < top_x:
            assert (b in proj["B"]) == (v in xs), b
    _check_examples(graph, sol, cp, want)


def _check_examples(graph, sol, cp, want: set) -> None:
    if not want:  # no pair inside the span: none at all, or only larger ones
        assert (not cp.examples and sol.merges[0].verdict == "never") or \
            all(max(e.values()) > SPAN for e in cp.examples)
    (n, _, s), _ = cp.pair.sides()
    assert [e[n] for e in cp.examples] == s.first(3) or not want
    for e in cp.examples:
        assert sol.valid_at({"N": 1, **e})
        check_at(graph, {"N": 1, **e})  # what `convgraph shapes --at` runs
    small = sorted(want)[:3]
    for a, b in small:
        assert sol.valid_at({"N": 1, "A": a, "B": b})


@settings(max_examples=25, **SETTINGS)
@given(chains(1, 3), chains(1, 3), st.sampled_from(["A % 4 == 1", "B % 3 == 2", "A >= 50", "B <= 200", "B >= A",
                                                    "A > 2*B + 1"]))
def test_cat_with_an_assume_narrows_both_sides(cx, cy, cond):
    try:
        graph = cg.parse(two_inputs(cx, cy, f"assume({cond})"))
        sol = solve(graph, tiling=False)
    except ConvGraphError:
        return  # the assume leaves no valid size: an error, as it should be
    ok = {"A % 4 == 1": lambda a, b: a % 4 == 1, "B % 3 == 2": lambda a, b: b % 3 == 2,
          "A >= 50": lambda a, b: a >= 50, "B <= 200": lambda a, b: b <= 200, "B >= A": lambda a, b: b >= a,
          "A > 2*B + 1": lambda a, b: a > 2 * b + 1}[cond]
    ox, oy = _brute(cx, cy)
    want = {(a, b) for a, v in ox.items() for b, w in oy.items() if v == w and ok(a, b)}
    pa = {a: v for a, v in ox.items() if a in sol.runs("A")}
    pb = {b: v for b, v in oy.items() if b in sol.runs("B")}
    assert {(a, b) for a, v in pa.items() for b, w in pb.items() if v == w and ok(a, b)} == want
    for a, b in list(want)[:50] + [(a, b) for a in range(1, 30) for b in range(1, 30)]:
        assert sol.valid_at({"N": 1, "A": a, "B": b}) == ((a, b) in want)
    assert all(cp.exact for cp in sol.couplings)
    if not sol.notes:  # no cycle left: every coupling's smallest solutions are valid sizes of the graph
        assert all(sol.valid_at({"N": 1, **e}) for cp in sol.couplings for e in cp.examples)


# --------------------------------------------------------------------------------------------
# Huge sizes and huge periods
# --------------------------------------------------------------------------------------------

DOWN2 = Layer("conv", 3, 2, 0)
DOWN3 = Layer("conv", 2, 3, 1)
UP2 = Layer("convT", 3, 2, 1, op=1)
UP3 = Layer("convT", 2, 3, 0)
DEEP = [((DOWN2,) * 16 + (UP3,), (DOWN3,) * 10 + (UP2,)),
        ((DOWN2,) * 20 + (Layer("pool", 3, 2, 1, ceil=True),), (DOWN3,) * 2 + (UP2,) * 3),
        ((Layer("conv", 5, 2, 1, 2),) * 17, (UP3,) * 2 + (Layer("pool", 2, 2, 0),))]


@pytest.mark.parametrize("cx,cy", DEEP, ids=["2^16x3-vs-3^10x2", "2^21-vs-8", "dilated-2^17-vs-9"])
def test_huge_sizes_and_periods(cx, cy):
    t0 = time.perf_counter()
    sol = solve(cg.parse(two_inputs(cx, cy)), tiling=False)
    assert time.perf_counter() - t0 < 20
    (cp,) = sol.couplings
    assert cp.exact
    assert max(sol.runs("A").modulus, sol.runs("B").modulus) >= 1 << 16
    for name, mine, other in (("A", cx, cy), ("B", cy, cx)):
        s = sol.runs(name)
        period = s.modulus
        for k in {max(1, (1 << e) // period) + j for e in (30, 35, 40) for j in (0, 1)}:
            for x in (k * period - 1, k * period, k * period + 1, k * period + s.least, k * period + s.least + 1):
                v = run(mine, x)
                want = v is not None and partner(other, v) is not None
                assert (x in s) == want, (name, x)


def test_examples_are_the_smallest_solutions_at_depth():
    cx, cy = DEEP[0]
    sol = solve(cg.parse(two_inputs(cx, cy)), tiling=False)
    (cp,) = sol.couplings
    (n, _, s), (m, _, _) = cp.pair.sides()
    chains_of = {"A": cx, "B": cy}
    first = s.least
    assert all(run(chains_of[n], x) is None or partner(chains_of[m], run(chains_of[n], x)) is None
               for x in range(max(1, first - 3000), first))
    for e in cp.examples:
        assert run(cx, e["A"]) == run(cy, e["B"]) is not None
        assert e[m] == partner(chains_of[m], run(chains_of[n], e[n]))


# --------------------------------------------------------------------------------------------
# The DSL and every verb
# --------------------------------------------------------------------------------------------

TWO = """\
x = input(N, 4, A)
y = input(N, 4, B)
h = Conv1d(4, 4, 3, stride=2, padding=1)(x)
h = Conv1d(4, 4, 3, stride=2, padding=1)(h)
u = ConvTranspose1d(4, 4, 3, stride=3)(h)
g = Conv1d(4, 4, 5, stride=3, padding=2)(y)
g = ConvTranspose1d(4, 4, 2, stride=2)(g)
c = cat([u, g], dim=1)
"""


def test_dsl_two_inputs_in_every_verb(tmp_path: Path, capsys):
    src = tmp_path / "two.cg"
    src.write_text(TWO)
    assert main(["solve", str(src), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (cp,) = data["symbols"]["A"]["coupled"]
    assert cp["exact"] is True and set(cp["pairs"]["projections"]) == {"A", "B"}
    assert cp["pairs"]["projections"]["A"] == data["symbols"]["A"]["runs"]
    f, g = _relation(cp)
    cx = (Layer("conv", 3, 2, 1), Layer("conv", 3, 2, 1), Layer("convT", 3, 3, 0))
    cy = (Layer("conv", 5, 3, 2), Layer("convT", 2, 2, 0))
    sol = cg.solve(cg.load(str(src)))
    for a in range(1, 300):
        for b in range(1, 300):
            valid = run(cx, a) is not None and run(cx, a) == run(cy, b)
            stated = a in sol.runs("A") and b in sol.runs("B") and D.evaluate(f, {"A": a}) == D.evaluate(g, {"B": b})
            assert valid == stated, (a, b)
    assert main(["shapes", str(src)]) == 0
    out = capsys.readouterr().out
    assert "A, B (coupled): " in out and "not exact" not in out
    assert main(["solve", str(src)]) == 0
    out = capsys.readouterr().out
    assert "couples A, B exactly: the valid pairs are " in out and "not exact" not in out
    e = cp["examples"][0]
    assert main(["shapes", str(src), "--at", f"A={e['A']}", "--at", f"B={e['B']}", "--at", "N=1"]) == 0
    off = next(b for b in range(e["B"], 400) if run(cy, b) != run(cx, e["A"]))
    assert main(["shapes", str(src), "--at", f"A={e['A']}", "--at", f"B={off}", "--at", "N=1"]) == 2
    capsys.readouterr()


def test_forms_without_an_exact_solution_still_say_so():
    """A term that is not monotone (``A % 4 == B % 3``) keeps the bounded search, and says it is
    one, in the text and the JSON. (Three symbols in a sum, the cat of two inputs along the length
    meeting a third, are exact now: tests/test_solve_relations.py.)"""
    text = "x = input(N, 2, A, B)\nassume(A % 4 == B % 3)\n"
    sol = solve(cg.parse(text))
    (cp,) = sol.couplings
    assert not cp.exact and "not exact" in cp.message
    js = sol.to_json()["symbols"]["A"]["coupled"][0]
    assert js["exact"] is False and "pairs" not in js and "tuples" not in js
    assert all(sol.valid_at({"N": 1, **e}) for e in cp.examples)


def test_a_chain_of_couplings_narrows_to_the_joint_projection():
    """2A == floor(B/3) (A through a transposed conv, B through a conv) and B == 3C: only the
    second round of narrowing, with B's set narrowed by the first coupling, finds that C is even."""
    text = ("x = input(N, 2, A)\ny = input(N, 2, B)\nz = input(N, 2, C)\n"
            "a = ConvTranspose1d(2, 2, 2, stride=2)(x)\nb = Conv1d(2, 2, 3, stride=3)(y)\nab = cat([a, b], dim=1)\n"
            "c = ConvTranspose1d(2, 2, 3, stride=3)(z)\nbc = cat([y, c], dim=1)\n")
    sol = solve(cg.parse(text), tiling=False)
    up2, down3, up3 = Layer("convT", 2, 2, 0), Layer("conv", 3, 3, 0), Layer("convT", 3, 3, 0)
    doubles = {run((up2,), a) for a in range(1, 1000)}
    want_c = {c for c in range(1, 400) if run((down3,), run((up3,), c)) in doubles}
    assert {c for c in range(1, 400) if c in sol.runs("C")} == want_c
    assert want_c == set(range(2, 400, 2))
    want_b = {3 * c for c in want_c}
    assert {b for b in range(1, 1200) if b in sol.runs("B")} == want_b


@settings(max_examples=25, **SETTINGS)
@given(chains(1, 3), chains(1, 3), st.sampled_from(["B == A + 3", "A == B", "B == A - 2"]))
def test_an_equality_and_a_cat_on_one_pair_are_solved_jointly(cx, cy, eq):
    """``assume(B == A + e)`` fixes B by A: the cat's condition with B replaced is a condition on A
    alone, so each symbol's set is exactly the sizes that take part in a valid pair."""
    try:
        sol = solve(cg.parse(two_inputs(cx, cy, f"assume({eq})")), tiling=False)
    except ConvGraphError:
        return
    e = {"B == A + 3": 3, "A == B": 0, "B == A - 2": -2}[eq]
    ox, oy = _brute(cx, cy)
    want_a = {a for a, v in ox.items() if a + e in oy and oy[a + e] == v and a + e <= SPAN - 10}
    assert {a for a in range(1, SPAN - 10 - max(e, 0)) if a in sol.runs("A")} == \
        {a for a in want_a if a < SPAN - 10 - max(e, 0)}
    assert {b for b in range(1, SPAN - 20) if b in sol.runs("B")} == {a + e for a in want_a if a + e < SPAN - 20}
    assert not sol.notes and (sol.no_valid_size() is None) == bool(want_a)


def test_contradicting_couplings_are_no_valid_size(tmp_path: Path, capsys):
    src = tmp_path / "c.cg"
    src.write_text("x = input(N, 2, A)\ny = input(N, 2, B)\nassume(A > 2*B)\nc = cat([x, y], dim=1)\n")
    assert main(["shapes", str(src)]) == 2
    assert "c.cg:4:5: error: no valid size" in capsys.readouterr().err


def test_a_cycle_of_equalities_with_bare_sides_is_solved():
    """B = f(A), C = g(B), A = h(C): eliminating B and C leaves A == h(g(f(A))), a condition on A
    alone: here it never holds (brute force agrees), so the graph has no valid size."""
    text = ("x = input(N, 2, A)\ny = input(N, 2, B)\nz = input(N, 2, C)\n"
            "a = Conv1d(2, 2, 3, stride=2)(x)\nab = cat([a, y], dim=1)\n"
            "b = ConvTranspose1d(2, 2, 2, stride=2)(y)\nbc = cat([b, z], dim=1)\n"
            "c = Conv1d(2, 2, 2, stride=3)(z)\nca = cat([c, x], dim=1)\n")
    f, g, h = (Layer("conv", 3, 2, 0),), (Layer("convT", 2, 2, 0),), (Layer("conv", 2, 3, 0),)
    assert not [a for a in range(1, 5000) if run(f, a) is not None and run(h, run(g, run(f, a)) or 0) == a]
    sol = solve(cg.parse(text))
    assert sol.no_valid_size() is not None and not sol.notes


def test_a_cycle_of_couplings_says_so():
    """Three couplings through layers on every side: narrowed coupling by coupling, and said so;
    the valid sizes (each set with every condition) stay exact."""
    text = ("x = input(N, 2, A)\ny = input(N, 2, B)\nz = input(N, 2, C)\n"
            "a1 = Conv1d(2, 2, 3, stride=2, padding=1)(x)\nb1 = Conv1d(2, 2, 1, stride=3)(y)\n"
            "ab = cat([a1, b1], dim=1)\n"
            "b2 = ConvTranspose1d(2, 2, 3, stride=2)(y)\nc2 = Conv1d(2, 2, 3, stride=2)(z)\n"
            "bc = cat([b2, c2], dim=1)\n"
            "c3 = Conv1d(2, 2, 1, stride=2)(z)\na3 = ConvTranspose1d(2, 2, 2, stride=3)(x)\n"
            "ca = cat([c3, a3], dim=1)\n")
    graph = cg.parse(text)
    sol = solve(graph, tiling=False)
    assert all(cp.exact for cp in sol.couplings)
    assert any("the couplings of A, B, C form a cycle" in n for n in sol.notes)
    assert "form a cycle" in sol.text()
    for a in range(1, 40):
        for b in range(1, 40):
            for c in range(1, 80, 3):
                env = {"N": 1, "A": a, "B": b, "C": c}
                stated = all(env[n] in sol.runs(n) for n in "ABC") and \
                    all(cp.constraint.holds(env) for cp in sol.couplings)
                assert sol.valid_at(env) == stated


# --------------------------------------------------------------------------------------------
# A bound from below on a product: InstanceNorm's "more than one spatial element"
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, **SETTINGS)
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from([1, 2, 3]), st.integers(0, 1)), min_size=2, max_size=3))
def test_instancenorm_product_is_a_union_of_products(axes):
    """``prod floor(...) > 1`` after a pool: the stated tuples, the per-symbol sets and the smallest
    solutions equal brute force by PyTorch's pool rule."""
    names = ["D", "H", "W"][-len(axes):]
    dims = len(axes)
    k, s, p = ([a[i] for a in axes] for i in range(3))
    p = [min(pi, ki // 2) for pi, ki in zip(p, k)]
    text = (f"x = input(N, 3, {', '.join(names)})\n"
            f"h = MaxPool{dims}d({tuple(k)}, stride={tuple(s)}, padding={tuple(p)})(x)\n"
            f"y = InstanceNorm{dims}d(3)(h)\n")
    sol = solve(cg.parse(text), tiling=False)
    (cp,) = sol.couplings
    assert cp.exact and cp.product is not None and "not exact" not in cp.message
    pools = [Layer("pool", ki, si, pi) for ki, si, pi in zip(k, s, p)]
    span = 14 if dims == 3 else 40

    def valid(env: tuple[int, ...]) -> bool:
        outs = [run((la,), x) for la, x in zip(pools, env)]
        return all(o is not None for o in outs) and math.prod(outs) > 1  # type: ignore[arg-type]

    grid = list(itertools.product(range(1, span), repeat=dims))
    want = {env for env in grid if valid(env)}
    stated = {env for env in grid if any(all(x in st_ for x, (_, st_) in zip(env, t)) for t in cp.product.tuples)}
    assert stated == want
    for i, n in enumerate(names):
        assert {x for x in range(1, span - 6) if x in sol.runs(n)} == {env[i] for env in want if env[i] < span - 6}
    by_sum = sorted(want, key=lambda e: (sum(e), e))
    if by_sum and sum(by_sum[2 if len(by_sum) > 2 else -1]) < span:
        assert [tuple(e[n] for n in names) for e in cp.examples] == by_sum[:3]
    for env in grid[:: max(1, len(grid) // 300)]:
        assert sol.valid_at({"N": 1, **dict(zip(names, env))}) == (env in want)


def test_a_long_chain_of_couplings_reaches_its_fixed_point():
    """S_{i+1} == floor(S_i/2) for 12 inputs: each S_i takes part in a valid tuple iff
    S_i >= 2**(11 - i); sweeps forwards and backwards get there without a note."""
    n = 12
    lines = [f"x{i} = input(N, 2, S{i:02d})" for i in range(n)]
    for i in range(n - 1):
        lines += [f"d{i} = Conv1d(2, 2, 2, stride=2)(x{i})", f"c{i} = cat([d{i}, x{i + 1}], dim=1)"]
    sol = solve(cg.parse("\n".join(lines) + "\n"), tiling=False)
    assert not sol.notes
    for i in range(n):
        assert sol.runs(f"S{i:02d}") == Sizes.interval(1 << (n - 1 - i), None)
    env = {"N": 1, **{f"S{i:02d}": 1 << (n - 1 - i) for i in range(n)}}
    assert sol.valid_at(env) and not sol.valid_at({**env, "S00": (1 << 11) - 1})
