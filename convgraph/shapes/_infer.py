"""The shape stage: IR -> every value's exact dims and the constraints on the input symbols.

A pure table of shape rules keyed by spec type. Each rule maps the input shape to the output
shape, per spatial axis, with the helpers below (effective kernel, window count, transposed size),
and records every constraint PyTorch enforces at run time (output >= 1, reflect pad < size, ...).
A constraint on constants only is decided at once: a failed one raises at build time.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from convgraph import dims as D
from convgraph.dims import Dim, ceil_window_count, effective_kernel, transposed_size, window_count
from convgraph.errors import GraphError, Loc, ShapeError
from convgraph.ir import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Elementwise,
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
    Rules,
    Softmax,
    Unflatten,
    Upsample,
    interpret,
    part_bounds,
    slice_index,
)

Shape = tuple[Dim, ...]

#: (lhs, op, rhs) -> whether a symbolic condition is kept (False: it holds for every size)
Known = MutableMapping[tuple[Dim, str, Dim], bool]

#: node, the values so far -> that node's dims and constraints when known already, else None
Reuse = Callable[["Node", Mapping[str, Shape]], "tuple[Shape, Sequence[Constraint]] | None"]

#: ``Known`` memos are cleared past this many conditions
KNOWN_LIMIT = 1 << 16


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

    @cached_property
    def symbols(self) -> frozenset[str]:
        """The symbols the condition involves (computed once per constraint)."""
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

    def __init__(self, graph: Graph, known: Known | None = None):
        self.graph = graph
        self.constraints: list[Constraint] = []
        self.node: Node | None = None
        self.known = known

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
        return {"cat": "cat", "add": "'+'", "sub": "'-'", "mul": "'*'", "interp_like": "interpolate",
                "pad_like": "pad"}.get(n.op, n.op) + f" at '{n.name}'"

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
        if self._keeps(c):
            self.constraints.append(c)

    def _keeps(self, c: Constraint) -> bool:
        """False for a condition that holds for every size (remembered in ``known``)."""
        key = (c.lhs, c.op, c.rhs)
        if self.known is not None and key in self.known:
            return self.known[key]
        keep = c.solved() != f"{next(iter(c.symbols))} >= 1"
        if self.known is not None:
            if len(self.known) > KNOWN_LIMIT:
                self.known.clear()
            self.known[key] = keep
        return keep

    def fail(self, message: str) -> GraphError:
        return GraphError(f"{self.where}: {message}", self.at.loc)

    def mismatch(self, lhs: int, rhs: int, axis: str, message: str) -> None:
        """Two int sizes that must agree (a broadcast) differ: wrong at every size."""
        raise self.fail(message)

    # the rules the interpreter runs, each with its node as the context of what it records

    def rules(self) -> Rules[Shape]:
        return Rules(self.layer, self.merge, self.input)

    def input(self, node: Node) -> Shape:
        self.node = node
        return _input(self, node)

    def layer(self, node: Node, x: Shape) -> Shape:
        self.node = node
        try:
            return tuple(D.lower(d) for d in LAYER_RULES[type(node.spec)](self, node.spec, x))
        except D.NotQuasiAffine as e:
            raise self.fail(_beyond(e, x)) from e

    def merge(self, node: Node, args: list[Shape]) -> Shape:
        self.node = node
        try:
            return MERGE_RULES[node.op](self, node, args)
        except D.NotQuasiAffine as e:
            raise self.fail(_beyond(e, *args)) from e


def _beyond(e: D.NotQuasiAffine, *shapes: Shape) -> str:
    """The message for a size outside the algebra: a floor of a dim of several symbols."""
    mixed = next((d for x in shapes for d in x if len(D.symbols(d)) > 1), None)
    what = f"the size {D.dim_str(mixed)}" if mixed is not None else "a size"
    return (f"{what} depends on several symbols, and this layer takes a floor of it ({e}); convgraph "
            "solves sizes that are floors of one symbol each: not supported yet (a cat of two inputs "
            "along a spatial axis followed by a strided, pooling or scaling layer reaches this)")


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


def _pair_label(x: Shape, y: Shape, j: int) -> str:
    """The label of axis j of two values that must agree: the one symbol both depend on ('H'),
    else its position ('dim 2': an A-axis against a B-axis couples two symbols)."""
    if j < 2:
        return "NC"[j]
    syms = D.symbols(x[j]) | D.symbols(y[j])
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
    for i, k, s, (pb, pe), op, d, ax in zip(x[2:], spec.kernel_size, spec.stride, spec.padding,
                                            spec.output_padding, spec.dilation, names):
        o = transposed_size(i, k, s, pb, op, d, pe)
        ctx.require(o, ">=", 1, "output size must be at least 1", axis=ax)
        out.append(o)
    return (x[0], spec.out_channels, *out)


def _pool(ctx: _Ctx, spec: Pool, x: Shape) -> Shape:
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    names = _spatial_labels(x)
    out = []
    for i, k, s, (pb, pe), d, ax in zip(x[2:], spec.kernel_size, spec.stride, spec.padding, spec.dilation, names):
        ek = effective_kernel(k, d)
        if spec.mode == "avg" and spec.nd == 3:  # avg_pool3d checks the unpadded input
            ctx.require(i, ">=", k, f"input must not be smaller than the kernel size {k}", axis=ax)
        o = ceil_window_count(i, pb, ek, s, pe) if spec.ceil_mode else window_count(i, pb + pe, ek, s)
        ctx.require(o, ">=", 1, "output size must be at least 1", axis=ax)
        out.append(o)
    return (*x[:2], *out)


def _adaptive(ctx: _Ctx, spec: AdaptiveAvgPool | AdaptiveMaxPool, x: Shape) -> Shape:
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


def _product(dims: Iterable[Dim]) -> Dim:
    prod: Dim = 1
    for d in dims:
        prod = D.mul(prod, d)
    return D.lower(prod)


def _divisible(ctx: _Ctx, d: Dim, k: int, rule: str, axis: str) -> None:
    """d % k == 0, stated as k*floor(d/k) == d."""
    ctx.require(D.mul(D.floordiv(d, k), k), "==", d, rule, axis=axis)


def _instancenorm(ctx: _Ctx, spec: InstanceNorm, x: Shape) -> Shape:
    """C must equal num_features when torch reads per-channel tensors (affine weights or running
    statistics; otherwise torch only warns). With input statistics: more than one spatial
    element (the product of the spatial dims, a rule that couples the spatial symbols)."""
    _need_rank(ctx, x, (spec.nd + 2,), f"N, C and {spec.nd} spatial dims")
    if spec.affine or (spec.track_running_stats and x[0] != 0):  # an empty batch reads no statistics
        _need_channels(ctx, x[1], spec.num_features, "num_features")
    if spec.affine:  # torch 2.13 indexes the first sample's weights
        ctx.require(x[0], ">=", 1, "with affine=True torch cannot normalise an empty batch", axis="N")
    if spec.uses_input_stats:
        labels = "*".join(_spatial_labels(x))
        ctx.require(_product(x[2:]), ">", 1, "needs more than 1 spatial element",
                    axis=labels if spec.nd == 1 else "")
    return x


def _groupnorm(ctx: _Ctx, spec: GroupNorm, x: Shape) -> Shape:
    """C == num_channels (affine) or divisible by num_groups; N*(C/G)*prod(spatial) must not be 1
    (torch: "Expected more than 1 value per channel when training")."""
    if len(x) < 2:
        raise ctx.fail(f"expected an input with at least 2 dims (N, C, ...), got {len(x)}-D")
    if spec.affine:
        _need_channels(ctx, x[1], spec.num_channels, "num_channels")
    else:
        _divisible(ctx, x[1], spec.num_groups, f"channels must be divisible by num_groups {spec.num_groups}", "C")
    per_group = D.lower(D.floordiv(x[1], spec.num_groups))
    if x[0] != 0 and not (isinstance(per_group, int) and per_group >= 2):
        ctx.require(_product((x[0], per_group, *x[2:])), ">", 1,
                    "needs more than 1 value per group (N * C/num_groups * spatial > 1)")
    return x


def _prelu(ctx: _Ctx, spec: PReLU, x: Shape) -> Shape:
    if spec.num_parameters > 1:
        if len(x) < 2:
            raise ctx.fail(f"num_parameters={spec.num_parameters} needs a channel dim, got a {len(x)}-D value")
        _need_channels(ctx, x[1], spec.num_parameters, "num_parameters")
    return x


def softmax_dim(dim: int | None, rank: int) -> int:
    """torch's ``_get_softmax_dim`` for dim=None: 0 for 0-, 1- and 3-D values, else 1."""
    return (0 if rank in (0, 1, 3) else 1) if dim is None else dim % rank


