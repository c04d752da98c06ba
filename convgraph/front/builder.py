"""The Python builder: the same IR as the text DSL, written as Python calls.

>>> import convgraph as cg
>>> x = cg.input("N", 3, "H", "W")
>>> y = cg.ReLU()(cg.Conv2d(3, 8, 3, padding=1)(x))
>>> [(n.name, n.op) for n in cg.build(y).nodes]
[('x', 'input'), ('0', 'layer'), ('1', 'layer')]

Every catalogue class is a function with PyTorch's signature plus ``name=``; it returns a layer
handle that is applied to a value by calling it. Naming, decided when ``build`` collects the
values reachable from its outputs: an input has its ``name`` (default ``x``); a layer has its
``name=``, else its position among the graph's layers in definition order ("0", "1", ..., as
``torch.nn.Sequential`` numbers its children), and its value takes the layer's name; ``cat``,
``crop`` and ``+`` take ``name=`` (``(a + b).named("r")``), else ``cat``, ``cat_1``, ``add``, ...
Every position is the caller's file and line.

Functions, as the DSL spells them and bound by the same table (``front.functions``), each with
``name=`` for its value: ``softmax(v, dim=1)``, ``flatten(v, 1)``, ``mean(v, dim=(2, 3),
keepdim=True)``, ``unsqueeze(v, 1)``, ``squeeze(v, 1)``, ``reshape(v, ("N", -1, "2 * L"))`` (entries
ints, one -1, a size symbol of the inputs or a symbol times an int, as strings); ``F.relu(v)``,
``F.max_pool2d(v, 2)``, ``F.pad(v, (1, 2))``, ``F.interpolate(v, scale_factor=2)``, ... (every
``torch.nn.functional`` name the DSL knows) and ``torch.flatten(v, 1)``, ``torch.mean(v, -1)``,
``torch.cat([a, b], 1)``, ... A functional layer is a layer (numbered by position when unnamed).

Module paths. ``Sequential(*layers, name="double_conv")`` applies its layers in order, naming them
``double_conv.0``, ``double_conv.1``, ... as ``torch.nn.Sequential`` does (unnamed and outside any
scope, its children are numbered like any other layer). A Python function that builds values is
already a block; ``with scope("inc"):`` gives what it builds the DSL's block naming: inside it,
``name="conv"`` becomes ``inc.conv``, and an unnamed layer (or Sequential) takes the next index in
the scope, ``inc.0``, ``inc.1``, ... when it is applied. Scopes nest: ``down1.maxpool_conv.1``.
"""
from __future__ import annotations

import contextlib
import inspect
import itertools
import linecache
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Real
from types import FrameType, SimpleNamespace

from convgraph.errors import GraphError, Loc
from convgraph.front.catalogue import CATALOGUE, construct
from convgraph.front.dsl import (
    LAYER_NAME_RE,
    LAYER_NAME_RULE,
    NAME_RE,
    RESERVED,
    parse_conditions,
    parse_size,
    suffixed,
)
from convgraph.front.functions import (
    FUNCTIONAL,
    SHAPE_FUNCTIONS,
    TORCH_FUNCTIONS,
    functional_layer,
    like_attrs,
    part_arg,
    reshape_attrs,
    shape_function_attrs,
)
from convgraph.ir import Assume, Expect, Graph, LayerSpec, Node

_order = itertools.count()  # definition order of values, across every graph being built


@dataclass
class _Scope:
    prefix: str  # "inc." (nested: "down1.maxpool_conv.1.")
    count: Iterator[int] = field(default_factory=itertools.count)


_SCOPES: list[_Scope] = []  # the active ``with scope(...)`` blocks, outermost first


def _prefix() -> str:
    return _SCOPES[-1].prefix if _SCOPES else ""


def _scoped(name: str | None) -> str | None:
    """``name`` in the active scope; None stays None (named when applied, or by build)."""
    return None if name is None else _prefix() + name


