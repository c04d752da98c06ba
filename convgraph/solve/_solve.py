"""The solver: for every input symbol, the exact set of sizes at which the graph runs and the set
at which it tiles exactly; for every merge point (cat, +, crop, Linear, expect) a verdict; and
verified fixes for the merges that fail.

>>> import convgraph as cg
>>> sol = cg.solve(cg.load("models/encdec1d_stride4.cg"))
>>> sol.describe_runs("L")
'L >= 16, L % 16 in {0, 1, 2, 3}'
>>> sol.nearest("L", 100)
(99, 112)

How (see DESIGN.md, "Exact dim algebra"): every constraint the shape stage records is a condition
on the input symbols. A condition on one symbol has an exact, eventually periodic solution set
(``_sets.condition_set``). Per symbol:

- ``layers`` = the layers' own rules (``kind == 'size'``) and the ``assume`` statements;
- ``runs``   = ``layers`` and every merge on that symbol alone, narrowed by every condition that
  couples it to other symbols, solved exactly: a Linear after Flatten (``_sets.product_coupling``),
  a bound from below on a product (``_products``), ``f(A) op g(B)`` through monotone layers (a cat
  of two inputs, ``assume(W == H)``: ``_pairs``), a sum of monotone terms compared with a constant
  or a bound on a product of them (three symbols, ``assume(H + W == 64)``, ``assume(H * W <= 4096)``:
  ``_relations``, with the sums of the value sets on the digit tries: ``_sums``), jointly where they
  share symbols (``_joint``): what PyTorch accepts;
- ``exact``  = ``runs`` and, at every strided Conv/Pool, the windows tile the input exactly: no
  trailing input row is discarded and no ceil-mode window runs past the padding (``Tiling``);
  without padding that is ``(i - ek) % s == 0``, the property the U-Net paper's 572 has.

Each merge is judged over ``layers`` only (never over the other merges, so no verdict depends on
itself): ``proved``, ``classes`` (holds exactly on residue classes), ``never`` (with the smallest
counterexample), or ``coupled`` (it relates two symbols; then the admissible tuples are stated).
"""
from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.errors import ShapeError
from convgraph.ir import Conv, Graph, Pool
from convgraph.shapes import Constraint, ShapeResult, infer
from convgraph.solve._coupled import Coupling, narrow
from convgraph.solve._sets import (
    CondSet,
    EPSet,
    condition_set,
    edited_radix,
    intersect_all,
    minus,
    subset,
    symbol_radix,
)

#: symbol -> the digit order its conditions are solved in (``symbol_radix``)
Radix = Mapping[str, tuple[int, ...]]

__all__ = ["Coupling", "Fix", "Merge", "Solution", "SymbolSizes", "solve"]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolSizes:
    """The size sets of one input symbol. ``decided`` (for ``runs``) and ``exact_decided`` (for
    ``exact``) are False when some condition had no usable period (a non-dyadic Upsample scale) and
    was checked size by size over ``1..BRUTE_LIMIT`` only.
    ``exact`` is None when the solve was asked to skip tiling (``solve(graph, tiling=False)``)."""

    name: str
    runs: EPSet
    exact: EPSet | None
    layers: EPSet
    decided: bool = True
    constrained: bool = True
    exact_decided: bool = True

    @property
    def tiles(self) -> EPSet:
        """``exact``, narrowed: raises when the solve skipped tiling (``tiling=False``)."""
        if self.exact is None:
            raise ValueError(f"{self.name}: the exact-tiling set was not computed (solve(graph, tiling=False))")
        return self.exact


@dataclass(frozen=True)
class Merge:
    """The verdict on one merge condition (or one dim of an ``expect``).

    verdict: 'proved' | 'classes' | 'never' | 'coupled'. ``holds`` / ``fails`` are the sizes (of
    the symbol, within its ``layers`` set) where the condition holds / fails; ``counterexample`` is
    ``{"sizes": {...}, "lhs": int, "rhs": int}`` for 'never' (and the smallest failing size for
    'classes')."""

    constraint: Constraint
    where: str
    verdict: str
    message: str
    symbols: tuple[str, ...]
    holds: EPSet | None = None
    fails: EPSet | None = None
    counterexample: dict[str, Any] | None = None
    decided: bool = True

    @property
    def one_symbol(self) -> str:
        """``symbol``, narrowed: every verdict but 'coupled' is about one symbol."""
        if self.symbol is None:
            raise ValueError(f"{self.where}: a coupled condition has no single symbol")
        return self.symbol

    @property
    def holds_set(self) -> EPSet:
        """``holds``, narrowed (set for every verdict but 'coupled')."""
        if self.holds is None:
            raise ValueError(f"{self.where}: a coupled condition has no set of sizes")
        return self.holds

    @property
    def fails_set(self) -> EPSet:
        """``fails``, narrowed (set for every verdict but 'coupled')."""
        if self.fails is None:
            raise ValueError(f"{self.where}: a coupled condition has no set of sizes")
        return self.fails

    @property
    def line(self) -> int:
        return self.constraint.loc.line

    @property
    def condition(self) -> str:
        return self.constraint.condition()

    @property
    def symbol(self) -> str | None:
        return self.symbols[0] if len(self.symbols) == 1 else None