def _softmax(ctx: _Ctx, spec: Softmax, x: Shape) -> Shape:
    r = len(x)
    if spec.dim is not None and not -r <= spec.dim < r:
        raise ctx.fail(f"dim {spec.dim} out of range for a {r}-D value")
    return x


def _pad(ctx: _Ctx, spec: Pad, x: Shape) -> Shape:
    """The last len(padding) axes grow by begin + end (negative amounts crop). torch: reflect
    needs each pad < size, circular each |pad| <= size (and the pad <= the size left after the
    other side's crop: torch crops first), constant a crop no larger than the size;
    non-constant modes pad every spatial axis of a batched (rank - 2 axes) or unbatched
    (rank - 1) value. A result below 1 is refused (torch returns an empty tensor)."""
    r, k = len(x), len(spec.padding)
    if spec.mode == "constant" and k > r:
        raise ctx.fail(f"pads {k} axes but the value is {r}-D")
    if spec.mode != "constant" and k not in (r - 2, r - 1):
        raise ctx.fail(f"{spec.mode} padding of {k} axes needs a {k + 2}-D (batched) or {k + 1}-D value, "
                       f"got a {r}-D value")
    out = list(x)
    for j, (pb, pe) in zip(range(r - k, r), spec.padding):
        i, lab = x[j], _axis_label(x, j)
        for p, side in ((pb, "begin"), (pe, "end")):
            if p > 0 and spec.mode == "reflect":
                ctx.require(i, ">", p, f"reflect padding ({p} at the {side}) must be smaller than the input size",
                            axis=lab)
            if p != 0 and spec.mode == "circular":
                ctx.require(i, ">=", abs(p), f"circular padding ({p} at the {side}) must not exceed the input size",
                            axis=lab)
        if spec.mode == "constant" and min(pb, pe) < 0 < max(pb, pe):  # torch crops first, then pads
            ctx.require(i, ">=", -min(pb, pe), f"cannot crop {-min(pb, pe)} from the input size", axis=lab)
        if spec.mode == "circular" and min(pb, pe) < 0 < max(pb, pe):
            # torch crops first, then wraps the cropped part (reading uninitialised memory past it)
            ctx.require(D.add(i, min(pb, pe)), ">=", max(pb, pe),
                        f"circular padding ({max(pb, pe)}) must not exceed the size left after cropping "
                        f"{-min(pb, pe)}", axis=lab)
        out[j] = D.add(i, pb + pe)
        if pb + pe < 0:
            ctx.require(out[j], ">=", 1, "padded (cropped) size must be at least 1", axis=lab)
    return tuple(out)


