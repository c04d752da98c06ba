"""The fixes as the user applies them: one verified edit per skip (every axis of the merge at once,
one keyword per layer: ``padding=1``, not ``padding=(1, 0)`` and ``padding=(0, 1)``), in the names
written in the file, with a structured source edit that ``convgraph fix`` applies to the text.

The per-merge candidates come from ``_fixes`` (one merge = one axis of one skip); here the
candidates of the merges of one skip (a cat / + / crop node) are combined per layer and keyword,
and each combination is verified by solving the edited graph: every merge of that skip proved,
the graph still has a valid size, and no merge that was proved before fails. The solve of an edited
graph is incremental (``_solve.solve_edited``: the shapes and layer sets re-derived only where the
edit changed them, no texts), and an edit that only adds exact assumes to a graph without
couplings is judged from the solved graph's sets (``_assumed_lines``); ``FULL`` (the tests'
reference path) solves it from scratch.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import Assume, Conv, Graph, LayerSpec, Node

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Fix, Solution

#: layer keywords an edit may set
KEYWORDS = ("output_padding", "padding", "ceil_mode")


@dataclass(frozen=True)
class Edit:
    """One change to the source. ``kind``: 'keyword' (set ``keyword=value`` on the constructor call
    at ``loc``), 'crop' (insert ``name = crop(operand, like=like)`` before the statement at ``loc``
    and use ``name`` for ``operand`` there), 'assume' (add ``assume(value)`` after the inputs)."""

    kind: str
    loc: Loc
    keyword: str = ""
    value: str = ""
    name: str = ""
    operand: str = ""
    like: str = ""

    def text(self, label: str = "") -> str:
        if self.kind == "keyword":
            return f"set `{self.keyword}={self.value}` on {label}"
        if self.kind == "crop":
            return (f"insert `{self.name} = crop({self.operand}, like={self.like})` before line {self.loc.line} "
                    f"and use {self.name} in place of {self.operand} there")
        return f"add `assume({self.value})` after the inputs"


@dataclass(frozen=True)
class SkipFix:
    """A verified fix of every failing merge of one skip (``value`` is the merge node)."""

    value: str
    where: str
    line: int
    kind: str
    edits: tuple[Edit, ...]
    edit: str  # the edit in words, pasteable
    holds: str
    graph: Graph = field(repr=False, compare=False)


def skip_fixes(sol: Solution) -> tuple[SkipFix, ...]:
    """Every verified grouped fix, per skip in source order, the preferred first."""
    by_skip: dict[str, list] = {}
    for f in sol.fixes:
        by_skip.setdefault(f.merge.constraint.value, []).append(f)
    out: list[SkipFix] = []
    for value, fixes in by_skip.items():
        seen: set[str] = set()
        for option in _options(sol, value, fixes):
            if option.edit not in seen:
                seen.add(option.edit)
                out.append(option)
    return tuple(out)


def best_per_skip(sol: Solution) -> tuple[SkipFix, ...]:
    """The first verified fix of each skip: what ``convgraph fix`` applies."""
    out: dict[str, SkipFix] = {}
    for f in skip_fixes(sol):
        out.setdefault(f.value, f)
    return tuple(out.values())


def _options(sol: Solution, value: str, fixes: list[Fix]) -> Iterator[SkipFix]:
    complete = [f for f in fixes if f.kind != "note"]
    for key, group in _layer_groups(sol.graph, complete).items():
        if FULL or not _partial_alone(group):
            yield from _verified(sol, value, fixes[0], "keyword", _combined(sol.graph, key, [s for _, s in group]))
    crops: list[Graph] = []
    for f in complete:
        if f.kind == "crop" and (FULL or not any(_same_graph(f.graph, g) for g in crops)):
            crops.append(f.graph)  # the H and W merges' crop is one edit: verified once (one SkipFix)
            yield from _verified(sol, value, fixes[0], "crop", f.graph)
    assumes = [f for f in complete if f.kind == "assume"]
    if assumes:
        yield from _verified(sol, value, fixes[0], "assume", _with_assumes(sol.graph, assumes))


def _same_graph(a: Graph, b: Graph) -> bool:
    """The same graph, the names written in the file included."""
    return a is b or (a.nodes == b.nodes and [n.source for n in a.nodes] == [n.source for n in b.nodes]
                      and a.assumes == b.assumes and a.outputs == b.outputs)


# --- one edit per layer and keyword ---------------------------------------------------------------


def _changed(before: Graph, after: Graph) -> list[tuple[Node, Node]]:
    """(old, new) layer nodes whose spec the edit changed."""
    return [(n, after.node(n.name)) for n in before.layers()
            if n.name in after._index and after.node(n.name).layer != n.layer]


def _layer_groups(graph: Graph, fixes: list[Fix]) -> dict[tuple[str, str], list[tuple[Fix, LayerSpec | None]]]:
    """(layer, keyword) -> the fixes that set it, each with the layer's new spec."""
    out: dict[tuple[str, str], list[tuple[Fix, LayerSpec | None]]] = {}
    for f in fixes:
        if f.kind in KEYWORDS:
            for old, new in _changed(graph, f.graph):
                out.setdefault((old.name, f.kind), []).append((f, new.layer))
    return out