def _next_in_scope() -> str | None:
    """An unnamed module's name when it is applied: the scope's next index, else None."""
    return f"{_SCOPES[-1].prefix}{next(_SCOPES[-1].count)}" if _SCOPES else None


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Name what is built inside as a block call's module: ``with scope("inc"): ...`` makes
    ``Conv2d(..., name="conv")`` the layer ``inc.conv`` (its state_dict keys ``inc.conv.weight``)."""
    loc = _caller(sys._getframe(2))
    _checked_name(name, loc, "scope")
    _SCOPES.append(_Scope(_prefix() + name + "."))
    try:
        yield
    finally:
        _SCOPES.pop()


def _caller(frame: FrameType | None) -> Loc:
    if frame is None:  # pragma: no cover - only without frame support
        return Loc("<builder>", 1, 1)
    pos = getattr(inspect.getframeinfo(frame, context=0), "positions", None)
    if pos is not None and pos.col_offset is not None:
        col = pos.col_offset + 1
    else:  # Python 3.10 records no columns: the statement's first column
        text = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        col = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    return Loc(frame.f_code.co_filename, frame.f_lineno, col)


def _checked_name(name: str | None, loc: Loc, what: str = "name") -> str | None:
    if name is not None and not (isinstance(name, str) and LAYER_NAME_RE.match(name)):
        raise GraphError(f"{what}= must be {LAYER_NAME_RULE}, got {name!r}", loc)
    return name


class Value:
    """A value of the graph being built. Combine with ``+``, ``cat``, ``crop``; apply layers."""

    def __init__(self, op: str, inputs: tuple[Value, ...], loc: Loc, *, layer: LayerSpec | None = None,
                 name: str | None = None, dims: tuple = (), dim: int = 1, attrs: tuple = ()):
        self.op, self.inputs, self.loc, self.layer = op, inputs, loc, layer
        self.name, self.dims, self.dim, self.attrs = name, dims, dim, attrs
        self.seq = next(_order)

    def _arith(self, other: object, op: str, scalar_op: str | None, symbol: str) -> Value:
        """``value op value`` (broadcasting) or ``value op number`` (a 'scalar' node)."""
        loc = _caller(sys._getframe(2))
        if isinstance(other, Real) and not isinstance(other, bool) and scalar_op is not None:
            return Value("scalar", (self,), loc, attrs=(("op", scalar_op), ("value", float(other))))
        if op == "div":
            raise GraphError(f"a value is divided by a number only, got {other!r}", loc)
        return Value(op, _values([self, other], symbol, loc), loc)

    def __add__(self, other: Value | float) -> Value:
        return self._arith(other, "add", "add", "+")

    def __radd__(self, other: Value | float) -> Value:
        return self._arith(other, "add", "add", "+")

    def __sub__(self, other: Value | float) -> Value:
        return self._arith(other, "sub", "sub", "-")

    def __rsub__(self, other: Value | float) -> Value:
        return self._arith(other, "sub", "rsub", "-")

    def __mul__(self, other: Value | float) -> Value:
        return self._arith(other, "mul", "mul", "*")

    def __rmul__(self, other: Value | float) -> Value:
        return self._arith(other, "mul", "mul", "*")

    def __truediv__(self, other: Value | float) -> Value:
        return self._arith(other, "div", "div", "/")

    def __getitem__(self, key: slice | tuple[slice, ...]) -> Value:
        """``v[:, :, :-2]``: slices with int (or None) bounds and no step."""
        loc = _caller(sys._getframe(1))
        items = key if isinstance(key, tuple) else (key,)
        index = []
        for item in items:
            if not isinstance(item, slice) or item.step is not None or not all(
                    b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in (item.start, item.stop)):
                raise GraphError(f"index with slices of int bounds and no step, e.g. v[:, :, :-2]; got {item!r}", loc)
            index.append((item.start, item.stop))
        return Value("slice", (self,), loc, attrs=(("index", tuple(index)),))

    def named(self, name: str) -> Value:
        """Name a cat / crop / + value (layers take ``name=``): ``(a + b).named("r")``."""
        if self.op in ("input", "layer"):
            raise GraphError(f"named() is for cat, crop and + values (and the other operators and functions); give "
                         f"an {self.op} its name= instead", self.loc)
        self.name = _scoped(_checked_name(name, self.loc))
        return self

    def __repr__(self) -> str:
        return f"<convgraph value {self.name or '?'} ({self.op}) from {self.loc}>"


class Layer:
    """A constructed layer; ``layer(value)`` applies it (once: weights are not shared)."""

    type_name = "layer"

    def __init__(self, spec: LayerSpec, name: str | None, loc: Loc):
        self.spec, self.name, self.loc = spec, _scoped(name), loc
        self.type_name = spec.type_name
        self.applied_at: Loc | None = None
        self.parent: Sequential | None = None

    def claim(self, where: Loc, via: Sequential | None = None) -> None:
        """Mark the layer applied (once); a Sequential's child is applied only by it."""
        if self.parent is not None and via is not self.parent:
            raise GraphError(f"this {self.type_name} is child of the Sequential at {self.parent.loc}: "
                             "apply the Sequential", where)
        if self.applied_at is not None:
            raise GraphError(f"this {self.type_name} is already applied at {self.applied_at}; "
                             "weight sharing is not supported: construct a second layer", where)
        self.applied_at = where

    def __call__(self, value: Value) -> Value:
        where = _caller(sys._getframe(1))
        (value,) = _values([value], self.type_name, where)
        self.claim(where)
        return self.apply(value, self.name if self.name is not None else _next_in_scope())

    def apply(self, value: Value, name: str | None) -> Value:
        return Value("layer", (value,), self.loc, layer=self.spec, name=name)

    def __repr__(self) -> str:
        return f"<convgraph layer {self.spec!r}>"


