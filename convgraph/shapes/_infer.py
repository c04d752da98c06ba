"""The shape stage: IR -> every value's exact dims and the constraints on the input symbols.

A pure table of shape rules keyed by spec type. Each rule maps the input shape to the output
shape, per spatial axis, with the helpers below (effective kernel, window count, transposed size),
and records every constraint PyTorch enforces at run time (output >= 1, reflect pad < size, ...).
A constraint on constants only is decided at once: a failed one raises at build time.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from convgraph import dims as D
from convgraph.dims import Dim, ceil_window_count, effective_kernel, transposed_size, window_count
from convgraph.errors import GraphError, Loc, ShapeError
from convgraph.ir import (
    AdaptiveAvgPool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Elementwise,
    Flatten,
    Graph,
    Linear,
    Node,
    Pool,
    Rules,
    Upsample,
    interpret,
)

Shape = tuple[Dim, ...]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """``lhs op rhs`` must hold for the graph to run. ``kind`` is 'size' (a layer's own rule),
    'merge' (cat / + / crop / Linear inputs must agree) or 'assume' / 'expect'."""

    value: str
    where: str  # "Conv2d 'conv1'", "cat at 'c3'"
    loc: Loc
    rule: str  # what must hold, in words
    lhs: Dim
    op: str
    rhs: Dim
    kind: str = "size"
    axis: str = ""  # 'H', 'W', 'C', ... when the rule is about one axis

    @property
    def symbols(self) -> frozenset[str]:
        return D.symbols(self.lhs) | D.symbols(self.rhs)

    def condition(self) -> str:
        return f"{D.dim_str(self.lhs)} {self.op} {D.dim_str(self.rhs)}"

    def holds(self, env: Mapping[str, int]) -> bool:
        return D.compare(D.evaluate(self.lhs, env), self.op, D.evaluate(self.rhs, env))

    def error(self, env: Mapping[str, int]) -> ShapeError:
        at = ", ".join(f"{k}={env[k]}" for k in sorted(self.symbols))
        a, b = D.evaluate(self.lhs, env), D.evaluate(self.rhs, env)
        if self.op == "==" and self.kind == "merge" and self.axis:
            what = f"{self.axis} sizes differ: {D.dim_str(self.lhs)} vs {D.dim_str(self.rhs)} at {at} ({a} vs {b})"
        elif self.op == "==":
            what = f"{self.rule}: {D.dim_str(self.lhs)} vs {D.dim_str(self.rhs)} at {at} ({a} vs {b})"
        else:
            what = f"{self.rule}: {self.condition()} fails at {at} ({a} {self.op} {b} is false)"
        return ShapeError(f"{self.where}: {what}", self.loc)

    def solved(self) -> str | None:
        """The same condition as a bound on its one symbol, when it is a monotone ``>=``:
        e.g. ``H >= 5``; None otherwise."""
        syms, rhs = self.symbols, D.lower(self.rhs)
        if len(syms) != 1 or self.op not in (">=", ">") or not isinstance(rhs, int):
            return None
        (name,) = syms
        if not D.is_monotone(self.lhs):
            return None
        need = rhs + (1 if self.op == ">" else 0)
        x = D.min_at_least(self.lhs, need, name)
        return f"{name} >= {x}" if x is not None else "never"


@dataclass(frozen=True)
class ShapeResult:
    """Every value's shape (dims) and every constraint, in graph order."""

    graph: Graph
    values: dict[str, Shape]
    constraints: tuple[Constraint, ...]
    sym_names: tuple[str, ...] = field(default=())

    def dims(self, name: str) -> Shape:
        return self.values[name]

    def shapes(self, **sizes: int) -> dict[str, tuple]:
        """sympy shapes; with sizes for symbols, those are substituted (ints when all are given).
        Raises ShapeError for the first violated constraint whose symbols are all given."""
        return self._render(tuple(self.values), sizes)

    def output_shapes(self, **sizes: int) -> dict[str, tuple]:
        """``shapes`` of the graph's outputs only (the cost is that of the outputs, not the graph)."""
        return self._render(self.graph.outputs, sizes)

    def _render(self, names: tuple[str, ...], sizes: Mapping[str, int]) -> dict[str, tuple]:
        self.validate(sizes)
        if set(sizes) == set(self.sym_names):
            return {n: tuple(D.evaluate(d, sizes) for d in self.values[n]) for n in names}
        return {n: tuple(self._partial(d, sizes) for d in self.values[n]) for n in names}

    def validate(self, sizes: Mapping[str, int]) -> None:
        """Sizes name known symbols, are positive ints and violate no constraint (ShapeError)."""
        unknown = set(sizes) - set(self.sym_names)
        if unknown:
            raise ShapeError(f"unknown size symbol(s) {', '.join(sorted(unknown))}; the graph has "
                             f"{', '.join(self.sym_names) or 'none'}", Loc(self.graph.filename, 0, 0))
        for name, v in sizes.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ShapeError(f"size {name}={v!r} must be a positive int", Loc(self.graph.filename, 0, 0))
        self.check(sizes)

    def _partial(self, d: Dim, sizes: Mapping[str, int]) -> Any:
        e = D.to_sympy(d)
        if sizes:
            e = e.subs({D.sympy_symbol(k): v for k, v in sizes.items()})
        return int(e) if e.is_Integer else e

    def check(self, sizes: Mapping[str, int]) -> None:
        for c in self.constraints:
            if c.symbols <= set(sizes) and not c.holds(sizes):
                raise c.error(sizes)


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


class _Ctx:
    """Collects constraints while the rules run; decides constant ones at once."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.constraints: list[Constraint] = []
        self.node: Node | None = None

    @property
    def at(self) -> Node:
        """The node whose rule is running."""
        if self.node is None:
            raise RuntimeError("no node is being inferred")
        return self.node

    @property
    def where(self) -> str:
        n = self.at
        if n.op == "layer":
            return f"{n.spec.type_name} '{n.layer_name}'"
        if n.op in ("assume", "expect"):
            return n.op
        return {"cat": "cat", "add": "'+'", "crop": "crop"}.get(n.op, n.op) + f" at '{n.name}'"

    def require(self, lhs: Dim, op: str, rhs: Dim, rule: str, kind: str = "size", axis: str = "") -> None:
        lhs, rhs = D.lower(lhs), D.lower(rhs)
        if isinstance(lhs, int) and isinstance(rhs, int):
            if not D.compare(lhs, op, rhs):
                err = GraphError if kind == "merge" or axis == "C" else ShapeError
                why = _both(lhs, op, rhs, rule)
                raise err(f"{self.where}: {rule}, {why}", self.at.loc)
            return
        if op == "==" and lhs == rhs:
            return
        c = Constraint(self.at.name, self.where, self.at.loc, rule, lhs, op, rhs, kind, axis)
        if c.solved() == f"{next(iter(c.symbols))} >= 1":
            return  # holds for every size
        self.constraints.append(c)

    def fail(self, message: str) -> GraphError:
        return GraphError(f"{self.where}: {message}", self.at.loc)

    # the rules the interpreter runs, each with its node as the context of what it records

    def input(self, node: Node) -> Shape:
        self.node = node
        return _input(self, node)

    def layer(self, node: Node, x: Shape) -> Shape:
        self.node = node
        return tuple(D.lower(d) for d in LAYER_RULES[type(node.spec)](self, node.spec, x))

    def merge(self, node: Node, args: list[Shape]) -> Shape:
        self.node = node
        return MERGE_RULES[node.op](self, node, args)


def _both(lhs: int, op: str, rhs: int, rule: str) -> str:
    """Both sizes, unless the rule already names the required one: ``got 8 vs 4``."""
    if op != "==":
        return f"{lhs} {op} {rhs} is false"
    import re

    return f"got {lhs}" if re.search(rf"\b{rhs}\b", rule) else f"got {lhs} vs {rhs}"


def _axis_label(x: Shape, j: int) -> str:
    """'N', 'C', then the symbol a spatial axis depends on ('H'), else its position ('dim 2')."""
    if j < 2:
        return "NC"[j]
    syms = D.symbols(x[j])
    return next(iter(syms)) if len(syms) == 1 else f"dim {j}"


def _spatial_labels(x: Shape) -> list[str]:
    return [_axis_label(x, j) for j in range(2, len(x))]


def _need_rank(ctx: _Ctx, x: Shape, ranks: tuple[int, ...], what: str) -> None:
    if len(x) not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ctx.fail(f"expected {want} input ({what}), got a {len(x)}-D value of shape "
                       f"({', '.join(D.dim_str(d) for d in x)})")


def _need_channels(ctx: _Ctx, got: Dim, want: int, what: str) -> None:
    ctx.require(got, "==", want, f"expected {want} input channels ({what}={want})", axis="C")


def _conv(ctx: _Ctx, spec: Conv, x: Shape) -> Shape:
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    _need_channels(ctx, x[1], spec.in_channels, "in_channels")
    names = _spatial_labels(x)
    out = []
    for i, (pb, pe), k, s, d, ax in zip(x[2:], spec.padding, spec.kernel_size, spec.stride, spec.dilation, names):
        for p, side in ((pb, "begin"), (pe, "end")):
            if p and spec.padding_mode == "reflect":
                ctx.require(i, ">", p, f"reflect padding ({p} at the {side}) must be smaller than the input size",
                            axis=ax)
            if p and spec.padding_mode == "circular":
                ctx.require(i, ">=", p, f"circular padding ({p} at the {side}) must not exceed the input size", axis=ax)
        ek = effective_kernel(k, d)
        ctx.require(D.add(i, pb + pe), ">=", ek,
                    f"padded input must be at least the dilated kernel size {ek}", axis=ax)
        out.append(window_count(i, pb + pe, ek, s))
    return (x[0], spec.out_channels, *out)


def _conv_transpose(ctx: _Ctx, spec: ConvTranspose, x: Shape) -> Shape:
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    _need_channels(ctx, x[1], spec.in_channels, "in_channels")
    names = _spatial_labels(x)
    out = []
    for i, k, s, p, op, d, ax in zip(x[2:], spec.kernel_size, spec.stride, spec.padding,
                                     spec.output_padding, spec.dilation, names):
        o = transposed_size(i, k, s, p, op, d)
        ctx.require(o, ">=", 1, "output size must be at least 1", axis=ax)
        out.append(o)
    return (x[0], spec.out_channels, *out)


def _pool(ctx: _Ctx, spec: Pool, x: Shape) -> Shape:
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    names = _spatial_labels(x)
    out = []
    for i, k, s, p, d, ax in zip(x[2:], spec.kernel_size, spec.stride, spec.padding, spec.dilation, names):
        ek = effective_kernel(k, d)
        if spec.mode == "avg" and spec.nd == 3:  # avg_pool3d checks the unpadded input
            ctx.require(i, ">=", k, f"input must not be smaller than the kernel size {k}", axis=ax)
        o = ceil_window_count(i, p, ek, s) if spec.ceil_mode else window_count(i, 2 * p, ek, s)
        ctx.require(o, ">=", 1, "output size must be at least 1", axis=ax)
        out.append(o)
    return (*x[:2], *out)


def _adaptive(ctx: _Ctx, spec: AdaptiveAvgPool, x: Shape) -> Shape:
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    return (*x[:2], *(i if o is None else o for i, o in zip(x[2:], spec.output_size)))


_UPSAMPLE_ND = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _upsample(ctx: _Ctx, spec: Upsample, x: Shape) -> Shape:
    _need_rank(ctx, x, (3, 4, 5), "N, C and 1 to 3 spatial dims")
    nd = len(x) - 2
    need = _UPSAMPLE_ND.get(spec.mode)
    if need is not None and need != nd:
        raise ctx.fail(f"mode '{spec.mode}' needs {need + 2}-D input, got {len(x)}-D")
    sizes, scales = spec.sizes_for(nd), spec.scales_for(nd)
    given = sizes or scales or ()
    if given and len(given) != nd:
        raise ctx.fail(f"{'size' if sizes else 'scale_factor'} has {len(given)} entries for {nd} spatial dims")
    if sizes is not None:
        return (*x[:2], *sizes)
    if scales is None:
        raise ctx.fail("needs size or scale_factor")
    names = _spatial_labels(x)
    out = []
    for i, sf, ax in zip(x[2:], scales, names):
        o = D.scale_floor(i, sf)
        ctx.require(o, ">=", 1, f"output size floor(i*{sf!r}) must be at least 1", axis=ax)
        out.append(o)
    return (*x[:2], *out)


def _batchnorm(ctx: _Ctx, spec: BatchNorm, x: Shape) -> Shape:
    ranks = (2, 3) if spec.nd == 1 else (spec.nd + 2,)
    _need_rank(ctx, x, ranks, "N, C" + (f" and {spec.nd} spatial dims" if spec.nd > 1 else " [, L]"))
    _need_channels(ctx, x[1], spec.num_features, "num_features")
    return x


def _elementwise(ctx: _Ctx, spec: Elementwise, x: Shape) -> Shape:
    return x


def _flatten(ctx: _Ctx, spec: Flatten, x: Shape) -> Shape:
    r = len(x)
    a = spec.start_dim + r if spec.start_dim < 0 else spec.start_dim
    b = spec.end_dim + r if spec.end_dim < 0 else spec.end_dim
    if not (0 <= a < r and 0 <= b < r):
        raise ctx.fail(f"start_dim {spec.start_dim} / end_dim {spec.end_dim} out of range for a {r}-D value")
    if a > b:
        raise ctx.fail(f"start_dim {spec.start_dim} comes after end_dim {spec.end_dim} for a {r}-D value")
    prod: Dim = 1
    for d in x[a:b + 1]:
        prod = D.mul(prod, d)
    return (*x[:a], D.lower(prod), *x[b + 1:])


def _linear(ctx: _Ctx, spec: Linear, x: Shape) -> Shape:
    if len(x) < 1:
        raise ctx.fail("needs at least a 1-D input")
    ctx.require(x[-1], "==", spec.in_features, f"last dim must equal in_features {spec.in_features}",
                kind="merge")
    return (*x[:-1], spec.out_features)


LAYER_RULES: dict[type, Callable] = {
    Conv: _conv,
    ConvTranspose: _conv_transpose,
    Pool: _pool,
    AdaptiveAvgPool: _adaptive,
    Upsample: _upsample,
    BatchNorm: _batchnorm,
    Elementwise: _elementwise,
    Flatten: _flatten,
    Linear: _linear,
}


def _same_dims(ctx: _Ctx, shapes: list[Shape], skip: int | None, what: str) -> None:
    first, names = shapes[0], ctx.at.inputs
    for i, other in enumerate(shapes[1:], start=1):
        if len(other) != len(first):
            raise ctx.fail(f"{what}: ranks differ: {len(first)}-D vs {len(other)}-D")
        pair = f" of '{names[0]}' and '{names[i]}'" if len(names) > i else ""
        for j, (a, b) in enumerate(zip(first, other)):
            if j != skip:
                lab = _axis_label(first, j)
                ctx.require(a, "==", b, f"{lab} sizes{pair} must be equal", kind="merge", axis=lab)


def _cat(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    r = len(xs[0])
    dim = node.dim + r if node.dim < 0 else node.dim
    if not 0 <= dim < r:
        raise ctx.fail(f"dim {node.dim} out of range for {r}-D values")
    _same_dims(ctx, xs, dim, "inputs")
    total: Dim = 0
    for x in xs:
        total = D.add(total, x[dim])
    return (*xs[0][:dim], D.lower(total), *xs[0][dim + 1:])


def _add(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    _same_dims(ctx, xs, None, "operands")
    return xs[0]


def _crop(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    v, w = xs
    if len(v) != len(w) or len(v) < 3:
        raise ctx.fail(f"needs two values of the same rank with spatial dims, got {len(v)}-D and {len(w)}-D")
    for j in range(2, len(v)):
        lab = _axis_label(v, j)
        ctx.require(v[j], ">=", w[j], f"{lab}: the cropped value must be at least as large as the target",
                    kind="merge", axis=lab)
    return (*v[:2], *w[2:])


MERGE_RULES: dict[str, Callable] = {"cat": _cat, "add": _add, "crop": _crop}


def _input(ctx: _Ctx, node: Node) -> Shape:
    if not 3 <= len(node.dims) <= 5:
        raise ctx.fail(f"an input is (N, C, *spatial) with 1 to 3 spatial dims, got {len(node.dims)} dims")
    out: list[Dim] = []
    for d in node.dims:
        if isinstance(d, str):
            out.append(D.sym(d))
        elif d < 1:
            raise ctx.fail(f"input sizes must be positive, got {d}")
        else:
            out.append(d)
    return tuple(out)


def node_shape(node: Node, inputs: list[Shape], filename: str = "<string>") -> Shape:
    """The dims of one node's value from its inputs' dims (a front end that needs shapes while
    it builds, such as ONNX import, is handed this); constant violations raise as in ``infer``."""
    ctx = _Ctx(Graph((), (), filename))
    if node.op == "layer":
        return ctx.layer(node, inputs[0])
    if node.op == "input":
        return ctx.input(node)
    return ctx.merge(node, inputs)


def infer(graph: Graph) -> ShapeResult:
    """Every value's exact shape and the constraints (computed once per graph); raises
    GraphError/ShapeError for a graph that is wrong at every size."""
    return graph.memo(infer, lambda: _infer(graph))


def _infer(graph: Graph) -> ShapeResult:
    """Run every shape rule in graph order."""
    ctx = _Ctx(graph)
    values = interpret(graph, Rules(ctx.layer, ctx.merge, ctx.input))
    _assumptions(ctx, graph, values)
    return ShapeResult(graph, values, tuple(ctx.constraints), graph.symbols)


def _assumptions(ctx: _Ctx, graph: Graph, values: dict[str, Shape]) -> None:
    """``assume`` conditions restrict the sizes; ``expect`` dims must equal the value's dims."""
    for a in graph.assumes:
        ctx.node = Node(f"assume({a.text})", "assume", (), a.loc)
        for lhs, op, rhs in a.conds:
            ctx.require(lhs, op, rhs, "assumed", kind="assume")
    for e in graph.expects:
        ctx.node = Node(e.value, "expect", (), e.loc)
        got = values[e.value]
        if len(got) != len(e.dims):
            raise ctx.fail(f"expect({e.text}): '{e.value}' is {len(got)}-D, expected {len(e.dims)} dims")
        for j, (have, want) in enumerate(zip(got, e.dims)):
            ctx.require(have, "==", want, f"dim {j} of '{e.value}' is expected to be {D.dim_str(want)}",
                        kind="expect")
