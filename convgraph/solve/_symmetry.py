"""Axis symmetry of a graph: the fix search of the W merge of a skip is that of its H merge with
the axes (and the symbols) swapped, when the graph is unchanged by that swap.

``sigma`` swaps spatial shape positions ``a`` and ``b`` of every value and the symbols ``n`` and
``m`` of the inputs. When ``sigma(graph) == graph`` (every input's dims, every layer's per-axis
parameters equal on the two axes, merges that act alike on every spatial axis, no ``assume`` or
``expect``), ``sigma`` maps the dims and conditions of the graph, and of every edited graph, onto
those of the swapped edit with the symbols renamed: an edit and its swapped twin have the same
verdicts and the same sets, so the sets are computed once. Any doubt (a layer or node kind not
listed here) answers "not symmetric".
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from convgraph import dims as D
from convgraph.ir import BatchNorm, Conv, ConvTranspose, Elementwise, Graph, LayerSpec, Node, Pool, Upsample
from convgraph.solve._point import changed_at

#: layer specs whose tuple fields of length ``nd`` are per-axis parameters, and which keep the rank
AXIS_SPECS = (Conv, ConvTranspose, Pool, BatchNorm, Elementwise)
#: nodes that act alike on every spatial axis (cat: only along N or C, checked below)
AXIS_OPS = ("input", "layer", "cat", "add", "sub", "mul", "crop")


def swap_spec(spec: LayerSpec, a: int, b: int) -> LayerSpec | None:
    """The spec with spatial axes ``a`` and ``b`` (0-based, after N and C) swapped; None for a spec
    whose per-axis fields are not known."""
    if not isinstance(spec, AXIS_SPECS):
        return None
    if isinstance(spec, Elementwise):
        return spec  # no per-axis parameter
    nd = getattr(spec, "nd", None)
    if not isinstance(nd, int) or not (0 <= a < nd and 0 <= b < nd):
        return None
    changes: dict[str, Any] = {}
    for f in fields(spec):
        v = getattr(spec, f.name)
        if isinstance(v, tuple) and len(v) == nd:
            changes[f.name] = tuple(v[b] if i == a else v[a] if i == b else x for i, x in enumerate(v))
    return replace(spec, **changes)


def _swap_dims(dims: tuple, a: int, b: int, n: str, m: str) -> tuple:
    names = {n: m, m: n}
    out = [names.get(d, d) if isinstance(d, str) else d for d in dims]
    out[a], out[b] = out[b], out[a]
    return tuple(out)


def _node_symmetric(node: Node, a: int, b: int, n: str, m: str, rank: int) -> bool:
    if node.op not in AXIS_OPS:
        return False
    if node.op == "input":
        return len(node.dims) == rank and _swap_dims(node.dims, a, b, n, m) == node.dims
    if node.op == "cat":
        return node.dim in (0, 1, -rank, 1 - rank)
    if node.op == "layer":
        spec = node.layer
        if isinstance(spec, Upsample):
            return all(v is None or v[a - 2] == v[b - 2] for v in (spec.sizes_for(rank - 2), spec.scales_for(rank - 2)))
        return spec is not None and getattr(spec, "nd", rank - 2) == rank - 2 and \
            _swapped(spec, spec, a - 2, b - 2)  # swap_spec(spec, ...) == spec, without building it
    return True


def symmetric(graph: Graph, a: int, b: int, n: str, m: str) -> bool:
    """``sigma(graph) == graph`` for the swap of shape positions ``a``, ``b`` and symbols ``n``, ``m``."""
    key = (a, b, n, m)
    got = _SYMMETRY.get(id(graph))
    if got is None or got[0] is not graph:
        got = _SYMMETRY[id(graph)] = (graph, {})
        while len(_SYMMETRY) > 8:
            _SYMMETRY.pop(next(iter(_SYMMETRY)))
    if key not in got[1]:
        got[1][key] = _symmetric(graph, a, b, n, m)
    return got[1][key]


def _symmetric(graph: Graph, a: int, b: int, n: str, m: str) -> bool:
    inputs = [x for x in graph.nodes if x.op == "input"]
    if graph.assumes or graph.expects or not inputs or a < 2 or b < 2 or n == m:
        return False
    rank = len(inputs[0].dims)
    if not (a < rank and b < rank):
        return False
    return all(_node_symmetric(x, a, b, n, m, rank) for x in graph.nodes)


_SYMMETRY: dict[int, tuple[Graph, dict[tuple[int, int, str, str], bool]]] = {}


def rename(d: D.Dim, n: str, m: str) -> D.Dim:
    """d with symbol ``n`` written ``m`` (d must not involve ``m``); a non-dyadic scale is renamed
    too (renaming is exact whatever the dim)."""
    from convgraph.solve._conditions import substitute

    return substitute(d, n, D.sym(m))


def swapped_graph_equals(before: Graph, one: Graph, two: Graph, a: int, b: int) -> bool:
    """``two == sigma(one)`` for two edits of the symmetric ``before`` that change one layer spec in
    place: the one changed node of each, swapped, agree and every other node is ``before``'s."""
    if one.assumes != before.assumes or two.assumes != before.assumes:
        return False
    i, j = changed_at(before, one), changed_at(before, two)
    if i is None or i != j:
        return False
    y, z = one.nodes[i], two.nodes[i]
    if y.op != "layer" or y.layer is None or z.layer is None or replace(y, layer=z.layer) != z:
        return False
    return _swapped(y.layer, z.layer, a - 2, b - 2)


