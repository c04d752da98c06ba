"""Fixes for failing merge points, each verified by rebuilding the graph with the edit and
re-running the same decision procedure on it.

Candidate edits, nearest to the merge first, on the layers that feed only one side of it:
output_padding of a ConvTranspose on that axis (every legal value: ``op < max(stride, dilation)``),
ceil_mode of a pooling layer, padding +-1 on that axis of a Conv / ConvTranspose / Pool, a
``crop(v, like=w)`` before a cat or ``+``, and an ``assume`` of the classes where it already holds.
A proposal is printed only when, on the edited graph, the merge holds for every size the edited
graph's layers accept (``complete``) or, when no single edit does, on a stated class; and when it
makes no merge that was proved fail.

What only saves work (each checked against the slow path, ``REFERENCE``, in the tests): the edited
graph is re-inferred where the edit changed it (``_incremental``); a candidate that a few concrete
sizes prove incomplete is verified only when it could be shown (``_point``: on plain ints, the
period-shifted sizes first; a crop with its inserted node run there too), and judged as a partial
fix from its merge's conditions alone, read off the nodes that merge reads (``_lazy``), its set not
solved where a condition holds nowhere (``never_holds``); a 'holds' text is made only for a fix
that is shown; the graph of an edit of one layer spec is built only when the candidate survives
that check; an edited graph's layer sets are met once, whatever merge proposed the edit, from the
solved graph's meets over the conditions the two share at the start and at the end; an edit takes
sizes from another symbol only through a condition the solved graph does not have; and the W (or D)
merge of a skip takes its H merge's results when swapping the two axes maps the graph onto itself
(``_symmetry``), its own candidates made only where a result is read (``_swapped_candidates``).
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from convgraph import dims as D
from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import Assume, Conv, ConvTranspose, Graph, LayerSpec, Node, Pool
from convgraph.shapes import Constraint, ShapeResult
from convgraph.solve._conditions import never_holds
from convgraph.solve._incremental import common_prefix as _common_prefix  # patched off by the reference path
from convgraph.solve._incremental import infer_edited, prefix_layers, verdict_on
from convgraph.solve._incremental import solved_radix as _radix
from convgraph.solve._lazy import edited_merge, reads_unchanged
from convgraph.solve._point import Edited, alternating, crop_fails, excludes, point_fails, probes
from convgraph.solve._report import classes_text, describe_set, periodic_start
from convgraph.solve._sets import EPSet, condition_set, edited_radix, intersect_all, subset
from convgraph.solve._sizes import Sizes
from convgraph.solve._symmetry import rename, same_renamed, swapped_graph_equals, swapped_specs, symmetric
from convgraph.solve._tree import prev_member, residue_runs

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Fix, Merge, Solution

#: one-sided layers tried for padding / ceil_mode edits, nearest to the merge first
MAX_LAYERS = 8
#: complete fixes kept per merge and per edit kind
MAX_PER_KIND = 2
#: the reference path (tests): every candidate checked and verified the slow, obvious way
REFERENCE = False
T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """One edit. An edit of one layer spec in place carries the edited node (``edited``) and builds
    its graph only when asked (most are ruled out on integers, ``_point``); others carry it."""

    kind: str
    edit: str
    base: Graph = field(repr=False)  # the solved graph
    inserted: tuple[str, ...] = ()
    layer: str = ""  # the edited layer's node name (per-class output_padding notes)
    value: tuple[int, int] | None = None  # (axis, output_padding) of an output_padding edit
    edited: Edited | None = None  # (position, new node) of an edit of one layer spec in place
    built: Graph | None = field(default=None, repr=False, compare=False)

    @property
    def graph(self) -> Graph:
        """The edited graph (built once)."""
        if self.built is None:
            assert self.edited is not None
            i, node = self.edited
            nodes = (*self.base.nodes[:i], node, *self.base.nodes[i + 1:])
            object.__setattr__(self, "built", _regraph(self.base, nodes))
        assert self.built is not None
        return self.built


def find_fixes(sol: Solution) -> tuple[Fix, ...]:
    out: list = []
    done: list[Searched] = []
    for m in sol.merges:
        if m.constraint.kind == "merge" and m.symbol is not None and m.verdict in ("classes", "never") \
                and m.constraint.op in ("==", ">=", ">") and m.holds is not None:
            cands, raw = _searched(sol, m, done)
            done.append((m, cands, raw))
            out += _fixes_for(sol, m, list(zip(cands, raw)), raw.uncovered)
    return tuple(out)


def _fixes_for(sol: Solution, m: Merge, checked: Checked, uncovered: dict[str, bool]) -> list[Fix]:
    good = [(cand, v) for cand, v in checked if isinstance(v, tuple)]
    complete = [(cand, v) for cand, v in good if v[1]]
    out: list[Fix] = []
    per_kind: dict[str, int] = {}
    for cand, v in complete:
        per_kind[cand.kind] = per_kind.get(cand.kind, 0) + 1
        if per_kind[cand.kind] <= MAX_PER_KIND:
            out.append(_fix(sol, m, cand, v))
    partial = [(cand, v) for cand, v in good if _partial(m, v)]
    note = _per_class_note(m, sol, checked, uncovered)
    if note is not None:
        out.append(note)
    if not any(c.kind != "assume" for c, _ in complete):
        out += [_fix(sol, m, cand, v) for cand, v in partial]
    return out


def _fix(sol: Solution, m: Merge, cand: Candidate, v: Raw) -> Fix:
    """The fix a verified candidate shows, with its 'holds' text (made only for what is shown)."""
    from convgraph.solve._solve import Fix

    holds, complete, layers = v
    return Fix(m, cand.edit, _holds_text(sol, m.one_symbol, holds, complete, layers), holds, complete,
               cand.graph, cand.kind)


def _partial(m: Merge, v: Raw) -> bool:
    return not v[1] and not (v[0] & m.fails_set).empty


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def _sizes(conds: Iterable[Constraint], name: str, kinds: tuple[str, ...], values: Container[str] | None = None,
           radix: tuple[int, ...] = ()) -> EPSet:
    """The sizes of ``name`` where every condition of ``kinds`` (of the nodes ``values``) on it alone holds."""
    return intersect_all(condition_set(c.lhs, c.op, c.rhs, name, radix).sizes for c in conds
                         if c.kind in kinds and (values is None or c.value in values) and _symbols(c) == {name})


def _symbols(c: Constraint) -> frozenset[str]:
    """``c.symbols``, remembered per constraint object (an edited graph reuses most of them)."""
    got = _SYMBOLS.get(id(c))
    if got is None or got[0] is not c:
        if len(_SYMBOLS) > 1 << 16:
            _SYMBOLS.clear()
        got = _SYMBOLS[id(c)] = (c, frozenset(c.symbols))
    return got[1]


_SYMBOLS: dict[int, tuple[Constraint, frozenset[str]]] = {}

#: (sizes where the merge holds on the edited graph, complete?, the sizes its layers accept)
Raw = tuple[EPSet, bool, EPSet]


class _Deferred:
    """The result of an output_padding candidate that the point check ruled out: not verified
    unless the per-class note needs it (then once: a twin merge shares it, ``twin_results``; in
    full, but for an edit found to leave the merge's conditions as they are: no partial fix)."""

    def __init__(self) -> None:
        self._got: tuple[Raw | None] | None = None
        self._same: bool | None = None

    def cheap(self, sol: Solution, m: Merge, cand: Candidate) -> bool:
        """Verified already, or known at once to be no partial fix (``_merge_unchanged``)."""
        return self._got is not None or self._unchanged(sol, m, cand)

    def _unchanged(self, sol: Solution, m: Merge, cand: Candidate) -> bool:
        if self._same is None:
            self._same = _merge_unchanged(sol, m, cand)
        return self._same

    def verified(self, sol: Solution, m: Merge, cand: Candidate) -> Raw | None:
        if self._got is None:  # ``cheap`` may have found it is no partial fix
            self._got = (None if self._same else _verify_sets(sol, m, cand),)
        return self._got[0]

Checked = list[tuple[Candidate, "Raw | _Deferred | None"]]


class RawChecked(list["Raw | _Deferred | None"]):
    """The checked results of a merge's candidates, in order; ``uncovered`` remembers, per
    ConvTranspose, the per-class note's integer check (shared with a twin merge)."""

    def __init__(self, items: Iterable[Raw | _Deferred | None]) -> None:
        super().__init__(items)
        self.uncovered: dict[str, bool] = {}


#: a merge whose candidates were checked: (merge, candidates, their results)
Searched = tuple["Merge", list[Candidate], RawChecked]


def _check(sol: Solution, m: Merge, cands: list[Candidate]) -> RawChecked:
    """The ``_verify_sets`` result of every candidate whose result can be shown. A candidate
    that a point check proves incomplete (a size the edited layers accept where the merge fails)
    can only be shown as a partial fix, and partial fixes are shown only when no complete fix
    other than an assume exists: those are verified last, and only then (else their result stays
    None), as partial fixes (``_verify_partial``). The output_padding ones the point check rules
    out are left to the per-class note, which verifies them layer by layer (``_note_options``):
    their result is a ``_Deferred``."""
    probe = m.fails.first(3) if m.fails is not None else []
    ax = _axis_of(sol, m)
    spread = probes(m, probe)
    turns = alternating(m, spread)
    fails = [_point_fails(sol, m, c, probe, turns if c.kind == "output_padding" else spread, ax) for c in cands]
    later = {i for i, c in enumerate(cands) if c.kind not in ("output_padding", "assume") and fails[i]}
    deferred = {i for i, c in enumerate(cands) if c.kind == "output_padding" and fails[i]}
    out = {i: _verify_sets(sol, m, c) for i, c in enumerate(cands) if i not in later and i not in deferred}
    if not any(v is not None and v[1] and cands[i].kind != "assume" for i, v in out.items()):
        out.update({i: _verify_partial(sol, m, cands[i]) for i in sorted(later | deferred)})
    return RawChecked(out.get(i, _Deferred() if i in deferred else None) for i in range(len(cands)))


def _verify_partial(sol: Solution, m: Merge, cand: Candidate) -> Raw | None:
    """``_verify_sets`` of a candidate the point check proved incomplete, which can only be shown
    (and read by the per-class note) as a partial fix: where the edited merge holds at none of the
    sizes where it fails today, neither does it on the sizes its layers accept, so it is no partial
    fix, and its layer sets (its new conditions) are not needed: None. For an edit of one layer
    spec the edited merge's conditions are read off the nodes the merge reads
    (``_lazy.edited_merge``; the solved graph's own when none changed: they hold at no size where
    the merge fails); the whole graph is inferred only for a candidate that passes."""
    if REFERENCE:
        return _verify_sets(sol, m, cand)
    conds = _edited_conditions(sol, m, cand)
    if conds is None:
        return None
    n = m.one_symbol
    merge = _sizes(conds, n, ("merge",), {m.constraint.value, *cand.inserted}, _radix(sol).get(n, ()))
    return None if (merge & m.fails_set).empty else _verify_sets(sol, m, cand)


def _merge_unchanged(sol: Solution, m: Merge, cand: Candidate) -> bool:
    """The edit leaves the dims the merge's node reads as they are (``_lazy.edited_merge``): its
    conditions are the solved graph's own, so it holds at no size where it fails today (False when
    that is not known: the caller verifies)."""
    if REFERENCE or cand.edited is None:
        return False
    try:
        return reads_unchanged(sol, _positions(sol.graph), cand.edited, m.constraint.value)
    except ConvGraphError:
        return False


def _edited_conditions(sol: Solution, m: Merge, cand: Candidate) -> Sequence[Constraint] | None:
    """The edited graph's conditions (those of ``m``'s node at least: for an edit of one layer spec,
    those alone, ``_lazy.edited_merge``); None when it fails at every size, when ``m``'s
    conditions are the solved graph's own, or when one of them holds for no size (``never_holds``:
    decided without its set): then the edited merge holds nowhere."""
    if cand.edited is None:
        res = _infer(sol, cand)
        return res.constraints if res is not None else None
    try:
        conds = edited_merge(sol, _positions(sol.graph), cand.edited, m.constraint.value)
    except ConvGraphError:
        return None  # so does ``_infer``: a rule fails at every size (``_lazy``)
    n = m.one_symbol
    if conds is None or any(c.kind == "merge" and _symbols(c) == {n} and never_holds(c.lhs, c.op, c.rhs)
                            for c in conds):
        return None
    return conds


# --------------------------------------------------------------------------------------------
# The W merge of a skip from its H merge (``_symmetry``)
# --------------------------------------------------------------------------------------------


def twin_results(sol: Solution, m: Merge, cands: list[Candidate], done: list[Searched]) -> RawChecked | None:
    """The results of ``m``'s candidates taken from an earlier merge of the same node on another
    axis, when swapping the two axes (and symbols) maps the graph onto itself, that merge onto
    ``m`` and its candidates one by one onto ``m``'s: the sets are the same (the texts are made
    for ``m``'s symbol). None when there is no such merge."""
    for m1, cands1, raw in done:
        if m1.constraint.value == m.constraint.value and _twins(sol, m1, m, cands1, cands):
            return raw
    return None


def _searched(sol: Solution, m: Merge, done: list[Searched]) -> tuple[list[Candidate], RawChecked]:
    """``m``'s candidates and their results: an earlier twin merge's results, with ``m``'s
    candidates made only where they can be read (``_swapped_candidates``), else ``m``'s
    candidates, checked (or a twin's results for them: ``twin_results``)."""
    if not REFERENCE:
        got = _swapped_candidates(sol, m, done)
        if got is not None:
            raw = twin_results(sol, m, got[0], [got[1]])
            if raw is not None:
                return got[0], raw
    cands = list(_candidates(sol, m))
    raw = None if REFERENCE else twin_results(sol, m, cands, done)
    return cands, raw if raw is not None else _check(sol, m, cands)


def _swapped_candidates(sol: Solution, m: Merge, done: list[Searched]) -> tuple[list[Candidate], Searched] | None:
    """``_candidates(sol, m)`` where it can be read, from the first earlier merge of the same node
    that is ``m``'s twin (``_twin_merges``) with the same operands: the same layers are one-sided,
    so the list is made of the same per-layer blocks, the same crops (made per node and operands)
    and ``m``'s own assume. Each block of an output_padding or padding edit is ``m``'s axis's
    (``_block_twin``); a ceil_mode is the same candidate on every axis. A padding or ceil_mode
    candidate whose result is None is only counted (nothing reads it: ``_fixes_for`` reads what
    is verified, the per-class note the output_padding ones): the twin's stands in its place.
    ``twin_results`` then checks the list against the twin's (None: a merge not found here)."""
    for entry in done:
        m1, cands1, raw = entry
        if m1.constraint.value == m.constraint.value and _twin_merges(sol, m1, m):
            got = _swapped_list(sol, m1, m, cands1, raw)
            return None if got is None else (got, entry)
    return None


def _swapped_list(sol: Solution, m1: Merge, m: Merge, cands1: list[Candidate], raw: RawChecked
                  ) -> list[Candidate] | None:
    graph = sol.graph
    node = graph.node(m.constraint.value)
    o1, o = _operands(sol.result, node, m1.constraint), _operands(sol.result, node, m.constraint)
    if o1 is None or o is None or o1[:2] != o[:2]:
        return None
    out: list[Candidate] = []
    for x, v in zip(cands1, raw):
        if x.kind in ("crop", "ceil_mode") or (v is None and x.kind == "padding"):
            out.append(x)
        elif x.kind != "assume":
            y = _block_twin(graph, x, o1[2] - 2, o[2] - 2)
            if y is None:
                return None
            out.append(y)
    return out + list(_assumes(sol, m))


def _block_twin(graph: Graph, x: Candidate, ax1: int, ax: int) -> Candidate | None:
    """The candidate at ``x``'s index in its layer's block of its kind on axis ``ax`` (``x``'s is
    on ``ax1``): an output_padding or padding edit (a ceil_mode is the same on every axis)."""
    if x.edited is None or x.kind not in _BLOCKS:
        return None
    node, pos = graph.nodes[x.edited[0]], _positions(graph)
    memo: dict[tuple[str, str, int], list[Candidate]] = graph.memo(_per_layer, dict)
    block1 = memo.get((x.kind, node.name, ax1), [])
    k = next((i for i, y in enumerate(block1) if y is x), None)
    if k is None:
        return None
    block = _per_layer(graph, x.kind, node, ax, lambda n: _BLOCKS[x.kind](graph, pos, n, ax))
    return block[k] if k < len(block) else None


def _twin_merges(sol: Solution, m1: Merge, m: Merge) -> bool:
    """``m1`` and ``m`` are merges on two axes whose swap (and that of their symbols) maps the graph
    onto itself, and maps ``m1``'s condition onto ``m``'s."""
    n1, n, a, b = m1.one_symbol, m.one_symbol, _axis_of(sol, m1), _axis_of(sol, m)
    c1, c = m1.constraint, m.constraint
    if a < 0 or b < 0 or n1 == n or c1.op != c.op or not symmetric(sol.graph, a, b, n1, n):
        return False
    return same_renamed(c1.lhs, c.lhs, n1, n) and same_renamed(c1.rhs, c.rhs, n1, n)


def _twins(sol: Solution, m1: Merge, m: Merge, cands1: list[Candidate], cands: list[Candidate]) -> bool:
    if len(cands1) != len(cands) or not _twin_merges(sol, m1, m):
        return False
    a, b, n1, n = _axis_of(sol, m1), _axis_of(sol, m), m1.one_symbol, m.one_symbol
    return all(_generated_twins(x, y) or _twin_pair(sol, x, y, a, b, n1, n) for x, y in zip(cands1, cands))


#: the candidate kinds made per layer from its spec alone (``_per_layer``)
PER_LAYER = ("output_padding", "padding", "ceil_mode")


def _generated_twins(x: Candidate, y: Candidate) -> bool:
    """``_twin_candidates`` without comparing specs, for two candidates at the same index of the
    lists of two merges of one node on axes a and b of a graph that the swap maps onto itself
    (``symmetric``: every layer spec equal to its swap): both of one per-layer kind on the same
    layer. Each layer is tried once per kind, so the runs of equal (kind, layer) in the two lists
    are the per-layer blocks, in the same places; each block is made by the same generator from
    the same spec S = swap(S): ``_output_paddings_of`` loops over ``range(max(stride, dilation))``
    on the axis and skips the current value, ``_paddings_of`` tries +1 then -1 under conditions on
    that axis's padding and kernel size, ``_ceil_mode_of`` does not depend on the axis, so the two
    blocks are as long, and the i-th spec of one is the i-th of the other with the axes swapped.
    (``_twins`` asks this of every pair, comparing the others: two blocks out of step would pair a
    candidate with one of another kind or layer, which the comparison refuses.) False: the caller
    compares them."""
    return x.kind == y.kind and x.kind in PER_LAYER and x.edited is not None and y.edited is not None and \
        x.edited[0] == y.edited[0]


def _twin_pair(sol: Solution, x: Candidate, y: Candidate, a: int, b: int, n1: str, n: str) -> bool:
    """``_twin_candidates``, once per pair of candidate objects (one layer's candidates are shared
    by the merges that try it: ``_per_layer``)."""
    memo: dict[tuple, tuple[Candidate, Candidate, bool]] = sol.graph.memo(_twin_pair, dict)
    key = (id(x), id(y), a, b, n1, n)
    got = memo.get(key)
    if got is None or got[0] is not x or got[1] is not y:
        got = memo[key] = (x, y, _twin_candidates(sol, x, y, a, b, n1, n))
    return got[2]


def _twin_candidates(sol: Solution, x: Candidate, y: Candidate, a: int, b: int, n1: str, n: str) -> bool:
    """``y`` is ``x`` with the axes swapped."""
    if x.kind != y.kind or x.inserted != y.inserted:
        return False
    if x.kind == "crop":
        return x.graph.nodes == y.graph.nodes and x.graph.assumes == y.graph.assumes
    if x.kind == "assume":
        (*ax, last_x), (*ay, last_y) = x.graph.assumes, y.graph.assumes
        return x.graph.nodes == y.graph.nodes and ax == ay and \
            tuple((rename(lhs, n1, n), op, rename(rhs, n1, n)) for lhs, op, rhs in last_x.conds) == last_y.conds
    if x.edited is not None and y.edited is not None:  # ``swapped_graph_equals`` without the graphs
        return x.edited[0] == y.edited[0] and x.edited[1].layer is not None and y.edited[1].layer is not None \
            and swapped_specs(x.edited[1].layer, y.edited[1].layer, a - 2, b - 2)
    return swapped_graph_equals(sol.graph, x.graph, y.graph, a, b)


def _holds_text(sol: Solution, n: str, holds: EPSet, complete: bool, layers: EPSet) -> str:
    base = sol.symbols[n].layers
    accepts = "" if layers == base else f" (the edited graph's layers accept {describe_set(layers, n)})"
    return f"for every valid {n}{accepts}" if complete else f"for {classes_text(holds, n)}{accepts}"


def _axis_of(sol: Solution, m: Merge) -> int:
    """The shape position of the merge's axis (-1 when the merge is not a cat / + / crop)."""
    ops = _operands(sol.result, sol.graph.node(m.constraint.value), m.constraint)
    return ops[2] if ops is not None else -1


def _point_fails(sol: Solution, m: Merge, cand: Candidate, probe: list[int], spread: list[int], ax: int) -> bool:
    """The point check: on integers first (no symbolic inference; at ``spread``, more sizes than
    the symbolic check tries), else on the edited graph's symbolic conditions (at ``probe``)."""
    if ax >= 0 and point_fails(sol, m, cand.kind, cand.edited, ax, spread):
        return True
    if ax >= 0 and cand.kind == "crop" and not REFERENCE and crop_fails(sol, m, cand.graph, ax, spread[:1]):
        return True  # at the first size only: the crop that survives is checked symbolically anyway
    if cand.kind in ("output_padding", "assume"):
        return False  # verified anyway: the symbolic check would not change what is done
    res = _infer(sol, cand)
    return res is not None and _fails_at(sol, res, m, cand, probe)


def _infer(sol: Solution, cand: Candidate) -> ShapeResult | None:
    """The edited graph's shapes; an edit proposed for two merges (a crop or a ceil_mode for the H
    and the W axis of one cat) is inferred once: its text names the layer and the new value."""
    key = (id(sol), cand.kind, cand.edit)
    got = _INFERRED.get(key)
    if got is not None and got[0] is sol:
        return got[1]
    try:
        res: ShapeResult | None = infer_edited(sol.result, cand.graph)  # only what the edit changes
    except ConvGraphError:
        res = None
    if len(_INFERRED) > 256:
        _INFERRED.clear()
    _INFERRED[key] = (sol, res)
    return res


_INFERRED: dict[tuple[int, str, str], tuple[Solution, ShapeResult | None]] = {}


def _fails_at(sol: Solution, res: ShapeResult, m: Merge, cand: Candidate, sizes: Sequence[int]) -> bool:
    """At one of ``sizes`` the edited graph's layers accept the size and the merge fails. The
    sizes are ones where the solved graph's layers accept ``n``: when that set is exact, every
    layer condition of the solved graph holds there, so of the edited graph's only those that
    are not the solved graph's (between the shared leading and trailing ones) are evaluated."""
    n, values = m.one_symbol, {m.constraint.value, *cand.inserted}
    layer_cs: Sequence[Constraint] = res.constraints
    base = sol.symbols[n]
    if not REFERENCE and base.decided and all(x in base.layers for x in sizes):
        k = _common_prefix(sol.result.constraints, layer_cs)
        layer_cs = layer_cs[k:len(layer_cs) - _common_suffix(sol.result.constraints, layer_cs, k)]
    layers = [c for c in layer_cs if c.kind in LAYER_KINDS and _symbols(c) == {n}]
    merges = [c for c in res.constraints if c.kind == "merge" and c.value in values and _symbols(c) == {n}]
    for x in sizes:
        env = {n: x}
        # the merges first (a few conditions): where they hold, the layers need not be evaluated
        if not all(c.holds(env) for c in merges) and all(c.holds(env) for c in layers):
            return True
    return False


def _verify_sets(sol: Solution, m: Merge, cand: Candidate) -> Raw | None:
    """(sizes where the merge holds on the edited graph, complete?, the sizes its layers accept), or
    None when the edit is invalid, leaves no size, or breaks a merge that was proved."""
    n = m.one_symbol
    if cand.kind == "crop" and not REFERENCE:
        done, got = _verify_solved(sol, m, cand)
        if done:
            return got
    res = _infer(sol, cand)
    if res is None:
        return None
    rx = _radix(sol).get(n, ())  # the original's digit order: unchanged conditions hit the cache
    layers = _valid_layers(sol, res, n, rx)
    if layers is None:
        return None
    holds = layers & _sizes(res.constraints, n, ("merge",), {m.constraint.value, *cand.inserted}, rx)
    if holds.empty:
        return None
    return holds, subset(layers, holds), layers


def _verify_solved(sol: Solution, m: Merge, cand: Candidate) -> tuple[bool, Raw | None]:
    """(True, a crop's ``_verify_sets``) read off the edited graph's solution (``verdict_on``),
    which the grouped fixes verify the same crop with (``solve_edited`` remembers it on the
    graph); (False, None) when the edited graph does not solve or its digit order of the merge's
    symbol is not the solved graph's (then the crop is verified the usual way)."""
    from convgraph.solve._solve import solve_edited

    n = m.one_symbol
    try:
        new = solve_edited(sol, cand.graph)
    except ConvGraphError:
        return False, None
    if edited_radix(sol.result, new.result).get(n, ()) != _radix(sol).get(n, ()):
        return False, None
    return True, verdict_on(sol, new, n, {m.constraint.value, *cand.inserted})


def _valid_layers(sol: Solution, res: ShapeResult, n: str, rx: tuple[int, ...]) -> EPSet | None:
    """The sizes of ``n`` the edited graph's layers accept; None when there is none, or when the
    edit breaks a merge that was proved or takes a size away from another symbol. None of this
    depends on the merge: an edit proposed for several merges (an output_padding deep in a
    U-Net) is judged once per edited graph."""
    key = (id(res), n)
    got = _VALID.get(key)
    if got is not None and got[0] is res and not REFERENCE:
        return got[1]
    k = _common_prefix(sol.result.constraints, res.constraints)
    layers: EPSet | None = _layer_sizes(sol, res, n, rx, k)
    if layers is not None and (layers.empty or _breaks_proved(sol, res, n, layers, rx) or
                               _shrinks_others(sol, res, n, k)):
        layers = None
    if len(_VALID) > 512:
        _VALID.clear()
    _VALID[key] = (res, layers)
    return layers


_VALID: dict[tuple[int, str], tuple[ShapeResult, EPSet | None]] = {}


def _common_suffix(base: Sequence[Constraint], res: Sequence[Constraint], k: int) -> int:
    """How many trailing conditions (after the ``k`` leading ones) the edited graph shares with the
    solved one: the nodes after an edit whose input dims it left unchanged (past a cat whose first
    operand is unchanged, say) keep their condition objects."""
    j, top = 0, min(len(base), len(res)) - k
    while j < top and base[-1 - j] is res[-1 - j]:
        j += 1
    return j


LAYER_KINDS = ("size", "assume")
ALL_KINDS = ("size", "assume", "merge")


def _layer_sizes(sol: Solution, res: ShapeResult, n: str, rx: tuple[int, ...], k: int) -> EPSet:
    """The sizes of ``n`` the edited graph's layers (and assumes) accept (``_met``)."""
    return _met(sol, res, n, LAYER_KINDS, rx, k)


def _met(sol: Solution, res: ShapeResult, n: str, kinds: tuple[str, ...], rx: tuple[int, ...], k: int) -> EPSet:
    """``_sizes(res.constraints, n, kinds)``: the solved graph's intersection over the ``k`` shared leading
    conditions and over the shared trailing ones, met with the rest (an intersection does not
    depend on the order it is taken in)."""
    base, cs = sol.result.constraints, res.constraints
    j = _common_suffix(base, cs, k)
    pre, suf = _ends(sol, n, kinds, rx)
    return intersect_all([pre[k], suf[j], *(condition_set(c.lhs, c.op, c.rhs, n, rx).sizes
                                            for c in cs[k:len(cs) - j] if c.kind in kinds and _symbols(c) == {n})])


def _ends(sol: Solution, n: str, kinds: tuple[str, ...], rx: tuple[int, ...]) -> tuple[list[EPSet], list[EPSet]]:
    """([i]: the intersection of the solved graph's conditions of ``kinds`` on ``n`` alone among its
    first i; [j]: among its last j), once per solution. For the layer kinds the first list is
    ``prefix_layers``' sets (the same meets, in the same order, from ``x >= 1``), which an edited
    graph's solve reads too."""
    key = (id(sol), n, kinds)
    got = _ENDS.get(key)
    if got is None or got[0] is not sol:
        sets = [condition_set(c.lhs, c.op, c.rhs, n, rx).sizes if c.kind in kinds and _symbols(c) == {n} else None
                for c in sol.result.constraints]
        pre = [s for s, _ in prefix_layers(sol.result, n, rx)] if kinds == LAYER_KINDS else _running(sets)
        if len(_ENDS) > 32:
            _ENDS.clear()
        got = _ENDS[key] = (sol, (pre, _running(sets[::-1])))
    return got[1]


def _running(sets: list[EPSet | None]) -> list[EPSet]:
    out, cur = [Sizes.all(1)], Sizes.all(1)
    for x in sets:
        if x is not None:
            cur = intersect_all([cur, x])
        out.append(cur)
    return out


_ENDS: dict[tuple[int, str, tuple[str, ...]], tuple[Solution, tuple[list[EPSet], list[EPSet]]]] = {}


def _shrinks_others(sol: Solution, res: ShapeResult, n: str, k: int) -> bool:
    """The edit takes away a size where the graph ran for another symbol (a ``ceil_mode`` or a crop
    changes every axis): e.g. it makes the other axis's merge never hold, so that the edited graph
    runs for no size at all. The sizes where the solved graph runs meet every condition of the
    solved graph, so only the edited graph's conditions that are not the solved graph's (between
    the ``k`` shared leading and the shared trailing ones, and not equal to one of its own) can
    take a size away: each is met with those sizes on its own."""
    cs = sol.result.constraints
    middle = res.constraints[k:len(res.constraints) - _common_suffix(cs, res.constraints, k)]
    for c in middle:
        syms = _symbols(c)
        if c.kind not in ALL_KINDS or len(syms) != 1 or n in syms:
            continue
        (s,) = syms
        runs = sol.symbols[s].runs if s in sol.symbols else None
        if runs is None or runs.empty or (c.lhs, c.op, c.rhs) in _own(sol, s):
            continue
        if not subset(runs, condition_set(c.lhs, c.op, c.rhs, s, _radix(sol).get(s, ())).sizes):
            return True
    return False


def _own(sol: Solution, s: str) -> frozenset[tuple]:
    """The solved graph's conditions on symbol ``s`` alone (once per solution)."""
    key = (id(sol), s)
    got = _OWN.get(key)
    if got is None or got[0] is not sol:
        if len(_OWN) > 32:
            _OWN.clear()
        got = _OWN[key] = (sol, frozenset((c.lhs, c.op, c.rhs) for c in sol.result.constraints
                                          if c.kind in ALL_KINDS and _symbols(c) == {s}))
    return got[1]


_OWN: dict[tuple[int, str], tuple[Solution, frozenset[tuple]]] = {}


def _breaks_proved(sol: Solution, res: ShapeResult, n: str, layers: EPSet, rx: tuple[int, ...] = ()) -> bool:
    proved = {(m.constraint.value, m.constraint.axis, m.constraint.rule) for m in sol.merges
              if m.verdict == "proved" and m.one_symbol == n}
    if not proved:
        return False  # nothing was proved on n: nothing to break
    for c in res.constraints:
        if (c.kind == "merge" and c.symbols == {n} and (c.value, c.axis, c.rule) in proved
                and not subset(layers, condition_set(c.lhs, c.op, c.rhs, n, rx).sizes)):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Candidate edits
# --------------------------------------------------------------------------------------------


def _operands(res: ShapeResult, node: Node, c: Constraint) -> tuple[str, str, int] | None:
    """(value on the lhs, value on the rhs, axis index) of a cat / + / crop constraint."""
    first = node.inputs[0]
    for other in node.inputs[1:]:
        for j, (a, b) in enumerate(zip(res.values[first], res.values[other])):
            if j >= 2 and a == c.lhs and b == c.rhs:
                return first, other, j
    return None


def _ancestors(graph: Graph, name: str) -> dict[str, int]:
    """name -> distance (in nodes) for every node the value depends on, itself included (once per
    graph and value: the merges of one node on each axis ask for the same)."""
    memo: dict[str, dict[str, int]] = graph.memo(_ancestors, dict)
    got = memo.get(name)
    if got is None:
        got = memo[name] = _distances(graph, name)
    return got


def _distances(graph: Graph, name: str) -> dict[str, int]:
    dist, todo = {name: 0}, [name]
    while todo:
        cur = todo.pop(0)
        for i in graph.node(cur).inputs:
            if i not in dist:
                dist[i] = dist[cur] + 1
                todo.append(i)
    return dist


def _candidates(sol: Solution, m: Merge) -> Iterator[Candidate]:
    graph, c = sol.graph, m.constraint
    node = graph.node(c.value)
    ops = _operands(sol.result, node, c)
    if ops is not None:
        a, b, j = ops
        da, db = _ancestors(graph, a), _ancestors(graph, b)
        one_sided = {k: v for k, v in {**da, **db}.items() if (k in da) != (k in db)}
        layers = sorted((v, k) for k, v in one_sided.items() if graph.node(k).op == "layer")
        layer_nodes = [graph.node(k) for _, k in layers]
        pos = _positions(graph)
        yield from _output_paddings(graph, pos, layer_nodes, j - 2)
        near = layer_nodes[:MAX_LAYERS]
        yield from _ceil_modes(graph, pos, near)
        yield from _paddings(graph, pos, near, j - 2)
        if node.op in ("cat", "add"):
            yield from graph.memo((_crops, node.name, a, b), lambda: list(_crops(graph, node, a, b)))
    yield from _assumes(sol, m)


def _positions(graph: Graph) -> dict[str, int]:
    """Node name -> its position (once per graph)."""
    return graph.memo(_positions, lambda: {n.name: i for i, n in enumerate(graph.nodes)})


def _with_layer(graph: Graph, pos: dict[str, int], node: Node, spec: LayerSpec) -> Edited:
    """The edit that sets the layer spec of ``node`` (the graph is built when needed)."""
    return pos[node.name], _replaced(node, layer=spec)


def _replaced(obj: T, **changes: object) -> T:
    """``dataclasses.replace(obj, **changes)`` (a candidate makes hundreds): for a dataclass whose
    instance dict holds its fields and nothing else, and which has no ``__post_init__`` and no
    init-only pseudo-field (``_plain``), the generated ``__init__`` stores each argument in that
    dict, so a copy of ``obj``'s dict with ``changes`` written over it is the object ``replace``
    builds; anything else goes through ``replace``."""
    names = _plain(type(obj))
    state = getattr(obj, "__dict__", None)
    if not names or state is None or len(state) != len(names) or not names.issuperset(changes):
        return replace(obj, **changes)  # type: ignore[type-var]
    new = object.__new__(type(obj))
    new.__dict__.update(state)
    new.__dict__.update(changes)
    return new


def _plain(cls: type) -> frozenset[str]:
    """The field names of a dataclass ``_replaced`` may copy (empty for any other class)."""
    got = _PLAIN.get(cls)
    if got is None:
        ok = is_dataclass(cls) and not hasattr(cls, "__post_init__") and \
            len(getattr(cls, "__dataclass_fields__", {})) == len(fields(cls)) and all(f.init for f in fields(cls))
        got = _PLAIN[cls] = frozenset(f.name for f in fields(cls)) if ok else frozenset()
    return got


_PLAIN: dict[type, frozenset[str]] = {}


def _regraph(graph: Graph, nodes: tuple[Node, ...], assumes: tuple[Assume, ...] | None = None) -> Graph:
    return Graph(nodes, graph.outputs, graph.filename, graph.doc,
                 graph.assumes if assumes is None else assumes, graph.expects)


def _fmt(t: tuple) -> str:
    return str(t[0]) if len(t) == 1 else str(t)


def _set_axis(t: tuple[T, ...], ax: int, v: T) -> tuple[T, ...]:
    return tuple(v if i == ax else x for i, x in enumerate(t))


def _label(node: Node) -> str:
    return f"{node.spec.type_name} '{node.layer_name}' (line {node.loc.line})"


def _per_layer(graph: Graph, kind: str, node: Node, ax: int, make: Callable[[Node], Iterable[Candidate]]
               ) -> list[Candidate]:
    """``make(node)``: the candidates of one kind on one layer and axis, which are the same for every
    merge that tries that layer (they depend on the graph, the layer and the axis only): made once
    per graph."""
    memo: dict[tuple[str, str, int], list[Candidate]] = graph.memo(_per_layer, dict)
    key = (kind, node.name, ax)
    got = memo.get(key)
    if got is None:
        got = memo[key] = list(make(node))
    return got


def _output_paddings(graph: Graph, pos: dict[str, int], nodes: list[Node], ax: int) -> Iterator[Candidate]:
    for node in nodes:
        if isinstance(node.layer, ConvTranspose):
            yield from _per_layer(graph, "output_padding", node, ax, lambda n: _output_paddings_of(graph, pos, n, ax))


def _output_paddings_of(graph: Graph, pos: dict[str, int], node: Node, ax: int) -> Iterator[Candidate]:
    spec = node.layer
    assert isinstance(spec, ConvTranspose)
    for op in range(max(spec.stride[ax], spec.dilation[ax])):
        new = _set_axis(spec.output_padding, ax, op)
        if op != spec.output_padding[ax]:
            yield Candidate("output_padding", f"set output_padding={_fmt(new)} on {_label(node)}", graph,
                            layer=node.name, value=(ax, op),
                            edited=_with_layer(graph, pos, node, _replaced(spec, output_padding=new)))


def _ceil_modes(graph: Graph, pos: dict[str, int], nodes: list[Node]) -> Iterator[Candidate]:
    for node in nodes:
        spec = node.layer
        if isinstance(spec, Pool) and any(s > 1 for s in spec.stride):
            yield from _per_layer(graph, "ceil_mode", node, -1, lambda n: _ceil_mode_of(graph, pos, n))


def _ceil_mode_of(graph: Graph, pos: dict[str, int], node: Node) -> Iterator[Candidate]:
    spec = node.layer
    assert isinstance(spec, Pool)
    yield Candidate("ceil_mode", f"set ceil_mode={not spec.ceil_mode} on {_label(node)}", graph,
                    edited=_with_layer(graph, pos, node, _replaced(spec, ceil_mode=not spec.ceil_mode)))


def _paddings(graph: Graph, pos: dict[str, int], nodes: list[Node], ax: int) -> Iterator[Candidate]:
    for node in nodes:
        yield from _per_layer(graph, "padding", node, ax, lambda n: _paddings_of(graph, pos, n, ax))


def _paddings_of(graph: Graph, pos: dict[str, int], node: Node, ax: int) -> Iterator[Candidate]:
    for delta in (1, -1):
        got = _pad_edit(node.layer, ax, delta)
        if got is not None:
            new_spec, shown = got
            yield Candidate("padding", f"set padding={shown} on {_label(node)}", graph,
                            edited=_with_layer(graph, pos, node, new_spec))


#: the per-layer blocks that depend on the axis, by kind
_BLOCKS: dict[str, Callable[[Graph, dict[str, int], Node, int], Iterator[Candidate]]] = {
    "output_padding": _output_paddings_of, "padding": _paddings_of}


def _pad_edit(spec: LayerSpec | None, ax: int, delta: int) -> tuple[LayerSpec, str] | None:
    """The spec with padding on axis ``ax`` changed by delta (symmetric), and the padding as the
    user writes it; None when not expressible or not legal."""
    if not isinstance(spec, (Conv, ConvTranspose, Pool)) or any(b != e for b, e in spec.padding):
        return None
    p = spec.padding[ax][0] + delta
    if p < 0 or (isinstance(spec, Conv) and delta and spec.padding_mode != "zeros" and p == 0):
        return None
    if isinstance(spec, Pool) and p > spec.kernel_size[ax] // 2:
        return None
    new = _set_axis(spec.padding, ax, (p, p))
    return _replaced(spec, padding=new), _fmt(tuple(b for b, _ in new))


def written(graph: Graph, value: str) -> str:
    """The name a value has in the file where it is used (its internal name when it has none)."""
    return graph.node(value).source or value


def _crops(graph: Graph, node: Node, a: str, b: str) -> Iterator[Candidate]:
    names = {n.name for n in graph.nodes} | {n.source for n in graph.nodes}
    for v, w in ((a, b), (b, a)):
        sv, sw = written(graph, v), written(graph, w)
        name = f"{sv}_cropped"
        while name in names:
            name += "_"
        crop = Node(name, "crop", (v, w), node.loc, source=name)
        inputs = tuple(name if i == v else i for i in node.inputs)
        nodes = []
        for n in graph.nodes:
            if n.name == node.name:
                nodes += [crop, replace(n, inputs=inputs)]
            else:
                nodes.append(n)
        edit = (f"insert `{name} = crop({sv}, like={sw})` before line {node.loc.line} and use {name} "
                f"in place of {sv} there")
        yield Candidate("crop", edit, graph, inserted=(name,), built=_regraph(graph, tuple(nodes)))


def _assumes(sol: Solution, m: Merge) -> Iterator[Candidate]:
    """``assume`` the classes where the merge already holds when one DSL condition says it, else
    the classes where the whole graph runs (when the merge holds on all of them)."""
    graph, n = sol.graph, m.one_symbol
    got = _class_condition(m.holds_set, n)
    runs = sol.symbols[n].runs
    if got is None and not runs.empty and subset(runs, m.holds_set):
        got = _class_condition(runs, n)
    if got is None:
        return
    text, conds = got
    loc = Loc(graph.filename, m.line, 0)
    yield Candidate("assume", f"add `assume({text})`", graph,
                    built=_regraph(graph, graph.nodes, (*graph.assumes, Assume(loc, text, conds))))


def _class_condition(s: EPSet | None, n: str) -> tuple[str, tuple[tuple[D.Dim, str, D.Dim], ...]] | None:
    """(text, conds) for ``n % m == r`` / ``n % m >= a, n % m <= b`` plus ``n >= start``."""
    if s is None or s.empty or s.finite_windows() or s.finite or s.modulus > 1 << 16:
        return None
    x = D.sym(n)
    texts: list[str] = []
    conds: list[tuple[D.Dim, str, D.Dim]] = []
    mod = s.modulus
    if mod > 1:
        runs = residue_runs(s.tail, mod, 1)  # one run of residues, read off the trie
        if not runs:
            return None
        ((lo, hi),) = runs
        r = x % mod
        if lo == hi:
            texts.append(f"{n} % {mod} == {lo}")
            conds.append((r, "==", lo))
        else:
            if lo > 0:
                texts.append(f"{n} % {mod} >= {lo}")
                conds.append((r, ">=", lo))
            texts.append(f"{n} % {mod} <= {hi}")
            conds.append((r, "<=", hi))
    start = periodic_start(s)
    if start > 1 and (prev_member(s.tail, start - 1) or 0) >= 1:  # a class member below start
        texts.append(f"{n} >= {start}")
        conds.append((x, ">=", start))
    if not conds:
        return None
    return ", ".join(texts), tuple(conds)


# --------------------------------------------------------------------------------------------
# "No single static edit works"
# --------------------------------------------------------------------------------------------


def _per_class_note(m: Merge, sol: Solution, checked: Checked, uncovered: dict[str, bool]) -> Fix | None:
    """When the output_padding of one ConvTranspose would have to depend on the size's class:
    say so, with the value each class needs (the current value included). The layers are tried
    nearest first; a deferred candidate is verified when its layer's turn comes."""
    from convgraph.solve._solve import Fix

    n = m.one_symbol
    by_layer: dict[str, list[tuple[Candidate, Raw | _Deferred | None]]] = {}
    for cand, v in checked:
        if cand.kind == "output_padding" and cand.value is not None:
            by_layer.setdefault(cand.layer, []).append((cand, v))
    for k, (layer, cands) in enumerate(by_layer.items()):
        node = sol.graph.node(layer)
        spec = node.spec
        if not isinstance(spec, ConvTranspose):
            continue
        options = None
        if k and all(not isinstance(v, _Deferred) or v.cheap(sol, m, c) for c, v in cands):
            options = _note_options(sol, m, cands)
            if not options:
                continue  # nothing costly to verify (a farther layer's edit seldom reaches the merge) and
            # no option: the integer check below cannot matter
        if layer not in uncovered:  # a twin merge's answer is this merge's (``twin_results``)
            uncovered[layer] = _uncovered(sol, m, cands)
        if uncovered[layer]:
            continue
        options = options if options is not None else _note_options(sol, m, cands)
        if not options:
            continue
        ax = options[0][0][0]
        ax_vals = [(v, s) for (_, v), s in options]
        cur = spec.output_padding[ax]
        covered = m.holds_set
        for _, s in ax_vals:
            covered = covered | s
        if not subset(sol.symbols[n].layers, covered):
            continue
        parts = [f"output_padding {v} for {classes_text(s, n)}" for v, s in ax_vals]
        if not m.holds_set.empty:
            parts.insert(0, f"the current {cur} for {classes_text(m.holds_set, n)}")
        edit = (f"no single static edit of {_label(node)} makes it hold for every {n}: the output_padding "
                f"would have to depend on {n}: {'; '.join(parts)}; pass output_size= at run time, crop, "
                f"or assume one class")
        return Fix(m, edit, f"for {describe_set(m.holds_set, n)} (unchanged graph)", m.holds_set, False,
                   sol.graph, "note")
    return None


def _uncovered(sol: Solution, m: Merge, cands: list[tuple[Candidate, Raw | _Deferred | None]]) -> bool:
    """A size where the merge fails today that no output_padding value of the layer makes hold
    (proved on integers): then the layer's values cannot cover every size."""
    ax = _axis_of(sol, m)
    return any(all(excludes(sol, m, c.kind, c.edited, ax, x) for c, _ in cands) for x in m.fails_set.first(2))


def _note_options(sol: Solution, m: Merge, cands: list[tuple[Candidate, Raw | _Deferred | None]]
                  ) -> list[tuple[tuple[int, int], EPSet]]:
    """((axis, output_padding), sizes where the merge holds) of a layer's partial candidates."""
    out = []
    for cand, v in cands:
        got = v.verified(sol, m, cand) if isinstance(v, _Deferred) else v
        if got is not None and cand.value is not None and _partial(m, got):
            out.append((cand.value, got[0]))
    return out
