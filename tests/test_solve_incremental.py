"""The fix search re-infers only what an edit changes (``convgraph.solve._incremental``): on every
candidate graph of every failing merge, the same dims and constraints as a full ``shapes.infer``
(or the same error), and the same fixes as a search that re-infers every candidate in full."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import convgraph as cg
from convgraph.errors import ConvGraphError
from convgraph.shapes import infer
from convgraph.solve import _fixes, solve
from convgraph.solve._incremental import infer_edited

MODELS = Path(__file__).resolve().parent.parent / "models"
GRAPH_FILES = sorted(MODELS.glob("*.cg")) + sorted((MODELS / "examples").glob("*.cg"))
sys.path.insert(0, str(MODELS.parent / "benchmarks"))
import bench_solver_scaling as bench  # noqa: E402  (graph generators: deep U-Nets, stride nests)

#: generated graphs with many failing merges and candidates (unpadded skips, mixed strides)
GENERATED = {"unet_unpadded_4": lambda: bench.unet(4, padded=False), "unet_padded_5": lambda: bench.unet(5),
             "unet3d_3": lambda: bench.unet(3, nd=3), "nest_2_3_2_3": lambda: bench.nest([2, 3, 2, 3], "nest"),
             "nest_4_2": lambda: bench.nest([4, 2], "nest42")}
CASES = [pytest.param(lambda p=p: cg.load(str(p)), id=p.name) for p in GRAPH_FILES] + \
    [pytest.param(make, id=name) for name, make in GENERATED.items()]


def _failing(sol: object) -> list:
    return [m for m in sol.merges if m.constraint.kind == "merge" and m.symbol is not None  # type: ignore[attr-defined]
            and m.verdict in ("classes", "never") and m.holds is not None]


def _outcome(run: object) -> object:
    try:
        res = run()  # type: ignore[operator]
    except ConvGraphError as e:
        return type(e), str(e)
    return res.values, res.constraints


@pytest.mark.parametrize("make", CASES)
def test_edited_inference_equals_full_inference(make: object) -> None:
    sol = solve(make())  # type: ignore[operator]
    seen = 0
    for m in _failing(sol):
        for cand in _fixes._candidates(sol, m):
            seen += 1
            full = _outcome(lambda: infer(cand.graph))  # noqa: B023
            assert _outcome(lambda: infer_edited(sol.result, cand.graph)) == full, cand.edit  # noqa: B023
    assert seen or not _failing(sol)


def test_generated_graphs_give_many_candidates() -> None:
    """The comparisons above are not vacuous: the generated graphs alone give a few hundred."""
    sols = [solve(make()) for make in GENERATED.values()]
    assert sum(len(list(_fixes._candidates(sol, m))) for sol in sols for m in _failing(sol)) >= 100


def _fix_key(sol: object) -> list[tuple]:
    return [(f.edit, f.holds, f.complete, f.kind, f.sizes) for f in sol.fixes]  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", CASES)
def test_fixes_equal_those_of_full_inference(make: object, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _fix_key(solve(make()))  # type: ignore[operator]
    monkeypatch.setattr(_fixes, "infer_edited", lambda base, graph: infer(graph))
    monkeypatch.setattr(_fixes, "_INFERRED", {})
    assert _fix_key(solve(make())) == fast  # type: ignore[operator]


@pytest.mark.parametrize("make", CASES)
def test_fixes_equal_those_without_integer_shortcuts(make: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point check on integers (``_point``), the per-class note's integer pruning and the
    shared prefix of layer conditions only save work: every candidate checked symbolically, every
    deferred output_padding verified and every layer set intersected in full give the same fixes."""
    fast = _fix_key(solve(make()))  # type: ignore[operator]
    monkeypatch.setattr(_fixes, "point_fails", lambda *a: False)
    monkeypatch.setattr(_fixes, "excludes", lambda *a: False)
    monkeypatch.setattr(_fixes, "_common_prefix", lambda base, res: 0)
    monkeypatch.setattr(_fixes, "_common_suffix", lambda base, res, k: 0)
    monkeypatch.setattr(_fixes, "_INFERRED", {})
    assert _fix_key(solve(make())) == fast  # type: ignore[operator]


def _solved(sol: object) -> tuple:
    """Every set and verdict a solve states (not its texts)."""
    syms = {n: (s.runs, s.layers, s.decided) for n, s in sol.symbols.items()}  # type: ignore[attr-defined]
    merges = [(m.constraint.value, m.constraint.axis, m.verdict, m.holds, m.fails, m.decided)
              for m in sol.merges]  # type: ignore[attr-defined]
    return syms, merges


@pytest.mark.parametrize("make", CASES)
def test_edited_solve_equals_full_solve(make: object) -> None:
    """``solve_edited`` (layer sets and the sizes where the graph runs met from the solved graph's
    over the conditions the two share) states the sets and verdicts of ``solve`` on every fixed
    graph: each fix's and each grouped skip fix's."""
    from convgraph.solve._solve import solve_edited

    sol = solve(make())  # type: ignore[operator]
    graphs = [f.graph for f in sol.fixes] + [f.graph for f in sol.skip_fixes]
    for g in graphs:
        try:
            want = _solved(solve(g, tiling=False))
        except ConvGraphError:
            continue
        assert _solved(solve_edited(sol, g)) == want
    assert graphs or not _failing(sol)
