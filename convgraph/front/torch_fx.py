"""The PyTorch front end: ``from_torch(module, ("N", 3, "H", "W"))`` traces a module with torch.fx
into the IR. torch is imported only here, only when called.

- ``call_module`` of a catalogue module (Conv2d, BatchNorm2d, ReLU, ...) becomes that layer, its
  constructor arguments read back from the module's attributes and checked by the catalogue, its
  layer name the module path (``inc.double_conv.0``), so the state_dict keys are convgraph's names;
- functional spellings (``F.relu``, ``torch.sigmoid``, ``F.max_pool2d``, ``torch.flatten``,
  ``x.view(x.size(0), -1)``, ``F.interpolate(scale_factor=...)``, ...) become the same layers;
- ``torch.cat``, tensor ``+``, and the centre crop ``v[:, :, t:t + w.shape[2], l:l + w.shape[3]]``
  with ``t = (v.shape[2] - w.shape[2]) // 2`` become cat / add / crop;
- sizes (``x.size()``, ``x.shape[2]``, ``x.size(3)``) and integer arithmetic on them are kept as
  expressions of (value, axis) leaves and matched structurally where they feed an operation
  (``F.pad(x1, [dX // 2, dX - dX // 2, ...])`` with ``dX = x2.size()[3] - x1.size()[3]`` is a pad
  of x1 to x2's size).

Anything else is an error naming the fx node, its target and what is supported.
"""
from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from convgraph import ir
from convgraph.errors import ConvGraphError, GraphError, Loc
from convgraph.front.catalogue import CATALOGUE, construct

DimsSpec = Sequence[int | str]


@dataclass(frozen=True)
class Size:
    """``value.shape[axis]``: a leaf of a size expression."""

    value: str
    axis: int


@dataclass(frozen=True)
class Arith:
    """A size expression: op in add, sub, mul, floordiv."""

    op: str
    a: object
    b: object


@dataclass(frozen=True)
class Tensor:
    name: str


_ARITH = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.floordiv: "floordiv"}
_FOLD = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv}


def arith(op: str, a: object, b: object) -> object:
    """Constant-folded size arithmetic."""
    if isinstance(a, int) and isinstance(b, int):
        return _FOLD[op](a, b)
    return Arith(op, a, b)


class TorchImportError(GraphError):
    """A construct of the traced module that convgraph cannot represent."""


# --- module -> spec ---------------------------------------------------------------------------------------


def _catalogue_name(module: Any) -> str | None:
    """The catalogue class a torch module is (its own class, from torch.nn, not a subclass)."""
    cls = type(module)
    name = cls.__name__
    return name if name in CATALOGUE and cls.__module__.startswith("torch.nn") else None


def _attribute(module: Any, param: str) -> Any:
    if param == "bias":
        bias = getattr(module, "bias", None)
        return bias is not None if not isinstance(bias, bool) else bias
    value = getattr(module, param)
    return tuple(value) if isinstance(value, list) else value


def module_spec(module: Any, loc: Loc) -> ir.LayerSpec:
    """The canonical spec of a catalogue module, from its attributes (checked as a constructor call)."""
    name = _catalogue_name(module)
    entry = CATALOGUE[name]  # type: ignore[index]
    kwargs = {p: _attribute(module, p) for p, _ in entry.params if p not in ("device", "dtype") and hasattr(module, p)}
    return construct(name, (), kwargs, loc)  # type: ignore[arg-type]


# --- functional spellings -> catalogue names and parameter orders ------------------------------------------