@dataclass(frozen=True)
class Fix:
    """A verified edit for a failing merge. ``graph`` is the edited graph; on it the merge holds
    for ``sizes`` (every size the edited graph's layers accept when ``complete``)."""

    merge: Merge
    edit: str
    holds: str
    sizes: EPSet
    complete: bool
    graph: Graph = field(repr=False, compare=False)
    kind: str = ""  # 'output_padding' | 'padding' | 'ceil_mode' | 'crop' | 'assume' | 'note'

    @property
    def where(self) -> str:
        return self.merge.where

    @property
    def line(self) -> int:
        return self.merge.line


@dataclass(frozen=True)
class Solution:
    """The solver's frozen result; ``fixes`` is computed on first access (it rebuilds the graph
    once per candidate edit)."""

    graph: Graph
    result: ShapeResult = field(repr=False)
    symbols: dict[str, SymbolSizes]
    merges: tuple[Merge, ...]
    couplings: tuple[Coupling, ...] = ()
    notes: tuple[str, ...] = ()

    def runs(self, name: str) -> EPSet:
        return self.symbols[name].runs

    def exact(self, name: str) -> EPSet:
        return self.symbols[name].tiles

    def nearest(self, symbol: str, x: int, exact: bool = False) -> tuple[int | None, int | None]:
        """The largest valid size <= x and the smallest >= x (None where there is none)."""
        s = self.symbols[symbol]
        return (s.tiles if exact else s.runs).near(x)

    def valid_at(self, env: Mapping[str, int]) -> bool:
        """Whether the graph runs at these sizes (every symbol given): every constraint holds,
        expects and couplings included; exactly what ``convgraph shapes --at`` accepts."""
        return set(env) >= set(self.symbols) and all(
            isinstance(v, int) and v >= 1 for v in env.values()) and \
            all(c.holds(env) for c in self.result.constraints)

    def coupled(self, name: str) -> tuple[Coupling, ...]:
        """The couplings (conditions relating several symbols) that involve ``name``."""
        return tuple(cp for cp in self.couplings if name in cp.symbols)

    def no_valid_size(self) -> ShapeError | None:
        """The error every verb raises (exit 2) when the graph has no valid size, else None."""
        from convgraph.solve._report import no_valid_size

        return no_valid_size(self)

    def describe_runs(self, name: str) -> str:
        from convgraph.solve._report import describe_set

        return describe_set(self.symbols[name].runs, name)

    @property
    def ok(self) -> bool:
        """False when some symbol has no valid size, or some merge / expect never holds."""
        return not any(s.runs.empty for s in self.symbols.values()) and \
            not any(m.verdict == "never" for m in self.merges)

    @cached_property
    def fixes(self) -> tuple[Fix, ...]:
        from convgraph.solve._fixes import find_fixes

        return find_fixes(self)

    @cached_property
    def skip_fixes(self) -> tuple:
        """The fixes as the user applies them: per skip, each verified edit of every axis at once,
        in the file's names (``convgraph.solve._edits.SkipFix``), the preferred first."""
        from convgraph.solve._edits import skip_fixes

        return skip_fixes(self)

    def metadata(self) -> dict[str, str]:
        from convgraph.solve._report import metadata

        return metadata(self)

    def to_json(self) -> dict:
        from convgraph.solve._report import to_json

        return to_json(self)

    def text(self, near: Mapping[str, int] | None = None) -> str:
        from convgraph.solve._report import to_text

        return to_text(self, near or {})


# --------------------------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------------------------


def _cond(c: Constraint, name: str, radix: Radix | None = None) -> CondSet:
    return condition_set(c.lhs, c.op, c.rhs, name, (radix or {}).get(name, ()))