class Sequential(Layer):
    """``torch.nn.Sequential``: ``Sequential(Conv2d(3, 8, 3), ReLU(), name="body")(x)`` applies the
    layers in order, naming them ``body.0``, ``body.1``."""

    type_name = "Sequential"

    def __init__(self, *layers: Layer, name: str | None = None):
        loc = _caller(sys._getframe(1))
        self.name, self.loc, self.layers = _scoped(_checked_name(name, loc)), loc, layers
        self.applied_at, self.parent = None, None
        if not layers:
            raise GraphError("Sequential takes one or more layers", loc)
        for child in layers:
            if not isinstance(child, Layer):
                raise GraphError(f"Sequential takes layers, got {type(child).__name__} {child!r}", loc)
            if child.name is not None or child.parent is not None or child.applied_at is not None:
                raise GraphError(f"a Sequential child is named by its index and applied by the Sequential; "
                                 f"got {child!r}", loc)
            child.parent = self

    def apply(self, value: Value, name: str | None) -> Value:
        for i, child in enumerate(self.layers):
            child.claim(self.applied_at, self)  # type: ignore[arg-type]
            value = child.apply(value, None if name is None else f"{name}.{i}")
        return value

    def __repr__(self) -> str:
        return f"<convgraph Sequential of {len(self.layers)} from {self.loc}>"


def _values(items: Iterable[object], what: str, loc: Loc) -> tuple[Value, ...]:
    out = []
    for v in items:
        if not isinstance(v, Value):
            raise GraphError(f"{what} expects convgraph values, got {type(v).__name__} {v!r}", loc)
        out.append(v)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Public functions: input, layers, cat, crop, assume, expect, build
# --------------------------------------------------------------------------------------------


def input(*dims: int | str, name: str = "x") -> Value:
    """An input value ``(N, C, *spatial)``: ints or symbol names, e.g. ``input("N", 3, "H", "W")``."""
    loc = _caller(sys._getframe(1))
    if not (isinstance(name, str) and NAME_RE.match(name)):
        raise GraphError(f"an input name is an ASCII identifier, got {name!r}", loc)
    if not 3 <= len(dims) <= 5:
        raise GraphError(f"input() takes N, C and 1 to 3 spatial sizes (3 to 5 entries), got {len(dims)}", loc)
    for j, d in enumerate(dims):
        is_size = isinstance(d, int) and not isinstance(d, bool) and d >= (0 if j == 0 else 1)  # N may be 0
        is_symbol = isinstance(d, str) and bool(NAME_RE.match(d)) and d not in RESERVED
        if not (is_size or is_symbol):
            raise GraphError(f"an input size is a positive int or a symbol name, got {d!r}", loc)
    return Value("input", (), loc, name=name, dims=tuple(dims))


def cat(values: Sequence[Value], dim: int = 0, name: str | None = None) -> Value:
    """``torch.cat`` of values along ``dim`` (torch's default 0): ``cat([a, b], dim=1)``."""
    loc = _caller(sys._getframe(1))
    if not isinstance(values, (list, tuple)) or not values:
        raise GraphError("cat takes a non-empty list of values: cat([a, b], dim=1)", loc)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise GraphError(f"cat's dim must be an int, got {dim!r}", loc)
    return Value("cat", _values(values, "cat", loc), loc, name=_scoped(_checked_name(name, loc)), dim=dim)


