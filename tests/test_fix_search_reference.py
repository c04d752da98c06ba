"""The fix search's shortcuts only save work: on every model and on random U-Net-like graphs
(strides 2 and 3, skips, crops, transposed convs, different H and W parameters), the fixes and
the grouped skip fixes equal those of the slow, obviously-correct reference path, which re-infers
every candidate graph in full, checks every candidate symbolically (no integer point check, no
pruning, no shared prefix of layer conditions) and verifies every grouped edit by a full
``solve`` of the edited graph."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.errors import LayerConfigError
from convgraph.ir import Graph
from convgraph.shapes import infer
from convgraph.solve import _edits, _fixes, solve
from convgraph.solve._solve import Solution
from test_solve import B

MODELS = Path(__file__).resolve().parent.parent / "models"
GRAPH_FILES = sorted(MODELS.glob("*.cg")) + sorted((MODELS / "examples").glob("*.cg"))


@contextmanager
def _reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The reference path: every shortcut of the fix search switched off."""
    with monkeypatch.context() as mp:
        mp.setattr(_fixes, "REFERENCE", True)
        mp.setattr(_fixes, "infer_edited", lambda base, graph: infer(graph))
        mp.setattr(_fixes, "point_fails", lambda *a: False)
        mp.setattr(_fixes, "excludes", lambda *a: False)
        mp.setattr(_fixes, "_common_prefix", lambda base, res: 0)
        mp.setattr(_fixes, "_INFERRED", {})
        mp.setattr(_edits, "FULL", True)
        yield


def _shown(sol: Solution) -> tuple[list[tuple], list[tuple]]:
    """Everything the fixes and skip fixes show, and the edited graphs' nodes."""
    fixes = [(f.where, f.edit, f.holds, f.complete, f.kind, f.sizes, f.graph.nodes, f.graph.assumes)
             for f in sol.fixes]
    skips = [(f.value, f.where, f.line, f.kind, f.edits, f.edit, f.holds, f.graph.nodes, f.graph.assumes)
             for f in sol.skip_fixes]
    return fixes, skips


def _same_as_reference(make: Callable[[], Graph], monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    fast = _shown(solve(make()))
    with _reference(monkeypatch):
        slow = _shown(solve(make()))
    assert fast == slow
    return fast


@pytest.mark.slow
@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_model_fixes_equal_reference(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_reference(lambda: cg.load(str(path)), monkeypatch)


# --- random U-Net-like graphs ------------------------------------------------------------------

C = 2


def _pair(draw: st.DrawFn, nd: int, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


def _down(draw: st.DrawFn, b: B, x: str, nd: int) -> str:
    kind = draw(st.sampled_from(["conv", "maxpool", "avgpool"]))
    s = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(nd))
    if kind == "conv":
        k = _pair(draw, nd, 1, 4)
        return b.layer(f"Conv{nd}d", x, C, C, k, stride=s, padding=_pair(draw, nd, 0, 2))
    k = _pair(draw, nd, 2, 3)
    pad = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    return b.layer(f"{'Max' if kind == 'maxpool' else 'Avg'}Pool{nd}d", x, k, stride=s, padding=pad,
                   ceil_mode=draw(st.booleans()))


def _up(draw: st.DrawFn, b: B, x: str, nd: int) -> str:
    s = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(nd))
    k = _pair(draw, nd, 1, 4)
    op = tuple(draw(st.integers(0, si - 1)) for si in s)
    return b.layer(f"ConvTranspose{nd}d", x, C, C, k, stride=s, padding=_pair(draw, nd, 0, 1), output_padding=op)


def _same(draw: st.DrawFn, b: B, x: str, nd: int) -> str:
    k = draw(st.sampled_from([1, 3]))
    return b.layer(f"Conv{nd}d", x, C, C, k, padding=draw(st.sampled_from([0, k // 2])))


@st.composite
def unet_like(draw: st.DrawFn) -> Graph:
    nd = draw(st.sampled_from([1, 2, 2]))
    b = B()
    x = b.input("x", 1, C, *(["L"] if nd == 1 else ["H", "W"]))
    skips = []
    try:
        for _ in range(draw(st.integers(1, 3))):
            x = _same(draw, b, x, nd)
            skips.append(x)
            x = _down(draw, b, x, nd)
        for s in reversed(skips):
            x = _up(draw, b, x, nd)
            op = draw(st.sampled_from(["cat", "cat", "add", "crop"]))
            if op == "crop":
                s = b.merge("crop", s, x)
                op = "cat"
            x = _same(draw, b, b.merge(op, s, x), nd)
        g = b.graph()
        infer(g)
    except (LayerConfigError, cg.ConvGraphError):
        assume(False)
    return g


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(unet_like())
def test_random_fixes_equal_reference(graph: Graph) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_as_reference(lambda: Graph(graph.nodes, graph.outputs, graph.filename, graph.doc, graph.assumes,
                                         graph.expects), monkeypatch)


def test_random_graphs_have_fixes_to_compare() -> None:
    """The comparison above is not vacuous: the generator gives graphs with fixes and skip fixes."""
    seen = [0, 0]

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(unet_like())
    def count(graph: Graph) -> None:
        sol = solve(graph)
        seen[0] += bool(sol.fixes)
        seen[1] += bool(sol.skip_fixes)

    count()
    assert seen[0] >= 5 and seen[1] >= 5, seen