def _meet(conds: Iterable[CondSet]) -> tuple[EPSet, bool]:
    """Intersection of CondSets, and whether all were exact."""
    sets = list(conds)
    return intersect_all(s.sizes for s in sets), all(s.exact for s in sets)


def solve(graph: Graph, tiling: bool = True) -> Solution:
    """Solve every input symbol's valid sizes and judge every merge point (see the module doc).
    ``tiling=False`` skips the exact-tiling sets (``exact`` is None then): ``convgraph shapes``
    shows only where the graph runs. Raises ShapeError at an ``assume`` that leaves no valid size.
    Computed once per graph: a later ``tiling=False`` request reuses a full solution."""
    if not tiling and (solve, True) in graph._memo:
        return graph.memo((solve, True), lambda: _solve(graph, True))
    return graph.memo((solve, tiling), lambda: _solve(graph, tiling))


def _solve(graph: Graph, tiling: bool) -> Solution:
    return _solve_result(graph, infer(graph), tiling, True)


def solve_edited(base: Solution, graph: Graph) -> Solution:
    """``solve(graph, tiling=False)`` for a graph that differs from ``base.graph`` by a fix's edit,
    for verifying the edit: the shapes re-inferred only where the edit changed them
    (``infer_edited``), every verdict, set and valid size as ``solve`` has them, but no texts
    (merge and coupling messages are empty). Remembered on the graph under its own key (the fix
    search and the grouped fixes verify the same crop graph); ``solve(graph)`` stays the full
    solve. Raises as ``solve`` does."""
    from convgraph.solve._incremental import infer_edited

    key = (solve_edited, id(base))
    got = graph._memo.get(key)
    if isinstance(got, tuple) and got[0] is base:
        return got[1]
    sol = _solve_result(graph, infer_edited(base.result, graph), False, False, base)
    graph._memo[key] = (base, sol)
    return sol


def _solve_result(graph: Graph, res: ShapeResult, tiling: bool, messages: bool, base: Solution | None = None
                  ) -> Solution:
    from convgraph.solve._incremental import edited_mirrors, merged_runs

    names = res.sym_names
    single, constrained = _single(res)
    rx = symbol_radix(res) if base is None else edited_radix(base.result, res)
    mirror = edited_mirrors(base, graph, rx) if base is not None else {}
    layers, decided = _layers(res, single, rx, base, mirror)
    expects = {(e.loc, e.value): e.text for e in graph.expects}
    judge = _judge if base is None else _Rejudge(base, layers, decided, rx)
    merges, whole = _judge_all(graph, res, judge, expects, layers, decided, rx, messages, mirror)
    runs = dict(layers) if base is None else merged_runs(base, layers, [m for m in merges if m.symbol not in whole], rx)
    for m in merges:  # an expect takes part in the valid sizes like a merge (DESIGN.md, Conditions)
        if m.symbol is not None:
            if base is None:
                runs[m.symbol] = runs[m.symbol] & _cond(m.constraint, m.symbol, rx).sizes
            decided[m.symbol] &= m.decided
    for s in whole:  # every merge on s is one on mirror[s], one to one: the same meet
        runs[s] = runs[mirror[s]]
    couplings, coupling_notes = narrow(res, runs, messages)
    _check_assumes(res, {n: cs for n, cs in single.items() if not _mirrored_later(n, mirror, names)}, runs, decided, rx)
    exact: Mapping[str, EPSet | None] = {n: None for n in names}
    notes: list[str] = []
    exact_decided: dict[str, bool] = {}
    if tiling:
        exact, notes, exact_decided = _tiling(graph, res, runs, rx)
    notes += coupling_notes
    symbols = {n: SymbolSizes(n, runs[n], exact[n], layers[n], decided[n], n in constrained,
                              decided[n] and exact_decided.get(n, True)) for n in names}
    merges = [_with_coupling(m, couplings) for m in merges]
    return Solution(graph, res, symbols, tuple(merges), tuple(couplings), tuple(notes))


def _single(res: ShapeResult) -> tuple[dict[str, list[Constraint]], set[str]]:
    """(per symbol, in order: the conditions on it alone; every symbol some condition involves),
    in one pass over the conditions."""
    single: dict[str, list[Constraint]] = {n: [] for n in res.sym_names}
    constrained: set[str] = set()
    for c in res.constraints:
        syms = c.symbols
        constrained |= syms
        if len(syms) == 1:
            (n,) = syms
            if n in single:
                single[n].append(c)
    return single, constrained