#: functional name -> (catalogue name, positional parameter names after the input)
FUNCTIONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "relu": ("ReLU", ("inplace",)),
    "sigmoid": ("Sigmoid", ()),
    "tanh": ("Tanh", ()),
    "gelu": ("GELU", ()),
    "silu": ("SiLU", ("inplace",)),
    "leaky_relu": ("LeakyReLU", ("negative_slope", "inplace")),
    "dropout": ("Dropout", ("p", "training", "inplace")),
    **{f"dropout{nd}d": (f"Dropout{nd}d", ("p", "training", "inplace")) for nd in (1, 2, 3)},
    **{f"max_pool{nd}d": (f"MaxPool{nd}d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                             "return_indices")) for nd in (1, 2, 3)},
    **{f"avg_pool{nd}d": (f"AvgPool{nd}d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                             "divisor_override")) for nd in (1, 2, 3)},
    **{f"adaptive_avg_pool{nd}d": (f"AdaptiveAvgPool{nd}d", ("output_size",)) for nd in (1, 2, 3)},
    "flatten": ("Flatten", ("start_dim", "end_dim")),
}
#: arguments of the functional form that the module form does not have
_DROPPED = ("training",)


def _functional_name(target: Any) -> str | None:
    """``F.relu``, ``torch.relu``, ``torch.nn.functional.max_pool2d``, method ``"relu"`` -> its name."""
    name = target if isinstance(target, str) else getattr(target, "__name__", None)
    return name if name in FUNCTIONAL else None


SUPPORTED = ("catalogue modules (" + ", ".join(sorted(CATALOGUE)) + "), functional forms ("
             + ", ".join(sorted(FUNCTIONAL)) + "), torch.cat, tensor +, x.size()/x.shape and int arithmetic "
             "on sizes, centre-crop slicing, x.view(x.size(0), -1), F.interpolate(scale_factor=...)")


# --- the walk ------------------------------------------------------------------------------------------------


def _node_text(node: Any) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", repr(node.target))
    return f"fx node '{node.name}' ({node.op} {target})"


class _Walk:
    """Turns fx nodes into IR nodes, one at a time, keeping sizes as expressions."""

    def __init__(self, root: Any, label: str):
        self.root, self.label = root, label
        self.nodes: list[ir.Node] = []
        self.env: dict[str, object] = {}
        self.ranks: dict[str, int] = {}
        self.loc = Loc(label, 0, 0)
        self.current: Any = None

    # --- helpers ---

    def fail(self, message: str) -> TorchImportError:
        return TorchImportError(f"{_node_text(self.current)}: {message}", self.loc)

    def value(self, arg: Any) -> Any:
        """An fx argument with every node replaced by what it stands for."""
        import torch.fx as fx

        return fx.node.map_arg(arg, lambda n: self.env[n.name])  # type: ignore[arg-type,return-value]

    def tensor(self, v: object, what: str = "input") -> str:
        if not isinstance(v, Tensor):
            raise self.fail(f"expected a tensor as {what}, got {v!r}")
        return v.name

    def rank(self, name: str) -> int:
        return self.ranks[name]

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.ranks:
            name, k = f"{base}_{k}", k + 1
        return name

    def add(self, op: str, inputs: tuple[str, ...], name: str | None = None, **kw: Any) -> Tensor:
        """Append a node; its rank is its first input's, but for Flatten (the front end needs ranks
        before the shape stage runs: negative dims, x.size())."""
        name = self.unique(name or self.current.name)
        self.nodes.append(ir.Node(name, op, inputs, self.loc, **kw))
        rank = self.ranks[inputs[0]]
        spec = kw.get("layer")
        if isinstance(spec, ir.Flatten):
            start, end = (d + rank if d < 0 else d for d in (spec.start_dim, spec.end_dim))
            rank -= end - start
        self.ranks[name] = rank
        return Tensor(name)

    def layer(self, spec: ir.LayerSpec, x: str, layer_name: str | None = None) -> Tensor:
        """A layer; a module's value is named by its path (as a DSL block names it), a function's by fx."""
        t = self.add("layer", (x,), name=layer_name, layer=spec, layer_name=layer_name or self.current.name)
        return t

    def construct(self, type_name: str, kwargs: dict) -> ir.LayerSpec:
        try:
            return construct(type_name, (), kwargs, self.loc)
        except ConvGraphError as e:
            raise self.fail(e.message) from e

    # --- fx ops ---

    def placeholder(self, node: Any, dims: DimsSpec) -> object:
        name = str(node.target)  # the forward argument's own name (fx renames 'input' to 'input_1')
        self.nodes.append(ir.Node(name, "input", (), self.loc, dims=tuple(dims)))
        self.ranks[name] = len(dims)
        return Tensor(name)

    def call_module(self, node: Any) -> object:
        module = self.root.get_submodule(node.target)
        if _catalogue_name(module) is None:
            raise self.fail(f"module {type(module).__name__} is not in the catalogue; supported: {SUPPORTED}")
        x = self.tensor(self.value(node.args[0]))
        try:
            spec = module_spec(module, self.loc)
        except ConvGraphError as e:
            raise self.fail(e.message) from e
        return self.layer(spec, x, node.target)

    def call(self, node: Any) -> object:
        """call_function and call_method: sizes, arithmetic, merges and functional layers."""
        args, kwargs = self.value(node.args), self.value(node.kwargs)
        target = node.target
        key = target if isinstance(target, str) else getattr(target, "__name__", None)
        if target in _ARITH:
            return self.arithmetic(_ARITH[target], args)
        handler = _CALLS.get(key)  # type: ignore[arg-type]
        if handler is not None:
            return handler(self, args, kwargs)
        name = _functional_name(target)
        if name is not None:
            return self.functional(name, args, kwargs)
        raise self.fail(f"unsupported operation; supported: {SUPPORTED}")

    def arithmetic(self, op: str, args: tuple) -> object:
        a, b = args
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            if op == "add" and isinstance(a, Tensor) and isinstance(b, Tensor):
                return self.add("add", (a.name, b.name))
            raise self.fail(f"tensor '{op}' with these operands is not supported (only tensor + tensor)")
        return arith(op, a, b)

    def functional(self, name: str, args: tuple, kwargs: dict) -> object:
        type_name, params = FUNCTIONAL[name]
        x = self.tensor(args[0])
        bound = dict(zip(params, args[1:])) | dict(kwargs)
        bound = {k: v for k, v in bound.items() if k not in _DROPPED}
        if type_name == "Flatten" and "end_dim" not in bound:
            bound.setdefault("start_dim", 0)  # torch.flatten's default start_dim is 0, the module's 1
        return self.layer(self.construct(type_name, bound), x)

    def output(self, node: Any) -> tuple[str, ...]:
        out = self.value(node.args[0])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(self.tensor(o, "output") for o in outs)


# --- calls by name ------------------------------------------------------------------------------------


def _size(w: _Walk, args: tuple, kwargs: dict) -> object:
    """``x.size()`` (a tuple of leaves) or ``x.size(d)``."""
    name = w.tensor(args[0])
    n = w.rank(name)
    dims = tuple(Size(name, j) for j in range(n))
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return dims if dim is None else dims[dim]


def _getattr(w: _Walk, args: tuple, kwargs: dict) -> object:
    obj, attr = args
    if isinstance(obj, Tensor) and attr == "shape":
        return _size(w, (obj,), {})
    raise w.fail(f"attribute {attr!r} of {obj!r} is not supported (only tensor.shape)")


def _getitem(w: _Walk, args: tuple, kwargs: dict) -> object:
    obj, index = args
    if isinstance(obj, tuple):
        return obj[index]
    if isinstance(obj, Tensor):
        return _crop(w, obj.name, index if isinstance(index, tuple) else (index,))
    raise w.fail(f"indexing {obj!r} is not supported")


def _is_full(s: object) -> bool:
    return isinstance(s, slice) and s == slice(None)


def _crop(w: _Walk, v: str, index: tuple) -> object:
    """``v[:, :, t:t + like.shape[2], ...]`` with ``t = (v.shape[2] - like.shape[2]) // 2``."""
    rank = w.rank(v)
    if len(index) != rank or not all(_is_full(s) for s in index[:2]):
        raise w.fail("tensor indexing is supported only as a centre crop of the spatial axes "
                     "(v[:, :, t:t + w.shape[2], ...], t = (v.shape[2] - w.shape[2]) // 2)")
    likes = {_crop_like(v, j, s) for j, s in enumerate(index[2:], 2)}
    like = likes.pop() if len(likes) == 1 else None
    if like is None:
        raise w.fail("this slice is not a centre crop to another tensor's size "
                     "(v[:, :, t:t + w.shape[2], ...] with t = (v.shape[2] - w.shape[2]) // 2 on every spatial axis)")
    return w.add("crop", (v, like))


def _crop_like(v: str, j: int, s: object) -> str | None:
    if not isinstance(s, slice) or s.step not in (None, 1) or not isinstance(s.start, Arith):
        return None
    start = s.start
    if start.op != "floordiv" or start.b != 2 or not isinstance(start.a, Arith) or start.a.op != "sub":
        return None
    own, like = start.a.a, start.a.b
    if own != Size(v, j) or not isinstance(like, Size) or like.axis != j:
        return None
    return like.value if s.stop == Arith("add", start, like) else None


def _cat(w: _Walk, args: tuple, kwargs: dict) -> object:
    tensors = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    names = tuple(w.tensor(t) for t in tensors)
    rank = w.rank(names[0])
    return w.add("cat", names, dim=dim + rank if dim < 0 else dim)


def _add(w: _Walk, args: tuple, kwargs: dict) -> object:
    if kwargs.get("alpha", 1) != 1:
        raise w.fail("torch.add with alpha is not supported")
    return w.arithmetic("add", args[:2])


def _view(w: _Walk, args: tuple, kwargs: dict) -> object:
    """``x.view(x.size(0), -1)`` / ``reshape``: a Flatten(1)."""
    x = w.tensor(args[0])
    shape = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    if len(shape) == 2 and shape[0] == Size(x, 0) and shape[1] == -1:
        return w.layer(w.construct("Flatten", {"start_dim": 1}), x)
    raise w.fail("view/reshape is supported only as x.view(x.size(0), -1) (a Flatten)")


def _interpolate(w: _Walk, args: tuple, kwargs: dict) -> object:
    names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    bound = dict(zip(names, args[1:])) | dict(kwargs)
    x = w.tensor(args[0])
    if bound.pop("antialias", False):
        raise w.fail("F.interpolate(antialias=True) is not supported")
    size = bound.get("size")
    if size is not None and not isinstance(size, int) and not all(isinstance(s, int) for s in size):
        raise w.fail("F.interpolate to another tensor's size (size=w.shape[2:]) needs the interpolate(v, like=w) "
                     "operation, which this convgraph build does not have; use scale_factor=")
    return w.layer(w.construct("Upsample", bound), x)


def _pad(w: _Walk, args: tuple, kwargs: dict) -> object:
    raise w.fail("F.pad is not supported by this convgraph build (it needs the pad operations of the layer "
                 "catalogue); centre crops and convolution padding are")


def _contiguous(w: _Walk, args: tuple, kwargs: dict) -> object:
    return args[0]


def _dim(w: _Walk, args: tuple, kwargs: dict) -> object:
    return w.rank(w.tensor(args[0]))


_CALLS: dict[str, Callable[[_Walk, tuple, dict], object]] = {
    "size": _size, "getattr": _getattr, "getitem": _getitem, "cat": _cat, "concat": _cat, "add": _add,
    "iadd": _add, "view": _view, "reshape": _view, "interpolate": _interpolate, "pad": _pad,
    "contiguous": _contiguous, "dim": _dim,
}


# --- entry ----------------------------------------------------------------------------------------------------


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def node_loc(node: Any, default: Loc) -> Loc:
    """The line of the user's forward that made an fx node (its innermost frame outside torch)."""
    import torch

    torch_dir = os.path.dirname(torch.__file__)
    frames = [(f, int(n)) for f, n in _FRAME.findall(node.stack_trace or "") if not f.startswith(torch_dir)]
    return Loc(frames[-1][0], frames[-1][1], 0) if frames else default


def _trace(module: Any, label: str) -> Any:
    import torch.fx as fx

    tracer = fx.Tracer()
    tracer.record_stack_traces = True  # each node's line in the user's forward, for errors
    try:
        return fx.GraphModule(module, tracer.trace(module))
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TorchImportError(f"torch.fx cannot trace {type(module).__name__}.forward: {type(e).__name__}: "
                               f"{first} (convgraph reads modules by symbolic tracing: no Python control flow "
                               f"on tensor values or sizes)", Loc(label, 0, 0)) from e


def from_torch(module: Any, *inputs: DimsSpec, label: str | None = None) -> ir.Graph:
    """The IR of a PyTorch module, one dims tuple per forward argument:
    ``from_torch(net, ("N", 3, "H", "W"))``. Errors name the fx node that cannot be represented."""
    label = label or f"<torch {type(module).__name__}>"
    traced = _trace(module.eval(), label)
    walk = _Walk(module, label)
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(inputs):
        raise TorchImportError(f"{type(module).__name__}.forward takes {len(placeholders)} input(s) "
                               f"({', '.join(n.name for n in placeholders)}), got dims for {len(inputs)}", walk.loc)
    dims = dict(zip((n.name for n in placeholders), inputs))
    outputs: tuple[str, ...] = ()
    for node in traced.graph.nodes:
        walk.current = node
        walk.loc = node_loc(node, Loc(label, 0, 0))
        if node.op == "placeholder":
            walk.env[node.name] = walk.placeholder(node, dims[node.name])
        elif node.op == "call_module":
            walk.env[node.name] = walk.call_module(node)
        elif node.op in ("call_function", "call_method"):
            walk.env[node.name] = walk.call(node)
        elif node.op == "output":
            outputs = walk.output(node)
        else:
            raise walk.fail(f"{node.op} is not supported (parameters used directly, outside a module); "
                            f"supported: {SUPPORTED}")
    doc = (type(module).__doc__ or "").strip() or None
    return ir.Graph(tuple(walk.nodes), outputs, label, doc)