def crop(value: Value, like: Value, name: str | None = None) -> Value:
    """Centre-crop ``value``'s spatial dims to ``like``'s size."""
    loc = _caller(sys._getframe(1))
    return Value("crop", _values([value, like], "crop", loc), loc, name=_scoped(_checked_name(name, loc)))


def pad(value: Value, like: Value, mode: str = "constant", padding_value: float = 0.0,
        name: str | None = None) -> Value:
    """Pad ``value``'s spatial dims up to ``like``'s: ``(w - v) // 2`` at the start, the rest at
    the end (the U-Net ``F.pad`` idiom), with torch's F.pad mode and value."""
    loc = _caller(sys._getframe(1))
    attrs = like_attrs("pad", {"mode": mode, "value": padding_value}, loc)
    return Value("pad_like", _values([value, like], "pad", loc), loc, name=_scoped(_checked_name(name, loc)),
                 attrs=attrs)


def interpolate(value: Value, like: Value, mode: str = "nearest", align_corners: bool | None = None,
                name: str | None = None) -> Value:
    """``F.interpolate(value, size=like.shape[2:], mode=mode, align_corners=align_corners)``."""
    loc = _caller(sys._getframe(1))
    attrs = like_attrs("interpolate", {"mode": mode, "align_corners": align_corners}, loc)
    return Value("interp_like", _values([value, like], "interpolate", loc), loc, name=_scoped(_checked_name(name, loc)),
                 attrs=attrs)


def chunk(value: Value, chunks: int, dim: int = 0) -> tuple[Value, ...]:
    """``torch.chunk``: ``chunks`` values (the dim must have a known size, and torch must return
    that many parts there, which the shape stage checks)."""
    loc = _caller(sys._getframe(1))
    return _parts(value, "chunk", part_arg("chunk", chunks, loc), dim, loc)


def split(value: Value, sizes: Sequence[int], dim: int = 0) -> tuple[Value, ...]:
    """``torch.split`` with a list of sizes (one value each; they must sum to the dim's size)."""
    loc = _caller(sys._getframe(1))
    arg = part_arg("split", sizes, loc)
    if isinstance(arg, int):
        raise GraphError("split in the builder takes the list of sizes (the number of outputs must be known)", loc)
    return _parts(value, "split", arg, dim, loc)


def _parts(value: Value, kind: str, arg: int | tuple[int, ...], dim: int, loc: Loc) -> tuple[Value, ...]:
    (value,) = _values([value], kind, loc)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise GraphError(f"{kind}: dim must be an int, got {dim!r}", loc)
    count = arg if isinstance(arg, int) else len(arg)
    return tuple(Value("slice", (value,), loc, attrs=(("part", (kind, arg, dim, k, count)),)) for k in range(count))


# --------------------------------------------------------------------------------------------
# Functions: softmax, flatten, mean, unsqueeze, squeeze, reshape and the F. / torch. spellings
# --------------------------------------------------------------------------------------------

_RESHAPE_SYMBOL = re.compile(r"^\s*(?:(\d+)\s*\*\s*)?([A-Za-z_]\w*)(?:\s*\*\s*(\d+))?\s*$")


def _function(kind: str, prefix: str) -> Callable[..., Value]:
    """The builder spelling of the DSL function ``{prefix}{name}``: PyTorch's arguments (bound by
    ``front.functions``, the table the DSL uses) plus ``name=`` for the value."""
    def call(value: Value, /, *args: object, name: str | None = None, **kwargs: object) -> Value:
        loc = _caller(sys._getframe(1))
        (value,) = _values([value], f"{prefix}{kind}", loc)
        checked = _scoped(_checked_name(name, loc))
        if kind == "reshape":
            return _reshape(value, args, kwargs, checked, loc, prefix)
        if kind in SHAPE_FUNCTIONS:
            attrs = shape_function_attrs(kind, args, kwargs, loc, prefix)
            return Value(kind, (value,), loc, name=checked, attrs=attrs)
        spec = functional_layer(kind, args, kwargs, loc, prefix=prefix)
        return Value("layer", (value,), loc, layer=spec, name=checked if checked is not None else _next_in_scope())

    call.__name__ = call.__qualname__ = kind
    call.__doc__ = f"``{prefix or 'torch.'}{kind}(value, ...)`` with PyTorch's arguments, plus ``name=``."
    return call