def _mirrored_later(n: str, mirror: Mapping[str, str], names: tuple[str, ...]) -> bool:
    """``n``'s conditions are those of an earlier symbol, renamed (``_check_assumes`` of that
    one raises first, or passes for both)."""
    return n in mirror and names.index(mirror[n]) < names.index(n)


def _judge_all(graph: Graph, res: ShapeResult, judge: Any, expects: Mapping, layers: Mapping[str, EPSet],
               decided: Mapping[str, bool], rx: Radix, messages: bool, mirror: Mapping[str, str]
               ) -> tuple[list[Merge], set[str]]:
    """Every merge point judged, and the mirrored symbols whose merges are all their twins'
    (``_incremental.mirrored``; none without ``mirror``)."""
    from convgraph.solve._incremental import mirrored

    def one(c: Constraint) -> Merge:
        return judge(c, _where(c, expects), layers, decided, rx, messages)

    points = _merge_points(graph, res)
    if not mirror:
        return [one(c) for c in points], set()

    def twin(c: Constraint, t: Merge) -> Merge:
        where = _where(c, expects)
        kept = judge.kept(c, where)
        return kept if kept is not None else _twin_verdict(c, where, next(iter(c.symbols)), t)

    return mirrored(points, one, twin, mirror)


def _layers(res: ShapeResult, single: Mapping[str, list[Constraint]], rx: Radix, base: Solution | None,
            mirror: Mapping[str, str]) -> tuple[dict[str, EPSet], dict[str, bool]]:
    """Per symbol: the sizes its layers and assumes accept, and whether that set is exact (on an
    edited graph, from the base's sets over the conditions the two share: ``edited_layers``; a
    mirrored symbol's are its twin's: its conditions are the twin's, renamed)."""
    from convgraph.solve._incremental import edited_layers

    got: dict[str, tuple[EPSet, bool]] = {}
    base_rx = _base_radix(base) if base is not None else {}
    for n in res.sym_names:
        if n in mirror:
            continue
        one = edited_layers(base.result, base_rx, res, rx, n) if base is not None else None
        got[n] = one if one is not None else _meet(_cond(c, n, rx) for c in single[n] if c.kind in ("size", "assume"))
    for m, n in mirror.items():
        got[m] = got[n]
    return {n: got[n][0] for n in res.sym_names}, {n: got[n][1] for n in res.sym_names}


def _base_radix(base: Solution) -> Radix:
    from convgraph.solve._incremental import solved_radix

    return solved_radix(base)


def _by_condition(base: Solution) -> dict[int, Merge]:
    """The base's verdicts on one symbol by condition object (once per solution, on its graph)."""
    got = base.graph.memo((_by_condition, id(base)), lambda: (base, {id(m.constraint): m for m in base.merges
                                                                     if m.symbol is not None}))
    return got[1] if got[0] is base else {id(m.constraint): m for m in base.merges if m.symbol is not None}


class _Rejudge:
    """``_judge`` on an edited graph: a merge whose condition is the solved graph's own (the same
    object) over the same layer set, as exact, has the solved graph's verdict and sets."""

    def __init__(self, base: Solution, layers: Mapping[str, EPSet], decided: Mapping[str, bool], rx: Radix):
        from convgraph.solve._incremental import prefix_layers

        self.before = _by_condition(base)
        base_rx = _base_radix(base)
        self.same = {n for n in layers if n in base.symbols and base.symbols[n].layers == layers[n]
                     and base_rx.get(n, ()) == rx.get(n, ())
                     and prefix_layers(base.result, n, rx.get(n, ()))[-1][1] == decided[n]}
        self.within = {n for n in layers if n not in self.same and n in base.symbols
                       and base_rx.get(n, ()) == rx.get(n, ()) and subset(layers[n], base.symbols[n].layers)}

    def kept(self, c: Constraint, where: str) -> Merge | None:
        """The solved graph's verdict on ``c`` when it is the solved graph's condition (the same
        object) over the same layer set, as exact; else None."""
        m = self.before.get(id(c))
        return m if m is not None and m.constraint is c and m.where == where and m.symbol in self.same else None

    def __call__(self, c: Constraint, where: str, layers: Mapping[str, EPSet], decided: Mapping[str, bool],
                 rx: Radix | None = None, messages: bool = True) -> Merge:
        kept = self.kept(c, where)
        if kept is not None:
            return kept
        m = self.before.get(id(c))
        if m is not None and m.constraint is c and m.symbol in self.within and not messages and \
                m.holds is not None and m.fails is not None:
            # over a layer set L' inside the base's L: holds = cond & L' = (cond & L) & L', and
            # fails = L' - cond = L' & (L - cond)
            n = m.symbol
            return _verdict(c, where, n, layers[n], m.holds & layers[n], m.fails & layers[n],
                            _cond(c, n, rx).exact and decided[n])
        return _judge(c, where, layers, decided, rx, messages)


