"""The PyTorch front end: ``from_torch(module, ("N", 3, "H", "W"))`` traces a module with torch.fx
into the IR. torch is imported only here, only when called.

- ``call_module`` of a catalogue module (Conv2d, BatchNorm2d, ReLU, ...) becomes that layer, its
  constructor arguments read back from the module's attributes and checked by the catalogue, its
  layer name the module path (``inc.double_conv.0``), so the state_dict keys are convgraph's names;
- functional spellings (``F.relu``, ``torch.sigmoid``, ``F.max_pool2d``, ``torch.flatten``,
  ``x.view(x.size(0), -1)``, ``F.interpolate(scale_factor=...)``, ...) become the same layers;
- ``torch.cat``, tensor ``+ - *`` (broadcasting), a tensor with a number (``x * 0.5``, ``1.0 - x``),
  int slicing, ``torch.chunk`` / ``split``, ``mean`` / ``unsqueeze`` / ``squeeze`` / ``reshape`` are
  the DSL's node ops of the same meaning (``convgraph.front.functions`` binds their arguments);
- sizes (``x.size()``, ``x.shape[2]``, ``x.size(3)``) and integer arithmetic on them are kept as
  expressions of (value, axis) leaves and matched structurally where they feed an operation:
  ``F.pad(x1, [dX // 2, dX - dX // 2, ...])`` with ``dX = x2.size()[3] - x1.size()[3]`` is a pad
  of x1 to x2's size (pad_like), ``F.interpolate(v, size=w.shape[2:])`` a resize to w's size
  (interp_like), ``v[:, :, t:t + w.shape[2], ...]`` with ``t = (v.shape[2] - w.shape[2]) // 2`` a
  centre crop, a reshape entry ``x.shape[j]`` of an input the size symbol there.

Value names: a module's value is named by its module path, a function's by fx (``cat``, ``add_1``),
an input by its forward argument. Every node is located at its line in the user's ``forward``.
Anything else is an error naming the fx node, its line and what is supported.
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
from convgraph.front.functions import FUNCTIONAL, functional_layer, like_attrs, part_arg, shape_function_attrs

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


_ARITH = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.floordiv: "floordiv",
          operator.truediv: "div", operator.iadd: "add", operator.imul: "mul", operator.isub: "sub"}
_FOLD = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
         "div": operator.truediv}


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


# --- functional spellings: convgraph.front.functions binds them as torch does -------------------------------


def _functional_name(target: Any) -> str | None:
    """``F.relu``, ``torch.relu``, ``torch.nn.functional.max_pool2d``, method ``"relu"`` -> its name."""
    name = target if isinstance(target, str) else getattr(target, "__name__", None)
    return name if name in FUNCTIONAL else None


SUPPORTED = ("catalogue modules (" + ", ".join(sorted(CATALOGUE)) + "), functional forms ("
             + ", ".join(sorted(FUNCTIONAL)) + ", pad), torch.cat, torch.chunk, torch.split, tensor + - * "
             "(broadcasting) and with numbers, x.size()/x.shape and int arithmetic on sizes, slicing with ints, "
             "centre crop / F.pad / F.interpolate to another tensor's size, mean, unsqueeze, squeeze, "
             "view/reshape with ints, -1 and the inputs' sizes")


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
        self.ranks: dict[str, int | None] = {}
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
        rank = self.ranks[name]
        if rank is None:
            raise self.fail(f"the rank of '{name}' (after squeeze() of every size-1 dim) is not known before "
                            "the shapes are; name the dims to squeeze")
        return rank

    def input_symbol(self, e: object) -> str | None:
        """The size symbol of ``x.shape[j]`` for an input x whose dim j is a symbol."""
        if isinstance(e, Size):
            node = next((n for n in self.nodes if n.name == e.value and n.op == "input"), None)
            if node is not None and isinstance(node.dims[e.axis], str):
                return str(node.dims[e.axis])
        return None

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.ranks:
            name, k = f"{base}_{k}", k + 1
        return name

    def add(self, op: str, inputs: tuple[str, ...], name: str | None = None, rank: int | None = -1,
            **kw: Any) -> Tensor:
        """Append a node. Its rank (the front end needs ranks before the shape stage runs: negative
        dims, x.size()) is ``rank`` when given (None: unknown), else its inputs' largest
        (broadcasting), but for Flatten and Unflatten."""
        given, name = rank, self.unique(name or self.current.name)
        self.nodes.append(ir.Node(name, op, inputs, self.loc, **kw))
        rank = max(self.rank(i) for i in inputs) if given == -1 else 0
        spec = kw.get("layer")
        if isinstance(spec, ir.Flatten):
            start, end = (d + rank if d < 0 else d for d in (spec.start_dim, spec.end_dim))
            rank -= end - start
        elif isinstance(spec, ir.Unflatten):
            rank += len(spec.sizes) - 1
        self.ranks[name] = rank if given == -1 else given
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
        if isinstance(a, Tensor) and isinstance(b, Tensor) and op in ir.BINARY_OPS:
            return self.add(op, (a.name, b.name))
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.scalar(op, a, b)
        return arith(op, a, b)

    def scalar(self, op: str, a: object, b: object) -> object:
        """tensor op number (or number - tensor): a 'scalar' node."""
        t, c = (a, b) if isinstance(a, Tensor) else (b, a)
        if not isinstance(t, Tensor):
            raise self.fail(f"{op} of {a!r} and {b!r} is not supported")
        op = "rsub" if op == "sub" and isinstance(b, Tensor) else op
        if not isinstance(c, (int, float)) or isinstance(c, bool) or op not in ir.SCALAR_OPS or \
                (op == "div" and not isinstance(a, Tensor)):
            raise self.fail(f"tensor {op} with {c!r} is not supported (tensors combine by + - * with tensors, "
                            "and by + - * / with numbers)")
        return self.add("scalar", (t.name,), attrs=(("op", op), ("value", float(c))))

    def functional(self, name: str, args: tuple, kwargs: dict) -> object:
        x = self.tensor(args[0])
        try:
            spec = functional_layer(name, tuple(args[1:]), dict(kwargs), self.loc, prefix="F.")
        except ConvGraphError as e:
            raise self.fail(e.message) from e
        return self.layer(spec, x)

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
    if isinstance(obj, Parts) and isinstance(index, int):
        return _part(w, obj, index)
    if isinstance(obj, Tensor):
        index = index if isinstance(index, tuple) else (index,)
        sliced = _slice(w, obj.name, index)
        return sliced if sliced is not None else _crop(w, obj.name, index)
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


def _sub(w: _Walk, args: tuple, kwargs: dict) -> object:
    if kwargs.get("alpha", 1) != 1:
        raise w.fail("torch.sub with alpha is not supported")
    return w.arithmetic("sub", args[:2])


def _mul(w: _Walk, args: tuple, kwargs: dict) -> object:
    return w.arithmetic("mul", args[:2])


def _view(w: _Walk, args: tuple, kwargs: dict) -> object:
    """``x.view(x.size(0), -1)`` is a Flatten(1); any other shape a 'reshape' whose entries are ints,
    -1, or an input's symbolic size times an int."""
    x = w.tensor(args[0])
    shape = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    shape = kwargs.get("shape", shape)
    if len(shape) == 2 and shape[0] == Size(x, 0) and shape[1] == -1:
        return w.layer(w.construct("Flatten", {"start_dim": 1}), x)
    entries = tuple(_reshape_entry(w, e) for e in shape)
    return w.add("reshape", (x,), attrs=(("shape", entries),), rank=len(entries))


