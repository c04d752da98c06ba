"""Reading an ONNX model into the IR: inputs, the node walk, outputs.

Each ONNX node is either evaluated at import time (``_shapeops``: every input known) or mapped to
IR nodes (``_tensorops``); anything else is an ``unsupported op`` error naming the node, its op
type and the supported set. Every error is one line ``FILE:node NAME (OpType): error: ...``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convgraph import ir
from convgraph.errors import ConvGraphError, GraphError, Loc
from convgraph.front.dsl import read_bounded
from convgraph.front.onnx_import import _values as V
from convgraph.front.onnx_import._shapeops import SHAPE_OF, SHAPE_RULES
from convgraph.front.onnx_import._values import Known, Padded, Tensor, Weight

#: node -> input dims -> output dims (``convgraph.shapes.node_shape``, handed in by the API)
ShapeRule = Callable[[ir.Node, list, str], tuple]

#: initializers up to this many elements are read as known values (bigger ones: shape only)
SMALL = 4096


class ImportError_(GraphError):
    """The ONNX model cannot be imported (unsupported op, non-constant parameter, bad file)."""


@dataclass(frozen=True)
class Imported:
    """The IR graph and, for every ONNX value name, what it became (``Tensor``: an IR value)."""

    graph: ir.Graph
    values: Mapping[str, object]
    model: object  # the onnx.ModelProto as read (no external data loaded)
    #: IR parameter key (``{layer}.weight``) -> (ONNX initializer or constant name, transposed?)
    params: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


class Importer:
    """The walk's state: values by ONNX name, IR nodes so far, expects (pinned sizes)."""

    def __init__(self, model: Any, filename: str, shape_rule: ShapeRule):
        self.model, self.filename, self.shape_rule = model, filename, shape_rule
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.values: dict[str, object] = {}
        self.nodes: list[ir.Node] = []
        self.expects: list[ir.Expect] = []
        self.assumes: list[ir.Assume] = []
        self.producer: dict[str, ir.Node] = {}
        self.params: dict[str, tuple[str, bool]] = {}
        self.onnx_node: Any = None

    # -- locations and errors ---------------------------------------------------------------

    def loc(self, node: Any = None) -> Loc:
        node = node if node is not None else self.onnx_node
        if node is None:
            return Loc(self.filename, 0, 0)
        return Loc(self.filename, 0, 0, node=f"{node.name or node.output[0]} ({node.op_type})")

    def fail(self, message: str, node: Any = None) -> ImportError_:
        return ImportError_(message, self.loc(node))

    # -- building ---------------------------------------------------------------------------

    def add(self, name: str, op: str, inputs: Sequence[Tensor], **kw: Any) -> Tensor:
        """Append an IR node producing the ONNX value ``name``; its dims from the shape rule."""
        node = ir.Node(name, op, tuple(t.name for t in inputs), self.loc(), **kw)
        dims = self.shape_rule(node, [t.dims for t in inputs], self.filename)
        self.nodes.append(node)
        self.producer[name] = node
        t = Tensor(name, tuple(dims))
        self.values[name] = t
        return t

    def layer(self, name: str, spec: ir.LayerSpec, x: Tensor) -> Tensor:
        node = self.onnx_node
        return self.add(name, "layer", [x], layer=spec, layer_name=node.name or name)

    def param(self, t: Tensor, local: str, source: str, transposed: bool = False) -> None:
        """Record that the IR layer that made ``t`` takes parameter ``local`` from ONNX ``source``."""
        self.params[f"{self.producer[t.name].layer_name}.{local}"] = (source, transposed)

    def replace_layer(self, t: Tensor, spec: ir.LayerSpec) -> Tensor:
        """Swap the spec of the IR node that made ``t`` (MatMul + Add -> Linear with bias)."""
        old = self.producer[t.name]
        i = self.nodes.index(old)
        new = ir.Node(old.name, "layer", old.inputs, old.loc, layer=spec, layer_name=old.layer_name)
        self.nodes[i] = new
        self.producer[t.name] = new
        return t


def _attrs(node: Any) -> dict:
    from onnx import helper, numpy_helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if a.type == a.TENSOR:
            v = numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [b.decode() for b in v]
        out[a.name] = v
    return out


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


#: protobuf refuses a serialized message over 2 GiB; larger models keep their weights as external data
MAX_MODEL_BYTES = (2 << 30) - 1


def read_model(path: str) -> Any:
    """The ModelProto of ``path`` without its external data; a bad file is one clear error."""
    import onnx
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    loc = Loc(path, 0, 0)
    data = read_bounded(Path(path), MAX_MODEL_BYTES, "an ONNX model (protobuf's limit)")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ImportError_(f"not a readable ONNX model ({len(data)} bytes; the protobuf does not parse: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__})", loc) from e
    if not model.HasField("graph") or not model.graph.node:
        raise ImportError_(f"not an ONNX model: no graph with nodes ({len(data)} bytes)", loc)
    return model


