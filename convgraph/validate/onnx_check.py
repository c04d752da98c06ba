"""``check`` for an imported ONNX model: the original file on onnxruntime, across sizes drawn from
the solved sets, its outputs' shapes against convgraph's formulas and its values against the numpy
reference of the imported IR run with the file's own weights (and PyTorch's mirror of the IR when
torch is importable). ONNX semantics are the definition: a size outside the valid set is not run.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from convgraph.errors import ConvGraphError, Loc
from convgraph.front.onnx_import import Imported
from convgraph.front.onnx_import._values import Known
from convgraph.validate._check import CheckReport, check


def file_params(imported: Imported, path: str) -> dict[str, np.ndarray]:
    """The IR's parameters (``{layer}.weight``, ...) from the model's initializers and constants."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)  # with its external data
    tensors = {t.name: t for t in model.graph.initializer}
    out = {}
    for key, (source, transposed) in imported.params.items():
        value = imported.values.get(source)
        if source in tensors:
            arr = numpy_helper.to_array(tensors[source])
        elif isinstance(value, Known):
            arr = np.asarray(value.arr, dtype=np.float64)
        else:
            raise ConvGraphError(f"parameter {key} comes from '{source}', which is neither an initializer nor a "
                                 "constant", Loc(path, 0, 0))
        arr = arr.T if transposed else arr
        out[key] = np.array(arr.reshape(-1) if key.endswith("bias") else arr, dtype=np.float32, copy=True)
    return out


def check_imported(imported: Imported, **kw: Any) -> CheckReport:
    """``convgraph.validate.check`` on the file itself with its weights (``weights=`` is refused: the
    model carries its own)."""
    if kw.pop("weights", None) is not None:
        raise ConvGraphError("--weights: an ONNX model carries its own weights", Loc("<command line>", 0, 0))
    path = imported.graph.filename
    params = kw.pop("params", None)
    return check(imported.graph, params=file_params(imported, path) if params is None else params,
                 model_path=path, **kw)
