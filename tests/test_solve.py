"""The solver (convgraph.solve) against brute force.

The oracle is independent of convgraph's shape stage: ``evaluate_graph`` computes every value's
shape at concrete sizes, layer by layer, from PyTorch's formulas (reference/conv-semantics.md),
and records every failed rule. The valid set, the exact-tiling set, each merge's verdict and each
fix are compared with it at every size 1..LIMIT, and PyTorch itself is run on a sample of sizes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph import dims as D
from convgraph.dims import EPSet
from convgraph.errors import LayerConfigError, Loc, ShapeError
from convgraph.front.catalogue import construct
from convgraph.ir import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Assume,
    BatchNorm,
    Conv,
    ConvTranspose,
    Elementwise,
    Expect,
    Flatten,
    Graph,
    GroupNorm,
    InstanceNorm,
    Linear,
    Node,
    Pad,
    PixelShuffle,
    Pool,
    PReLU,
    Softmax,
    Unflatten,
    Upsample,
)
from convgraph.shapes import infer
from convgraph.solve import check_sizes, solve

MODELS = Path(__file__).resolve().parent.parent / "models"
MODEL_FILES = sorted(MODELS.glob("*.cg"))
#: every size 1..LIMIT of each symbol is checked against brute force
LIMIT = 2048
RANDOM_LIMIT = 400


# --------------------------------------------------------------------------------------------
# The oracle: PyTorch's size rules on ints, layer by layer
# --------------------------------------------------------------------------------------------


def _ek(k: int, d: int) -> int:
    return d * (k - 1) + 1


def _conv_axis(i, pads, k, s, d, mode):
    pb, pe = pads
    ok = i + pb + pe >= _ek(k, d)
    if mode == "reflect":
        ok &= all(p < i for p in pads if p)
    if mode == "circular":
        ok &= all(p <= i for p in pads if p)
    o = (i + pb + pe - _ek(k, d)) // s + 1
    return o, ok, _tiles(i, o, pb, pe, s, _ek(k, d))


def _tiles(i, o, pb, pe, s, ek) -> bool:
    """The last window ends inside the end padding: no input row left over, no overhang."""
    return pb + i <= (o - 1) * s + ek <= pb + i + pe


def _pool_axis(i, k, s, pads, d, ceil, avg3d):
    pb, pe = pads
    num = i + pb + pe - _ek(k, d)
    if ceil:
        o = -((-num) // s) + 1
        if (o - 1) * s >= i + pb:
            o -= 1
    else:
        o = num // s + 1
    return o, o >= 1 and (not avg3d or i >= k), _tiles(i, o, pb, pe, s, _ek(k, d))


def _layer(spec, x):
    """(output shape, ok, axes that do not tile) of one layer at int sizes."""
    sp = list(x[2:])
    if isinstance(spec, Conv):
        got = [_conv_axis(i, pd, k, s, d, spec.padding_mode)
               for i, pd, k, s, d in zip(sp, spec.padding, spec.kernel_size, spec.stride, spec.dilation)]
        return (x[0], spec.out_channels, *[g[0] for g in got]), all(g[1] for g in got), _untiled(got)
    if isinstance(spec, ConvTranspose):
        out = [(i - 1) * s - pb - pe + d * (k - 1) + op + 1 for i, k, s, (pb, pe), op, d in
               zip(sp, spec.kernel_size, spec.stride, spec.padding, spec.output_padding, spec.dilation)]
        return (x[0], spec.out_channels, *out), all(o >= 1 for o in out), []
    if isinstance(spec, Pool):
        avg3d = spec.mode == "avg" and spec.nd == 3
        got = [_pool_axis(i, k, s, p, d, spec.ceil_mode, avg3d)
               for i, k, s, p, d in zip(sp, spec.kernel_size, spec.stride, spec.padding, spec.dilation)]
        return (*x[:2], *[g[0] for g in got]), all(g[1] for g in got), _untiled(got)
    if isinstance(spec, AdaptiveAvgPool):
        return (*x[:2], *[i if o is None else o for i, o in zip(sp, spec.output_size)]), True, []
    if isinstance(spec, Upsample):
        if spec.size is not None:
            return (*x[:2], *spec.sizes_for(len(sp))), True, []
        out = [math.floor(float(i) * sf) for i, sf in zip(sp, spec.scales_for(len(sp)))]
        return (*x[:2], *out), all(o >= 1 for o in out), []
    if isinstance(spec, Flatten):
        r = len(x)
        a, b = spec.start_dim % r, spec.end_dim % r
        return (*x[:a], math.prod(x[a:b + 1]), *x[b + 1:]), True, []
    if isinstance(spec, Linear):
        return (*x[:-1], spec.out_features), x[-1] == spec.in_features, []
    if isinstance(spec, AdaptiveMaxPool):
        return (*x[:2], *[i if o is None else o for i, o in zip(sp, spec.output_size)]), True, []
    if isinstance(spec, Pad):
        return _pad(x, spec.padding, spec.mode)
    if isinstance(spec, PixelShuffle):
        r = spec.factor
        if spec.upscale:
            return (x[0], x[1] // (r * r), x[2] * r, x[3] * r), x[1] % (r * r) == 0, []
        return (x[0], x[1] * r * r, x[2] // r, x[3] // r), x[2] % r == 0 and x[3] % r == 0, []
    if isinstance(spec, InstanceNorm):  # torch: "Expected more than 1 spatial element"
        return x, not spec.uses_input_stats or math.prod(sp) > 1, []
    if isinstance(spec, GroupNorm):  # torch: "Expected more than 1 value per channel"
        return x, x[0] * x[1] // spec.num_groups * math.prod(sp) != 1, []
    if isinstance(spec, Unflatten):
        j = spec.dim % len(x)
        known = math.prod(s for s in spec.sizes if s != -1)
        sizes = [x[j] // known if s == -1 else s for s in spec.sizes]
        return (*x[:j], *sizes, *x[j + 1:]), math.prod(sizes) == x[j], []
    assert isinstance(spec, (BatchNorm, Elementwise, PReLU, Softmax)), spec
    return x, True, []


def _pad(x, pairs, mode):
    """F.pad on the last len(pairs) axes: reflect needs pad < size, circular |pad| <= size (and,
    as it crops first, pad <= what the crop leaves), constant a crop <= size; results >= 1."""
    out, ok = list(x), True
    for j, (pb, pe) in zip(range(len(x) - len(pairs), len(x)), pairs):
        i = x[j]
        if mode == "reflect":
            ok &= all(p < i for p in (pb, pe) if p > 0)
        if mode == "circular":
            ok &= all(abs(p) <= i for p in (pb, pe)) and (min(pb, pe) >= 0 or i + min(pb, pe) >= max(pb, pe, 0))
        if mode == "constant" and min(pb, pe) < 0 < max(pb, pe):
            ok &= i >= -min(pb, pe)
        out[j] = i + pb + pe
        ok &= out[j] >= 1
    return tuple(out), ok, []


def _node_shape(n: Node, xs: list) -> tuple[tuple, list[tuple]]:
    """The DSL functions at int sizes, from torch's rules: (shape, failures)."""
    if n.op in ("sub", "mul"):  # broadcasting, trailing dims aligned
        # (the models' sub/mul pair a dim with itself or with a constant 1, where convgraph's
        # rule -- two symbolic dims must be equal -- and torch's agree; '+' keeps the equality
        # rule below, which is convgraph's for two symbolic dims: fpn_lite's sums of two 1-row
        # maps at H = 1, 2 broadcast in torch but are not "equal or the literal 1")
        a, b = xs
        r = max(len(a), len(b))
        a, b = (1,) * (r - len(a)) + tuple(a), (1,) * (r - len(b)) + tuple(b)
        fails = [(n.name, "merge", j) for j, (p, q) in enumerate(zip(a, b)) if p != q and 1 not in (p, q)]
        return tuple(max(p, q) if 1 in (p, q) else p for p, q in zip(a, b)), fails
    if n.op == "pad_like":
        v, w = xs
        fails = [(n.name, "merge", j) for j in range(2, len(v)) if v[j] > w[j]]
        if not fails and n.attr("mode") != "constant":
            pairs = [((b - a) // 2, (b - a) - (b - a) // 2) for a, b in zip(v[2:], w[2:])]
            fails += [] if _pad(v, pairs, n.attr("mode"))[1] else [(n.name, "size", -1)]
        return (*v[:2], *w[2:]), fails
    if n.op == "interp_like":
        return (*xs[0][:2], *xs[1][2:]), []
    if n.op == "slice":
        return _slice(n, xs[0])
    return xs[0], []  # scalar


def _slice(n: Node, x: tuple) -> tuple[tuple, list[tuple]]:
    """Python's slicing (torch clamps the same way); chunk parts of ceil(n/chunks)."""
    part = n.attr("part")
    if part is not None:
        kind, arg, dim, k, _count = part
        size = x[dim]
        step = -(-size // arg) if kind == "chunk" else arg if isinstance(arg, int) else None
        bounds = ([(a, min(a + step, size)) for a in range(0, size, step)] if step else
                  [(sum(arg[:i]), sum(arg[:i + 1])) for i in range(len(arg))])
        index = [(None, None)] * (dim % len(x)) + [bounds[k]]
    else:
        index = list(n.attr("index"))
    out = [len(range(d)[slice(*index[j])]) if j < len(index) else d for j, d in enumerate(x)]
    return tuple(out), [(n.name, "size", -1)] if 0 in out else []


def _untiled(got) -> list[int]:
    """Full axis indices (2, 3, ...) whose strided window does not tile the padded input."""
    return [2 + a for a, g in enumerate(got) if not g[2]]


def evaluate_graph(graph: Graph, env: dict[str, int]):
    """(shapes, failures): failures are (node, kind, axis) with kind 'size', 'merge', 'tile' or
    'assume'; a merge that fails still yields a shape (its first operand's, as the rules say)."""
    vals, fails = {}, []
    for n in graph.nodes:
        xs = [vals[i] for i in n.inputs]
        if n.op == "input":
            vals[n.name] = tuple(env[d] if isinstance(d, str) else d for d in n.dims)
        elif n.op == "layer":
            vals[n.name], ok, untiled = _layer(n.layer, xs[0])
            if not ok:
                fails.append((n.name, "merge" if isinstance(n.layer, Linear) else "size", -1))
            fails += [(n.name, "tile", j) for j in untiled]
        elif n.op == "crop":
            v, w = xs
            fails += [(n.name, "merge", j) for j in range(2, len(v)) if v[j] < w[j]]
            vals[n.name] = (*v[:2], *w[2:])
        elif n.op not in ("cat", "add"):
            vals[n.name], more = _node_shape(n, xs)
            fails += more
        else:
            skip = n.dim % len(xs[0]) if n.op == "cat" else None
            for other in xs[1:]:
                fails += [(n.name, "merge", j) for j in range(len(other)) if j != skip and other[j] != xs[0][j]]
            out = list(xs[0])
            if skip is not None:
                out[skip] = sum(x[skip] for x in xs)
            vals[n.name] = tuple(out)
    for a in graph.assumes:
        if not all(D.compare(D.evaluate(l, env), op, D.evaluate(r, env)) for l, op, r in a.conds):
            fails.append((f"assume({a.text})", "assume", -1))
    return vals, fails


def _kinds(fails) -> set[str]:
    return {k for _, k, _ in fails}


def brute(graph: Graph, name: str, others: dict[str, int], limit: int, pred) -> set[int]:
    """Sizes x of ``name`` in 1..limit (other symbols fixed) whose failures satisfy pred."""
    return {x for x in range(1, limit + 1) if pred(evaluate_graph(graph, {**others, name: x})[1])}


def runs_pred(f):
    return not _kinds(f) & {"size", "merge", "assume"}


def exact_pred_for(graph: Graph, name: str):
    """Runs, and every strided layer tiles on the axes of ``name`` (axis j of every value comes
    from axis j of the one input in these graphs)."""
    axes = {j for n in graph.inputs for j, d in enumerate(n.dims) if d == name}
    return lambda f: runs_pred(f) and not any(k == "tile" and j in axes for _, k, j in f)


def layers_pred(f):
    return not _kinds(f) & {"size", "assume"}


def upto(s: EPSet, limit: int) -> set[int]:
    return {x for x in range(1, limit + 1) if x in s}


def others_for(sol, name: str) -> dict[str, int]:
    return {n: s.runs.min for n, s in sol.symbols.items() if n != name}


# --------------------------------------------------------------------------------------------
# Building graphs from IR (independent of the DSL)
# --------------------------------------------------------------------------------------------


class B:
    """A tiny graph builder: ``b = B(); x = b.input("x", 1, 2, "L"); y = b.layer("Conv1d", x, 2, 2, 3)``."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.assumes: list[Assume] = []
        self.expects: list[Expect] = []

    def _loc(self) -> Loc:
        return Loc("<test>", len(self.nodes) + 1, 1)

    def input(self, name, *dims):
        self.nodes.append(Node(name, "input", (), self._loc(), dims=dims))
        return name

    def layer(self, type_name, src, *args, name=None, **kw):
        name = name or f"v{len(self.nodes)}"
        spec = construct(type_name, args, kw)
        self.nodes.append(Node(name, "layer", (src,), self._loc(), layer=spec, layer_name=name))
        return name

    def merge(self, op, *srcs, name=None, dim=1):
        name = name or f"m{len(self.nodes)}"
        self.nodes.append(Node(name, op, tuple(srcs), self._loc(), dim=dim))
        return name

    def graph(self, *outputs) -> Graph:
        return cg.Graph(tuple(self.nodes), tuple(outputs or [self.nodes[-1].name]), "<test>", None,
                     tuple(self.assumes), tuple(self.expects))


def merge_axis(graph: Graph, m) -> tuple[str, int]:
    """(node, axis index) of a merge verdict, as ``evaluate_graph`` records its failures."""
    c = m.constraint
    node = graph.node(c.value)
    if node.op == "layer":
        return node.name, -1
    res = infer(graph)
    for other in node.inputs[1:]:
        for j, (a, b) in enumerate(zip(res.values[node.inputs[0]], res.values[other])):
            if a == c.lhs and b == c.rhs:
                return node.name, j
    raise AssertionError(f"no axis for {c}")


def check_against_brute(graph: Graph, limit: int, sol=None) -> None:
    """runs, exact and every single-symbol merge verdict equal brute force on 1..limit."""
    sol = sol or solve(graph)
    for name, s in sol.symbols.items():
        others = others_for(sol, name)
        if None in others.values() or sol.couplings:
            continue
        lim = limit if s.constrained else 40
        assert upto(s.runs, lim) == brute(graph, name, others, lim, runs_pred), name
        assert upto(s.exact, lim) == brute(graph, name, others, lim, exact_pred_for(graph, name)), name
        assert upto(s.layers, lim) == brute(graph, name, others, lim, layers_pred), name
    for m in sol.merges:
        if m.symbol is None or m.constraint.kind != "merge":
            continue
        node, j = merge_axis(graph, m)
        others = others_for(sol, m.symbol)
        if None in others.values():
            continue
        held = brute(graph, m.symbol, others, limit,
                     lambda f, node=node, j=j: layers_pred(f) and (node, "merge", j) not in f)
        assert upto(m.holds, limit) == held, m.message
        assert m.verdict == ("proved" if not upto(m.fails, limit) else "never" if not held else "classes") or \
            max([*m.fails.first(1), 0]) > limit


def check_fixes(sol, limit: int) -> None:
    """Every proposed edit, applied, makes the merge hold on exactly the stated sizes."""
    for f in sol.fixes:
        if f.kind == "note":
            continue
        n = f.merge.symbol
        node = f.merge.constraint.value
        others = others_for(sol, n)
        if None in others.values():
            continue
        inserted = {x.name for x in f.graph.nodes} - {x.name for x in sol.graph.nodes}

        def holds(fl, node=node, inserted=inserted, g=f.graph, n=n):
            return layers_pred(fl) and not any(k == "merge" and (nm == node or nm in inserted) and
                                               (j == -1 or _axis_symbol(g, nm, j) == n)
                                               for nm, k, j in fl)
        got = brute(f.graph, n, others, limit, holds)
        assert upto(f.sizes, limit) == got, f.edit
        if f.complete:
            assert got == brute(f.graph, n, others, limit, layers_pred), f.edit


def _axis_symbol(graph: Graph, node: str, j: int) -> str | None:
    dims = infer(graph).values[graph.node(node).inputs[0]]
    syms = D.symbols(dims[j])
    return next(iter(syms)) if len(syms) == 1 else None


# --------------------------------------------------------------------------------------------
# Every model in models/
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_solutions():
    return {p.name: (cg.load(str(p)), None) for p in MODEL_FILES}


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_model_sets_equal_brute_force(path):
    graph = cg.load(str(path))
    sol = solve(graph)
    check_against_brute(graph, LIMIT, sol)
    res = infer(graph)  # the shape stage's own layer-by-layer rule agrees too
    for name, s in sol.symbols.items():
        others = others_for(sol, name)
        if None in others.values() or not s.constrained:
            continue
        ok = set()
        for x in range(1, 300):
            env = {**others, name: x}
            if all(c.holds(env) for c in res.constraints if c.kind != "expect"):
                ok.add(x)
        assert ok == upto(s.runs, 299), name


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_model_fixes_verified(path):
    sol = solve(cg.load(str(path)))
    check_fixes(sol, 300)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_model_agrees_with_torch(path, torch):
    """torch (on the meta device: the real model, PyTorch's own shape checks, no arithmetic) runs
    exactly at the valid sizes of a sample around the smallest ones."""
    from torch_equiv import to_torch

    graph = cg.load(str(path))
    sol = solve(graph)
    module = to_torch(graph).to("meta")
    for env in _torch_sample(sol):
        ok = all(env[n] in sol.runs(n) for n in env)
        assert _torch_runs(torch, module, graph, env) == ok, env


def _torch_sample(sol) -> list[dict[str, int]]:
    names = list(sol.symbols)
    base = {n: (s.runs.min or 1) for n, s in sol.symbols.items()}
    out = [dict(base)]
    for n, s in sol.symbols.items():
        if not s.constrained or s.runs.empty:
            continue
        lo = s.runs.min
        for x in sorted({lo - 1, lo + 1, lo + 2, lo + 3, lo + s.runs.modulus // 2, lo + s.runs.modulus}):
            if x >= 1:
                out.append({**base, n: x})
    return [e for e in out if set(e) == set(names)]


def _torch_runs(torch, module, graph: Graph, env: dict[str, int]) -> bool:
    xs = [torch.empty(*[env[d] if isinstance(d, str) else d for d in n.dims], device="meta")
          for n in graph.inputs]
    try:
        with torch.no_grad():
            module(*xs)
        return True
    except RuntimeError:
        return False


# --------------------------------------------------------------------------------------------
# The paper's facts
# --------------------------------------------------------------------------------------------


def test_unet_original_runs_and_tiles():
    sol = solve(cg.load(str(MODELS / "unet_original.cg")))
    assert sol.describe_runs("H") == "H >= 188"
    assert 572 in sol.exact("H") and 571 not in sol.exact("H") and 571 in sol.runs("H")
    assert sol.exact("H").modulus == 16
    assert all(m.verdict == "proved" for m in sol.merges)
    assert sol.nearest("H", 570, exact=True) == (556, 572)


def test_encdec_classes_and_fixes():
    sol = solve(cg.load(str(MODELS / "encdec1d_stride4.cg")))
    (m,) = sol.merges
    assert m.verdict == "classes"
    assert m.holds.modulus == 16 and m.holds.residues == frozenset({0, 1, 2, 3})
    assert "they differ when L mod 16 >= 4" in m.message
    assert "floor(L/4) vs 4*floor(L/16)" in m.message
    assert m.counterexample == {"sizes": {"L": 20}, "lhs": 5, "rhs": 4}
    kinds = {f.kind for f in sol.fixes}
    assert {"crop", "assume", "note"} <= kinds
    note = next(f for f in sol.fixes if f.kind == "note")
    assert "no single static edit" in note.edit and "output_padding 1 for L ≡ 4..7 (mod 16)" in note.edit


def test_needs_output_padding():
    sol = solve(cg.load(str(MODELS / "needs_output_padding.cg")))
    assert sol.describe_runs("H") == "H >= 1, H % 2 == 1"
    notes = [f for f in sol.fixes if f.kind == "note"]
    assert notes and all("output_padding 1 for H ≡ 0 (mod 2)" in f.edit or "W ≡ 0 (mod 2)" in f.edit for f in notes)
    assert any(f.kind == "crop" and f.complete for f in sol.fixes)


# --------------------------------------------------------------------------------------------
# Random graphs (hypothesis): stacks and U-Net-like skips, 1-D and 2-D
# --------------------------------------------------------------------------------------------

C = 2  # channels everywhere, so that any two values can be added


@st.composite
def layer_args(draw, nd: int):
    kind = draw(st.sampled_from(["Conv", "ConvTranspose", "MaxPool", "AvgPool", "Conv", "Upsample"]))
    per_axis = lambda s: tuple(draw(s) for _ in range(nd))  # noqa: E731
    if kind == "Upsample":  # dyadic scales are periodic; 0.7 is not (brute force, stated as such)
        return "Upsample", (), dict(scale_factor=per_axis(st.sampled_from([2.0, 0.5, 1.5, 0.7])))
    k = per_axis(st.integers(1, 5))
    s = per_axis(st.integers(1, 3))
    d = per_axis(st.integers(1, 2))
    name = f"{kind}{nd}d"
    if kind == "Conv":
        return name, (C, C, k), dict(stride=s, padding=per_axis(st.integers(0, 2)), dilation=d)
    if kind == "ConvTranspose":
        op = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
        return name, (C, C, k), dict(stride=s, padding=per_axis(st.integers(0, 2)), dilation=d, output_padding=op)
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    extra = dict(dilation=d) if kind == "MaxPool" else {}
    return name, (k,), dict(stride=s, padding=p, ceil_mode=draw(st.booleans()), **extra)


@st.composite
def random_graphs(draw):
    nd = draw(st.sampled_from([1, 1, 2]))
    b = B()
    x = b.input("x", 1, C, *(["L"] if nd == 1 else ["H", "W"]))

    def stack(src, n):
        for _ in range(n):
            name, args, kw = draw(layer_args(nd))
            try:
                src = b.layer(name, src, *args, **kw)
            except LayerConfigError:
                assume(False)
        return src

    a = stack(x, draw(st.integers(0, 2)))
    if draw(st.booleans()):  # a U-Net-like skip: a -> down -> up, merged with a
        c = stack(stack(a, draw(st.integers(1, 2))), draw(st.integers(1, 2)))
        op = draw(st.sampled_from(["cat", "add", "crop_ac", "crop_ca"]))
        if op.startswith("crop"):
            v, w = (a, c) if op == "crop_ac" else (c, a)
            out = b.merge("crop", v, w)
            out = b.merge("cat", out, w)
        else:
            out = b.merge(op, a, c)
        stack(out, draw(st.integers(0, 1)))
    try:
        g = b.graph()
        infer(g)
    except cg.ConvGraphError:
        assume(False)
    return g


def _ceil_pool_then_dilated_up():
    """Found by test_random_graphs_equal_brute_force: cat(x, ConvT(MaxPool(ceil)(x))). The H merge
    holds only at H = 1; ``ceil_mode=False`` would fix the W merge (W in {3, 4}) but make the H
    merge never hold (and reject H = 1), so the edited graph would run for no size at all."""
    b = B()
    x = b.input("x", 1, 2, "H", "W")
    v = b.layer("Conv2d", x, 2, 2, 1)
    v = b.layer("MaxPool2d", v, 2, ceil_mode=True)
    v = b.layer("ConvTranspose2d", v, 2, 2, (1, 2), dilation=(1, 2))
    b.merge("cat", x, v)
    return b.graph()


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs())
@example(_ceil_pool_then_dilated_up())
def test_random_graphs_equal_brute_force(graph):
    sol = solve(graph)
    check_against_brute(graph, RANDOM_LIMIT, sol)
    check_fixes(sol, RANDOM_LIMIT // 2)


def test_fix_that_breaks_another_axis_is_not_proposed():
    sol = solve(_ceil_pool_then_dilated_up())
    assert upto(sol.symbols["H"].runs, 100) == {1}
    assert not any("ceil_mode" in f.edit for f in sol.fixes)
    check_against_brute(sol.graph, 300, sol)
    check_fixes(sol, 300)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(), st.data())
def test_random_graphs_agree_with_torch(torch, graph, data):
    from torch_equiv import to_torch

    sol = solve(graph)
    module = to_torch(graph)
    names = list(sol.symbols)
    for _ in range(6):
        env = {n: data.draw(st.integers(1, 60), label=n) for n in names}
        _, fails = evaluate_graph(graph, env)
        if any(graph.node(nm).op in ("add", "crop") for nm, k, _ in fails if k == "merge"):
            continue  # torch broadcasts size-1 axes in '+', and slices silently in a crop
        ok = all(env[n] in sol.runs(n) for n in names)
        xs = [torch.zeros(*[env.get(d, d) if isinstance(d, str) else d for d in n.dims]) for n in graph.inputs]
        try:
            with torch.no_grad():
                module(*xs)
            ran = True
        except RuntimeError:
            ran = False
        assert ran == ok, env


# --------------------------------------------------------------------------------------------
# Linear after Flatten, non-periodic sizes, couplings
# --------------------------------------------------------------------------------------------


def _linear_graph(in_features: int) -> Graph:
    b = B()
    x = b.input("x", "N", 1, "H", "W")
    h = b.layer("Conv2d", x, 1, 2, 3, stride=2)
    h = b.layer("MaxPool2d", h, 2)
    f = b.layer("Flatten", h)
    b.layer("Linear", f, in_features, 4)
    return b.graph()


def test_linear_pins_spatial_sizes_exactly():
    graph = _linear_graph(2 * 3 * 5)
    sol = solve(graph)
    (cp,) = sol.couplings
    assert cp.product is not None and "pins H, W" in cp.message
    admissible = set()
    for h in range(1, 80):
        for w in range(1, 80):
            _, fails = evaluate_graph(graph, {"N": 1, "H": h, "W": w})
            if not fails or _kinds(fails) == {"tile"}:
                admissible.add((h, w))
    tuples = {(h, w) for t in cp.product.tuples for h in upto(dict(t)["H"], 80) for w in upto(dict(t)["W"], 80)}
    assert tuples == admissible
    assert upto(sol.runs("H"), 80) == {h for h, _ in admissible}
    assert sol.runs("H").finite and sol.runs("W").finite
    for env in check_sizes(graph, count=4):
        assert (env["H"], env["W"]) in admissible


def test_linear_with_no_admissible_size():
    sol = solve(_linear_graph(7 * 11 * 13))  # 2*f(H)*g(W) is even
    assert not sol.ok
    assert sol.runs("H").empty
    (m,) = [m for m in sol.merges if m.constraint.kind == "merge"]
    assert m.verdict == "never"


@pytest.mark.slow
def test_non_periodic_upsample_falls_back_to_brute_force():
    """Only a scale with no compact exact form (many significant digits) is still searched size by
    size; 0.7 and the like are solved exactly (tests/test_solve_scale.py)."""
    b = B()
    x = b.input("x", 1, C, "L")
    u = b.layer("Upsample", x, scale_factor=0.7234987123)
    d = b.layer("Conv1d", u, C, C, 3, stride=2, padding=1)
    up = b.layer("ConvTranspose1d", d, C, C, 2, stride=2)
    b.merge("cat", u, up)
    graph = b.graph()
    sol = solve(graph)
    s = sol.symbols["L"]
    assert not s.decided
    assert "not exact" in sol.text() and "4096" in sol.text()
    assert upto(s.runs, 600) == brute(graph, "L", {}, 600, runs_pred)
    (m,) = sol.merges
    assert not m.decided and "not exact" in m.message
    assert "note" in sol.to_json()["symbols"]["L"]


def test_monotone_condition_without_period_is_still_exact():
    b = B()
    x = b.input("x", 1, C, "L")
    u = b.layer("Upsample", x, scale_factor=0.3)
    b.layer("Conv1d", u, C, C, 5)
    sol = solve(b.graph())
    s = sol.symbols["L"]
    assert s.decided and sol.describe_runs("L") == "L >= 17"  # floor(16*0.3) = 4 < 5 = floor(17*0.3)
    assert upto(s.runs, 300) == brute(b.graph(), "L", {}, 300, runs_pred)


def test_cat_of_two_inputs_reports_the_coupling():
    b = B()
    x = b.input("x", 1, C, "L")
    y = b.input("y", 1, C, "K")
    d = b.layer("Conv1d", x, C, C, 3, stride=2)
    b.merge("cat", d, y)
    sol = solve(b.graph())
    (m,) = sol.merges
    assert m.verdict == "coupled" and "couples K, L" in m.message
    (cp,) = sol.couplings
    for env in cp.examples:
        assert not evaluate_graph(b.graph(), env)[1] or _kinds(evaluate_graph(b.graph(), env)[1]) == {"tile"}
    sizes = check_sizes(b.graph(), count=3)
    assert sizes and all(not _kinds(evaluate_graph(b.graph(), e)[1]) & {"size", "merge"} for e in sizes)


# --------------------------------------------------------------------------------------------
# assume and expect
# --------------------------------------------------------------------------------------------


def _odd_only_graph() -> B:
    """cat(h, up(down(h))): equal exactly for odd L (needs_output_padding in 1-D)."""
    b = B()
    x = b.input("x", "N", C, "L")
    d = b.layer("Conv1d", x, C, C, 3, stride=2, padding=1)
    u = b.layer("ConvTranspose1d", d, C, C, 3, stride=2, padding=1)
    b.merge("cat", x, u, name="c")
    return b


def _assume(b: B, text: str, *conds):
    b.assumes.append(Assume(Loc("<test>", 90 + len(b.assumes), 1), text, tuple(conds)))


L = D.sym("L")


def test_assume_intersects():
    b = _odd_only_graph()
    _assume(b, "L % 4 == 1, L >= 9", (L % 4, "==", 1), (L, ">=", 9))
    sol = solve(b.graph())
    assert sol.describe_runs("L") == "L >= 9, L % 4 == 1"
    assert upto(sol.runs("L"), 200) == brute(b.graph(), "L", {"N": 1}, 200, runs_pred)


def test_contradictory_assumes_are_an_error_at_the_assume():
    b = B()
    b.layer("Conv1d", b.input("x", 1, C, "L"), C, C, 3)
    _assume(b, "L % 2 == 0", (L % 2, "==", 0))
    _assume(b, "L % 2 == 1", (L % 2, "==", 1))
    with pytest.raises(ShapeError) as e:
        solve(b.graph())
    assert e.value.loc.line == 91
    assert "assume(L % 2 == 1) leaves no valid size for L" in str(e.value)


def test_assume_against_the_graph_is_an_error():
    b = _odd_only_graph()
    _assume(b, "L % 2 == 0", (L % 2, "==", 0))
    with pytest.raises(ShapeError) as e:
        solve(b.graph())
    assert "assume(L % 2 == 0) leaves no valid size for L: the graph runs for L >= 1, L % 2 == 1" in str(e.value)
    assert e.value.loc.line == 90


def _expect(b: B, value: str, *dims):
    text = ", ".join([value] + [D.dim_str(d) if not isinstance(d, int) else str(d) for d in dims])
    b.expects.append(Expect(Loc("<test>", 80 + len(b.expects), 1), text, value, tuple(dims)))


def test_expect_proved_on_classes_and_refuted():
    b = _odd_only_graph()
    _expect(b, "v2", D.sym("N"), C, L)          # 2*ceil(L/2) - 1 == L: odd L only
    _expect(b, "x", D.sym("N"), C, D.add(L, 1))  # L == L + 1: never
    sol = solve(b.graph())
    ms = [m for m in sol.merges if m.constraint.kind == "expect"]
    assert [m.verdict for m in ms] == ["classes", "never"], [m.message for m in ms]
    assert ms[0].message.startswith(
        "expect(v2, N, 2, L): dim 2 of 'v2' is expected to be L: 2*floor((L + 1)/2) - 1 vs L "
        "(they differ when L mod 2 == 0); holds for L ≡ 1 (mod 2)"), ms[0].message
    assert ms[1].counterexample == {"sizes": {"L": 1}, "lhs": 1, "rhs": 2}
    assert "smallest counterexample L=1: 1 vs 2" in ms[1].message
    assert not sol.ok  # an expect refuted for every size
    assert upto(ms[0].holds, 300) == {x for x in range(1, 301) if x % 2}


def test_expect_proved_for_every_size():
    b = _odd_only_graph()
    _expect(b, "x", D.sym("N"), C, L)
    y = b.layer("Conv1d", "x", C, C, 3, padding=1, name="y")
    _expect(b, y, D.sym("N"), C, L)
    _expect(b, "v1", D.sym("N"), C, D.add(D.floordiv(D.add(L, 1), 2), 0))
    sol = solve(b.graph())
    assert all(m.verdict == "proved" for m in sol.merges if m.constraint.kind == "expect")


def test_graph_without_any_valid_size():
    b = B()
    x = b.input("x", 1, C, "L")
    d = b.layer("Conv1d", x, C, C, 3, stride=2)
    u = b.layer("ConvTranspose1d", d, C, C, 2, stride=2)
    b.merge("cat", x, u, name="c")  # 2*floor((L - 1)/2) is L - 1 or L - 2, never L
    sol = solve(b.graph())
    assert sol.runs("L").empty and not sol.ok
    (m,) = sol.merges
    assert m.verdict == "never"
    assert m.counterexample == {"sizes": {"L": 3}, "lhs": 3, "rhs": 2}
    assert "runs for no valid size" in sol.text()
    assert check_sizes(b.graph()) == []
    assert upto(sol.runs("L"), 300) == brute(b.graph(), "L", {}, 300, runs_pred) == set()


# --------------------------------------------------------------------------------------------
# API: metadata, check_sizes, nearest
# --------------------------------------------------------------------------------------------


def test_metadata_and_check_sizes():
    graph = cg.load(str(MODELS / "unet.cg"))
    sol = solve(graph)
    md = sol.metadata()
    assert md["convgraph.valid_sizes.H"] == "H >= 16, H % 16 == 0"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in md.items())
    sizes = check_sizes(graph, count=5)
    assert len(sizes) == 5 and sizes[0] == {"N": 1, "H": 16, "W": 16}
    assert any(e["H"] != e["W"] for e in sizes)
    for e in sizes:
        assert not _kinds(evaluate_graph(graph, e)[1]) & {"size", "merge"}


def test_check_sizes_cover_residue_classes():
    graph = cg.load(str(MODELS / "unet_original.cg"))
    sizes = check_sizes(graph, count=8)
    hs = {e["H"] for e in sizes}
    assert 188 in hs and {h % 2 for h in hs} == {0, 1} and len({h % 16 for h in hs}) >= 4
    assert max(hs) >= 2 * 188


def test_nearest():
    sol = solve(cg.load(str(MODELS / "unet.cg")))
    assert sol.nearest("H", 100) == (96, 112)
    assert sol.nearest("H", 5) == (None, 16)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cli(capsys, *argv):
    from convgraph.cli import main

    code = main(["solve", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_schema(capsys):
    code, out, _ = _cli(capsys, str(MODELS / "encdec1d_stride4.cg"), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"symbols", "merges", "fixes"}
    for s in data["symbols"].values():
        for key in ("runs", "exact"):
            assert {"min", "modulus", "residues", "exceptions", "first"} <= set(s[key])
    assert data["symbols"]["L"]["runs"] == {"min": 16, "modulus": 16, "residues": [0, 1, 2, 3], "exceptions": [],
                                            "first": [16, 17, 18, 19, 32, 33, 34, 35, 48, 49]}
    (m,) = data["merges"]
    assert {"where", "line", "condition", "verdict", "classes", "counterexample"} <= set(m)
    assert m["verdict"] == "classes" and m["classes"][0] == "L ≡ 0 (mod 16)"
    for f in data["fixes"]:
        assert {"where", "line", "edit", "holds"} <= set(f)


def test_cli_text_and_near(capsys):
    code, out, _ = _cli(capsys, str(MODELS / "unet.cg"), "--near", "H=100")
    assert code == 0
    assert "H: runs for H >= 16, H % 16 == 0" in out
    assert "nearest to 100 (runs): 96 below, 112 above" in out
    assert "classes" in out and "fixes" in out


def test_cli_exit_codes(capsys, tmp_path):
    never = tmp_path / "never.cg"
    never.write_text("x = input(1, 2, L)\nd = Conv1d(2, 2, 3, stride=2)(x)\n"
                     "u = ConvTranspose1d(2, 2, 2, stride=2)(d)\nc = cat([x, u], dim=1)\n")
    assert _cli(capsys, str(never))[0] == 2  # no valid size is exit 2 in every verb (issue 11; was 1)
    bad = tmp_path / "bad.cg"
    bad.write_text("x = input(1, 2, L)\nassume(L % 2 == 0, L % 2 == 1)\nConv1d(2, 2, 3)\n")
    code, _, err = _cli(capsys, str(bad))
    assert code == 2 and "leaves no valid size for L" in err and ":2:" in err
    code, _, err = _cli(capsys, str(MODELS / "unet.cg"), "--near", "Q=3")
    assert code == 2 and "unknown size symbol" in err
    assert _cli(capsys, str(MODELS / "unet_original.cg"))[0] == 0


# --------------------------------------------------------------------------------------------
# The DSL statements, end to end
# --------------------------------------------------------------------------------------------

ROUND_TRIP = """
x = input(N, 3, H, W)
h = Conv2d(3, 8, 3, padding=1)(x)
d = Conv2d(8, 8, 3, stride=2, padding=1)(h)
u = ConvTranspose2d(8, 8, 3, stride=2, padding=1)(d)
expect(h, N, 8, H, W)
expect(u, N, 8, H, W)
expect(d, N, 8, H // 2, W // 2)
expect(h, N, 8, H + 1, W)
"""


def test_dsl_expect_verdicts_and_messages():
    sol = solve(cg.parse(ROUND_TRIP, filename="rt.cg"))
    ms = {(m.line, m.symbol): m for m in sol.merges}
    assert all(m.constraint.kind == "expect" for m in sol.merges)
    assert ms[(6, "H")].verdict == "proved"  # identical formulas (decided at build time)
    up = ms[(7, "H")]
    assert up.verdict == "classes" and up.where == "expect(u, N, 8, H, W)"
    assert "(they differ when H mod 2 == 0); holds for H ≡ 1 (mod 2)" in up.message
    down = ms[(8, "W")]
    assert down.verdict == "classes" and "holds for W ≡ 0 (mod 2)" in down.message
    wrong = ms[(9, "H")]
    assert wrong.verdict == "never"
    assert "smallest counterexample H=1: 1 vs 2" in wrong.message
    # expects take part in the valid sizes (DESIGN.md, Conditions; issue 11): one refuted for every H leaves none
    assert not sol.ok and sol.describe_runs("H") == "no valid size"


def test_dsl_expect_proved():
    text = ROUND_TRIP.split("expect")[0] + "expect(d, N, 8, H // 2 + (H + 1) // 2 - H // 2, (W + 1) // 2)\n"
    text += "expect(x, N, 3, H // 2 + (H + 1) // 2, W)\n"  # H, written so that only residues prove it
    sol = solve(cg.parse(text))
    assert [m.verdict for m in sol.merges] == ["proved"] * 4
    assert [m.line for m in sol.merges] == [6, 6, 7, 7]
    assert "H == floor(H/2) + floor((H + 1)/2) holds for every valid H (H >= 1)" in sol.merges[2].message
    assert sol.ok


def test_dsl_assume_restricts_unet():
    text = (MODELS / "unet.cg").read_text() + "\nassume(H % 32 == 0, H >= 64)\n"
    sol = solve(cg.parse(text))
    assert sol.describe_runs("H") == "H >= 64, H % 32 == 0"
    assert sol.describe_runs("W") == "W >= 16, W % 16 == 0"
    assert sol.metadata()["convgraph.valid_sizes.H"] == "H >= 64, H % 32 == 0"


def test_dsl_assume_against_the_graph():
    text = (MODELS / "unet.cg").read_text() + "\nassume(H % 16 == 8)\n"
    with pytest.raises(ShapeError) as e:
        solve(cg.parse(text, filename="u.cg"))
    assert str(e.value).startswith(f"u.cg:{text.count(chr(10))}:1: error: assume(H % 16 == 8) leaves no valid "
                                   "size for H: the graph runs for H >= 16, H % 16 == 0")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.sets(st.integers(0, 11)), st.sets(st.integers(1, 39)),
       st.integers(1, 120))
def test_epset_near_matches_a_scan(start, modulus, residues, exceptions, x):
    s = EPSet(start, modulus, frozenset(r % modulus for r in residues),
              frozenset(e for e in exceptions if e < start)).normalized()
    below = next((y for y in range(x, 0, -1) if y in s), None)
    above = next((y for y in range(x, x + 200) if y in s), None)
    assert s.near(x) == (below, above)


def test_epset_near_is_fast_for_huge_sizes():
    assert EPSet.none().near(10**12) == (None, None)
    assert EPSet(5, 16, frozenset({3}), frozenset({2})).near(10**12) == (10**12 - 13, 10**12 + 3)
