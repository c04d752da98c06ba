"""``check`` for an imported ONNX model: the original file on onnxruntime, across sizes drawn from
the solved sets, its outputs' shapes against convgraph's formulas and its values against the numpy
reference of the imported IR run with the file's own weights (and PyTorch's mirror of the IR when
torch is importable). ONNX semantics are the definition: a size outside the valid set is not run.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convgraph.errors import ConvGraphError, Loc
from convgraph.front.onnx_import import Imported
from convgraph.front.onnx_import._values import Known
from convgraph.shapes import infer
from convgraph.validate._check import (
    CheckReport,
    _Clock,
    _import_torch,
    _inputs,
    _progress,
    _run_one,
    _sessions,
    accumulation,
    choose_sizes,
    run_torch,
)


def file_params(imported: Imported, path: str) -> dict[str, np.ndarray]:
    """The IR's parameters (``{layer}.weight``, ...) from the model's initializers and constants."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)  # with its external data
    tensors = {t.name: t for t in model.graph.initializer}
    out = {}
    for key, (source, transposed) in imported.params.items():
        if source in tensors:
            arr = numpy_helper.to_array(tensors[source])
        elif isinstance(imported.values.get(source), Known):
            arr = np.asarray(imported.values[source].arr, dtype=np.float64)  # type: ignore[attr-defined]
        else:
            raise ConvGraphError(f"parameter {key} comes from '{source}', which is neither an initializer nor a "
                                 "constant", Loc(path, 0, 0))
        arr = arr.T if transposed else arr
        out[key] = np.array(arr.reshape(-1) if key.endswith("bias") else arr, dtype=np.float32, copy=True)
    return out


def check_imported(imported: Imported, sizes: Any = None, providers: Sequence[str] = ("cpu",), seed: int = 0,
                   count: int = 6, progress: bool | None = None) -> CheckReport:
    graph = imported.graph
    path = graph.filename
    clock = _Clock()
    params = clock.timed("weights", file_params, imported, path)
    envs = clock.timed("sizes", choose_sizes, graph, sizes, count)
    sessions, notes = clock.timed("onnxruntime", _sessions, path, tuple(providers), Loc(path, 0, 0))
    torch = _import_torch()
    if torch is None:
        notes.append("torch is not installed: values compared with the numpy reference only")
    from convgraph.validate.reference import run as reference_run

    rng = np.random.default_rng(seed)
    bar = _progress(len(envs) * len(sessions), progress)
    results = []
    for env in envs:
        inputs = _inputs(graph, env, rng)
        shapes = infer(graph).shapes(**env)
        refs = clock.timed("reference", reference_run, graph, inputs, params)
        ref_t = clock.timed("torch", run_torch, graph, inputs, params) if torch is not None else {}
        acc = accumulation(graph, shapes)
        for asked, sess in sessions:
            results.append(clock.timed("onnxruntime", _run_one, graph, sess, asked, env, inputs, shapes, refs,
                                       ref_t, acc))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    model: Any = imported.model
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return CheckReport(model.graph.name or path, opset, tuple(results), tuple(notes),
                       None if torch is None else torch.__version__, clock.seconds)