def _partial_alone(group: list[tuple[Fix, LayerSpec | None]]) -> bool:
    """One partial fix alone sets the keyword: its combined graph is its own graph (its spec differs
    from the solved one in that keyword only), where its merge holds for some sizes the layers
    accept and not for others; ``solve`` meets the same conditions on that symbol alone for the
    layer set, so that merge is not proved there and ``_holds`` refuses it: nothing to verify."""
    return len(group) == 1 and not group[0][0].complete


def _combined(graph: Graph, key: tuple[str, str], specs: list) -> Graph | None:
    """The graph with every axis that some candidate changed changed together."""
    name, kw = key
    node = graph.node(name)
    old = node.spec
    new = getattr(old, kw)
    for spec in specs:
        got = getattr(spec, kw)
        if isinstance(new, tuple):
            new = tuple(g if g != o else n for n, g, o in zip(new, got, getattr(old, kw)))
        else:
            new = got
    spec = replace(old, **{kw: new})
    nodes = tuple(replace(n, layer=spec) if n.name == name else n for n in graph.nodes)
    return Graph(nodes, graph.outputs, graph.filename, graph.doc, graph.assumes, graph.expects)


def _with_assumes(graph: Graph, fixes: list[Fix]) -> Graph:
    extra: list[Assume] = []
    for f in fixes:
        a = f.graph.assumes[-1]
        if all(a.text != b.text for b in extra):
            extra.append(a)
    return Graph(graph.nodes, graph.outputs, graph.filename, graph.doc, graph.assumes + tuple(extra), graph.expects)


# --- verification and the source edits -------------------------------------------------------------


def _verified(sol: Solution, value: str, first: Fix, kind: str, graph: Graph | None) -> Iterator[SkipFix]:
    from convgraph.solve._report import valid_lines

    if graph is None:
        return
    lines = _assumed_lines(sol, value, graph) if kind == "assume" and not FULL else None
    if lines is None:
        try:
            new = _solve_edited(sol, graph)
        except ConvGraphError:
            return
        if not new.ok or not _holds(sol, new, value):  # .ok: no hints, so no fix search on the edited graph
            return
        lines = valid_lines(new)
    if not lines:
        return
    edits = _edits(sol.graph, graph, kind)
    if not edits:
        return
    words = "; ".join(e.text(_label(sol.graph, e)) for e in edits)
    holds = "the edited graph runs for " + "; ".join(lines)
    yield SkipFix(value, first.where, first.line, kind, edits, words, holds, graph)