# --- merges --------------------------------------------------------------------------------------


def _merge_points(graph: Graph, res: ShapeResult) -> list[Constraint]:
    """The merge and expect constraints in source order, plus the spatial expect dims that the shape
    stage found identical at build time (so that every symbolic expect gets a verdict)."""
    out = [c for c in res.constraints if c.kind in ("merge", "expect")]
    for e in graph.expects:
        got = res.values[e.value]
        for j, (a, b) in enumerate(zip(got, e.dims)):
            if j >= 2 and D.lower(a) == D.lower(b) and D.symbols(a):
                rule = f"dim {j} of '{e.value}' is expected to be {D.dim_str(b)}"
                out.append(Constraint(e.value, "expect", e.loc, rule, D.lower(a), "==", D.lower(b), "expect"))
    return sorted(out, key=lambda c: (c.loc.line, c.loc.col))


def _judge(c: Constraint, where: str, layers: Mapping[str, EPSet], decided: Mapping[str, bool],
           rx: Radix | None = None, messages: bool = True) -> Merge:
    """proved / classes / never over the symbol's layer-valid sizes; 'coupled' for several symbols.
    Without ``messages`` the message is left empty (a verification solve never shows it)."""
    from convgraph.solve._report import merge_message

    syms = tuple(sorted(c.symbols))
    if len(syms) != 1:
        return Merge(c, where, "coupled", "", syms)
    (n,) = syms
    base = layers[n]
    cs = _cond(c, n, rx)
    holds = cs.sizes & base
    m = _verdict(c, where, n, base, holds, minus(base, holds), cs.exact and decided[n])
    return _replace_message(m, merge_message(m, base)) if messages else m


def _verdict(c: Constraint, where: str, n: str, base: EPSet, holds: EPSet, fails: EPSet, decided: bool) -> Merge:
    """The merge on symbol ``n`` alone with these sets over its layer set ``base`` (no message)."""
    verdict = "proved" if fails.empty and not base.empty else "never" if holds.empty else "classes"
    cex = None
    if not fails.empty:
        x = fails.least
        cex = {"sizes": {n: x}, "lhs": D.evaluate(c.lhs, {n: x}), "rhs": D.evaluate(c.rhs, {n: x})}
    return Merge(c, where, verdict, "", (n,), holds, fails, cex, decided)


def _twin_verdict(c: Constraint, where: str, n: str, t: Merge) -> Merge:
    """``_verdict`` of ``c`` on ``n`` from its twin ``t`` (``c``'s sides are ``t``'s with ``t``'s
    symbol written n, over the same layer set): the same sets and verdict, and the counterexample
    at the same size, where the sides take ``t``'s values."""
    got = t.counterexample
    cex = None if got is None else {"sizes": {n: got["sizes"][t.symbols[0]]}, "lhs": got["lhs"], "rhs": got["rhs"]}
    return Merge(c, where, t.verdict, "", (n,), t.holds, t.fails, cex, t.decided)


def _replace_message(m: Merge, message: str) -> Merge:
    return replace(m, message=message)


def _where(c: Constraint, expects: Mapping) -> str:
    if c.kind == "expect":
        text = expects.get((c.loc, c.value))
        return f"expect({text})" if text is not None else f"expect at '{c.value}'"
    return c.where


def _with_coupling(m: Merge, couplings: list[Coupling]) -> Merge:
    if m.verdict != "coupled":
        return m
    cp = next(cp for cp in couplings if cp.constraint is m.constraint)
    if cp.empty:
        return _replace_message(Merge(m.constraint, m.where, "never", "", m.symbols), cp.message)
    return _replace_message(m, cp.message)


# --- assume ----------------------------------------------------------------------------------