def _reshape(value: Value, args: tuple, kwargs: dict, name: str | None, loc: Loc, prefix: str) -> Value:
    """``reshape(v, ("N", 2, 16, "L"))``: entries are ints, one -1, a size symbol or ``"2 * L"``."""
    shape = list(args) + ([kwargs.pop("shape")] if "shape" in kwargs else [])
    if len(shape) != 1 or kwargs or not isinstance(shape[0], (tuple, list)):
        raise GraphError(f"{prefix}reshape takes a value and a shape: {prefix}reshape(v, ('N', -1, 'L'))", loc)
    symbols = {d for v in _reachable((value,)) if v.op == "input" for d in v.dims if isinstance(d, str)}
    return Value("reshape", (value,), loc, name=name,
                 attrs=reshape_attrs(tuple(_reshape_entry(e, symbols, loc) for e in shape[0]), loc))


def _reshape_entry(e: object, symbols: set[str], loc: Loc) -> object:
    """A string entry as ``(symbol, k)``; anything else is checked by ``reshape_attrs``."""
    if not isinstance(e, str):
        return e
    m = _RESHAPE_SYMBOL.match(e)
    if m is None or (m.group(1) and m.group(3)) or m.group(2) not in symbols:
        known = ", ".join(sorted(symbols)) or "none"
        raise GraphError(f"a reshape entry string is a size symbol of the inputs or a symbol times an int "
                         f"('L', '2 * L'), got {e!r} (the inputs declare: {known})", loc)
    return (m.group(2), int(m.group(1) or m.group(3) or 1))


softmax, flatten, mean, unsqueeze, squeeze, reshape = (
    _function(n, "") for n in ("softmax", "flatten", "mean", "unsqueeze", "squeeze", "reshape"))

#: ``F.relu(v)``, ``F.max_pool2d(v, 2)``, ``F.pad(v, (1, 2))``, ``F.interpolate(v, scale_factor=2)``, ...
F = SimpleNamespace(**{n: _function(n, "F.") for n in (*FUNCTIONAL, "pad")})
#: ``torch.flatten(v, 1)``, ``torch.mean(v, -1)``, ``torch.cat([a, b], 1)``, ``torch.chunk(v, 2, 1)``, ...
torch = SimpleNamespace(**{n: {"cat": cat, "chunk": chunk, "split": split}.get(n) or _function(n, "torch.")
                           for n in TORCH_FUNCTIONS})


@dataclass(frozen=True)
class Assumption:
    """``assume("H % 16 == 0", ...)``; give it to ``build(..., assume=[...])``."""

    conditions: tuple[str, ...]
    loc: Loc


@dataclass(frozen=True)
class Expectation:
    """``expect(value, "N", 8, "H", "W")``; give it to ``build(..., expect=[...])``."""

    value: Value
    dims: tuple[int | str, ...]
    loc: Loc


def assume(*conditions: str) -> Assumption:
    """Conditions on the size symbols, as DSL text: ``assume("H % 16 == 0", "H >= 64")``."""
    loc = _caller(sys._getframe(1))
    if not conditions or not all(isinstance(c, str) for c in conditions):
        raise GraphError("assume() takes one or more conditions as strings, e.g. assume('H % 16 == 0')", loc)
    return Assumption(conditions, loc)


def expect(value: Value, *dims: int | str) -> Expectation:
    """The shape a value must have; dims are ints or size expressions: ``expect(y, "N", 8, "H//2")``."""
    loc = _caller(sys._getframe(1))
    _values([value], "expect", loc)
    if not dims or not all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in dims):
        raise GraphError("expect() takes a value and its dims (ints or size expressions as strings)", loc)
    return Expectation(value, dims, loc)


def _layer_factory(type_name: str) -> Callable[..., Layer]:
    def make(*args: object, name: str | None = None, **kwargs: object) -> Layer:
        loc = _caller(sys._getframe(1))
        return Layer(construct(type_name, args, kwargs, loc), _checked_name(name, loc), loc)

    make.__name__ = make.__qualname__ = type_name
    make.__doc__ = (f"``torch.nn.{type_name}`` with PyTorch's arguments, plus ``name=``; "
                    f"apply it to a value: ``{type_name}(...)(x)``.")
    return make