def _reshape_entry(w: _Walk, e: object) -> int | tuple[str, int]:
    if isinstance(e, int):
        return e
    leaf: object = e
    k: object = 1
    if isinstance(e, Arith) and e.op == "mul":
        leaf, k = (e.a, e.b) if isinstance(e.b, int) else (e.b, e.a)
    symbol = w.input_symbol(leaf) if isinstance(k, int) else None
    if symbol is None or not isinstance(k, int):
        raise w.fail(f"a reshape entry must be an int, -1, or an input's size (x.shape[j], times an int), got {e!r}")
    return (symbol, k)


def _shape_function(w: _Walk, args: tuple, kwargs: dict, name: str) -> object:
    """``x.mean(dims, keepdim)``, ``x.unsqueeze(d)``, ``x.squeeze(dims)`` (and torch.*)."""
    x = w.tensor(args[0])
    try:
        attrs = shape_function_attrs(name, tuple(args[1:]), dict(kwargs), w.loc)
    except ConvGraphError as e:
        raise w.fail(e.message) from e
    a, rank = dict(attrs), w.rank(x)
    if name == "unsqueeze":
        new: int | None = rank + 1
    elif name == "mean":
        new = rank if a["keepdim"] else rank - len(set(a["dims"]))
    else:
        new = None  # squeeze: a dim goes only if its size is 1, which the shape stage knows
    return w.add(name, (x,), attrs=attrs, rank=new)


def _like_target(w: _Walk, v: str, sizes: object) -> str | None:
    """The tensor w when ``sizes`` is ``w.shape[2:]`` (one leaf per spatial axis of v)."""
    if not isinstance(sizes, (tuple, list)) or len(sizes) != w.rank(v) - 2:
        return None
    owners = {s.value for j, s in enumerate(sizes, 2) if isinstance(s, Size) and s.axis == j}
    return owners.pop() if len(owners) == 1 and all(isinstance(s, Size) for s in sizes) else None


def _interpolate(w: _Walk, args: tuple, kwargs: dict) -> object:
    names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    bound = dict(zip(names, args[1:])) | dict(kwargs)
    x = w.tensor(args[0])
    like = _like_target(w, x, bound.get("size"))
    if like is None:
        return w.functional("interpolate", args, kwargs)
    if bound.get("scale_factor") is not None or bound.get("antialias") or bound.get("recompute_scale_factor"):
        raise w.fail("F.interpolate to another tensor's size takes only mode= and align_corners=")
    try:
        attrs = like_attrs("interp", {k: bound[k] for k in ("mode", "align_corners") if k in bound}, w.loc)
    except ConvGraphError as e:
        raise w.fail(e.message) from e
    return w.add("interp_like", (x, like), attrs=attrs)