def _check_assumes(res: ShapeResult, single: Mapping[str, list[Constraint]], runs: Mapping[str, EPSet],
                   decided: Mapping[str, bool], rx: Radix | None = None) -> None:
    """An ``assume`` that leaves a symbol no valid size is an error at that assume's position
    (unless the graph has no valid size for that symbol even without any assume)."""
    from convgraph.solve._report import describe_set

    for n, cs in single.items():
        assumes = [c for c in cs if c.kind == "assume"]
        if not assumes:
            continue
        without = _without_assumes([c for c in cs if c.kind in ("size", "merge")], n, rx)
        allowed = EPSet.all()
        for c in assumes:
            allowed = allowed & _cond(c, n, rx).sizes
            if allowed.empty:
                raise ShapeError(f"{c.value} leaves no valid size for {n}: the assumptions "
                                 f"contradict each other", c.loc)
            if not without.empty and (without & allowed).empty:
                raise ShapeError(f"{c.value} leaves no valid size for {n}: the graph runs for "
                                 f"{describe_set(without, n)}, the assumptions allow "
                                 f"{describe_set(allowed, n)}", c.loc)


def _without_assumes(cs: list[Constraint], n: str, rx: Radix | None) -> EPSet:
    """The sizes of ``n`` the layers and merges accept, assumes aside: remembered for the same
    condition objects (an ``assume`` fix's edited graph has the solved graph's)."""
    r = (rx or {}).get(n, ())
    key = (n, r, tuple(map(id, cs)))
    got = _WITHOUT.get(key)
    if got is not None and len(got[0]) == len(cs) and all(map(operator.is_, got[0], cs)):
        return got[1]
    without, _ = _meet(_cond(c, n, rx) for c in cs)
    if len(_WITHOUT) > 64:
        _WITHOUT.clear()
    _WITHOUT[key] = (tuple(cs), without)
    return without


_WITHOUT: dict[tuple[str, tuple[int, ...], tuple[int, ...]], tuple[tuple[Constraint, ...], EPSet]] = {}


# --- exact tiling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiling:
    """At a strided Conv/Pool, on one axis: the windows tile the input exactly when the last
    window ends inside the end padding, ``pb + i <= (o - 1)*s + ek <= pb + i + pe``: no trailing
    input row is discarded and no (ceil-mode) window runs past the padding. Without padding this
    is ``(i - ek) % s == 0``."""

    node: str
    where: str
    axis: int
    overshoot: Dim  # (o - 1)*s + ek - pb - i: where the last window ends, past the input's end
    pad_end: int
    symbols: frozenset[str]  # the symbols of the layer's input size i on that axis

    def conds(self) -> tuple[tuple[Dim, str, int], ...]:
        return ((self.overshoot, ">=", 0), (self.overshoot, "<=", self.pad_end))


def tilings(graph: Graph, res: ShapeResult) -> list[Tiling]:
    out = []
    for node in graph.layers():
        spec = node.layer
        if not isinstance(spec, (Conv, Pool)):
            continue
        pads = spec.padding
        i_dims, o_dims = res.values[node.inputs[0]][2:], res.values[node.name][2:]
        for j, (i, o, (pb, pe), k, s, d) in enumerate(zip(i_dims, o_dims, pads, spec.kernel_size, spec.stride,
                                                          spec.dilation)):
            if s > 1:
                end = D.add(D.mul(o, s), D.effective_kernel(k, d) - s)
                over = D.lower(D.add(end, D.add(D.mul(i, -1), -pb)))
                out.append(Tiling(node.name, f"{spec.type_name} '{node.layer_name}'", j, over, pe, D.symbols(i)))
    return out


def _tiling(graph: Graph, res: ShapeResult, runs: Mapping[str, EPSet], rx: Radix | None = None
            ) -> tuple[dict[str, EPSet], list[str], dict[str, bool]]:
    exact, decided = dict(runs), {n: True for n in runs}
    notes: list[str] = []
    for t in tilings(graph, res):
        if not t.symbols:
            if not all(D.compare(D.evaluate(a, {}), op, b) for a, op, b in t.conds()):
                notes.append(f"{t.where} does not tile spatial axis {t.axis} exactly at any size "
                             f"(a fixed-size axis)")
            continue
        if len(t.symbols) != 1:
            continue
        (n,) = t.symbols
        for lhs, op, rhs in t.conds():
            cs = condition_set(lhs, op, rhs, n, (rx or {}).get(n, ()))
            exact[n] = exact[n] & cs.sizes
            decided[n] &= cs.exact
    return exact, notes, decided
