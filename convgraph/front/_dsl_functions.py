"""The text DSL's function calls, operators and slicing (a mixin of the DSL parser).

- ``h = F.relu(x)``, ``h = torch.flatten(x, 1)``, ``h = F.max_pool2d(x, 2)``, ``h = softmax(x, dim=1)``,
  ``h = F.pad(x, (1, 2))``, ``h = F.interpolate(x, scale_factor=2)``: a layer node (the catalogue
  layer of the same meaning), named after its value;
- ``p = pad(x1, like=x2)``, ``i = interpolate(d, like=h, mode="bilinear")``: 'pad_like' /
  'interp_like' nodes;
- ``a, b = chunk(v, 2, dim=1)``, ``a, b = split(v, [16, 48], dim=1)``: one 'slice' node per name;
- ``a + b``, ``a - b``, ``a * b`` (broadcasting), ``v * 0.5``, ``0.5 * v``, ``v + 1.0``,
  ``1.0 - v``, ``v / 2.0``: 'add'/'sub'/'mul' and 'scalar' nodes;
- ``v[:, :, :-2]``: a 'slice' node (int literals, no steps).
"""
from __future__ import annotations

import ast
from numbers import Real
from typing import TYPE_CHECKING, Any

from convgraph.errors import ConvGraphError, DSLSyntaxError, GraphError, Loc
from convgraph.front.catalogue import CATALOGUE
from convgraph.front.functions import (
    DSL_FUNCTIONS,
    FUNCTIONAL,
    SHAPE_FUNCTIONS,
    TORCH_FUNCTIONS,
    functional_layer,
    like_attrs,
    part_arg,
    shape_function_attrs,
)
from convgraph.ir import Node

_FUNCTIONAL_PREFIXES = (("F",), ("nn", "functional"), ("torch", "nn", "functional"))
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}
_SCALAR = {ast.Add: ("add", "add"), ast.Sub: ("sub", "rsub"), ast.Mult: ("mul", "mul"), ast.Div: ("div", None)}
MAX_SLICE_DIMS = 5


