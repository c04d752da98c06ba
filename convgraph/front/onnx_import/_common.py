"""Helpers shared by the tensor-op mappings: operand checks, pads, matching feature maps."""
from __future__ import annotations

from typing import Any

from convgraph import dims as D
from convgraph.front.onnx_import import _values as V
from convgraph.front.onnx_import._import import Importer, materialize
from convgraph.front.onnx_import._values import Known, Padded, Tensor, Weight


def _x(imp: Importer, v: Any, what: str = "input") -> Tensor:
    if isinstance(v, Tensor):
        return v
    if isinstance(v, Padded):
        return materialize(imp, v)
    raise imp.fail(f"its {what} must be a feature map computed from the graph inputs, got a constant")


def _param_shape(imp: Importer, v: Any, what: str) -> tuple[int, ...]:
    if isinstance(v, (Weight, Known)):
        return tuple(v.shape)
    raise imp.fail(f"{what} must be an initializer or constant (convgraph needs its shape at import time)")


def _ints(imp: Importer, v: Any, what: str) -> list[int]:
    if not isinstance(v, Known):
        raise imp.fail(f"{what} must be constant at import time (computed from sizes is fine)")
    got = v.ints()
    if got is None:
        raise imp.fail(f"{what} must be ints known at import time, got "
                       f"[{', '.join(V.show(e) for e in v.arr.flat)}] (see DESIGN.md, ONNX import)")
    return got


def _rank(imp: Importer, x: Tensor, nd: int) -> None:
    if len(x.dims) != nd + 2:
        raise imp.fail(f"expected a {nd + 2}-D input (N, C and {nd} spatial dims), got {len(x.dims)}-D")


def _pairs(flat: list[int], nd: int) -> tuple[tuple[int, int], ...]:
    flat = list(flat) or [0] * 2 * nd
    return tuple((flat[i], flat[i + nd]) for i in range(nd))


def _find_like(imp: Importer, v: Tensor, spatial: list) -> Tensor | None:
    """The latest other feature map of v's rank whose spatial dims are exactly ``spatial``."""
    for t in reversed(list(imp.values.values())):
        if isinstance(t, Tensor) and t.name != v.name and len(t.dims) == len(v.dims) and \
                all(_same_elem(a, b) for a, b in zip(t.dims[2:], spatial)):
            return t
    return None


def _same_elem(a: Any, b: Any) -> bool:
    try:
        return V.sub(a, b) == 0
    except ValueError:
        return False


def _fits(t: Any, d: Any) -> bool:
    return (isinstance(t, int) and t == -1) or _same(t, d)


def _same(t: Any, d: Any) -> bool:
    return D.lower(D.add(t, D.mul(d, -1))) == 0