def _pixel_shuffle(ctx: _Ctx, spec: PixelShuffle, x: Shape) -> Shape:
    """shuffle: (N, C*r*r, H, W) -> (N, C, H*r, W*r); unshuffle: (N, C, H*r, W*r) -> (N, C*r*r, H, W)."""
    _need_rank(ctx, x, (4,), "N, C, H, W")
    r = spec.factor
    n, c, h, w = x
    if spec.upscale:
        _divisible(ctx, c, r * r, f"channels must be divisible by upscale_factor**2 = {r * r}", "C")
        return (n, D.floordiv(c, r * r), D.mul(h, r), D.mul(w, r))
    for j in (2, 3):
        lab = _axis_label(x, j)
        _divisible(ctx, x[j], r, f"{lab} must be divisible by downscale_factor {r}", lab)
    return (n, D.mul(c, r * r), D.floordiv(h, r), D.floordiv(w, r))


def _flatten(ctx: _Ctx, spec: Flatten, x: Shape) -> Shape:
    r = len(x)
    a = spec.start_dim + r if spec.start_dim < 0 else spec.start_dim
    b = spec.end_dim + r if spec.end_dim < 0 else spec.end_dim
    if not (0 <= a < r and 0 <= b < r):
        raise ctx.fail(f"start_dim {spec.start_dim} / end_dim {spec.end_dim} out of range for a {r}-D value")
    if a > b:
        raise ctx.fail(f"start_dim {spec.start_dim} comes after end_dim {spec.end_dim} for a {r}-D value")
    return (*x[:a], _product(x[a:b + 1]), *x[b + 1:])


