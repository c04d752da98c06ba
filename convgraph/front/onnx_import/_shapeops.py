"""Shape-computation ops evaluated at import time: a table op_type -> rule.

Each rule takes the node's attributes and its input values (``Known``; ``Shape`` and ``Size`` also
a ``Tensor``, ``Weight`` or ``Padded``) and returns the output's ``Known`` value. Elements may be
symbolic (``_values``); every rule is exact or raises ``ValueError`` with the reason.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convgraph.front.onnx_import import _values as V
from convgraph.front.onnx_import._values import Known, Padded, Tensor, Weight

#: ONNX TensorProto data types -> element kind
_KINDS = {1: "float", 2: "int", 3: "int", 4: "int", 5: "int", 6: "int", 7: "int", 9: "bool", 10: "float",
          11: "float", 12: "int", 13: "int", 16: "float"}


def kind_of(dtype: int) -> str:
    return _KINDS.get(dtype, "float")


def _dims_of(v: Any) -> tuple:
    if isinstance(v, (Tensor, Padded)):
        return tuple(v.dims)
    if isinstance(v, (Weight, Known)):
        return tuple(v.shape)
    raise ValueError("Shape of a value with no known shape")


def _known(arr: Any, kind: str) -> Known:
    arr = np.asarray(arr, dtype=object) if not isinstance(arr, np.ndarray) else arr
    return Known(V.numeric(arr, kind), kind)


def _ints(v: Known | None, what: str) -> list[int]:
    if v is None:
        return []
    got = v.ints()
    if got is None:
        raise ValueError(f"{what} must be constant at import time, got "
                         f"[{', '.join(V.show(e) for e in v.arr.flat)}]")
    return got


def _shape(attrs: dict, x: Any, *_: Any) -> Known:
    dims = _dims_of(x)
    r = len(dims)
    start, end = attrs.get("start", 0), attrs.get("end", r)
    start, end = (max(0, min(r, a + r if a < 0 else a)) for a in (start, end))
    return _known(np.array(list(dims[start:end]), dtype=object), "int")


def _size(attrs: dict, x: Any, *_: Any) -> Known:
    total = 1
    for d in _dims_of(x):
        total = V.mul(total, d)
    return _known(np.array(total, dtype=object), "int")


def _norm_axis(a: int, r: int) -> int:
    return a + r if a < 0 else a


def _gather(attrs: dict, data: Known, idx: Known) -> Known:
    axis = _norm_axis(attrs.get("axis", 0), data.arr.ndim)
    ind = np.asarray(_ints(idx, "Gather indices")).reshape(idx.shape)
    ind = np.where(ind < 0, ind + data.arr.shape[axis], ind)
    return _known(np.take(data.arr, ind, axis=axis), data.kind)


def _slice_one(n: int, start: int, end: int, step: int) -> slice:
    """ONNX Slice clamping for one axis of length n -> a Python slice."""
    if step == 0:
        raise ValueError("Slice step 0")
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    if step > 0:
        return slice(max(0, min(n, start)), max(0, min(n, end)), step)
    start = max(-1, min(n - 1, start))
    end = max(-1, min(n - 1, end))
    return slice(start, None if end < 0 else end, step)


def _slice(attrs: dict, data: Known, starts: Known | None = None, ends: Known | None = None,
           axes: Known | None = None, steps: Known | None = None) -> Known:
    st = _ints(starts, "Slice starts") if starts is not None else list(attrs.get("starts", []))
    en = _ints(ends, "Slice ends") if ends is not None else list(attrs.get("ends", []))
    ax = _ints(axes, "Slice axes") if axes is not None else list(attrs.get("axes", range(len(st))))
    sp = _ints(steps, "Slice steps") if steps is not None else [1] * len(st)
    index = [slice(None)] * data.arr.ndim
    for s, e, a, k in zip(st, en, ax, sp):
        a = _norm_axis(a, data.arr.ndim)
        index[a] = _slice_one(data.arr.shape[a], s, e, k)
    return _known(data.arr[tuple(index)], data.kind)


def _concat(attrs: dict, *xs: Known) -> Known:
    xs = tuple(x for x in xs if x is not None)
    arrs = [np.asarray(x.arr, dtype=object) for x in xs]
    return _known(np.concatenate(arrs, axis=attrs.get("axis", 0)), xs[0].kind)


def _cast(attrs: dict, x: Known, *_: Any) -> Known:
    kind = kind_of(attrs.get("to", 1))
    fns: dict[str, Callable[[Any], Any]] = {"int": V.to_int, "bool": bool}
    fn = fns.get(kind, _same)
    return _known(V.elementwise(fn, x.arr), kind)


def _same(v: Any) -> Any:
    return v


def _cast_like(attrs: dict, x: Known, like: Known) -> Known:
    return _cast({"to": {"int": 7, "bool": 9, "float": 1}[like.kind]}, x)


def _binary(fn_int: Callable, fn_float: Callable) -> Callable:
    def rule(attrs: dict, a: Known, b: Known) -> Known:
        kind = "float" if "float" in (a.kind, b.kind) else a.kind
        fn = fn_float if kind == "float" else fn_int
        return _known(V.elementwise(fn, a.arr, b.arr), kind)
    return rule


def _unary(fn: Callable) -> Callable:
    def rule(attrs: dict, a: Known, *_: Any) -> Known:
        return _known(V.elementwise(fn, a.arr), a.kind)
    return rule


def _axes(attrs: dict, axes: Known | None) -> list[int] | None:
    if axes is not None:
        return _ints(axes, "axes")
    return list(attrs["axes"]) if "axes" in attrs else None


def _unsqueeze(attrs: dict, x: Known, axes: Known | None = None) -> Known:
    ax = _axes(attrs, axes) or []
    r = x.arr.ndim + len(ax)
    arr = x.arr
    for a in sorted(_norm_axis(a, r) for a in ax):
        arr = np.expand_dims(arr, a)
    return _known(arr, x.kind)


def _squeeze(attrs: dict, x: Known, axes: Known | None = None) -> Known:
    ax = _axes(attrs, axes)
    if ax is None:
        return _known(np.squeeze(x.arr), x.kind)
    return _known(np.squeeze(x.arr, axis=tuple(_norm_axis(a, x.arr.ndim) for a in ax)), x.kind)


def _constant_of_shape(attrs: dict, shape: Known) -> Known:
    value = attrs.get("value")
    fill = value.reshape(-1)[0] if value is not None else np.float32(0)
    kind = "float" if np.issubdtype(np.asarray(fill).dtype, np.floating) else "int"
    return _known(np.full(_ints(shape, "ConstantOfShape shape"), fill.item() if hasattr(fill, "item") else fill,
                          dtype=object), kind)


def _reshape(attrs: dict, x: Known, shape: Known) -> Known:
    target = _ints(shape, "Reshape shape")
    target = [x.arr.shape[i] if t == 0 and not attrs.get("allowzero", 0) else t for i, t in enumerate(target)]
    return _known(x.arr.reshape(target), x.kind)


def _transpose(attrs: dict, x: Known) -> Known:
    perm = attrs.get("perm")
    return _known(np.transpose(x.arr, perm), x.kind)


def _identity(attrs: dict, x: Known, *_: Any) -> Known:
    return x


def _range(attrs: dict, start: Known, limit: Known, delta: Known) -> Known:
    a, b, d = (_ints(v, "Range bounds")[0] for v in (start, limit, delta))
    return _known(np.arange(a, b, d, dtype=np.int64), "int")


def _expand(attrs: dict, x: Known, shape: Known) -> Known:
    target = _ints(shape, "Expand shape")
    out = np.broadcast_shapes(x.arr.shape, tuple(target))
    return _known(np.broadcast_to(x.arr, out).copy(), x.kind)


def _compare(test: Callable[[int], bool]) -> Callable:
    def rule(attrs: dict, a: Known, b: Known) -> Known:
        return _known(V.elementwise(lambda p, q: test(V.compare(p, q)), a.arr, b.arr), "bool")
    return rule


def _where(attrs: dict, c: Known, a: Known, b: Known) -> Known:
    cond = np.asarray(_ints(c, "Where condition")).reshape(c.shape).astype(bool)
    return _known(np.where(cond, np.asarray(a.arr, dtype=object), np.asarray(b.arr, dtype=object)), a.kind)


def _div(a: Any, b: Any) -> Any:
    return V.int_div(a, b)


SHAPE_RULES: dict[str, Callable] = {
    "Shape": _shape,
    "Size": _size,
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Cast": _cast,
    "CastLike": _cast_like,
    "Add": _binary(V.add, V.add),
    "Sub": _binary(V.sub, V.sub),
    "Mul": _binary(V.mul, V.mul),
    "Div": _binary(_div, V.true_div),
    "Mod": _binary(V.modulo, V.modulo),
    "Max": _binary(V.maximum, V.maximum),
    "Min": _binary(V.minimum, V.minimum),
    "Neg": _unary(lambda v: V.mul(v, -1)),
    "Floor": _unary(V.floor),
    "Ceil": _unary(V.ceil),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "ConstantOfShape": _constant_of_shape,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Identity": _identity,
    "Range": _range,
    "Expand": _expand,
    "Equal": _compare(lambda c: c == 0),
    "Less": _compare(lambda c: c < 0),
    "LessOrEqual": _compare(lambda c: c <= 0),
    "Greater": _compare(lambda c: c > 0),
    "GreaterOrEqual": _compare(lambda c: c >= 0),
    "Where": _where,
    "Not": _unary(lambda v: not v),
}

#: ops whose first input may be any value with a shape (a feature map included)
SHAPE_OF = ("Shape", "Size")
