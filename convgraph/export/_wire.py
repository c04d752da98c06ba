"""The model file written in one pass, the weights straight from their arrays.

Serializing a ModelProto copies every weight twice more (into the proto, then into the output
bytes). Protobuf's wire format lets the file be written as pieces instead: the model without its
initializers, then each initializer framed as a ``ModelProto.graph`` fragment holding one
``GraphProto.initializer`` (a parser merges repeated occurrences of an embedded message field and
appends repeated fields, so reading the file gives exactly the model with its initializers, in
order). Each tensor's small header (name, dims, type) is serialized by protobuf itself; only the
``raw_data`` bytes are framed here, from a view of the float32 array.

>>> import numpy as np, onnx
>>> m = onnx.ModelProto(ir_version=8)
>>> w = np.arange(6, dtype=np.float32).reshape(2, 3)
>>> back = onnx.ModelProto.FromString(b"".join(bytes(c) for c in model_chunks(m, {"w": w})))
>>> back.graph.initializer[0].name, list(back.graph.initializer[0].dims), len(back.graph.initializer[0].raw_data)
('w', [2, 3], 24)
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

#: field numbers (onnx.proto): ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _framed(number: int, length: int) -> bytes:
    """The key and length of a length-delimited field ``number`` (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(length)


def float32(v: np.ndarray) -> np.ndarray:
    """Little-endian float32, C-contiguous: the layout of ``raw_data``."""
    return np.ascontiguousarray(v, dtype="<f4")


def tensor_header(name: str, arr: np.ndarray) -> onnx.TensorProto:
    """An initializer without its data: name, dims, FLOAT."""
    t = onnx.TensorProto(name=name, data_type=onnx.TensorProto.FLOAT)
    t.dims.extend(arr.shape)
    return t


def model_chunks(model: onnx.ModelProto, params: Mapping[str, np.ndarray]) -> list[bytes | memoryview]:
    """The bytes of ``model`` with ``params`` as float32 initializers (after any it has), as pieces
    to write in order; the arrays are not copied."""
    chunks: list[bytes | memoryview] = [model.SerializeToString()]
    for name, v in params.items():
        arr = float32(v)
        head = tensor_header(name, arr).SerializeToString() + _framed(_TENSOR_RAW_DATA, arr.nbytes)
        tensor = len(head) + arr.nbytes
        initializer = _framed(_GRAPH_INITIALIZER, tensor)
        chunks += [_framed(_MODEL_GRAPH, len(initializer) + tensor) + initializer + head,
                   arr.data.cast("B")]
    return chunks