def _assumed_lines(sol: Solution, value: str, graph: Graph) -> list[str] | None:
    """For a graph that only adds assumes (``_incremental.assumed_runs``): ``valid_lines`` of the
    edited graph when ``_verified`` accepts it, [] when it does not; None when that cannot be read
    off the solved graph (then it is solved). Accepted: ``ok`` (no symbol without a size, no merge
    that never holds: a merge's holding set contains its symbol's running set, so a running set
    that is not empty leaves none), and ``_holds``: every merge of the skip proved (its failing set
    is the solved graph's met with what the assumes allow; the layer set is not empty) and every
    merge proved before still proved (its failing set was empty: it stays empty)."""
    from convgraph.solve._incremental import assumed_runs
    from convgraph.solve._report import valid_lines

    got = assumed_runs(sol, graph)
    if got is None:
        return None
    runs, allowed = got
    if any(s.empty for s in runs.values()):
        return []
    for m in sol.merges:
        if m.constraint.kind != "merge" or m.constraint.value != value:
            continue
        n = m.one_symbol
        if (not (m.fails_set & allowed[n]).empty) if n in allowed else m.verdict != "proved":
            return []
    return valid_lines(sol, runs)


def _solve_edited(sol: Solution, graph: Graph) -> Solution:
    """The edited graph solved: incrementally from ``sol`` (verdicts and sets, no texts), or in
    full (``solve(graph, tiling=False)``) on the reference path (``FULL``)."""
    from convgraph.solve._solve import solve, solve_edited

    return solve(graph, tiling=False) if FULL else solve_edited(sol, graph)


#: the reference path: verify every grouped edit by a full solve of the edited graph (tests)
FULL = False


def _holds(sol: Solution, new: Solution, value: str) -> bool:
    """Every merge of the skip proved on the edited graph; every merge proved before still proved."""
    proved = {(m.constraint.value, m.constraint.rule, m.constraint.axis) for m in sol.merges if m.verdict == "proved"}
    for m in new.merges:
        key = (m.constraint.value, m.constraint.rule, m.constraint.axis)
        if m.constraint.kind == "merge" and (m.constraint.value == value or key in proved) and m.verdict != "proved":
            return False
    return True


def _label(graph: Graph, e: Edit) -> str:
    if e.kind != "keyword":
        return ""
    node = next(n for n in graph.layers() if n.loc == e.loc)
    return f"{node.spec.type_name} '{node.layer_name}' (line {node.loc.line})"


def _edits(before: Graph, after: Graph, kind: str) -> tuple[Edit, ...]:
    if kind == "keyword":
        return tuple(e for old, new in _changed(before, after) for e in _keyword_edits(old, new))
    if kind == "crop":
        return tuple(_crop_edit(before, after))
    added = after.assumes[len(before.assumes):]
    return (Edit("assume", after.assumes[-1].loc, value=", ".join(a.text for a in added)),)


def _keyword_edits(old: Node, new: Node) -> Iterator[Edit]:
    for kw in KEYWORDS:
        if hasattr(old.layer, kw) and getattr(old.layer, kw) != getattr(new.layer, kw):
            yield Edit("keyword", old.loc, keyword=kw, value=user_value(new.spec, kw))


def user_value(spec: LayerSpec, kw: str) -> str:
    """A keyword's value as the user writes it: ``1`` for (1, 1), ``(1, 2)``, ``True``."""
    v = getattr(spec, kw)
    if kw == "padding" and isinstance(spec, Conv):
        v = tuple(b for b, _ in v)
    if isinstance(v, tuple):
        return str(v[0]) if len(set(v)) == 1 else "(" + ", ".join(map(str, v)) + ")"
    return repr(v)


def _crop_edit(before: Graph, after: Graph) -> Iterator[Edit]:
    for n in after.nodes:
        if n.op == "crop" and n.name not in before._index:
            v, w = n.inputs
            yield Edit("crop", n.loc, name=n.source or n.name, operand=before.node(v).source or v,
                       like=before.node(w).source or w)
