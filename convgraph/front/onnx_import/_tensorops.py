"""Tensor ops -> IR: a table op_type -> mapping function, each canonicalising ONNX's attributes
into the IR's one form (explicit (begin, end) pads, per-axis tuples, torch type names).

ONNX semantics define the import (``/work/shared/reference/conv-semantics.md``): strides default
to 1 for pools, AveragePool's ``count_include_pad`` defaults to 0, ``auto_pad`` SAME is resolved to
explicit pads (exact for stride 1 or a static input size), ConvTranspose's asymmetric pads become
output_padding where the IR can say so. What the IR cannot express yet raises an error naming the
node, the op and why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convgraph import dims as D
from convgraph import ir
from convgraph.front import catalogue
from convgraph.front.onnx_import import _values as V
from convgraph.front.onnx_import._import import Importer, add_pin
from convgraph.front.onnx_import._shapeops import SHAPE_RULES
from convgraph.front.onnx_import._values import Known, Padded, Tensor, Weight
from convgraph.ir import Ints


def _x(imp: Importer, v: Any, what: str = "input") -> Tensor:
    if isinstance(v, Tensor):
        return v
    if isinstance(v, Padded):
        raise imp.fail(f"its {what} is the output of Pad {v.node}, which only a Conv can absorb: the IR has no "
                       "standalone Pad yet")
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
    spec = ir.Conv(f"Conv{nd}d", nd, w[1] * g, w[0], k, s, pads, d, g, has_bias, mode)  # type: ignore[arg-type]
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
    spec = ir.ConvTranspose(f"ConvTranspose{nd}d", nd, w[0], w[1] * g, k, s, tuple(pb for pb, _ in pads),
                            tuple(o + pb - pe for (pb, pe), o in zip(pads, op)), d, g,
                            len(ins) > 2 and ins[2] is not None)
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


def _pool(mode: str) -> Callable:
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
        spec = ir.Pool(name, nd, mode, k, s, tuple(p for p, _ in pads), d, ceil, cip)  # type: ignore[arg-type]
        imp.layer(node.output[0], spec, x)
    return rule


def _global(mode: str) -> Callable:
    def rule(imp: Importer, node: Any, a: dict, ins: list) -> None:
        x = _x(imp, ins[0])
        nd = len(x.dims) - 2
        spec: ir.LayerSpec
        if mode == "avg":
            spec = ir.AdaptiveAvgPool(f"AdaptiveAvgPool{nd}d", nd, (1,) * nd)
        elif all(isinstance(i, int) for i in x.dims[2:]):
            k = tuple(x.dims[2:])
            spec = ir.Pool(f"MaxPool{nd}d", nd, "max", k, k, (0,) * nd, (1,) * nd)
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


# --------------------------------------------------------------------------------------------
# Resize and Pad
# --------------------------------------------------------------------------------------------


def _resize_mode(imp: Importer, a: dict, nd: int) -> tuple[ir.UpsampleMode, bool | None]:
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        nm = a.get("nearest_mode", "round_prefer_floor")
        if ctm == "asymmetric" and nm == "floor":
            return "nearest", None
        if ctm == "half_pixel" and nm == "round_prefer_ceil":
            return "nearest-exact", None
        raise imp.fail(f"Resize nearest with coordinate_transformation_mode={ctm}, nearest_mode={nm}: the IR has "
                       "torch's nearest (asymmetric, floor) and nearest-exact (half_pixel, round_prefer_ceil)")
    if mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners") and nd <= 3:
        modes: tuple[ir.UpsampleMode, ...] = ("linear", "bilinear", "trilinear")
        return modes[nd - 1], ctm == "align_corners"
    raise imp.fail(f"Resize mode={mode} with coordinate_transformation_mode={ctm}: the IR has nearest, "
                   "nearest-exact and (bi/tri)linear with half_pixel or align_corners")


def _resize(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    nd = len(x.dims) - 2
    if a.get("antialias", 0):
        raise imp.fail("Resize with antialias: not in the IR")
    mode, align = _resize_mode(imp, a, nd)
    scales_v = ins[2] if node.op_type == "Resize" and len(ins) > 2 else (ins[1] if len(ins) > 1 else None)
    sizes_v = ins[3] if node.op_type == "Resize" and len(ins) > 3 else None
    axes = [v % len(x.dims) for v in a.get("axes", range(len(x.dims)))]
    if sizes_v is not None:
        spec = _resize_sizes(imp, x, sizes_v, axes, mode, align, a)
    elif scales_v is not None and isinstance(scales_v, Known) and scales_v.arr.size:
        spec = _resize_scales(imp, x, scales_v, axes, mode, align)
    else:
        raise imp.fail("Resize needs constant scales or sizes")
    imp.layer(node.output[0], spec, x)


def _full(x: Tensor, axes: list[int], vals: list, default: Callable[[int], Any]) -> list:
    out = [default(j) for j in range(len(x.dims))]
    for ax, v in zip(axes, vals):
        out[ax] = v
    return out


def _resize_scales(imp: Importer, x: Tensor, v: Known, axes: list[int], mode: ir.UpsampleMode,
                   align: bool | None) -> ir.Upsample:
    if v.arr.dtype == object:
        raise imp.fail("Resize scales must be constants")
    scales = _full(x, axes, [float(s) for s in v.arr.flat], lambda j: 1.0)
    if scales[0] != 1.0 or scales[1] != 1.0:
        raise imp.fail(f"Resize scales {scales} rescale N or C; only spatial axes may change")
    sf = tuple(scales[2:])
    return ir.Upsample("Upsample", None, sf, mode, align)


def _resize_sizes(imp: Importer, x: Tensor, v: Any, axes: list[int], mode: ir.UpsampleMode, align: bool | None,
                  a: dict) -> ir.Upsample:
    if not isinstance(v, Known):
        raise imp.fail("Resize sizes must be computable at import time")
    if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise imp.fail("Resize keep_aspect_ratio_policy other than stretch: not in the IR")
    sizes = _full(x, axes, v.dims(), lambda j: x.dims[j])
    for j in (0, 1):
        if D.lower(D.add(sizes[j], D.mul(x.dims[j], -1))) != 0:
            raise imp.fail(f"Resize sizes change {'NC'[j]} ({D.dim_str(sizes[j])} vs {D.dim_str(x.dims[j])})")
    spatial = sizes[2:]
    if all(isinstance(s, int) for s in spatial):
        return ir.Upsample("Upsample", tuple(spatial), None, mode, align)
    scales = [_integer_scale(i, o) for i, o in zip(x.dims[2:], spatial)]
    if None in scales:
        j = scales.index(None)
        like = _find_like(imp, x, spatial)
        what = (f"F.interpolate(v, size=like.shape[2:]) with like = '{like.name}'" if like is not None else
                "no other feature map has that size")
        raise imp.fail(f"Resize to a computed size {D.dim_str(spatial[j])} from {D.dim_str(x.dims[2 + j])} "
                       f"({what}): the IR's interpolate-to-like is not here yet (issue #9)")
    return ir.Upsample("Upsample", None, tuple(float(s or 1) for s in scales), mode, align)


def _integer_scale(i: Any, o: Any) -> int | None:
    """k when o == k*i exactly for a positive int k (a computed size that is a fixed scale)."""
    o = D.lower(o)
    for k in range(1, 17):
        if D.lower(D.add(o, D.mul(i, -k))) == 0:
            return k
    return None


_PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    r = len(x.dims)
    if len(ins) > 1 and isinstance(ins[1], Known) and ins[1].ints() is None:
        like = _pad_like(imp, x, list(ins[1].arr.flat))
        what = (f"pad(v, like='{like.name}'): centred up to that feature map's size" if like is not None else
                "not a centred pad up to another feature map's size")
        raise imp.fail(f"Pad by computed amounts [{', '.join(V.show(e) for e in ins[1].arr.flat)}] ({what}): "
                       "the IR's pad-to-like is not here yet (issue #9)")
    flat = _ints(imp, ins[1], "pads") if len(ins) > 1 and ins[1] is not None else list(a.get("pads", []))
    axes = [v % r for v in _ints(imp, ins[3], "axes")] if len(ins) > 3 and ins[3] is not None else list(range(r))
    value = 0.0
    if len(ins) > 2 and ins[2] is not None:
        value = float(ins[2].arr.reshape(-1)[0]) if isinstance(ins[2], Known) and ins[2].arr.size else 0.0
    elif "value" in a:
        value = float(a["value"])
    mode = a.get("mode", "constant")
    n = len(axes)
    pads = [(0, 0)] * r
    for j, ax in enumerate(axes):
        pads[ax] = (flat[j], flat[j + n])
    if all(p == (0, 0) for p in pads):
        imp.values[node.output[0]] = x
        return
    if any(p < 0 for pair in pads for p in pair):
        raise imp.fail(f"negative pads {flat} (a crop): the IR has no standalone crop by constants yet")
    dims = tuple(D.add(d, pb + pe) for d, (pb, pe) in zip(x.dims, pads))
    imp.values[node.output[0]] = Padded(x, tuple(pads), mode, value, str(imp.loc().node), dims)


# --------------------------------------------------------------------------------------------
# Merges, activations, dense layers
# --------------------------------------------------------------------------------------------


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


def _pad_like(imp: Importer, x: Tensor, flat: list) -> Tensor | None:
    """The ``like`` of a computed Pad that pads x's spatial axes up to another feature map's size,
    ``(w - v) // 2`` at the start and the rest at the end (F.pad in the U-Net idiom), N and C not
    at all; None when the pads are anything else."""
    r = len(x.dims)
    if len(flat) != 2 * r or not all(_same_elem(p, 0) for p in flat[:2] + flat[r:r + 2]):
        return None
    try:
        out = [V.add(V.add(d, flat[j]), flat[j + r]) for j, d in enumerate(x.dims)][2:]
    except ValueError:
        return None
    like = _find_like(imp, x, out)
    if like is None:
        return None
    for j in range(2, r):
        try:
            centred = V.int_div(V.sub(like.dims[j], x.dims[j]), 2)
        except ValueError:
            return None
        if not _same_elem(flat[j], centred):
            return None
    return like


def _concat(imp: Importer, node: Any, a: dict, ins: list) -> None:
    xs = [_x(imp, v, "every input") for v in ins if v is not None]
    imp.add(node.output[0], "cat", xs, dim=a.get("axis", 1))


def _add(imp: Importer, node: Any, a: dict, ins: list) -> None:
    p, q = ins
    if isinstance(p, Tensor) and isinstance(q, Tensor):
        imp.add(node.output[0], "add", [p, q])
        return
    t, c = (p, q) if isinstance(p, Tensor) else (q, p)
    prod = imp.producer.get(getattr(t, "name", ""))
    lin = prod.layer if prod is not None and prod.op == "layer" else None
    if isinstance(lin, ir.Linear) and not lin.bias and isinstance(c, (Known, Weight)) and \
            tuple(c.shape) == (lin.out_features,):
        imp.replace_layer(t, ir.Linear("Linear", lin.in_features, lin.out_features, True))
        imp.param(t, "bias", node.input[1] if t is p else node.input[0])
        imp.values[node.output[0]] = t
        return
    raise imp.fail("Add of a feature map and a constant (other than a MatMul's bias): not in the IR yet")


def _mul(imp: Importer, node: Any, a: dict, ins: list) -> None:
    p, q = ins
    for t, other in ((p, q), (q, p)):
        prod = imp.producer.get(getattr(other, "name", ""))
        if isinstance(t, Tensor) and prod is not None and prod.op == "layer" and \
                prod.spec.type_name == "Sigmoid" and prod.inputs == (t.name,):
            imp.layer(node.output[0], catalogue.construct("SiLU"), t)
            return
    raise imp.fail("Mul of feature maps (other than x * Sigmoid(x)): broadcast Mul is not in the IR yet")


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
    spec = ir.BatchNorm(f"BatchNorm{nd}d", nd, c, float(a.get("epsilon", 1e-5)), float(a.get("momentum", 0.9)))
    _params(imp, imp.layer(node.output[0], spec, x), node, ("weight", "bias", "running_mean", "running_var"))


def _flatten(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    axis = a.get("axis", 1) % max(1, len(x.dims))
    if axis != 1:
        raise imp.fail(f"Flatten with axis={a.get('axis')}: the IR's Flatten keeps the first axis")
    imp.layer(node.output[0], ir.Flatten("Flatten", 1, -1), x)


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
                imp.layer(node.output[0], ir.Flatten("Flatten", start, end), x)
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


def _fits(t: Any, d: Any) -> bool:
    return (isinstance(t, int) and t == -1) or _same(t, d)


def _same(t: Any, d: Any) -> bool:
    return D.lower(D.add(t, D.mul(d, -1))) == 0


def _gemm(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise imp.fail("Gemm with transA, alpha or beta other than the defaults: not a Linear")
    w = _param_shape(imp, ins[1], "B")
    out_f, in_f = (w[0], w[1]) if a.get("transB", 0) else (w[1], w[0])
    bias = len(ins) > 2 and ins[2] is not None
    if bias and tuple(_param_shape(imp, ins[2], "C")) not in ((out_f,), (1, out_f)):
        raise imp.fail("Gemm's C is not a bias vector")
    t = imp.layer(node.output[0], ir.Linear("Linear", in_f, out_f, bias), x)
    imp.param(t, "weight", node.input[1], not a.get("transB", 0))
    if bias:
        imp.param(t, "bias", node.input[2])


def _matmul(imp: Importer, node: Any, a: dict, ins: list) -> None:
    x = _x(imp, ins[0])
    w = _param_shape(imp, ins[1], "the second operand")
    if len(w) != 2:
        raise imp.fail("MatMul by a non-matrix constant: not a Linear")
    t = imp.layer(node.output[0], ir.Linear("Linear", w[0], w[1], False), x)
    imp.param(t, "weight", node.input[1], True)


def _slice(imp: Importer, node: Any, a: dict, ins: list) -> None:
    """A Slice of a feature map's spatial axes to the size of another feature map ``w``, centred
    (starts = (size - w's size) / 2): the IR's ``crop(v, like=w)``."""
    v = _x(imp, ins[0])
    r = len(v.dims)
    starts, ends = (list(ins[i].arr.flat) if isinstance(ins[i], Known) else None for i in (1, 2))
    axes = [x % r for x in _ints(imp, ins[3], "axes")] if len(ins) > 3 and ins[3] is not None else list(range(r))
    steps = _ints(imp, ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(axes)
    if starts is None or ends is None or sorted(axes) != list(range(2, r)) or set(steps) != {1}:
        raise imp.fail("Slice of a feature map: only a centred crop of every spatial axis (step 1) maps to the IR")
    size = {ax: V.sub(e, b) for ax, b, e in zip(axes, starts, ends)}
    if any(isinstance(v, (V.Lin, V.Frac, float)) for v in size.values()):
        raise imp.fail("Slice of a feature map by amounts convgraph cannot resolve to a size")
    for ax, b in zip(axes, starts):
        centred = V.int_div(V.sub(v.dims[ax], size[ax]), 2)
        if V.sub(b, centred) != 0:
            raise imp.fail(f"Slice of a feature map that is not centred on axis {ax}: the IR has only the centred crop")
    like = next((t for t in reversed(list(imp.values.values())) if isinstance(t, Tensor) and t.name != v.name
                 and len(t.dims) == r and all(_same(t.dims[ax], size[ax]) for ax in axes)), None)
    if like is None:
        raise imp.fail("Slice of a feature map to a size no other feature map has: the IR's crop needs a `like`")
    imp.add(node.output[0], "crop", [v, like])


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
}


def supported() -> str:
    return ", ".join(sorted(set(TENSOR_RULES) | set(SHAPE_RULES) | {"Constant"}))


def map_node(imp: Importer, node: Any, attrs: dict, ins: list) -> None:
    rule = TENSOR_RULES.get(node.op_type)
    if rule is None:
        what = "on feature maps " if node.op_type in SHAPE_RULES else ""
        raise imp.fail(f"unsupported op {node.op_type} {what}(supported: {supported()})")
    rule(imp, node, attrs, ins)
