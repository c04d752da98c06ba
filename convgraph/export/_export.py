"""The export stage: IR -> ONNX ModelProto with dynamic dims named by the exact formulas.

>>> import convgraph as cg
>>> g = cg.parse("input(N, 3, H, W)\\nConv2d(3, 8, 3, stride=2, padding=1)")
>>> m = g.to_onnx()
>>> [d.dim_param for d in m.graph.output[0].type.tensor_type.shape.dim]
['N', '', 'floor((H + 1)/2)', 'floor((W + 1)/2)']

Stages, each a pure function of the previous one's result:

1. ``_plan``: the sizes to bake in (``--at``; checked against the constraints), the opset;
2. ``_build``: the emitter table (``onnx_emit``) lowers every node; inputs carry the DSL symbols,
   every other value a ``value_info`` whose symbolic dims are ``dims.dim_str`` formulas;
3. ``_verify``: ``onnx.checker.check_model(full_check=True)``, then ONNX's own shape inference
   (strict mode, with data propagation) on the graph without our ``value_info``, once as exported
   and, for a dynamic model, at a few concrete valid sizes; every dim it infers must equal
   convgraph's, or ``InferenceMismatch`` is raised (a bug to report, never hidden);
4. ``export``: write atomically (a temp file in the destination directory, then ``os.replace``);
   models over ``EXTERNAL_DATA_THRESHOLD`` bytes store the weights in ``OUT.data`` next to it.

Opset policy: by default the lowest opset, never below 17, at which every layer's lowering is
faithful and ONNX's shape inference agrees with convgraph: 19 with circular padding (Pad 'wrap'),
22 with ceil-mode pooling (earlier MaxPool/AveragePool inference keeps a window that starts in the
right padding). ``opset=`` pins it; a pin below what the graph needs is an ``ExportError``. A
higher pin uses newer ops where they exist (Gelu from 20, Swish from 24, the ReduceMean axes
input and Resize axes from 18).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError as _DecodeError  # type: ignore[import-untyped]
from onnx import TensorProto, helper

from convgraph import dims as D
from convgraph import ir
from convgraph._version import __version__
from convgraph.errors import ConvGraphError, ExportError, Loc, ShapeError, one_line
from convgraph.export._emit import BASE_OPSET, Builder, emit_nodes, requirement
from convgraph.export._paths import (
    _file_mode,
    _remove,
    _write_atomic,
    check_destination,
)
from convgraph.export._wire import float32, model_chunks, tensor_header
from convgraph.export.weights import check_param_budget, resolve_params
from convgraph.shapes import infer

__all__ = [
    "EXTERNAL_DATA_THRESHOLD",
    "MAX_OPSET",
    "InferenceMismatch",
    "export",
    "required_opset",
    "to_onnx",
]

#: the newest opset the installed onnx knows
MAX_OPSET = onnx.defs.onnx_opset_version()

#: protobuf cannot serialise a message of 2 GiB; above this many bytes weights go to external data
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**24

INT64_MAX = 2**63 - 1

#: the most combinations of valid sizes tried when naming a dim by what holds on the valid set
PIN_COMBINATIONS = 64

#: how many concrete size assignments a dynamic export is probed at with ONNX shape inference
PROBE_SIZES = 2


class InferenceMismatch(ExportError):
    """ONNX's own shape inference disagrees with convgraph's formula: a bug in one of them."""


# --------------------------------------------------------------------------------------------
# Plan: sizes and opset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    graph: ir.Graph  # with baked sizes substituted into the inputs
    source: ir.Graph  # as given
    values: dict  # value name -> dims (of ``graph``)
    opset: int
    sizes: dict


def required_opset(graph: ir.Graph) -> tuple[int, list[tuple[ir.Node, int, str]]]:
    """The lowest faithful opset, and every layer that needs more than BASE_OPSET (node, opset, why)."""
    needs = []
    for node in graph.layers():
        req = requirement(node)
        if req is not None:
            needs.append((node, *req))
    return max([BASE_OPSET] + [n[1] for n in needs]), needs


def _choose_opset(graph: ir.Graph, opset: int | None) -> int:
    need, why = required_opset(graph)
    if opset is None:
        return need
    loc = Loc("<command line>", 0, 0)
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise ExportError(f"opset must be an int, got {opset!r}", loc)
    if opset < BASE_OPSET:
        raise ExportError(f"opset {opset} is not supported: convgraph writes opset {BASE_OPSET} or later", loc)
    if opset > MAX_OPSET:
        raise ExportError(f"opset {opset} is newer than the installed onnx supports ({MAX_OPSET})", loc)
    if opset < need:
        node, n, reason = max(why, key=lambda t: t[1])
        raise ExportError(f"opset {opset} is too low for this graph: {node.spec.type_name} "
                          f"'{node.layer_name}' needs opset {n}: {reason}", node.loc,
                          hints=(f"use --opset {need} or leave --opset out",))
    return opset


def validate_sizes(graph: ir.Graph, sizes: Mapping[str, int]) -> None:
    """ShapeError for an unknown symbol, a size that is not a positive int, or a violated constraint."""
    res = infer(graph)
    loc = Loc(graph.filename, 0, 0)
    unknown = sorted(set(sizes) - set(res.sym_names))
    if unknown:
        raise ShapeError(f"unknown size symbol(s) {', '.join(unknown)}; the graph has "
                         f"{', '.join(res.sym_names) or 'none'}", loc)
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= INT64_MAX:
            raise ShapeError(f"size {name}={v!r} must be a positive int below 2**63 (ONNX dims are int64)", loc)
    res.check(sizes)


def check_int64(values: Mapping[str, tuple], env: Mapping[str, int], loc: Loc) -> None:
    """ExportError when a dim of some value, at sizes ``env``, does not fit ONNX's int64 dims."""
    at = ", ".join(f"{k}={v}" for k, v in env.items())
    for name, dims in values.items():
        for j, d in enumerate(dims):
            v = d if isinstance(d, int) or not env else D.evaluate(d, env)
            if isinstance(v, int) and v > INT64_MAX:
                raise ExportError(f"'{name}' dim {j} is {v}{' at ' + at if at else ''}: beyond ONNX's int64 "
                                  "dims (2**63 - 1)", loc)