def _unflatten(ctx: _Ctx, spec: Unflatten, x: Shape) -> Shape:
    """Dim ``dim`` (size n) becomes ``sizes``; their product must be n, or, with a -1, divide n
    (the -1 is n // product of the others)."""
    r = len(x)
    if not -r <= spec.dim < r:
        raise ctx.fail(f"dim {spec.dim} out of range for a {r}-D value")
    j = spec.dim % r
    n, lab, known = x[j], _axis_label(x, j), math.prod(s for s in spec.sizes if s != -1)
    if -1 not in spec.sizes:
        ctx.require(n, "==", known, f"the sizes {list(spec.sizes)} must multiply up to the size of dim {j}",
                    axis=lab)
        return (*x[:j], *spec.sizes, *x[j + 1:])
    _divisible(ctx, n, known, f"the size of dim {j} must be divisible by {known} (the sizes {list(spec.sizes)})",
               lab)
    rest = D.floordiv(n, known) if known > 1 else n
    return (*x[:j], *(rest if s == -1 else s for s in spec.sizes), *x[j + 1:])


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
    AdaptiveMaxPool: _adaptive,
    Pad: _pad,
    PixelShuffle: _pixel_shuffle,
    Upsample: _upsample,
    BatchNorm: _batchnorm,
    InstanceNorm: _instancenorm,
    GroupNorm: _groupnorm,
    PReLU: _prelu,
    Softmax: _softmax,
    Elementwise: _elementwise,
    Flatten: _flatten,
    Unflatten: _unflatten,
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
                lab = _pair_label(first, other, j)
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


