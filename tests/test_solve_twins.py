"""The W merge's candidates taken as its H merge's swapped without comparing their specs
(``_fixes._generated_twins``), against the comparison (``_twin_candidates``)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

import convgraph as cg
from convgraph.solve import _fixes, solve
from convgraph.solve._symmetry import symmetric

MODELS = Path(__file__).resolve().parent.parent / "models"
sys.path.insert(0, str(MODELS.parent / "benchmarks"))
import bench_solver_scaling as bench  # noqa: E402

GRAPHS = {"unet_padded_4": lambda: bench.unet(4), "unet3d_3": lambda: bench.unet(3, nd=3),
          "unet_unpadded_3": lambda: bench.unet(3, padded=False),
          "unet.cg": lambda: cg.load(str(MODELS / "unet.cg")),
          "unet3d.cg": lambda: cg.load(str(MODELS / "unet3d.cg")),
          "unet_strided.cg": lambda: cg.load(str(MODELS / "unet_strided.cg"))}


def _pairs(sol: object) -> list[tuple]:
    """(m1, m, their candidates) for the merges of one node on two axes of a symmetric graph."""
    merges = [m for m in sol.merges if m.symbol is not None and m.constraint.kind == "merge"]  # type: ignore[attr-defined]
    out = []
    for i, m1 in enumerate(merges):
        for m in merges[i + 1:]:
            a, b = _fixes._axis_of(sol, m1), _fixes._axis_of(sol, m)  # type: ignore[arg-type]
            if m1.constraint.value == m.constraint.value and a >= 0 and b >= 0 and m1.symbol != m.symbol and \
                    symmetric(sol.graph, a, b, m1.symbol, m.symbol):  # type: ignore[attr-defined]
                out.append((m1, m, list(_fixes._candidates(sol, m1)), list(_fixes._candidates(sol, m)), a, b))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("name", list(GRAPHS))
def test_candidates_taken_as_swapped_are_swapped(name: str) -> None:
    sol = solve(GRAPHS[name]())
    pairs = _pairs(sol)
    seen = 0
    for m1, m, c1, c, a, b in pairs:
        for x, y in zip(c1, c):
            if _fixes._generated_twins(x, y):
                seen += 1
                assert _fixes._twin_candidates(sol, x, y, a, b, m1.symbol, m.symbol)
    if name != "unet_unpadded_3":
        assert seen


def _block(x: object) -> tuple:
    """(kind, edited position) of a candidate: which per-layer block it belongs to."""
    edited = x.edited  # type: ignore[attr-defined]
    return x.kind, edited[0] if edited is not None else None  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["unet_padded_4", "unet3d_3", "unet.cg"])
def test_candidates_out_of_step_are_not_twins(name: str) -> None:
    sol = solve(GRAPHS[name]())
    rng = random.Random(7)
    for m1, m, c1, c, *_ in _pairs(sol):
        assert _fixes._twins(sol, m1, m, c1, c)
        for _ in range(5):
            i, j = sorted(rng.sample(range(len(c)), 2))
            moved = c[:i] + c[i + 1:j + 1] + [c[i]] + c[j + 1:]  # one candidate moved later
            if any(_block(x) != _block(y) for x, y in zip(moved, c)):
                assert not _fixes._twins(sol, m1, m, c1, moved)


def _eligible(m: object) -> bool:
    c = m.constraint  # type: ignore[attr-defined]
    return c.kind == "merge" and m.symbol is not None and m.verdict in ("classes", "never") and \
        c.op in ("==", ">=", ">") and m.holds is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(GRAPHS))
def test_swapped_candidates_are_the_candidates_where_read(name: str) -> None:
    """The W merge's candidates made from its H twin's (``_swapped_candidates``) are ``_candidates``
    one by one: equal wherever a result is read, of the same kind and layer where one stands in."""
    sol = solve(GRAPHS[name]())
    done: list = []
    swapped = 0
    for m in sol.merges:
        if not _eligible(m):
            continue
        plain = list(_fixes._candidates(sol, m))  # type: ignore[arg-type]
        got = _fixes._swapped_candidates(sol, m, done)  # type: ignore[arg-type]
        if got is not None:
            swapped += 1
            cands, (_, _, raw) = got
            assert len(cands) == len(plain)
            for x, y, v in zip(cands, plain, raw):
                assert _block(x) == _block(y)
                if v is not None or y.kind not in ("padding", "ceil_mode"):
                    assert x == y and x.edit == y.edit and x.graph.nodes == y.graph.nodes
        done.append((m, *_fixes._searched(sol, m, done)))  # type: ignore[arg-type]
    if name != "unet_unpadded_3":
        assert swapped