def _plan(graph: ir.Graph, opset: int | None, sizes: Mapping[str, int] | None) -> Plan:
    sizes = dict(sizes or {})
    validate_sizes(graph, sizes)
    baked = ir.bake(graph, sizes)
    check_int64(infer(baked).values, {}, Loc(graph.filename, 0, 0))
    return Plan(baked, graph, _pin_dims(baked, infer(baked).values), _choose_opset(graph, opset), sizes)


def _pin_dims(graph: ir.Graph, values: Mapping[str, tuple]) -> dict:
    """Dims named by what holds on the valid set: a formula that takes one value at every valid
    size (``H`` after ``cat([x, Upsample(size=8)(x)])``, valid for H = 8 only) is exported as that
    int, which is also what ONNX's inference finds. Inputs keep their symbols."""
    finite = _finite_sizes(graph)
    inputs = {n.name for n in graph.inputs}
    if not finite:
        return dict(values)
    return {name: dims if name in inputs else tuple(_pinned(d, finite) for d in dims)
            for name, dims in values.items()}


def _finite_sizes(graph: ir.Graph) -> dict[str, list[int]]:
    """symbol -> its valid sizes, for the symbols with a few (at most PIN_COMBINATIONS) only."""
    from convgraph.solve import solve

    try:
        sol = solve(graph, tiling=False)
    except ConvGraphError:
        return {}
    sets = {s: sol.runs(s) for s in graph.symbols if s in sol.symbols}
    return {s: sorted(st.exceptions) for s, st in sets.items()
            if st is not None and st.finite and 0 < len(st.exceptions) <= PIN_COMBINATIONS}


def _pinned(d: D.Dim, finite: Mapping[str, list[int]]) -> D.Dim:
    if isinstance(d, int):
        return d
    syms = sorted(D.symbols(d))
    if not syms or any(s not in finite for s in syms) or math.prod(len(finite[s]) for s in syms) > PIN_COMBINATIONS:
        return d
    vals = {D.evaluate(d, dict(zip(syms, combo))) for combo in itertools.product(*(finite[s] for s in syms))}
    return vals.pop() if len(vals) == 1 else d


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def _onnx_dims(dims: Iterable[D.Dim]) -> list[int | str]:
    """ints as dim_value, formulas as a dim_param sympy parses back (``dims.dim_str``)."""
    return [d if isinstance(d, int) else D.dim_str(d) for d in dims]