def swapped_specs(s: LayerSpec, t: LayerSpec, a: int, b: int) -> bool:
    """``swap_spec(s, a, b) == t`` (spatial axes ``a``, ``b``, 0-based after N and C)."""
    return _swapped(s, t, a, b)


def _swapped(s: LayerSpec, t: LayerSpec, a: int, b: int) -> bool:
    """``swap_spec(s, a, b) == t``, field by field (no spec is built)."""
    if type(s) is not type(t) or not isinstance(s, AXIS_SPECS) or isinstance(s, Elementwise):
        return swap_spec(s, a, b) == t
    nd = s.nd
    both = nd == 2 and {a, b} == {0, 1}  # every position is a or b: nothing else to compare
    for name in _field_names(type(s)):
        v = getattr(s, name)
        w = v if s is t else getattr(t, name)  # a spec asked whether it is its own swap
        if isinstance(v, tuple) and len(v) == nd and 0 <= a < nd and 0 <= b < nd:
            if not (isinstance(w, tuple) and len(w) == nd and v[a] == w[b] and v[b] == w[a] and
                    (both or all(x == y for k, (x, y) in enumerate(zip(v, w)) if k not in (a, b)))):
                return False
        elif v != w:
            return False
    return True


def _field_names(cls: type) -> tuple[str, ...]:
    got = _FIELDS.get(cls)
    if got is None:
        got = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return got


_FIELDS: dict[type, tuple[str, ...]] = {}


# --- the symbols of an edited graph whose results are another's, renamed (``solve_edited``) ---------


def same_renamed(x: D.Dim, y: D.Dim, n: str, m: str) -> bool:
    """``x`` with symbol ``n`` written ``m`` is ``y``, read off the two trees (no dim is built):
    then ``x`` at ``n = v`` and ``y`` at ``m = v`` are one value for every v, so a condition on
    ``n`` alone and its match on ``m`` alone hold at the same sizes. False: not shown so."""
    if isinstance(x, int) or isinstance(y, int):
        return isinstance(x, int) and isinstance(y, int) and x == y
    if isinstance(x, D.Combo):
        return isinstance(y, D.Combo) and x.op == y.op and len(x.args) == len(y.args) and \
            all(same_renamed(a, b, n, m) for a, b in zip(x.args, y.args))
    if not isinstance(y, D.QA) or x.m != y.m or x.n != y.n:
        return False
    a, b = x.base, y.base
    if isinstance(a, D.Var):
        return isinstance(b, D.Var) and b.name == (m if a.name == n else a.name)
    if isinstance(a, D.FloorDiv):
        return isinstance(b, D.FloorDiv) and a.k == b.k and same_renamed(a.arg, b.arg, n, m)
    if isinstance(a, D.FScale):
        return isinstance(b, D.FScale) and a.sf == b.sf and same_renamed(a.arg, b.arg, n, m)
    return a is None and b is None


def mirrors(base: Graph, graph: Graph) -> dict[str, str]:
    """symbol m -> an earlier symbol n (the inputs' shape positions b > a) such that swapping the
    two positions and symbols maps ``graph``, an edit of ``base``, onto itself
    (``symmetric_edit``): then every condition on m alone is one on n alone with n written m, so
    m's sets are n's. n is never itself a key."""
    inputs = [x for x in graph.nodes if x.op == "input"]
    dims = inputs[0].dims if inputs else ()
    out: dict[str, str] = {}
    for b in range(3, len(dims)):
        m = dims[b]
        if not isinstance(m, str) or m in out or dims.count(m) != 1:
            continue
        for a in range(2, b):
            n = dims[a]
            if isinstance(n, str) and n not in out and dims.count(n) == 1 and symmetric_edit(base, graph, a, b, n, m):
                out[m] = n
                break
    return out


def symmetric_edit(base: Graph, graph: Graph, a: int, b: int, n: str, m: str) -> bool:
    """``symmetric(graph, a, b, n, m)`` for an edit of ``base`` that may also add ``assume``s: the
    base is symmetric, every node of ``graph`` that is not one of the base's (the same object) is
    symmetric on its own, there is no ``expect``, and the swap maps the assumed conditions onto
    themselves (``_assumes_symmetric``). That is ``_symmetric``'s test with the assumes swapped
    too: it looks at each node alone, and at the inputs, which are nodes."""
    if graph.expects or not symmetric(base, a, b, n, m):
        return False
    own = _base_nodes(base)
    rank = len(next(x for x in base.nodes if x.op == "input").dims)
    return all(own.get(id(x)) is x or _node_symmetric(x, a, b, n, m, rank) for x in graph.nodes) and \
        _assumes_symmetric(graph, n, m)


def _base_nodes(base: Graph) -> dict[int, Node]:
    return base.memo(_base_nodes, lambda: {id(x): x for x in base.nodes})


def _assumes_symmetric(graph: Graph, n: str, m: str) -> bool:
    """Every assumed condition on n alone has its match on m alone (n written m) and the other way
    round; none involves both (the swap maps the set of conditions onto itself)."""
    conds = [c for a in graph.assumes for c in a.conds]
    for lhs, op, rhs in conds:
        syms = D.symbols(lhs) | D.symbols(rhs)
        if n in syms and m in syms:
            return False
        if n in syms or m in syms:
            x, y = (n, m) if n in syms else (m, n)
            if not any(o == op and same_renamed(lhs, p, x, y) and same_renamed(rhs, q, x, y) for p, o, q in conds):
                return False
    return True
