"""``annotate``: an imported ONNX model written back with convgraph's exact dims and findings.

Every feature-map value gets a ``value_info`` (graph outputs: their type) whose symbolic dims are
the exact formulas, named as export names them (simplified on the valid sizes; the general
formulas in ``convgraph.formulas``); the inputs carry the size
symbols (``--dims`` names included); ``metadata_props`` get the same ``convgraph.*`` keys as
convgraph's own export (constraints, each naming its node, and the solver's valid sets). Nodes
and initializers are untouched; tensors stored as external data stay external (their files are
copied beside the output when it goes to another directory). The write is atomic.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

import onnx
from onnx import TensorProto

from convgraph import dims as D
from convgraph.errors import ExportError, Loc
from convgraph.export._export import _onnx_dims, _valid_namer, graph_metadata
from convgraph.export._paths import check_destination, write_atomic
from convgraph.front.onnx_import import Imported
from convgraph.front.onnx_import._values import Padded, Tensor
from convgraph.shapes import infer


def _set_dims(vi: onnx.ValueInfoProto, dims: tuple, elem: int, namer: Callable[[D.Dim], str] | None) -> None:
    t = vi.type.tensor_type
    if not t.elem_type:
        t.elem_type = elem
    t.ClearField("shape")
    shape = t.shape
    shape.SetInParent()
    for d in (_onnx_dims(dims) if namer is None else [d if isinstance(d, int) else namer(d) for d in dims]):
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d


def annotated(imported: Imported) -> onnx.ModelProto:
    """A copy of the model with the exact dims and the ``convgraph.*`` metadata."""
    model = onnx.ModelProto()
    model.CopyFrom(imported.model)
    values = infer(imported.graph).values
    namer = _valid_namer(imported.graph) if imported.graph.symbols else None  # as export names them
    g = model.graph
    inputs = {vi.name: vi for vi in g.input}
    outputs = {vi.name: vi for vi in g.output}
    elem = next((vi.type.tensor_type.elem_type for vi in g.input if vi.name in values), TensorProto.FLOAT)
    old = {vi.name: vi for vi in g.value_info}
    keep = [vi for vi in g.value_info if not isinstance(imported.values.get(vi.name), (Tensor, Padded))]
    fresh = []
    for name, v in imported.values.items():
        if isinstance(v, Padded):
            dims = v.dims
        elif isinstance(v, Tensor) and v.name in values:
            dims = values[v.name]
        else:
            continue
        if name in inputs or name in outputs:
            _set_dims((inputs.get(name) or outputs[name]), dims, elem, None if name in inputs else namer)
            continue
        vi = onnx.ValueInfoProto()
        if name in old:
            vi.CopyFrom(old[name])
        vi.name = name
        _set_dims(vi, dims, elem, namer)
        fresh.append(vi)
    del g.value_info[:]
    g.value_info.extend(keep + fresh)
    meta = graph_metadata(imported.graph, {n.name: values[n.name] for n in imported.graph.inputs}, None,
                          {n.name: values[n.name] for n in imported.graph.nodes})
    props = [p for p in model.metadata_props if not p.key.startswith("convgraph.")]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    return model


def _external_files(model: onnx.ModelProto) -> set[str]:
    out = set()
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            out |= {e.value for e in t.external_data if e.key == "location"}
    return out


def _copy_external(model: onnx.ModelProto, src: str, dst: str) -> None:
    """External data files, copied beside ``dst`` when it is in another directory (each atomically)."""
    a, b = os.path.dirname(os.path.abspath(src)), os.path.dirname(os.path.abspath(dst))
    if a == b:
        return
    for loc in sorted(_external_files(model)):
        source, target = os.path.join(a, loc), os.path.join(b, loc)
        if not os.path.isfile(source):
            raise ExportError(f"external data file '{source}' is missing", Loc(src, 0, 0))
        os.makedirs(os.path.dirname(target) or b, exist_ok=True)
        tmp = target + ".tmp-convgraph"
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def annotate(imported: Imported, out: str) -> onnx.ModelProto:
    """Write the annotated model to ``out`` atomically (checked by onnx.checker first); returns it."""
    check_destination(out)
    model = annotated(imported)
    data = model.SerializeToString()
    if not _external_files(model):
        _check(lambda: onnx.checker.check_model(model), imported)
        write_atomic(out, data)
        return model
    _copy_external(model, imported.graph.filename, out)
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(out)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _check(lambda: onnx.checker.check_model(tmp), imported)
        write_atomic(out, data)
    finally:
        os.unlink(tmp)
    return model


def _check(run: Callable[[], None], imported: Imported) -> None:
    try:
        run()
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"the annotated model does not pass onnx.checker: {str(e).splitlines()[0]}",
                          Loc(imported.graph.filename, 0, 0)) from e