def _pad_like_target(w: _Walk, v: str, pads: object) -> str | None:
    """The tensor w when pads are ``[dX // 2, dX - dX // 2, dY // 2, ...]``, dX = w.shape[j] - v.shape[j]
    for every spatial axis j, last axis first (the milesial U-Net's Up.forward)."""
    rank = w.rank(v)
    if not isinstance(pads, (tuple, list)) or len(pads) != 2 * (rank - 2):
        return None
    likes = set()
    for k in range(rank - 2):
        j, (lo, hi) = rank - 1 - k, pads[2 * k: 2 * k + 2]
        if not (isinstance(lo, Arith) and lo.op == "floordiv" and lo.b == 2 and hi == Arith("sub", lo.a, lo)):
            return None
        diff = lo.a
        if not (isinstance(diff, Arith) and diff.op == "sub" and diff.b == Size(v, j)
                and isinstance(diff.a, Size) and diff.a.axis == j):
            return None
        likes.add(diff.a.value)
    return likes.pop() if len(likes) == 1 else None


def _pad(w: _Walk, args: tuple, kwargs: dict) -> object:
    x = w.tensor(args[0])
    names = ("pad", "mode", "value")
    bound = dict(zip(names, args[1:])) | dict(kwargs)
    pads = bound.get("pad")
    if isinstance(pads, (tuple, list)) and all(isinstance(p, int) for p in pads):
        return w.functional("pad", args, kwargs)
    like = _pad_like_target(w, x, pads)
    if like is None:
        raise w.fail("F.pad amounts must be ints, or pad to another tensor's size as "
                     "[dX // 2, dX - dX // 2, dY // 2, dY - dY // 2] with dX = w.size()[3] - x.size()[3], ...")
    try:
        attrs = like_attrs("pad", {k: bound[k] for k in ("mode", "value") if bound.get(k) is not None}, w.loc)
    except ConvGraphError as e:
        raise w.fail(e.message) from e
    return w.add("pad_like", (x, like), attrs=attrs)


@dataclass(frozen=True)
class Parts:
    """The result of torch.chunk / torch.split, taken apart by indexing."""

    value: str
    kind: str
    arg: object
    dim: int
    count: int


def _parts(w: _Walk, args: tuple, kwargs: dict, kind: str) -> object:
    x = w.tensor(args[0])
    params = ("chunks", "dim") if kind == "chunk" else ("split_size_or_sections", "dim")
    bound = dict(zip(params, args[1:])) | dict(kwargs)
    try:
        arg = part_arg(kind, bound.get(params[0]), w.loc)
    except ConvGraphError as e:
        raise w.fail(e.message) from e
    dim = bound.get("dim", 0)
    if not isinstance(dim, int):
        raise w.fail(f"{kind}: dim must be an int, got {dim!r}")
    users = [u.args[1] for u in w.current.users if u.target is operator.getitem and isinstance(u.args[1], int)]
    if len(users) != len(w.current.users):
        raise w.fail(f"the parts of torch.{kind} must be taken by indexing or unpacking (a, b = ...)")
    return Parts(x, kind, arg, dim, max(users, default=-1) + 1)


def _part(w: _Walk, parts: Parts, k: int) -> object:
    part = (parts.kind, parts.arg, parts.dim, k, parts.count)
    return w.add("slice", (parts.value,), attrs=(("part", part),))


def _slice(w: _Walk, v: str, index: tuple) -> object:
    """``v[a:b, :, c:]`` with int bounds: a 'slice' node (torch's clamping applies)."""
    pairs = []
    for s in index:
        if not (isinstance(s, slice) and s.step in (None, 1)
                and all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in (s.start, s.stop))):
            return None
        pairs.append((s.start, s.stop))
    if len(pairs) > w.rank(v):
        raise w.fail(f"too many indices for a {w.rank(v)}-D tensor")
    return w.add("slice", (v,), attrs=(("index", tuple(pairs)),))


def _contiguous(w: _Walk, args: tuple, kwargs: dict) -> object:
    return args[0]


def _dim(w: _Walk, args: tuple, kwargs: dict) -> object:
    return w.rank(w.tensor(args[0]))


_CALLS: dict[str, Callable[[_Walk, tuple, dict], object]] = {
    "size": _size, "getattr": _getattr, "getitem": _getitem, "cat": _cat, "concat": _cat, "add": _add,
    "iadd": _add, "view": _view, "reshape": _view, "interpolate": _interpolate, "pad": _pad,
    "contiguous": _contiguous, "dim": _dim, "sub": _sub, "mul": _mul,
    "chunk": lambda w, a, k: _parts(w, a, k, "chunk"), "split": lambda w, a, k: _parts(w, a, k, "split"),
    "mean": lambda w, a, k: _shape_function(w, a, k, "mean"),
    "unsqueeze": lambda w, a, k: _shape_function(w, a, k, "unsqueeze"),
    "squeeze": lambda w, a, k: _shape_function(w, a, k, "squeeze"),
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
