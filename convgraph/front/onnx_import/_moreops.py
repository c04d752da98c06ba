"""ONNX ops for the IR kinds of the catalogue issue (#9): broadcasting Add/Sub/Mul and scalar
arithmetic, constant Slice and Split of feature maps, InstanceNormalization, DepthToSpace,
Softmax, and the activations HardSwish, HardSigmoid, Clip(0, 6), Elu."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convgraph.front import catalogue
from convgraph.front.onnx_import._common import _ints, _param_shape, _x
from convgraph.front.onnx_import._import import Importer
from convgraph.front.onnx_import._values import Known, Padded, Tensor

#: an open Slice end (ONNX's INT64_MAX and the like)
OPEN = 1 << 62


def _scalar(v: Any) -> float | None:
    """The value of a one-element numeric constant, else None."""
    if not isinstance(v, Known) or v.arr.size != 1:
        return None
    try:
        return float(np.asarray(v.arr).reshape(-1)[0])
    except (TypeError, ValueError):
        return None


def binary(op: str) -> Callable:
    """Add / Sub / Mul / Div: two feature maps broadcast (the IR's add, sub, mul); a feature map and
    a scalar constant: the IR's scalar node (``rsub`` when the constant comes first)."""
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        p, q = (_x(imp, v) if isinstance(v, (Tensor, Padded)) else v for v in ins)
        if isinstance(p, Tensor) and isinstance(q, Tensor):
            if op == "div":
                raise imp.fail("Div of two feature maps: not in the IR")
            imp.add(node.output[0], op, [p, q])
            return
        t, c = (p, q) if isinstance(p, Tensor) else (q, p)
        value = _scalar(c)
        if value is None:
            raise imp.fail(f"{node.op_type} of a feature map and a constant of shape {list(getattr(c, 'shape', []))}: "
                           "the IR has feature-map operands or scalar constants")
        kind = op if t is p else {"add": "add", "mul": "mul", "sub": "rsub"}.get(op)
        if kind is None:
            raise imp.fail("a constant divided by a feature map: not in the IR")
        imp.add(node.output[0], "scalar", [t], attrs=(("op", kind), ("value", value)))
    return rule


def slice_index(imp: Importer, v: Tensor, ins: list) -> tuple[tuple[int | None, int | None], ...]:
    """A constant Slice of a feature map as the IR's index: (start, stop) per leading axis."""
    r = len(v.dims)
    starts, ends = (_ints(imp, ins[i], "Slice starts/ends") for i in (1, 2))
    given = len(ins) > 3 and ins[3] is not None
    axes = [x % r for x in _ints(imp, ins[3], "axes")] if given else list(range(len(starts)))
    steps = _ints(imp, ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(axes)
    if set(steps) != {1}:
        raise imp.fail(f"Slice with steps {steps}: the IR slices with step 1")
    index: list[tuple[int | None, int | None]] = [(None, None)] * (max(axes) + 1)
    for ax, b, e in zip(axes, starts, ends):
        index[ax] = (None if b == 0 else b, None if e >= OPEN or e <= -OPEN else e)
    return tuple(index)


def split(imp: Importer, node: Any, a: dict, ins: list) -> None:
    """Split along an axis of constant size into constant parts: one IR slice node per output."""
    v = _x(imp, ins[0])
    axis = a.get("axis", 0) % len(v.dims)
    n = v.dims[axis]
    if not isinstance(n, int):
        raise imp.fail(f"Split along axis {axis} of symbolic size: the IR splits constant axes only")
    sizes = _ints(imp, ins[1], "split") if len(ins) > 1 and ins[1] is not None else list(a.get("split", []))
    if not sizes:
        k = len(node.output)
        sizes = [-(-n // k)] * (k - 1) + [n - (k - 1) * -(-n // k)]
    start = 0
    for out, size in zip(node.output, sizes):
        index = ((None, None),) * axis + ((start, start + size),)
        imp.add(out, "slice", [v], attrs=(("index", index),))
        start += size


def instance_norm(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    c = _param_shape(imp, ins[1], "scale")[0]
    nd = max(1, len(x.dims) - 2)
    spec = catalogue.construct(f"InstanceNorm{nd}d", (c,), {"eps": float(a.get("epsilon", 1e-5)), "affine": True})
    t = imp.layer(node.output[0], spec, x)
    for local, name in zip(("weight", "bias"), node.input[1:]):
        if name:
            imp.param(t, local, name)


def depth_to_space(imp: Importer, node: Any, a: dict, ins: list) -> None:
    if a.get("mode", "DCR") != "CRD":
        raise imp.fail(f"DepthToSpace mode={a.get('mode', 'DCR')}: the IR's PixelShuffle is the CRD order")
    imp.layer(node.output[0], catalogue.construct("PixelShuffle", (int(a["blocksize"]),)), _x(imp, ins[0]))


def softmax(log: bool) -> Callable:
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        x = _x(imp, ins[0])
        axis = a.get("axis", -1 if imp.opset >= 13 else 1) % len(x.dims)
        if imp.opset < 13 and axis != len(x.dims) - 1:
            raise imp.fail(f"{node.op_type} before opset 13 flattens from axis {axis}: not torch's softmax")
        imp.layer(node.output[0], catalogue.construct("LogSoftmax" if log else "Softmax", (), {"dim": axis}), x)
    return rule


def hard_sigmoid(imp: Importer, node: Any, a: dict, ins: list) -> None:
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) > 1e-6 or beta != 0.5:
        raise imp.fail(f"HardSigmoid alpha={alpha}, beta={beta}: the IR has torch's Hardsigmoid (1/6, 0.5)")
    imp.layer(node.output[0], catalogue.construct("Hardsigmoid"), _x(imp, ins[0]))


def clip(imp: Importer, node: Any, a: dict, ins: list) -> None:
    lo = _scalar(ins[1]) if len(ins) > 1 and ins[1] is not None else a.get("min")
    hi = _scalar(ins[2]) if len(ins) > 2 and ins[2] is not None else a.get("max")
    x = _x(imp, ins[0])
    if lo == 0 and hi == 6:
        imp.layer(node.output[0], catalogue.construct("ReLU6"), x)
    elif lo == 0 and hi is None:
        imp.layer(node.output[0], catalogue.construct("ReLU"), x)
    else:
        raise imp.fail(f"Clip to [{lo}, {hi}]: the IR has ReLU6 (Clip 0..6) and ReLU")


RULES: dict[str, Callable] = {
    "Sub": binary("sub"),
    "Div": binary("div"),
    "Split": split,
    "InstanceNormalization": instance_norm,
    "DepthToSpace": depth_to_space,
    "Softmax": softmax(False),
    "LogSoftmax": softmax(True),
    "HardSigmoid": hard_sigmoid,
    "Clip": clip,
}
