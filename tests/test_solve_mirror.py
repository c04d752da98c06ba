"""The fix search's exact shortcuts for symmetric graphs and edited solves, each against the
obvious computation: ``solve_edited`` without the mirrored symbols (every symbol solved on its
own), ``symbol_radix`` read off every shape, ``rename`` and evaluation at sizes, the generic
window-by-window set operation, and a crop verified the usual way instead of read off the
edited graph's solution."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_graphs import GRAPHS, bench

import convgraph as cg
from convgraph import dims as D
from convgraph.errors import ConvGraphError
from convgraph.solve import _fixes, _incremental, solve
from convgraph.solve._sets import edited_radix, symbol_radix
from convgraph.solve._sizes import Sizes
from convgraph.solve._solve import solve_edited
from convgraph.solve._symmetry import rename, same_renamed
from convgraph.solve._tree import from_residues

CASES = [pytest.param(make, id=name) for name, make in GRAPHS.items()]


def _edited_graphs(sol: object) -> list:
    return [f.graph for f in sol.fixes] + [f.graph for f in sol.skip_fixes]  # type: ignore[attr-defined]


def _stated(sol: object) -> tuple:
    """Every set, verdict and counterexample an edited solve states."""
    syms = {n: (s.runs, s.layers, s.decided) for n, s in sol.symbols.items()}  # type: ignore[attr-defined]
    merges = [(m.constraint, m.where, m.verdict, m.symbols, m.holds, m.fails, m.counterexample, m.decided)
              for m in sol.merges]  # type: ignore[attr-defined]
    return syms, merges


@pytest.mark.parametrize("make", CASES)
def test_mirrored_symbols_state_what_their_own_solve_does(make: object, monkeypatch: pytest.MonkeyPatch) -> None:
    sol = solve(make())  # type: ignore[operator]
    graphs = _edited_graphs(sol)
    fast = []
    for g in graphs:
        try:
            fast.append(_stated(solve_edited(sol, g)))
        except ConvGraphError as e:
            fast.append(str(e))
    monkeypatch.setattr(_incremental, "edited_mirrors", lambda base, graph, rx: {})
    for g, want in zip(graphs, fast):
        g._memo.clear()  # solve_edited remembers its solution on the graph
        try:
            got: object = _stated(solve_edited(sol, g))
        except ConvGraphError as e:
            got = str(e)
        assert got == want


def test_mirrors_are_found_for_crops_and_both_axes_assumes() -> None:
    """Not vacuous: the crop and the assume of every skip of a symmetric U-Net mirror W onto H (and
    H, W onto D in 3-D); a U-Net whose W axis pools by 3 mirrors nothing."""
    for make, want in ((lambda: bench.unet(3), {"W": "H"}), (lambda: bench.unet(2, nd=3), {"H": "D", "W": "D"})):
        sol = solve(make())
        graphs = [f.graph for f in sol.skip_fixes if f.kind in ("crop", "assume")]
        assert graphs
        for g in graphs:
            assert _incremental.edited_mirrors(sol, g, edited_radix(sol.result, solve_edited(sol, g).result)) == want
    asym = cg.parse("x = input(1, 4, H, W)\np = MaxPool2d((2, 3))(x)\n"
                    "u = ConvTranspose2d(4, 4, (2, 3), stride=(2, 3))(p)\n"
                    "y = cat([x, u], dim=1)\noutput(y)\n", "asym.cg")
    sol = solve(asym)
    assert sol.skip_fixes and all(_incremental.edited_mirrors(sol, f.graph, {}) == {} for f in sol.skip_fixes)


@pytest.mark.parametrize("make", CASES)
def test_edited_digit_orders_equal_those_of_every_shape(make: object) -> None:
    sol = solve(make())  # type: ignore[operator]
    seen = 0
    for m in sol.merges:
        if m.constraint.kind == "merge" and m.symbol is not None and m.verdict in ("classes", "never"):
            for cand in _fixes._candidates(sol, m):
                res = _fixes._infer(sol, cand)
                if res is not None:
                    seen += 1
                    assert edited_radix(sol.result, res) == symbol_radix(res), cand.edit
    assert seen or not sol.fixes


@pytest.mark.parametrize("make", CASES)
def test_crops_read_off_the_edited_solution_verify_as_usual(make: object, monkeypatch: pytest.MonkeyPatch) -> None:
    sol = solve(make())  # type: ignore[operator]
    crops = [(m, c) for m in sol.merges if m.constraint.kind == "merge" and m.symbol is not None
             and m.verdict in ("classes", "never") for c in _fixes._candidates(sol, m) if c.kind == "crop"]
    fast = [_fixes._verify_sets(sol, m, c) for m, c in crops]
    monkeypatch.setattr(_fixes, "_verify_solved", lambda *a: (False, None))
    assert [_fixes._verify_sets(sol, m, c) for m, c in crops] == fast
    assert crops or not sol.fixes


# --- same_renamed ---------------------------------------------------------------------------------


@st.composite
def _dims(draw: st.DrawFn, depth: int = 3) -> D.Dim:
    """A dim of H made of the layer rules' pieces: affine maps and floor divisions, then perhaps
    the sum with another floor of H (a Combo)."""
    d: D.Dim = D.sym("H")
    for _ in range(draw(st.integers(0, depth))):
        if draw(st.booleans()):
            d = D.floordiv(D.add(d, draw(st.integers(-3, 3))), draw(st.integers(2, 5)))
        else:
            d = D.add(D.mul(d, draw(st.integers(1, 4))), draw(st.integers(-4, 4)))
    if draw(st.booleans()):
        d = D.add(d, D.floordiv(D.sym("H"), draw(st.integers(2, 7))))
    return d


@settings(max_examples=200, deadline=None)
@given(_dims(), _dims(), st.integers(1, 500))
def test_same_renamed_means_the_renamed_dim(x: D.Dim, y: D.Dim, v: int) -> None:
    renamed = rename(x, "H", "W")
    assert same_renamed(x, renamed, "H", "W")
    assert D.evaluate(renamed, {"W": v}) == D.evaluate(x, {"H": v})
    other = rename(y, "H", "W")
    if same_renamed(x, other, "H", "W"):
        assert all(D.evaluate(other, {"W": z}) == D.evaluate(x, {"H": z}) for z in range(1, 200))


# --- one unbounded window each --------------------------------------------------------------------


@st.composite
def _tails(draw: st.DrawFn) -> Sizes:
    m = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12]))
    residues = draw(st.sets(st.integers(0, m - 1)))
    return Sizes.periodic(from_residues(residues, m), draw(st.integers(1, 40))) if residues else Sizes.none()


def _windowwise(a: Sizes, b: Sizes, op: str) -> Sizes:
    """``Sizes._op`` without its shortcut: every window between two cuts, met trie by trie."""
    from convgraph.solve._tree import apply

    cuts = sorted({w[0] for w in a.windows + b.windows} | {w[1] + 1 for w in a.windows + b.windows
                                                           if w[1] is not None} | {1})
    out = [(lo, cuts[i + 1] - 1 if i + 1 < len(cuts) else None, apply(op, a._trie_at(lo), b._trie_at(lo)))
           for i, lo in enumerate(cuts)]
    return Sizes.make(out)


@settings(max_examples=300, deadline=None)
@given(_tails(), _tails())
def test_meet_and_difference_of_tails_are_the_windowwise_ones(a: Sizes, b: Sizes) -> None:
    assert (a & b).windows == _windowwise(a, b, "and").windows
    assert (a - b).windows == _windowwise(a, b, "minus").windows
    assert all(((x in a & b), (x in a - b)) == (x in a and x in b, x in a and x not in b) for x in range(1, 120))
