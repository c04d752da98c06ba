"""Resize, Pad and Slice of feature maps -> IR: constant or computed scales and sizes, constant
pads (pending until a Conv absorbs them), computed pads and sizes recognised as pad-to-like /
interpolate-to-like of the feature map they match, a centred Slice as crop."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convgraph import dims as D
from convgraph import ir
from convgraph.front.onnx_import import _values as V
from convgraph.front.onnx_import._common import _find_like, _ints, _same, _same_elem, _x
from convgraph.front.onnx_import._import import TORCH_PAD_MODES, Importer
from convgraph.front.onnx_import._values import Known, Padded, Tensor


def _resize_mode(imp: Importer, a: dict, nd: int) -> tuple[ir.UpsampleMode, bool | None]:
    mode = a.get("mode", "nearest")
    if a.get("_op") == "Upsample":  # opset 7-9 Upsample: floor(j / scale), i.e. asymmetric + floor
        a = {**a, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
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
    mode, align = _resize_mode(imp, {**a, "_op": node.op_type}, nd)
    scales_v = ins[2] if node.op_type == "Resize" and len(ins) > 2 else (ins[1] if len(ins) > 1 else None)
    sizes_v = ins[3] if node.op_type == "Resize" and len(ins) > 3 else None
    axes = [v % len(x.dims) for v in a.get("axes", range(len(x.dims)))]
    spec: ir.Upsample | Tensor
    if sizes_v is not None:
        spec = _resize_sizes(imp, x, sizes_v, axes, mode, align, a)
        if isinstance(spec, Tensor):  # sizes = another feature map's: F.interpolate(v, size=w.shape[2:])
            imp.add(node.output[0], "interp_like", [x, spec], attrs=(("mode", mode), ("align_corners", align)))
            return
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
    return ir.Upsample(type_name="Upsample", size=None, scale_factor=sf, mode=mode, align_corners=align)


def _resize_sizes(imp: Importer, x: Tensor, v: Any, axes: list[int], mode: ir.UpsampleMode, align: bool | None,
                  a: dict) -> ir.Upsample | Tensor:
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
        return ir.Upsample(type_name="Upsample", size=tuple(spatial), scale_factor=None, mode=mode, align_corners=align)
    scales = [_integer_scale(i, o) for i, o in zip(x.dims[2:], spatial)]
    if None in scales:
        j = scales.index(None)
        like = _find_like(imp, x, spatial)
        if like is None:
            raise imp.fail(f"Resize to a computed size {D.dim_str(spatial[j])} from {D.dim_str(x.dims[2 + j])} that is "
                           "neither a fixed scale nor another feature map's size (the IR's interpolate(v, like=w))")
        return like
    return ir.Upsample(
        type_name="Upsample", size=None, scale_factor=tuple(float(s or 1) for s in scales), mode=mode,
        align_corners=align)


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
    mode = a.get("mode", "constant")
    value = _pad_value(a, ins)
    if len(ins) > 1 and isinstance(ins[1], Known) and ins[1].ints() is None:
        like = _pad_like(imp, x, list(ins[1].arr.flat))
        if like is None:
            raise imp.fail(f"Pad by computed amounts [{', '.join(V.show(e) for e in ins[1].arr.flat)}] that are not "
                           "a centred pad up to another feature map's size (the IR's pad(v, like=w))")
        imp.add(node.output[0], "pad_like", [x, like], attrs=(("mode", TORCH_PAD_MODES[mode]), ("value", value)))
        return
    flat = _ints(imp, ins[1], "pads") if len(ins) > 1 and ins[1] is not None else list(a.get("pads", []))
    axes = [v % r for v in _ints(imp, ins[3], "axes")] if len(ins) > 3 and ins[3] is not None else list(range(r))
    n = len(axes)
    pads = [(0, 0)] * r
    for j, ax in enumerate(axes):
        pads[ax] = (flat[j], flat[j + n])
    if all(p == (0, 0) for p in pads):
        imp.values[node.output[0]] = x
        return
    dims = tuple(D.add(d, pb + pe) for d, (pb, pe) in zip(x.dims, pads))
    imp.values[node.output[0]] = Padded(x, tuple(pads), mode, value, str(imp.loc().node), dims, node.output[0])


def _pad_value(a: dict, ins: list) -> float:
    if len(ins) > 2 and ins[2] is not None:
        return float(ins[2].arr.reshape(-1)[0]) if isinstance(ins[2], Known) and ins[2].arr.size else 0.0
    return float(a.get("value", 0.0))


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


def slice_index(imp: Importer, v: Tensor, ins: list) -> tuple:
    from convgraph.front.onnx_import._moreops import slice_index as index

    return index(imp, v, ins)


def _slice(imp: Importer, node: Any, a: dict, ins: list) -> None:
    """A Slice of a feature map's spatial axes to the size of another feature map ``w``, centred
    (starts = (size - w's size) / 2): the IR's ``crop(v, like=w)``."""
    v = _x(imp, ins[0])
    r = len(v.dims)
    starts, ends = ([e.item() if hasattr(e, "item") else e for e in ins[i].arr.flat] if isinstance(ins[i], Known)
                    else None for i in (1, 2))
    axes = [x % r for x in _ints(imp, ins[3], "axes")] if len(ins) > 3 and ins[3] is not None else list(range(r))
    steps = _ints(imp, ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(axes)
    huge = any(isinstance(e, int) and abs(e) >= 1 << 62 for e in (starts or []) + (ends or []))  # open bounds
    if huge or starts is None or ends is None or sorted(axes) != list(range(2, r)) or set(steps) != {1}:
        imp.add(node.output[0], "slice", [v], attrs=(("index", slice_index(imp, v, ins)),))
        return
    size = {ax: V.sub(e, b) for ax, b, e in zip(axes, starts, ends)}
    if any(isinstance(v, (V.Lin, V.Frac, float)) for v in size.values()):
        raise imp.fail("Slice of a feature map by amounts convgraph cannot resolve to a size")
    for ax, b in zip(axes, starts):
        centred = V.int_div(V.sub(v.dims[ax], size[ax]), 2)
        if V.sub(b, centred) != 0:  # not a centred crop: constant bounds, the IR's slice
            imp.add(node.output[0], "slice", [v], attrs=(("index", slice_index(imp, v, ins)),))
            return
    like = next((t for t in reversed(list(imp.values.values())) if isinstance(t, Tensor) and t.name != v.name
                 and len(t.dims) == r and all(_same(t.dims[ax], size[ax]) for ax in axes)), None)
    if like is None:
        raise imp.fail("Slice of a feature map to a size no other feature map has: the IR's crop needs a `like`")
    imp.add(node.output[0], "crop", [v, like])