def _initializer(t: Any) -> object:
    from onnx import numpy_helper

    shape = tuple(int(d) for d in t.dims)
    n = int(np.prod(shape)) if shape else 1
    external = t.data_location == t.EXTERNAL
    if n > SMALL or external:
        return Weight(shape)
    return known_array(numpy_helper.to_array(t))


def known_array(arr: np.ndarray) -> Known:
    """A numpy constant as a known value (ints and bools exact, floats as float64)."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        return Known(arr.astype(np.bool_), "bool")
    if arr.dtype.kind in "iu":
        return Known(arr.astype(np.int64), "int")
    return Known(arr.astype(np.float64), "float")


def _input_dims(imp: Importer, vi: Any, override: Sequence | None) -> tuple:
    t = vi.type.tensor_type
    if override is not None:
        declared = len(t.shape.dim) if vi.type.HasField("tensor_type") and t.HasField("shape") else None
        if declared is not None and declared != len(override):
            raise ImportError_(f"--dims gives '{vi.name}' {len(override)} dims, but the model's input is "
                               f"{declared}-D", Loc("<command line>", 0, 0))
        return tuple(override)
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        raise imp.fail(f"graph input '{vi.name}' has no shape; give one with --dims {vi.name}=N,C,H,W")
    out = []
    for j, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif d.dim_param and d.dim_param.isidentifier():
            out.append(d.dim_param)
        else:
            raise imp.fail(f"graph input '{vi.name}' dim {j} is "
                           f"{repr(d.dim_param) if d.dim_param else 'unknown'}; name it with "
                           f"--dims {vi.name}=" + ",".join("N" if i == 0 else f"D{i}" for i in range(len(t.shape.dim))))
    return tuple(out)


def _inputs(imp: Importer, dims: Mapping[str, Sequence], folded: set[str]) -> None:
    graph = imp.model.graph
    inits = {t.name for t in graph.initializer} | folded
    names = [vi.name for vi in graph.input if vi.name not in inits]
    unknown = sorted(set(dims) - set(names))
    if unknown:
        raise ImportError_(f"--dims names {', '.join(unknown)}, but the model's inputs are {', '.join(names)}",
                           Loc("<command line>", 0, 0))
    for vi in graph.input:
        if vi.name in inits:
            continue
        shape = _input_dims(imp, vi, dims.get(vi.name))
        imp.add(vi.name, "input", [], dims=shape)


def import_model(model: Any, filename: str, shape_rule: ShapeRule, dims: Mapping[str, Sequence] | None = None,
                 fold: Mapping[str, np.ndarray] | None = None, partial: bool = False) -> Imported:
    """The IR of ``model``. ``dims`` overrides input shapes (``{"x": ("N", 3, "H", "W")}``);
    ``fold`` gives inputs as constants (the parameter inputs of a node test); ``partial`` keeps
    outputs that are not feature maps out of the graph instead of failing."""
    from convgraph.front.onnx_import._tensorops import map_node

    imp = Importer(model, filename, shape_rule)
    for t in model.graph.initializer:
        imp.values[t.name] = _initializer(t)
    for name, arr in (fold or {}).items():
        imp.values[name] = known_array(arr)
    _inputs(imp, dims or {}, set(fold or ()))
    for node in model.graph.node:
        imp.onnx_node = node
        _run(imp, node, map_node)
    imp.onnx_node = None
    return _finish(imp, partial)


def _run(imp: Importer, node: Any, map_node: Callable[..., None]) -> None:
    ins = [imp.values.get(n) if n else None for n in node.input]
    missing = [n for n, v in zip(node.input, ins) if n and v is None]
    if missing:
        raise imp.fail(f"input '{missing[0]}' is not produced by any earlier node (graph not in topological order?)")
    attrs = _attrs(node)
    if node.domain not in ("", "ai.onnx"):
        raise imp.fail(f"unsupported op: domain '{node.domain}' (convgraph imports the default ONNX domain)")
    if node.op_type == "Constant":
        imp.values[node.output[0]] = _constant(attrs)
        return
    if node.op_type in SHAPE_RULES and _evaluable(node.op_type, ins):
        try:
            out = SHAPE_RULES[node.op_type](attrs, *ins)
        except V.SignUnknown as e:
            raise imp.fail(f"cannot evaluate the shape computation: {e}") from e
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise imp.fail(f"cannot evaluate the shape computation: {e}") from e
        imp.values[node.output[0]] = out
        return
    try:
        map_node(imp, node, attrs, ins)
    except ConvGraphError as e:
        raise e.at(imp.loc(node)) from None


def _evaluable(op: str, ins: list) -> bool:
    given = [v for v in ins if v is not None]
    if op in SHAPE_OF:
        return bool(given)
    return bool(given) and all(isinstance(v, Known) for v in given)


def _constant(attrs: dict) -> Known:
    if "value" in attrs:
        arr = np.asarray(attrs["value"])
    elif "value_ints" in attrs:
        arr = np.asarray(attrs["value_ints"], dtype=np.int64)
    elif "value_int" in attrs:
        arr = np.asarray(attrs["value_int"], dtype=np.int64)
    elif "value_floats" in attrs:
        arr = np.asarray(attrs["value_floats"], dtype=np.float64)
    else:
        arr = np.asarray(attrs.get("value_float", 0.0), dtype=np.float64)
    return known_array(arr)


def _finish(imp: Importer, partial: bool) -> Imported:
    outs = []
    for vi in imp.model.graph.output:
        v = imp.values.get(vi.name)
        if partial and not isinstance(v, Tensor):
            continue
        if isinstance(v, Padded):
            imp.onnx_node = _producer_node(imp, vi.name)
            v = materialize(imp, v)
            imp.onnx_node = None
        if not isinstance(v, Tensor):
            raise ImportError_(f"graph output '{vi.name}' is not a feature map computed from the inputs",
                               Loc(imp.filename, 0, 0))
        outs.append(_alias_output(imp, vi.name, v))
        _pinned_output(imp, vi, v)
    graph = ir.Graph(tuple(imp.nodes), tuple(outs), imp.filename, imp.model.doc_string or None,
                     assumes=tuple(imp.assumes), expects=tuple(imp.expects))
    return Imported(graph, dict(imp.values), imp.model, dict(imp.params))


#: ONNX Pad mode -> torch's F.pad mode (the IR's)
TORCH_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def materialize(imp: Importer, v: Padded) -> Tensor:
    """A pending Pad that no Conv absorbs: the IR's Pad layer (F.pad over every axis), once."""
    done = imp.values.get(v.name)
    if isinstance(done, Tensor):
        return done
    spec = ir.Pad(type_name="F.pad", nd=0, padding=tuple(v.pads), mode=TORCH_PAD_MODES[v.mode], value=float(v.value))
    t = imp.add(v.name, "layer", [v.src], layer=spec, layer_name=v.node.split(" (")[0])
    return t


