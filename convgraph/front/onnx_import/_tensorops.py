"""Tensor ops -> IR: the table op_type -> mapping function (``TENSOR_RULES``), with the merges,
activations, dense layers and Reshape here; conv-family ops in ``_convops``, Resize / Pad / Slice in
``_resizeops``. ONNX semantics define the import (``/work/shared/reference/conv-semantics.md``);
what the IR cannot express yet raises an error naming the node, the op and why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convgraph import dims as D
from convgraph import ir
from convgraph.front import catalogue
from convgraph.front.onnx_import._common import _fits, _param_shape, _x
from convgraph.front.onnx_import._convops import _conv, _conv_transpose, _global, _params, _pool, _reduce_mean
from convgraph.front.onnx_import._import import Importer, add_pin
from convgraph.front.onnx_import._moreops import RULES as MORE_RULES
from convgraph.front.onnx_import._moreops import binary
from convgraph.front.onnx_import._resizeops import _pad, _resize, _slice
from convgraph.front.onnx_import._shapeops import SHAPE_RULES
from convgraph.front.onnx_import._values import Known, Padded, Tensor, Weight


def _concat(imp: Importer, node: Any, a: dict, ins: list) -> None:
    xs = [_x(imp, v, "every input") for v in ins if v is not None]
    imp.add(node.output[0], "cat", xs, dim=a.get("axis", 1))


def _add(imp: Importer, node: Any, a: dict, ins: list) -> None:
    p, q = ins
    t, c = (p, q) if isinstance(p, Tensor) else (q, p)
    prod = imp.producer.get(getattr(t, "name", ""))
    lin = prod.layer if prod is not None and prod.op == "layer" else None
    if isinstance(lin, ir.Linear) and not lin.bias and isinstance(c, (Known, Weight)) and \
            tuple(c.shape) == (lin.out_features,):
        imp.replace_layer(t, ir.Linear(
            type_name="Linear", in_features=lin.in_features, out_features=lin.out_features, bias=True))
        imp.param(t, "bias", node.input[1] if t is p else node.input[0])
        imp.values[node.output[0]] = t
        return
    binary("add")(imp, node, a, ins)


def _mul(imp: Importer, node: Any, a: dict, ins: list) -> None:
    p, q = ins
    for t, other in ((p, q), (q, p)):
        prod = imp.producer.get(getattr(other, "name", ""))
        if isinstance(t, Tensor) and prod is not None and prod.op == "layer" and \
                prod.spec.type_name == "Sigmoid" and prod.inputs == (t.name,):
            imp.layer(node.output[0], catalogue.construct("SiLU"), t)
            return
    binary("mul")(imp, node, a, ins)


def _activation(type_name: str, **params: Callable[[dict], object]) -> Callable:
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        kw = {k: f(a) for k, f in params.items()}
        imp.layer(node.output[0], catalogue.construct(type_name, (), kw), _x(imp, ins[0]))
    return rule


def _swish(imp: Importer, node: Any, a: dict, ins: list) -> None:
    if a.get("alpha", 1.0) != 1.0:
        raise imp.fail(f"Swish with alpha={a['alpha']}: the IR has SiLU (alpha 1)")
    imp.layer(node.output[0], catalogue.construct("SiLU"), _x(imp, ins[0]))


def _alias(imp: Importer, node: Any, a: dict, ins: list) -> None:
    imp.values[node.output[0]] = ins[0] if isinstance(ins[0], Padded) else _x(imp, ins[0])


def _batchnorm(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    c = _param_shape(imp, ins[1], "scale")[0]
    nd = max(1, len(x.dims) - 2)
    if a.get("training_mode", 0):
        raise imp.fail("BatchNormalization in training mode: convgraph imports inference graphs")
    spec = ir.BatchNorm(
        type_name=f"BatchNorm{nd}d", nd=nd, num_features=c, eps=float(a.get("epsilon", 1e-5)),
        momentum=float(a.get("momentum", 0.9)))
    _params(imp, imp.layer(node.output[0], spec, x), node, ("weight", "bias", "running_mean", "running_var"))


def _flatten(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    axis = a.get("axis", 1) % max(1, len(x.dims))
    if axis != 1:
        raise imp.fail(f"Flatten with axis={a.get('axis')}: the IR's Flatten keeps the first axis")
    imp.layer(node.output[0], ir.Flatten(type_name="Flatten", start_dim=1, end_dim=-1), x)


def _reshape(imp: Importer, node: Any, a: dict, ins: list) -> None:
    """A Reshape of a feature map that merges axes start..end (a flatten; -1 matches the merged
    size); a constant target dim where the merged size is symbolic pins that size: an expect
    naming this node."""
    x = _x(imp, ins[0])
    if not isinstance(ins[1], Known):
        raise imp.fail("Reshape target must be computable at import time")
    target = ins[1].dims()
    if not a.get("allowzero", 0):
        target = [x.dims[j] if isinstance(t, int) and t == 0 and j < len(x.dims) else t for j, t in enumerate(target)]
    cands = sorted(_flatten_candidates(x.dims, len(target)), key=lambda c: -c[0])  # trailing axes first
    for pins_ok in (False, True):
        for start, end, out in cands:
            pins = [j for j, (t, d) in enumerate(zip(target, out)) if not _fits(t, d)]
            if pins and (not pins_ok or any(not isinstance(target[j], int) or isinstance(out[j], int) for j in pins)):
                continue
            if start == end:
                imp.values[node.output[0]] = x
            else:
                imp.layer(node.output[0], ir.Flatten(type_name="Flatten", start_dim=start, end_dim=end), x)
            for j in pins:
                add_pin(imp, out[j], target[j], node)
            return
    shown = (f"a ({', '.join(D.dim_str(d) for d in x.dims)}) feature map to "
             f"[{', '.join(D.dim_str(t) for t in target)}]")
    for _start, _end, out in cands:
        bad = [j for j, (t, d) in enumerate(zip(target, out)) if not _fits(t, d)]
        if bad and all(isinstance(target[j], int) and isinstance(out[j], int) for j in bad):
            j = bad[0]
            raise imp.fail(f"Reshape of {shown}: dim {j} would be {out[j]}, not {target[j]}, at every size "
                           "(the model cannot run)")
    raise imp.fail(f"Reshape of {shown}: only flattening consecutive axes maps to the IR")


def _flatten_candidates(dims: tuple, rank: int) -> list[tuple[int, int, tuple]]:
    """(start, end, dims after merging start..end) for every merge that leaves ``rank`` axes."""
    r = len(dims)
    out = []
    for start in range(max(r, 1)):
        end = start + r - rank
        if rank < 1 or end < start or end >= r:
            continue
        prod: Any = 1
        for d in dims[start:end + 1]:
            prod = D.mul(prod, d)
        out.append((start, end, (*dims[:start], D.lower(prod), *dims[end + 1:])))
    return out


def _gemm(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise imp.fail("Gemm with transA, alpha or beta other than the defaults: not a Linear")
    w = _param_shape(imp, ins[1], "B")
    out_f, in_f = (w[0], w[1]) if a.get("transB", 0) else (w[1], w[0])
    bias = len(ins) > 2 and ins[2] is not None
    if bias and tuple(_param_shape(imp, ins[2], "C")) not in ((out_f,), (1, out_f)):
        raise imp.fail("Gemm's C is not a bias vector")
    t = imp.layer(node.output[0], ir.Linear(type_name="Linear", in_features=in_f, out_features=out_f, bias=bias), x)
    imp.param(t, "weight", node.input[1], not a.get("transB", 0))
    if bias:
        imp.param(t, "bias", node.input[2])


def _matmul(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    w = _param_shape(imp, ins[1], "the second operand")
    if len(w) != 2:
        raise imp.fail("MatMul by a non-matrix constant: not a Linear")
    t = imp.layer(node.output[0], ir.Linear(type_name="Linear", in_features=w[0], out_features=w[1], bias=False), x)
    imp.param(t, "weight", node.input[1], True)


def _float_attr(key: str, default: float) -> Callable[[dict], float]:
    return lambda a: float(a.get(key, default))


TENSOR_RULES: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global("avg"),
    "GlobalMaxPool": _global("max"),
    "ReduceMean": _reduce_mean,
    "Resize": _resize,
    "Upsample": _resize,
    "Pad": _pad,
    "Concat": _concat,
    "Add": _add,
    "Mul": _mul,
    "Relu": _activation("ReLU"),
    "Sigmoid": _activation("Sigmoid"),
    "Tanh": _activation("Tanh"),
    "LeakyRelu": _activation("LeakyReLU", negative_slope=_float_attr("alpha", 0.01)),
    "Gelu": _activation("GELU", approximate=lambda a: a.get("approximate", "none")),
    "Swish": _swish,
    "Identity": _alias,
    "Dropout": _alias,
    "BatchNormalization": _batchnorm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Slice": _slice,
    "HardSwish": _activation("Hardswish"),
    "Elu": _activation("ELU", alpha=_float_attr("alpha", 1.0)),
    **MORE_RULES,
}


def supported() -> str:
    return ", ".join(sorted(set(TENSOR_RULES) | set(SHAPE_RULES) | {"Constant"}))


def map_node(imp: Importer, node: Any, attrs: dict, ins: list) -> None:
    rule = TENSOR_RULES.get(node.op_type)
    if rule is None:
        what = "on feature maps " if node.op_type in SHAPE_RULES else ""
        raise imp.fail(f"unsupported op {node.op_type} {what}(supported: {supported()})")
    rule(imp, node, attrs, ins)