class FunctionsMixin:
    """Function calls, operators and slicing for ``dsl._Parser`` (see the module doc)."""

    if TYPE_CHECKING:  # what the parser provides
        symbols: dict[str, Loc]

        def loc(self, node: ast.AST) -> Loc: ...
        def error(self, node: ast.AST, message: str, cls: type[ConvGraphError] = DSLSyntaxError) -> ConvGraphError: ...
        def callee(self, func: ast.expr) -> str: ...
        def check_value_name(self, target: ast.Name) -> None: ...
        def value(self, node: ast.expr) -> str: ...
        def fresh(self, base: str, names_layer: bool) -> str: ...
        def define(self, node: Node, source_name: str | None) -> None: ...
        def layer_name(self, ctor: ast.Call, explicit: str | None, default: str) -> str: ...
        def literal(self, node: ast.expr) -> Any: ...
        def mentions_value(self, node: ast.expr) -> bool: ...
        def is_constant(self, name: str) -> bool: ...

    # -- callee names ------------------------------------------------------------------------

    def function_name(self, prefix: tuple[str, ...], last: str) -> str | None:
        """'F.relu' / 'torch.flatten' / 'cat' for a dotted call this module handles, else None."""
        if prefix in _FUNCTIONAL_PREFIXES and (last in FUNCTIONAL or last == "pad"):
            return f"F.{last}"
        if prefix == ("torch",) and last in TORCH_FUNCTIONS:
            return "cat" if last == "cat" else f"torch.{last}"
        return None

    # -- calls ---------------------------------------------------------------------------------

    def function(self, call: ast.Call, target: str, kind: str) -> None:
        """``target = kind(...)`` for a function other than input/cat/crop."""
        prefix, _, name = kind.rpartition(".")
        if name in ("chunk", "split"):
            raise self.error(call, f"{name} returns several values: unpack them, e.g. a, b = {name}(v, ..., dim=1)")
        if name == "reshape":
            return self.reshape(call, target, kind)
        if prefix == "" and name in ("pad", "interpolate") and any(k.arg == "like" for k in call.keywords):
            return self.like(call, target, name)
        src, args, kwargs = self.call_args(call, kind)
        if name in SHAPE_FUNCTIONS:
            attrs = shape_function_attrs(name, args, kwargs, self.loc(call), f"{prefix}." if prefix else "")
            self.define(Node(self.fresh(target, False), name, (src,), self.loc(call), attrs=attrs), target)
            return
        spec = functional_layer(name, args, kwargs, self.loc(call), prefix=f"{prefix}." if prefix else "")
        node_name = self.fresh(target, names_layer=True)
        node_name = self.layer_name(call, None, node_name)
        self.define(Node(node_name, "layer", (src,), self.loc(call), spec, node_name), target)

    def call_args(self, call: ast.Call, kind: str) -> tuple[str, tuple, dict]:
        """The value (first argument) and the literal arguments after it."""
        if not call.args or any(isinstance(a, ast.Starred) for a in call.args):
            raise self.error(call, f"{kind} takes a value first, e.g. {kind}(x, ...)")
        src = self.value(call.args[0])
        kwargs: dict[str, object] = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise self.error(kw, "**keyword unpacking is not allowed")
            if kw.arg in kwargs:
                raise self.error(kw, f"{kind}: keyword argument {kw.arg!r} repeated")
            if kw.arg == "size" and isinstance(kw.value, (ast.Subscript, ast.Attribute)):
                raise self.error(kw.value, f"{kind}: a size read from another value is written "
                                           "interpolate(v, like=w, mode=...)")
            kwargs[kw.arg] = self.literal(kw.value)
        return src, tuple(self.literal(a) for a in call.args[1:]), kwargs

    def like(self, call: ast.Call, target: str, kind: str) -> None:
        if len(call.args) != 1:
            raise self.error(call, f"{kind} takes one value and like=: {kind}(v, like=w)")
        v = self.value(call.args[0])
        like_node = next(k for k in call.keywords if k.arg == "like").value
        w = self.value(like_node)
        kwargs = {k.arg: self.literal(k.value) for k in call.keywords if k.arg != "like"}
        if None in kwargs:
            raise self.error(call, "**keyword unpacking is not allowed")
        attrs = like_attrs(kind, kwargs, self.loc(call))
        op = "pad_like" if kind == "pad" else "interp_like"
        self.define(Node(self.fresh(target, False), op, (v, w), self.loc(call), attrs=attrs), target)

    def multi(self, stmt: ast.Assign) -> None:
        """``a, b = chunk(v, 2, dim=1)`` / ``split(v, sizes, dim=1)``: one 'slice' node per name."""
        targets, call = stmt.targets[0], stmt.value
        kind = self.callee(call.func) if isinstance(call, ast.Call) and not isinstance(call.func, ast.Call) else ""
        name = kind.rpartition(".")[2]
        if name not in ("chunk", "split") or not isinstance(call, ast.Call):  # only they unpack
            raise self.error(stmt.targets[0], "assign to exactly one plain name, e.g. h = ...")
        names = targets.elts  # type: ignore[attr-defined]
        if not 2 <= len(names) <= 64 or not all(isinstance(t, ast.Name) for t in names):
            raise self.error(targets, "unpack into 2 to 64 plain names, e.g. a, b = chunk(v, 2, dim=1)")
        for t in names:
            self.check_value_name(t)
        seen = [t.id for t in names]
        if len(set(seen)) != len(seen):
            raise self.error(targets, "the unpacked names must differ", GraphError)
        src, args, kwargs = self.call_args(call, kind)
        params = ("chunks", "dim") if name == "chunk" else ("split_size_or_sections", "dim")
        bound = self.bind_simple(call, name, params, args, kwargs, {"dim": 0})
        arg = part_arg(name, bound[params[0]], self.loc(call))
        dim = bound["dim"]
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise self.error(call, f"{name}: dim must be an int, got {dim!r}")
        for k, t in enumerate(names):
            part = (name, arg, dim, k, len(names))
            self.define(Node(self.fresh(t.id, False), "slice", (src,), self.loc(call), attrs=(("part", part),)), t.id)

    def bind_simple(self, call: ast.Call, what: str, params: tuple[str, ...], args: tuple, kwargs: dict,
                    defaults: dict) -> dict:
        if len(args) > len(params):
            raise self.error(call, f"{what}: takes at most {len(params)} arguments after the value, got {len(args)}")
        bound = dict(zip(params, args))
        for k, v in kwargs.items():
            if k not in params or k in bound:
                why = "unexpected keyword argument" if k not in params else "got multiple values for argument"
                raise self.error(call, f"{what}: {why} {k!r}")
            bound[k] = v
        bound = {**defaults, **bound}
        missing = [p for p in params if p not in bound]
        if missing:
            raise self.error(call, f"{what}: missing required argument {missing[0]!r}")
        return bound

    def reshape(self, call: ast.Call, target: str, kind: str) -> None:
        """``reshape(v, (N, 2, 16, L))``: entries are ints, one -1, or a size symbol times an int."""
        shape_kw = [k.value for k in call.keywords if k.arg == "shape"]
        extra = [k for k in call.keywords if k.arg != "shape"]
        args = list(call.args[1:]) + shape_kw
        if not call.args or len(args) != 1 or extra:
            raise self.error(extra[0] if extra else call, f"{kind} takes a value and a shape: {kind}(v, (N, -1, L))")
        src = self.value(call.args[0])
        seq = args[0]
        if not isinstance(seq, (ast.Tuple, ast.List)) or not 1 <= len(seq.elts) <= 5:
            raise self.error(seq, "the shape is a tuple of 1 to 5 entries")
        entries = tuple(self.reshape_entry(e) for e in seq.elts)
        if sum(e == -1 for e in entries) > 1:
            raise self.error(seq, "only one dimension can be -1")
        self.define(Node(self.fresh(target, False), "reshape", (src,), self.loc(call),
                         attrs=(("shape", entries),)), target)

    def reshape_entry(self, node: ast.expr) -> int | tuple[str, int]:
        """An int >= 1, -1, a size symbol, or a size symbol times an int (``2 * L``, ``L * 2``)."""
        if isinstance(node, (ast.Constant, ast.UnaryOp)):
            v = self.literal(node)
            if isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1):
                return v
        elif isinstance(node, ast.Name) and node.id in self.symbols:
            return (node.id, 1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for sym, k in ((node.left, node.right), (node.right, node.left)):
                if isinstance(sym, ast.Name) and sym.id in self.symbols and isinstance(k, ast.Constant) \
                        and isinstance(k.value, int) and not isinstance(k.value, bool) and 1 <= k.value <= 2**31:
                    return (sym.id, k.value)
        raise self.error(node, "a reshape entry is a positive int, -1, a size symbol or a size symbol times an int")

    # -- operators -----------------------------------------------------------------------------

    def binop(self, expr: ast.BinOp, target: str) -> None:
        for side in (expr.left, expr.right):
            if isinstance(side, ast.BinOp) and self.mentions_value(side):
                raise self.error(side, "write one operator per statement: name the partial result first")
        consts = [self.scalar_operand(s) for s in (expr.left, expr.right)]
        if consts[0] is not None and consts[1] is not None:
            raise self.error(expr, "at least one operand must be a value")
        if consts[0] is None and consts[1] is None:
            op = _BINARY.get(type(expr.op))
            if op is None:
                raise self.error(expr, "values combine with +, - or * (elementwise, with broadcasting)")
            inputs = (self.value(expr.left), self.value(expr.right))
            self.define(Node(self.fresh(target, False), op, inputs, self.loc(expr)), target)
            return
        ops = _SCALAR.get(type(expr.op))
        right_const = consts[1] is not None
        op = None if ops is None else ops[0] if right_const else ops[1]
        if op is None:
            raise self.error(expr, "a value and a number combine with +, -, * or value / number")
        src = self.value(expr.left if right_const else expr.right)
        value = float(consts[1] if right_const else consts[0])  # type: ignore[arg-type]
        self.define(Node(self.fresh(target, False), "scalar", (src,), self.loc(expr),
                         attrs=(("op", op), ("value", value))), target)

    def scalar_operand(self, node: ast.expr) -> float | None:
        """A number operand: a literal, a constant or constant arithmetic (None for a value, or a name
        that is no constant: it is then looked up as a value)."""
        if isinstance(node, ast.Name) and not self.is_constant(node.id):
            return None
        if not self.mentions_value(node):
            v = self.literal(node)
            if isinstance(v, Real) and not isinstance(v, bool):
                return float(v)
            raise self.error(node, f"an operand is a value or a number, got {v!r}")
        return None

    # -- slicing -------------------------------------------------------------------------------

    def subscript(self, expr: ast.Subscript, target: str) -> None:
        """``v[:, :, :-2]``: int literals, no step, no single index (which would drop a dim)."""
        src = self.value(expr.value)
        items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
        if len(items) > MAX_SLICE_DIMS:
            raise self.error(expr, f"too many indices ({len(items)})")
        index = []
        for item in items:
            if not isinstance(item, ast.Slice):
                raise self.error(item, "index with slices such as v[:, :16] or v[:, :, :-2] "
                                       "(a single index would drop the dim)")
            if item.step is not None:
                raise self.error(item.step, "slicing with a step is not supported")
            index.append(tuple(self.slice_bound(b) for b in (item.lower, item.upper)))
        self.define(Node(self.fresh(target, False), "slice", (src,), self.loc(expr),
                         attrs=(("index", tuple(index)),)), target)

    def slice_bound(self, node: ast.expr | None) -> int | None:
        if node is None:
            return None
        v = None if isinstance(node, ast.Name) and node.id in self.symbols else self.literal(node)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.error(node, "slice bounds are int literals or constants (size symbols are not allowed here)")
        return v


#: every name a DSL call may start with besides the catalogue
CALLABLE_NAMES = frozenset(DSL_FUNCTIONS) | frozenset(CATALOGUE)