def _producer_node(imp: Importer, value: str) -> Any:
    return next((n for n in imp.model.graph.node if value in n.output), None)


def _alias_output(imp: Importer, name: str, v: Tensor) -> str:
    """An output that is an alias of another IR value (an Identity, a Dropout) becomes an Identity
    layer of its own name, so that the IR's outputs are the model's."""
    if v.name == name:
        return name
    from convgraph.front.catalogue import construct

    imp.onnx_node = _producer_node(imp, name)
    t = imp.layer(name, construct("Identity"), v)
    imp.onnx_node = None
    return t.name


def _pinned_output(imp: Importer, vi: Any, v: Tensor) -> None:
    """A declared int dim of an output that convgraph finds symbolic: an expect naming the producing
    node (like every expect it restricts the valid sizes; onnxruntime itself only warns when an
    output's declared shape differs)."""
    t = vi.type.tensor_type
    if not t.HasField("shape") or len(t.shape.dim) != len(v.dims):
        return
    want = [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]
    if all(w is None or (isinstance(g, int) and g == w) for w, g in zip(want, v.dims)):
        return
    if all(w is None or isinstance(g, int) for w, g in zip(want, v.dims)):
        bad = next(j for j, (w, g) in enumerate(zip(want, v.dims)) if w is not None and w != g)
        raise imp.fail(f"graph output '{vi.name}' declares dim {bad} = {want[bad]}, but it is {v.dims[bad]}",
                       _producer_node(imp, vi.name))
    dims = tuple(g if w is None else w for w, g in zip(want, v.dims))
    add_expect(imp, v, dims, _producer_node(imp, vi.name), f"declared shape of output '{vi.name}'")


def add_pin(imp: Importer, got: Any, want: Any, node: Any) -> None:
    """A constant that the graph needs a symbolic size to equal (a Reshape target): an ``assume``
    at the node, so the solver's valid sizes are those where it holds (onnxruntime fails elsewhere)."""
    from convgraph import dims as D

    text = f"{D.dim_str(got)} == {want}"
    imp.assumes.append(ir.Assume(imp.loc(node), text, ((got, "==", want),)))


def add_expect(imp: Importer, v: Tensor, dims: tuple, node: Any, what: str) -> None:
    from convgraph import dims as D

    text = f"{v.name}, " + ", ".join(D.dim_str(d) if not isinstance(d, int) else str(d) for d in dims)
    imp.expects.append(ir.Expect(imp.loc(node), f"{text}  # {what}", v.name, tuple(dims)))
