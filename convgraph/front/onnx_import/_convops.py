"""Conv, ConvTranspose and the pools -> IR, with ONNX's attributes canonicalised: strides default
to 1 for pools, AveragePool's ``count_include_pad`` defaults to 0, ``auto_pad`` SAME is resolved to
explicit pads (exact for stride 1 or a static input size), ConvTranspose's asymmetric pads become
output_padding where the IR can say so, a pending constant Pad folds into the Conv it feeds."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convgraph import dims as D
from convgraph import ir
from convgraph.front.onnx_import._common import _ints, _pairs, _param_shape, _rank, _x
from convgraph.front.onnx_import._import import Importer
from convgraph.front.onnx_import._values import Padded, Tensor
from convgraph.ir import Ints


def _same_pads(imp: Importer, x: Tensor, auto: str, k: Ints, s: Ints, d: Ints) -> tuple[tuple[int, int], ...]:
    """auto_pad SAME_*: total = max(0, (ceil(i/s) - 1)*s + ek - i), the odd one at the end (UPPER)
    or the beginning (LOWER). Constant when s == 1; otherwise the input size must be static."""
    out = []
    for j, (kk, ss, dd) in enumerate(zip(k, s, d)):
        ek = dd * (kk - 1) + 1
        i = x.dims[2 + j]
        if ss == 1:
            total = ek - 1
        elif isinstance(i, int):
            total = max(0, (-(-i // ss) - 1) * ss + ek - i)
        else:
            raise imp.fail(f"auto_pad={auto} with stride {ss} pads by an amount that depends on the input size "
                           f"{D.dim_str(i)} mod {ss}; the IR has fixed pads (re-export with explicit pads)")
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return tuple(out)


def _explicit_pads(imp: Importer, a: dict, x: Tensor, nd: int, k: Ints, s: Ints,
                   d: Ints) -> tuple[tuple[int, int], ...]:
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(imp, x, auto, k, s, d)
    if auto == "VALID":
        return tuple((0, 0) for _ in range(nd))
    return _pairs(a.get("pads", []), nd)


# --------------------------------------------------------------------------------------------
# Conv family
# --------------------------------------------------------------------------------------------

_PAD_TO_MODE = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _absorb(imp: Importer, v: Any, pads: tuple) -> tuple[Tensor, tuple, str]:
    """A Conv input that is a pending Pad: zero Pad adds to the Conv's pads; reflect/edge/wrap
    becomes the Conv's padding_mode (the Conv itself unpadded)."""
    if not isinstance(v, Padded):
        return _x(imp, v), pads, "zeros"
    if any(p for p in v.pads[0] + v.pads[1]):
        raise imp.fail(f"Pad {v.node} pads the N or C axis; only spatial padding folds into a Conv")
    spatial = v.pads[2:]
    if v.mode == "constant":
        if v.value != 0:
            raise imp.fail(f"Pad {v.node} pads with {v.value}; only zero padding folds into a Conv")
        return v.src, tuple((a + c, b + e) for (a, b), (c, e) in zip(pads, spatial)), "zeros"
    if any(p for pair in pads for p in pair):
        raise imp.fail(f"Pad {v.node} ({v.mode}) feeds a Conv that pads again; the IR has one padding per Conv")
    return v.src, spatial, _PAD_TO_MODE[v.mode]


def _conv(imp: Importer, node: Any, a: dict, ins: list) -> None:
    w = _param_shape(imp, ins[1], "the weight W")
    nd = len(w) - 2
    k = tuple(a.get("kernel_shape", w[2:]))
    s, d, g = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd)), a.get("group", 1)
    src = ins[0].src if isinstance(ins[0], Padded) else _x(imp, ins[0])
    _rank(imp, src, nd)
    if isinstance(ins[0], Padded):
        pads = _explicit_pads(imp, a, Tensor(src.name, ins[0].dims), nd, k, s, d)
    else:
        pads = _explicit_pads(imp, a, src, nd, k, s, d)
    x, pads, mode = _absorb(imp, ins[0], pads)
    has_bias = len(ins) > 2 and ins[2] is not None
    spec = ir.Conv(
        type_name=f"Conv{nd}d", nd=nd, in_channels=w[1] * g, out_channels=w[0], kernel_size=k, stride=s,
        padding=pads, dilation=d, groups=g, bias=has_bias, padding_mode=mode)  # type: ignore[arg-type]
    _params(imp, imp.layer(node.output[0], spec, x), node, ("weight", "bias"))


def _params(imp: Importer, t: Tensor, node: Any, locals_: tuple) -> None:
    """The node's inputs after the first are the layer's parameters, in this order (None: not one)."""
    for local, name in zip(locals_, node.input[1:]):
        if local and name:
            imp.param(t, local, name)