def _vi(name: str, dims: Iterable[D.Dim], namer: Callable[[D.Dim], str] | None = None) -> onnx.ValueInfoProto:
    shown = _onnx_dims(dims) if namer is None else [d if isinstance(d, int) else namer(d) for d in dims]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shown)


def _valid_namer(graph: ir.Graph) -> Callable[[D.Dim], str]:
    """dim -> its dim_param: the formula simplified on the valid sizes (``floor(H/2)`` is ``H/2``
    where every valid H is even); the general formulas go to the ``convgraph.formulas`` metadata."""
    from convgraph.solve import solve
    from convgraph.solve._simplify import simplified, valid_sets

    sets = valid_sets(solve(graph, tiling=False))
    return lambda d: simplified(d, sets)


@dataclass(frozen=True)
class Built:
    """The emitted graph, before it becomes a model: nodes and typed values."""

    nodes: list
    inputs: list
    outputs: list
    value_info: list
    known: dict  # every value with a known shape -> dims


def _build(plan: Plan) -> Built:
    g, values = plan.graph, plan.values
    from convgraph.export.weights import param_specs

    b = Builder(plan.opset, reserved=[n.name for n in g.nodes] + list(param_specs(g)))
    emit_nodes(b, g.nodes, values)
    known = {**values, **dict(b.known_shapes)}
    outs = set(g.outputs)
    namer = _valid_namer(g) if g.symbols else None
    inputs = [_vi(n.name, values[n.name]) for n in g.inputs]
    outputs = [_vi(name, values[name], namer) for name in g.outputs]
    inner = [_vi(name, dims, namer) for name, dims in known.items()
             if name not in outs and name not in {n.name for n in g.inputs}]
    return Built(b.nodes, inputs, outputs, inner, known)


def _metadata(plan: Plan) -> dict[str, str]:
    """convgraph version, the docstring, the inputs, the constraints on the input sizes (and the
    solver's valid size sets where the solver is available)."""
    return graph_metadata(plan.source, {n.name: plan.values[n.name] for n in plan.graph.inputs}, plan.sizes,
                          {n.name: plan.values[n.name] for n in plan.graph.nodes})


def graph_metadata(source: ir.Graph, inputs: Mapping[str, tuple], sizes: Mapping[str, int] | None = None,
                   formulas: Mapping[str, tuple] | None = None) -> dict[str, str]:
    """The ``metadata_props`` convgraph writes (export and annotate): version, source, input dims,
    constraints (an imported model's name their node), doc, baked sizes, the solver's valid sets."""
    res = infer(source)
    meta = {
        "convgraph.version": __version__,
        "convgraph.source": os.path.basename(source.filename),
        "convgraph.inputs": json.dumps({k: _onnx_dims(v) for k, v in inputs.items()}),
        "convgraph.constraints": json.dumps([
            {"where": c.where, "line": c.loc.line, "rule": c.rule, "condition": c.condition(),
             **({"node": c.loc.node} if c.loc.node else {})}
            for c in res.constraints]),
    }
    meta["convgraph.formulas"] = json.dumps({k: _onnx_dims(v) for k, v in (formulas or {}).items()})
    if source.doc:
        meta["convgraph.doc"] = source.doc
    if sizes:
        meta["convgraph.sizes"] = json.dumps(dict(sizes))
    meta.update(_solver_metadata(source))
    return meta


def _solver_metadata(graph: ir.Graph) -> dict[str, str]:
    try:
        from convgraph.solve import solve
    except ImportError:  # the solver is optional for export
        return {}
    try:
        meta = solve(graph).metadata()
    except ConvGraphError:
        return {}
    return {(k if k.startswith("convgraph.") else f"convgraph.{k}"): str(v) for k, v in meta.items()}


def _param_inputs(params: Mapping[str, np.ndarray]) -> list[onnx.ValueInfoProto]:
    return [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(np.shape(v))) for k, v in params.items()]