def _broadcast(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """torch broadcasting, trailing dims aligned: a dim that is the literal 1 takes the other's;
    other pairs must be equal (two size symbols are never assumed to broadcast: stricter than
    torch where a symbol happens to be 1)."""
    a, b = xs
    r = max(len(a), len(b))
    a, b = (1,) * (r - len(a)) + tuple(a), (1,) * (r - len(b)) + tuple(b)
    out = []
    for j, (p, q) in enumerate(zip(a, b)):
        if p == 1 or q == 1:
            out.append(q if p == 1 else p)
            continue
        lab = _axis_label(a, j)
        if isinstance(p, int) and isinstance(q, int) and p != q:
            ctx.mismatch(p, q, lab, f"{lab} sizes {p} and {q} differ and neither is 1 (broadcasting)")
        else:
            ctx.require(p, "==", q, f"{lab} sizes must be equal or 1 (broadcasting)", kind="merge", axis=lab)
        out.append(p)
    return tuple(out)


def _scalar(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    return xs[0]


def _like_ranks(ctx: _Ctx, v: Shape, w: Shape) -> None:
    if len(v) != len(w) or len(v) < 3:
        raise ctx.fail(f"needs two values of the same rank with spatial dims, got {len(v)}-D and {len(w)}-D")


def _pad_like(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """v's spatial dims padded to w's: ``(w - v) // 2`` at the start, the rest at the end; needs
    w >= v, and for reflect the larger (end) amount < v, for circular <= v."""
    v, w = xs
    _like_ranks(ctx, v, w)
    mode = node.attr("mode", "constant")
    for j in range(2, len(v)):
        lab = _axis_label(v, j)
        ctx.require(v[j], "<=", w[j], f"{lab}: the target must be at least as large as the padded value",
                    kind="merge", axis=lab)
        # the larger amount is ceil((w - v)/2): < v  iff  w <= 3v - 2;  <= v  iff  w <= 3v
        if mode == "reflect":
            ctx.require(D.add(D.mul(v[j], 3), -2), ">=", w[j],
                        f"{lab}: reflect padding ceil((w - v)/2) must be smaller than the input size", axis=lab)
        elif mode == "circular":
            ctx.require(D.mul(v[j], 3), ">=", w[j],
                        f"{lab}: circular padding ceil((w - v)/2) must not exceed the input size", axis=lab)
    return (*v[:2], *w[2:])


def _interp_like(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """``F.interpolate(v, size=w.shape[2:])``: v's N and C, w's spatial dims."""
    v, w = xs
    _like_ranks(ctx, v, w)
    need = _UPSAMPLE_ND.get(str(node.attr("mode")))
    if need is not None and need != len(v) - 2:
        raise ctx.fail(f"mode '{node.attr('mode')}' needs {need + 2}-D input, got {len(v)}-D")
    return (*v[:2], *w[2:])


def slice_bounds(start: int | None, stop: int | None, n: Dim) -> tuple[Dim, Dim]:
    """Python's slice bounds on a dim of size n, before clamping: negative indices count from n."""
    lo = 0 if start is None else (D.add(n, start) if start < 0 else start)
    hi = n if stop is None else (D.add(n, stop) if stop < 0 else stop)
    return lo, hi


def _slice(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """``v[a:b, c:d, ...]``. On an int dim torch's clamping is applied exactly; on a symbolic dim
    the bounds must lie within the dim (0 <= start < stop <= n), stricter than torch, which would
    clamp there. An empty result is refused."""
    (x,) = xs
    index = _part_index(ctx, node, x) if node.attr("part") is not None else node.attr("index", ())
    if len(index) > len(x):
        raise ctx.fail(f"too many indices ({len(index)}) for a {len(x)}-D value")
    out = list(x)
    for j, (start, stop) in enumerate(index):
        if start is None and stop is None:
            continue
        n, lab = x[j], _axis_label(x, j)
        if isinstance(n, int):
            length = len(range(n)[slice(start, stop)])
            if length < 1:
                raise ctx.fail(f"the slice {_slice_text(start, stop)} of dim {j} (size {n}) is empty")
            out[j] = length
            continue
        lo, hi = slice_bounds(start, stop, n)
        text = _slice_text(start, stop)
        if start is not None and start < 0:
            ctx.require(lo, ">=", 0, f"slice {text} starts before the start (torch would clamp)", axis=lab)
        if stop is not None and stop >= 0:
            ctx.require(n, ">=", hi, f"slice {text} ends past the end (torch would clamp)", axis=lab)
        out[j] = D.add(hi, D.mul(lo, -1))
        ctx.require(out[j], ">=", 1, f"slice {_slice_text(start, stop)} must not be empty", axis=lab)
    return tuple(out)


def _dims_in_range(ctx: _Ctx, dims: Iterable[int], rank: int, what: str) -> list[int]:
    for d in dims:
        if not -rank <= d < rank:
            raise ctx.fail(f"dim {d} out of range for a {rank}-D value")
    out = [d % rank for d in dims]
    if len(set(out)) != len(out):
        raise ctx.fail(f"a dim appears twice in {what}'s dims")
    return out


def _mean(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """``torch.mean(v, dims, keepdim)``: the dims become 1 (keepdim) or go."""
    (x,) = xs
    dims = _dims_in_range(ctx, node.attr("dims"), len(x), "mean")
    if node.attr("keepdim"):
        return tuple(1 if j in dims else d for j, d in enumerate(x))
    return tuple(d for j, d in enumerate(x) if j not in dims)


def _unsqueeze(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    (x,) = xs
    dim = node.attr("dim")
    if not -len(x) - 1 <= dim <= len(x):
        raise ctx.fail(f"dim {dim} out of range for a {len(x)}-D value")
    j = dim % (len(x) + 1)
    return (*x[:j], 1, *x[j:])


def _squeeze(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """Dims of size 1 go; torch keeps a named dim of another size, which convgraph allows only
    for an int size (on a size symbol the result's rank would depend on the size)."""
    (x,) = xs
    named = node.attr("dims")
    dims = range(len(x)) if named is None else _dims_in_range(ctx, named, len(x), "squeeze")
    for j in dims:
        if not isinstance(x[j], int):
            why = "name the dims to squeeze" if named is None else "whether it goes depends on the size"
            raise ctx.fail(f"dim {j} has size {D.dim_str(x[j])}: {why}")
    return tuple(d for j, d in enumerate(x) if not (j in dims and d == 1))


def _factor(d: Dim) -> tuple[int, Dim]:
    """d = coef * base with base's own coefficient 1 (a QA without constant term), else (1, d)."""
    if isinstance(d, D.QA) and d.n == 0 and d.base is not None:
        return d.m, D.QA(1, 0, d.base)
    return 1, d


def reshape_plan(entries: tuple, x: Shape) -> list[tuple]:
    """How each target entry is computed from the value: ('int', c), ('rest',) for the -1, or
    ('dim', j, num, den): the value's dim j times num/den. Raises ValueError when an entry is not
    one of the value's dims times an int, or when the sizes cannot match."""
    from fractions import Fraction

    used: set[int] = set()
    plan: list[tuple] = []
    ratio = Fraction(math.prod(d for d in x if isinstance(d, int)))
    for e in entries:
        if isinstance(e, int):
            plan.append(("int", e) if e != -1 else ("rest",))
            ratio /= e if e != -1 else 1
            continue
        ce, be = _factor(_entry_dim(e))
        j = next((j for j, d in enumerate(x) if j not in used and not isinstance(d, int) and _factor(d)[1] == be),
                 None)
        if j is None:
            raise ValueError(f"{D.dim_str(_entry_dim(e))} is not one of the value's dims (times an int)")
        used.add(j)
        cj = _factor(x[j])[0]
        plan.append(("dim", j, ce, cj))
        ratio *= Fraction(cj, ce)
    rest = [j for j, d in enumerate(x) if not isinstance(d, int) and j not in used]
    if ("rest",) not in plan:
        if rest or ratio != 1:
            raise ValueError("the sizes do not multiply up to the value's size")
    elif ratio.denominator != 1 or ratio < 1:
        raise ValueError(f"the -1 would be a fraction ({ratio}) of the value's remaining dims")
    return plan


def _reshape(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    """``reshape(v, shape)``: the -1 is what remains of the value's size; every other entry an
    int or one of the value's dims times an int (so the result is exact for every size)."""
    (x,) = xs
    entries = node.attr("shape")
    try:
        plan = reshape_plan(entries, x)
    except ValueError as e:
        raise ctx.fail(str(e)) from e
    dims = [p for p in plan if p[0] == "dim"]
    carried = {p[1] for p in dims}
    known = math.prod(e for e in entries if isinstance(e, int) and e != -1) * math.prod(p[2] for p in dims)
    k = math.prod(d for d in x if isinstance(d, int)) * math.prod(p[3] for p in dims) // known  # exact: see plan
    out: list[Dim] = []
    for entry, step in zip(entries, plan):
        if step[0] == "rest":
            rest = _product(d for j, d in enumerate(x) if not isinstance(d, int) and j not in carried)
            out.append(D.lower(D.mul(rest, k)))
        else:
            out.append(_entry_dim(entry))
    return tuple(out)


def _entry_dim(e: int | tuple[str, int]) -> Dim:
    """A reshape entry as a dim: an int, or ``(symbol, k)`` for k * symbol."""
    return e if isinstance(e, int) else D.lower(D.mul(D.sym(e[0]), e[1]))


def _part_index(ctx: _Ctx, node: Node, x: Shape) -> tuple:
    """Output k of ``chunk``/``split``: the dim must have a known size, and torch must return as
    many outputs as the statement unpacks."""
    kind, arg, dim, _k, count = node.attr("part")
    if not -len(x) <= dim < len(x):
        raise ctx.fail(f"{kind}: dim {dim} out of range for a {len(x)}-D value")
    n = x[dim]
    if not isinstance(n, int):
        raise ctx.fail(f"{kind} along dim {dim} of size {D.dim_str(n)}: convgraph splits dims of a known size only")
    try:
        got = len(part_bounds(kind, n, arg))
    except ValueError as e:
        raise ctx.fail(f"{kind}: {e}") from e
    if got != count:
        raise ctx.fail(f"{kind} of a dim of size {n} gives {got} outputs here, but {count} names unpack it")
    return slice_index(node, x)


def _slice_text(start: int | None, stop: int | None) -> str:
    return f"[{'' if start is None else start}:{'' if stop is None else stop}]"


def _crop(ctx: _Ctx, node: Node, xs: list[Shape]) -> Shape:
    v, w = xs
    if len(v) != len(w) or len(v) < 3:
        raise ctx.fail(f"needs two values of the same rank with spatial dims, got {len(v)}-D and {len(w)}-D")
    for j in range(2, len(v)):
        lab = _axis_label(v, j)
        ctx.require(v[j], ">=", w[j], f"{lab}: the cropped value must be at least as large as the target",
                    kind="merge", axis=lab)
    return (*v[:2], *w[2:])


MERGE_RULES: dict[str, Callable] = {"cat": _cat, "add": _broadcast, "sub": _broadcast, "mul": _broadcast,
                                    "crop": _crop, "pad_like": _pad_like, "interp_like": _interp_like,
                                    "scalar": _scalar, "slice": _slice, "mean": _mean, "unsqueeze": _unsqueeze,
                                    "squeeze": _squeeze, "reshape": _reshape}


def _input(ctx: _Ctx, node: Node) -> Shape:
    if not 3 <= len(node.dims) <= 5:
        raise ctx.fail(f"an input is (N, C, *spatial) with 1 to 3 spatial dims, got {len(node.dims)} dims")
    out: list[Dim] = []
    for j, d in enumerate(node.dims):
        if isinstance(d, str):
            out.append(D.sym(d))
        elif d < (0 if j == 0 else 1):  # an empty batch (N = 0) runs in torch
            raise ctx.fail(f"input sizes must be positive (N may be 0), got {d}")
        else:
            out.append(d)
    return tuple(out)


def node_shape(node: Node, inputs: list[Shape], filename: str = "<string>") -> Shape:
    """The dims of one node's value from its inputs' dims (a front end that needs shapes while
    it builds, such as ONNX import, is handed this); constant violations raise as in ``infer``."""
    return _Ctx(Graph((), (), filename)).rules().apply(node, inputs)


def infer(graph: Graph) -> ShapeResult:
    """Every value's exact shape and the constraints (computed once per graph); raises
    GraphError/ShapeError for a graph that is wrong at every size."""
    return graph.memo(infer, lambda: _infer(graph))


def _infer(graph: Graph) -> ShapeResult:
    """Run every shape rule in graph order."""
    ctx = _Ctx(graph)
    values = interpret(graph, ctx.rules())
    _assumptions(ctx, graph, values)
    return ShapeResult(graph, values, tuple(ctx.constraints), graph.symbols)


def infer_reusing(graph: Graph, reuse: Reuse, known: Known | None = None,
                  prefix: tuple[Mapping[str, Shape], Sequence[Constraint]] | None = None) -> ShapeResult:
    """``infer(graph)`` (not memoised), taking a node's dims and constraints from ``reuse`` where it
    gives them (a caller that knows them from an earlier result on a similar graph) and running
    the node's rule elsewhere; ``known`` remembers across calls which symbolic conditions hold for
    every size. The rules are pure functions of a node and its input dims, so a caller that reuses
    only nodes equal to an earlier graph's with the same input dims gets ``infer(graph)``. With
    ``prefix`` (the dims of the first nodes, by name, and their constraints in order), those nodes
    are not visited: what ``reuse`` would give for each of them."""
    ctx = _Ctx(graph, known)
    dims: Mapping[str, Shape] | None = None
    if prefix is not None:
        dims, ctx.constraints = prefix[0], list(prefix[1])
    values = _run_reusing(ctx, graph, reuse, dims, len(dims) if dims is not None else 0)
    _assumptions(ctx, graph, values)
    return ShapeResult(graph, values, tuple(ctx.constraints), graph.symbols)


class _Recording(_Ctx):
    """A context for concrete sizes: a failing merge condition is recorded, not raised."""

    def __init__(self, graph: Graph):
        super().__init__(graph)
        self.failed: list[Constraint] = []

    def require(self, lhs: Dim, op: str, rhs: Dim, rule: str, kind: str = "size", axis: str = "") -> None:
        a, b = D.lower(lhs), D.lower(rhs)
        if kind == "merge" and isinstance(a, int) and isinstance(b, int) and not D.compare(a, op, b):
            self.failed.append(Constraint(self.at.name, self.where, self.at.loc, rule, a, op, b, kind, axis))
            return
        super().require(a, op, b, rule, kind, axis)

    def mismatch(self, lhs: int, rhs: int, axis: str, message: str) -> None:
        """At concrete sizes a broadcast mismatch is a failing merge, recorded like the others."""
        self.failed.append(Constraint(self.at.name, self.where, self.at.loc, message, lhs, "==", rhs, "merge", axis))


def merge_failures_reusing(graph: Graph, reuse: Reuse, known: Mapping[str, Shape] | None = None,
                           start: int = 0) -> list[Constraint]:
    """The rules run on concrete sizes (``reuse`` gives every input node's concrete dims, and the
    dims and *failing* conditions of the nodes it knows): the failing conditions ``reuse`` gave
    plus every failing merge condition of the nodes run here, whose ``axis`` is ``'dim j'``.
    Raises ShapeError/GraphError at the first other condition that fails at these sizes.
    ``assume`` / ``expect`` conditions are not checked. With ``start``, the first ``start`` nodes
    are not visited: ``known`` holds their dims (and the caller their failing conditions)."""
    ctx = _Recording(graph)
    _run_reusing(ctx, graph, reuse, known, start)
    return ctx.constraints + ctx.failed


def node_failures(graph: Graph, node: Node, inputs: list[Shape]) -> tuple[Shape, list[Constraint]]:
    """One node's rule on concrete input dims: its dims and its failing merge conditions (as
    ``merge_failures_reusing`` records them); raises at any other condition that fails."""
    got = _int_cat_failures(node, inputs) if node.op == "cat" else None
    return got if got is not None else rule_failures(graph, node, inputs)


def rule_failures(graph: Graph, node: Node, inputs: list[Shape]) -> tuple[Shape, list[Constraint]]:
    """``node_failures`` by running the node's rule (what ``_int_cat_failures`` spares)."""
    ctx = _Recording(graph)
    out = ctx.rules().apply(node, inputs)
    return out, ctx.constraints + ctx.failed


def _int_cat_failures(node: Node, xs: list[Shape]) -> tuple[Shape, list[Constraint]] | None:
    """``rule_failures`` of a cat of int dims of one rank (the point check's commonest node where a
    merge fails), without running the rule: ``_cat`` on ints, each ``_same_dims`` condition that
    fails recorded as ``_Recording`` records it (the others hold: nothing recorded); None for any
    other input (the rule decides)."""
    first = xs[0]
    r = len(first)
    dim = node.dim + r if node.dim < 0 else node.dim
    if not 0 <= dim < r or any(len(x) != r or any(type(v) is not int for v in x) for x in xs):
        return None
    failed: list[Constraint] = []
    names = node.inputs
    for i, other in enumerate(xs[1:], start=1):
        pair = f" of '{names[0]}' and '{names[i]}'" if len(names) > i else ""
        for j, (a, b) in enumerate(zip(first, other)):
            if j != dim and a != b:
                lab = _pair_label(first, other, j)
                failed.append(Constraint(node.name, f"cat at '{node.name}'", node.loc,
                                         f"{lab} sizes{pair} must be equal", a, "==", b, "merge", lab))
    return (*first[:dim], sum(x[dim] for x in xs), *first[dim + 1:]), failed


#: the graph of a context that runs one node's rule (the rules read only the node)
_NO_GRAPH = Graph((), ())


def node_conditions(node: Node, inputs: list[Shape], known: Known | None = None) -> tuple[Shape, list[Constraint]]:
    """One node's rule on symbolic input dims: its dims and the conditions ``infer`` records for it
    (``known`` as in ``infer_reusing``); raises where ``infer`` would, at this node."""
    ctx = _Ctx(_NO_GRAPH, known)
    out = ctx.rules().apply(node, inputs)
    return out, ctx.constraints


class _Silent(_Ctx):
    """Records no condition: a symbolic one is dropped, one between constants is decided (and
    raises when it fails) as in ``infer``."""

    def require(self, lhs: Dim, op: str, rhs: Dim, rule: str, kind: str = "size", axis: str = "") -> None:
        a, b = D.lower(lhs), D.lower(rhs)
        if isinstance(a, int) and isinstance(b, int):
            super().require(a, op, b, rule, kind, axis)


def node_dims_only(node: Node, inputs: list[Shape]) -> Shape:
    """One node's dims from its inputs' dims, as ``infer`` computes them, without its conditions
    (a caller that needs the dims of a node and the conditions of another)."""
    return _Silent(_NO_GRAPH).rules().apply(node, inputs)


def _run_reusing(ctx: _Ctx, graph: Graph, reuse: Reuse, known: Mapping[str, Shape] | None = None,
                 start: int = 0) -> dict[str, Shape]:
    values: dict[str, Shape] = dict(known) if known is not None else {}
    rules = ctx.rules()
    for node in graph.nodes[start:] if start else graph.nodes:
        got = reuse(node, values)
        if got is not None:
            values[node.name] = got[0]
            ctx.constraints += got[1]
        else:
            values[node.name] = rules.apply(node, [values[i] for i in node.inputs])
    return values


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