def _conv_transpose(imp: Importer, node: Any, a: dict, ins: list) -> None:
    """ONNX: o = s*(i - 1) + output_padding + ek - pad_begin - pad_end. The IR crops p at both ends
    after adding output_padding at the end, so (pb, pe) with pb >= pe - op is p = pb and
    output_padding op + pb - pe."""
    x = _x(imp, ins[0])
    w = _param_shape(imp, ins[1], "the weight W")
    nd = len(w) - 2
    _rank(imp, x, nd)
    g = a.get("group", 1)
    k = tuple(a.get("kernel_shape", w[2:]))
    s, d = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd))
    op = list(a.get("output_padding", [0] * nd))
    pads = _transpose_pads(imp, a, x, nd, k, s, d, op)
    if any(pb < pe - o for (pb, pe), o in zip(pads, op)):
        raise imp.fail(f"pads {[p for p, _ in pads] + [q for _, q in pads]} crop more at the end than the "
                       "beginning; the IR's ConvTranspose cannot express it")
    spec = ir.ConvTranspose(
        type_name=f"ConvTranspose{nd}d", nd=nd, in_channels=w[0], out_channels=w[1] * g, kernel_size=k, stride=s,
        padding=tuple((pb, pb) for pb, _ in pads),
        output_padding=tuple(o + pb - pe for (pb, pe), o in zip(pads, op)), dilation=d, groups=g,
        bias=len(ins) > 2 and ins[2] is not None)
    _params(imp, imp.layer(node.output[0], spec, x), node, ("weight", "bias"))


def _transpose_pads(imp: Importer, a: dict, x: Tensor, nd: int, k: Ints, s: Ints, d: Ints, op: list[int]) -> tuple:
    auto = a.get("auto_pad", "NOTSET")
    shape = a.get("output_shape")
    if shape is None and auto not in ("SAME_UPPER", "SAME_LOWER"):
        return _pairs(a.get("pads", []), nd) if auto != "VALID" else tuple((0, 0) for _ in range(nd))
    shape = list(shape)[-nd:] if shape is not None else None
    out = []
    for j in range(nd):
        ek, i = d[j] * (k[j] - 1) + 1, x.dims[2 + j]
        if shape is None:
            total = op[j] + ek - s[j]  # SAME: o = i*s
        elif isinstance(i, int):
            total = s[j] * (i - 1) + op[j] + ek - shape[j]
        else:
            raise imp.fail(f"output_shape {list(a['output_shape'])} is fixed while input dim {2 + j} is "
                           f"{D.dim_str(i)}; the IR cannot pin a ConvTranspose output")
        if total < 0:
            raise imp.fail(f"output_shape/auto_pad needs negative padding ({total}) on spatial axis {j}")
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return tuple(out)


def _pool(mode: ir.PoolMode) -> Callable:
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        x = _x(imp, ins[0])
        k = tuple(a["kernel_shape"])
        nd = len(k)
        _rank(imp, x, nd)
        s, d = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd))
        if mode == "avg" and any(v != 1 for v in d):
            raise imp.fail("AveragePool with dilations: the IR's AvgPool has no dilation")
        pads = _explicit_pads(imp, a, x, nd, k, s, d)
        if any(pb != pe for pb, pe in pads):
            raise imp.fail(f"asymmetric pads {[p for p, _ in pads] + [q for _, q in pads]}: the IR's pools pad "
                           "both ends alike")
        ceil = bool(a.get("ceil_mode", 0))
        if ceil and any(2 * p > dd * (kk - 1) + 1 for (p, _), kk, dd in zip(pads, k, d)):
            raise imp.fail("ceil_mode with pads over half the dilated kernel: more than one window could start "
                           "in the padding, which the IR's ceil rule does not cover")
        cip = bool(a.get("count_include_pad", 0)) if mode == "avg" else True
        name = f"{'Max' if mode == 'max' else 'Avg'}Pool{nd}d"
        spec = ir.Pool(
            type_name=name, nd=nd, mode=mode, kernel_size=k, stride=s, padding=tuple(pads), dilation=d,
            ceil_mode=ceil, count_include_pad=cip)
        imp.layer(node.output[0], spec, x)
    return rule


def _global(mode: str) -> Callable:
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        x = _x(imp, ins[0])
        nd = len(x.dims) - 2
        spec: ir.LayerSpec
        if mode == "avg":
            spec = ir.AdaptiveAvgPool(type_name=f"AdaptiveAvgPool{nd}d", nd=nd, output_size=(1,) * nd)
        elif all(isinstance(i, int) for i in x.dims[2:]):
            k = tuple(x.dims[2:])
            spec = ir.Pool(
                type_name=f"MaxPool{nd}d", nd=nd, mode="max", kernel_size=k, stride=k, padding=((0, 0),) * nd,
                dilation=(1,) * nd)
        else:
            raise imp.fail("GlobalMaxPool over a symbolic size: the IR has no adaptive max pool yet")
        imp.layer(node.output[0], spec, x)
    return rule


def _reduce_mean(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    axes = _ints(imp, ins[1], "axes") if len(ins) > 1 and ins[1] is not None else list(a.get("axes", []))
    r = len(x.dims)
    if sorted(v % r for v in axes) != list(range(2, r)) or not a.get("keepdims", 1):
        raise imp.fail(f"ReduceMean over axes {axes} (keepdims={a.get('keepdims', 1)}): only the mean over every "
                       "spatial axis with keepdims=1 (a global average pool) maps to the IR")
    _global("avg")(imp, node, a, ins[:1])