def _add_initializers(graph: onnx.GraphProto, params: Mapping[str, np.ndarray]) -> None:
    """float32 tensors written in place (make_graph would copy every tensor once more)."""
    for k, v in params.items():
        arr = float32(v)
        t = graph.initializer.add()
        t.name, t.data_type = k, TensorProto.FLOAT
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()


def _model(plan: Plan, built: Built, params: Mapping[str, np.ndarray],
           meta: Mapping[str, str] | None = None, weights: bool = True) -> onnx.ModelProto:
    """The model; with ``weights=False`` the weight-free copy the checks run on: every parameter a
    typed graph input instead of an initializer, all else identical (a few KB instead of the
    weights' size, so that check_model and shape inference never serialize the weights)."""
    name = os.path.splitext(os.path.basename(plan.source.filename))[0]
    name = name if name and not name.startswith("<") else "convgraph"
    inputs = built.inputs if weights else built.inputs + _param_inputs(params)
    graph = helper.make_graph(built.nodes, name, inputs, built.outputs, value_info=built.value_info)
    opsets = [helper.make_opsetid("", plan.opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="convgraph",
                              producer_version=__version__, doc_string=plan.source.doc or "")
    if weights:
        _add_initializers(model.graph, params)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    if meta:
        helper.set_model_props(model, dict(meta))
    return model


# --------------------------------------------------------------------------------------------
# Verify
# --------------------------------------------------------------------------------------------


def _skeleton(plan: Plan, built: Built, weight_inputs: list[onnx.ValueInfoProto],
              env: Mapping[str, int] | None) -> onnx.ModelProto:
    """The model as ONNX inference sees it without our value_info: weights as typed inputs (no
    data), outputs typed but shapeless; with ``env``, the input dims set to those sizes."""
    def in_dims(dims: Iterable[D.Dim]) -> list[int] | list[int | str]:
        return [D.evaluate(d, env) for d in dims] if env is not None else _onnx_dims(dims)

    inputs = [helper.make_tensor_value_info(vi.name, TensorProto.FLOAT, in_dims(plan.values[vi.name]))
              for vi in built.inputs]
    inputs += weight_inputs
    outputs = [helper.make_tensor_value_info(vi.name, TensorProto.FLOAT, None) for vi in built.outputs]
    graph = helper.make_graph(built.nodes, "skeleton", inputs, outputs)
    opsets = [helper.make_opsetid("", plan.opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


def _inferred(model: onnx.ModelProto, loc: Loc) -> dict[str, list]:
    """value name -> inferred dims (int, str dim_param, or None where unknown)."""
    try:
        out = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        raise InferenceMismatch(f"ONNX shape inference failed on the exported graph: {one_line(e)}", loc) from e
    found = {}
    for vi in list(out.graph.value_info) + list(out.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            found[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    return found


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _dim_agrees(ours: D.Dim, theirs: int | str | None, symbols: frozenset[str],
                finite: Mapping[str, list[int]] | None = None) -> bool:
    """An inferred dim agrees when unknown, equal to our int, a dim_param naming our formula, or
    equal to ours on the valid set (``finite``: the symbols with few valid sizes; there ONNX may
    keep ``H`` where convgraph knows H is 8). dim_params over names that are not the graph's
    symbols (onnx invents ``unk__0``) are unknown."""
    if theirs is None or (isinstance(theirs, str) and not set(_NAME.findall(theirs)) - {"floor"} <= symbols):
        return True
    if isinstance(theirs, str) and not isinstance(ours, int) and D.dim_str(ours) == theirs:
        return True
    try:
        theirs_dim = theirs if isinstance(theirs, int) else D.parse_dim(theirs)
    except (ValueError, TypeError, SyntaxError):
        return False
    if theirs_dim == ours:
        return True
    here, there = _pinned(ours, finite or {}), _pinned(theirs_dim, finite or {})
    return isinstance(here, int) and here == there


def _compare(found: dict[str, list[int | str | None]], expected: Mapping[str, tuple[D.Dim, ...]], where: str,
             names: Iterable[str], loc: Loc, finite: Mapping[str, list[int]] | None = None) -> None:
    symbols = frozenset(names)
    for name, dims in expected.items():
        got = found.get(name)
        if got is None:
            continue
        if len(got) != len(dims):
            raise InferenceMismatch(f"ONNX shape inference gives '{name}' rank {len(got)}, convgraph {len(dims)} "
                                    f"({where}); please report this", loc)
        for j, (ours, theirs) in enumerate(zip(dims, got)):
            if not _dim_agrees(ours, theirs, symbols, finite):
                raise InferenceMismatch(f"ONNX shape inference disagrees with convgraph on '{name}' dim {j} "
                                        f"({where}): onnx {theirs}, convgraph {_onnx_dims([ours])[0]}; "
                                        "please report this", loc)


def _probe_sizes(plan: Plan) -> list[dict[str, int]]:
    """A few valid concrete sizes for a dynamic model (none for a static one)."""
    if not plan.graph.symbols:
        return []
    from convgraph.solve.sizes import check_sizes

    return check_sizes(plan.graph, PROBE_SIZES)


def _verify(plan: Plan, built: Built, params: Mapping[str, np.ndarray], weightless: onnx.ModelProto) -> None:
    """check_model(full_check) on the weight-free copy of the model, then ONNX shape inference
    against convgraph's dims, symbolically and at a few concrete sizes. (The initializers are
    float32 arrays of the shapes ``param_specs`` gives, written by ``_add_initializers``.)"""
    loc = Loc(plan.source.filename, 0, 0)
    _check_model(weightless, loc)
    expected = {k: v for k, v in built.known.items() if k not in {n.name for n in plan.graph.inputs}}
    weight_inputs = _param_inputs(params)
    _compare(_inferred(_skeleton(plan, built, weight_inputs, None), loc), expected, "as exported",
             plan.graph.symbols, loc, _finite_sizes(plan.graph))
    for env in _probe_sizes(plan):
        check_int64(expected, env, loc)
        at = ", ".join(f"{k}={v}" for k, v in env.items())
        concrete = {k: tuple(D.evaluate(d, env) for d in v) for k, v in expected.items()}
        _compare(_inferred(_skeleton(plan, built, weight_inputs, env), loc), concrete, f"at {at}", (), loc)


def _check_model(model: onnx.ModelProto | str, loc: Loc) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise InferenceMismatch(f"onnx.checker rejects the exported model: {one_line(e)}", loc) from e


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _prepare(graph: ir.Graph, opset: int | None, sizes: Mapping[str, int] | None,
             params: Mapping[str, np.ndarray] | None, seed: int, weights: str | os.PathLike[str] | None
             ) -> tuple[Plan, dict[str, np.ndarray], Built]:
    check_param_budget(graph)  # before the solver runs: it is cheap, the solver may not be
    from convgraph.solve import solve

    err = solve(graph, tiling=False).no_valid_size()  # a graph with no valid size is not exported
    if err is not None:
        raise err
    plan = _plan(graph, opset, sizes)
    params = resolve_params(graph, params, seed, weights)
    built = _build(plan)
    return plan, params, built


def to_onnx(graph: ir.Graph, opset: int | None = None, sizes: Mapping[str, int] | None = None,
            params: Mapping[str, np.ndarray] | None = None, seed: int = 0,
            weights: str | os.PathLike[str] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``graph``, verified (see the module docstring).

    ``sizes`` bakes in concrete sizes for some or all symbols (``{"N": 1, "H": 224}``); ``params``
    gives the parameters by name, ``weights`` a weights file (.npz, .safetensors, torch
    state_dict); otherwise they are initialised from ``seed`` as PyTorch's defaults are.

    >>> import convgraph as cg
    >>> m = cg.parse("input(1, 1, H, W)\\nConv2d(1, 2, 3)").to_onnx(opset=18)
    >>> m.opset_import[0].version
    18
    """
    plan, params, built = _prepare(graph, opset, sizes, params, seed, weights)
    meta = _metadata(plan)
    _verify(plan, built, params, _model(plan, built, params, meta, weights=False))
    return _model(plan, built, params, meta)


def _weight_bytes(params: Mapping[str, np.ndarray]) -> int:
    return sum(4 * int(np.prod(np.shape(v))) for v in params.values())


def export(graph: ir.Graph, path: str | os.PathLike, opset: int | None = None,
           sizes: Mapping[str, int] | None = None, params: Mapping[str, np.ndarray] | None = None,
           seed: int = 0, weights: str | os.PathLike | None = None,
           external_data_threshold: int | None = None) -> str:
    """Write the verified model to ``path`` atomically and return the path.

    Nothing is written unless every check passes; the destination is replaced in one
    ``os.replace``, so a failure never leaves a truncated file and never replaces a good one. When
    the weights exceed ``external_data_threshold`` bytes (default just under 2 GiB) they go to
    ``path + '.data'`` (moved into place just before the model)."""
    export_model(graph, os.fspath(path), opset, sizes, params, seed, weights, external_data_threshold)
    return os.fspath(path)


def export_model(graph: ir.Graph, path: str, opset: int | None = None, sizes: Mapping[str, int] | None = None,
                 params: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 weights: str | os.PathLike[str] | None = None,
                 external_data_threshold: int | None = None) -> onnx.ModelProto:
    """``export`` that returns the written model (for the CLI's summary line); below the external-data
    threshold its initializers carry names and shapes but not the weight bytes, which went to the file."""
    path = check_destination(path, (graph.filename, weights))
    plan, params, built = _prepare(graph, opset, sizes, params, seed, weights)
    threshold = EXTERNAL_DATA_THRESHOLD if external_data_threshold is None else external_data_threshold
    meta = _metadata(plan)
    _verify(plan, built, params, _model(plan, built, params, meta, weights=False))
    if _weight_bytes(params) > threshold:
        model = _model(plan, built, params, meta)
        _write_external(model, path)  # checked again there, from the file, with its external data
        return model
    header = _model(plan, built, {}, meta)
    _write_atomic(path, model_chunks(header, params))  # the weights go from their arrays to the file
    header.graph.initializer.extend(tensor_header(k, float32(v)) for k, v in params.items())
    return header


def _loc(path: str) -> Loc:
    return Loc(path, 0, 0)


def _write_external(model: onnx.ModelProto, path: str) -> None:
    """Model + weights file, the pair installed atomically: the weights go to ``OUT.data``, or when
    the model installed at ``OUT`` uses that name, to ``OUT.<hash>.data`` (named by their content),
    so moving them in touches no file an installed model refers to; the model is renamed over
    ``OUT`` last (until then the old pair is intact); then the data files the old model referred
    to are removed. Written and checked (``check_model(full_check)``) in a temp directory beside
    the destination first."""
    folder, base = os.path.split(os.path.abspath(path))
    old_data = _external_files(path, base)
    data_name = f"{base}.data" if f"{base}.data" not in old_data else f"{base}.{_content_hash(model)}.data"
    try:
        tmpdir = tempfile.mkdtemp(dir=folder, prefix=f".{base}.")
    except OSError as e:
        raise ExportError(f"cannot write '{path}': {e.strerror or e}", _loc(path)) from e
    try:
        tmp_model = os.path.join(tmpdir, base)
        onnx.save_model(model, tmp_model, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=0)
        _check_model(tmp_model, _loc(path))
        mode = _file_mode(path)
        for name in (data_name, base):
            os.chmod(os.path.join(tmpdir, name), mode)
        os.replace(os.path.join(tmpdir, data_name), os.path.join(folder, data_name))
        os.replace(tmp_model, path)
    except OSError as e:
        raise ExportError(f"cannot write '{path}': {e.strerror or e}", _loc(path)) from e
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    for name in old_data - {data_name}:
        _remove(os.path.join(folder, name))


def _content_hash(model: onnx.ModelProto) -> str:
    h = hashlib.sha256()
    for t in model.graph.initializer:
        h.update(t.name.encode())
        h.update(t.raw_data)
    return h.hexdigest()[:16]


def _external_files(path: str, base: str) -> set[str]:
    """The data files an existing model at ``path`` refers to that an export of it wrote
    (``base.data`` or ``base.<hash>.data`` beside it); none when there is no readable model."""
    try:
        old = onnx.load(path, load_external_data=False)
    except (OSError, ValueError, _DecodeError):  # no model there, or not one: nothing to clean up
        return set()
    names = {e.value for t in old.graph.initializer for e in t.external_data if e.key == "location"}
    return {n for n in names if re.fullmatch(re.escape(base) + r"(\.[0-9a-f]{16})?\.data", n)}