globals().update({_t: _layer_factory(_t) for _t in CATALOGUE})


# --------------------------------------------------------------------------------------------
# build: reachable values -> named nodes -> a validated Graph
# --------------------------------------------------------------------------------------------


def _reachable(outputs: tuple[Value, ...]) -> list[Value]:
    seen: dict[int, Value] = {}
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen[id(v)] = v
            stack.extend(v.inputs)
    return sorted(seen.values(), key=lambda v: v.seq)


def _names(values: list[Value]) -> dict[int, str]:
    """Explicit names first, then layer positions, then the remaining merges by suffix."""
    names: dict[int, str] = {}
    taken: dict[str, Value] = {}

    def claim(v: Value, name: str) -> None:
        if name in taken:
            other = taken[name]
            raise GraphError(f"reused value {name!r}: also the name of the {other.op} at {other.loc}", v.loc)
        taken[name] = v
        names[id(v)] = name

    layers = [v for v in values if v.op == "layer"]
    for v in values:
        if v.name is not None:
            claim(v, v.name)
    for i, v in enumerate(layers):
        if v.name is None:
            claim(v, str(i))
    for v in values:
        if id(v) not in names:
            claim(v, next(n for n in suffixed(v.op) if n not in taken))
    return names


def build(*outputs: Value, doc: str | None = None, assume: tuple[Assumption, ...] | list = (),
          expect: tuple[Expectation, ...] | list = ()) -> Graph:
    """The Graph of every value reachable from ``outputs``, validated by the shape stage.

    >>> import convgraph as cg
    >>> x = cg.input(1, 1, "H", "W")
    >>> cg.build(cg.Conv2d(1, 1, 3)(x)).output_shapes()
    {'0': (1, 1, H - 2, W - 2)}
    """
    loc = _caller(sys._getframe(1))
    if not outputs:
        raise GraphError("build() needs at least one output value", loc)
    _values(outputs, "build", loc)
    for v in expect:
        if not isinstance(v, Expectation):
            raise GraphError(f"build(expect=...) takes expect(...) results, got {v!r}", loc)
    values = _reachable(outputs + tuple(e.value for e in expect))
    names = _names(values)
    nodes = tuple(_node(v, names) for v in values)
    out_names = [names[id(v)] for v in outputs]
    for i, n in enumerate(out_names):
        if n in out_names[:i]:
            raise GraphError(f"reused value {n!r}: listed twice in build()", loc)
    symbols = list(dict.fromkeys(d for v in values if v.op == "input" for d in v.dims if isinstance(d, str)))
    graph = Graph(nodes, tuple(out_names), "<builder>", doc,
                  tuple(_assumption(a, symbols, loc) for a in assume),
                  tuple(_expectation(e, names, symbols) for e in expect))
    return graph


def _node(v: Value, names: dict[int, str]) -> Node:
    name = names[id(v)]
    inputs = tuple(names[id(i)] for i in v.inputs)
    layer_name = name if v.op == "layer" else None
    return Node(name, v.op, inputs, v.loc, v.layer, layer_name, v.dims, v.dim, v.attrs)


def _assumption(a: Assumption, symbols: list[str], loc: Loc) -> Assume:
    if not isinstance(a, Assumption):
        raise GraphError(f"build(assume=...) takes assume(...) results, got {a!r}", loc)
    conds = tuple(c for text in a.conditions for c in parse_conditions(text, symbols, a.loc))
    return Assume(a.loc, ", ".join(a.conditions), conds)


def _expectation(e: Expectation, names: dict[int, str], symbols: list[str]) -> Expect:
    dims = tuple(d if isinstance(d, int) else parse_size(d, symbols, e.loc) for d in e.dims)
    text = ", ".join([names[id(e.value)], *map(str, e.dims)])
    return Expect(e.loc, text, names[id(e.value)], dims)


__all__ = ["input", "cat", "crop", "pad", "interpolate", "chunk", "split", "softmax", "flatten", "mean",
           "unsqueeze", "squeeze", "reshape", "F", "torch", "assume", "expect", "build", "scope",
           "Sequential", "Value", "Layer", "Assumption", "Expectation", *CATALOGUE]
