"""The validation stage: run the ONNX export on onnxruntime across input sizes and compare.

``cg.check(cg.load("models/unet.cg"))`` returns a CheckReport (``report.ok``, one result per size and
provider). The sizes it picks (this example does not run the check: that imports torch when installed):

>>> import convgraph as cg
>>> choose_sizes(cg.parse("input(1, 1, H, W)\\nConv2d(1, 2, 3, stride=2)"), count=3)
[{'H': 3, 'W': 3}, {'H': 4, 'W': 6}, {'H': 6, 'W': 14}]
>>> choose_sizes(cg.parse("input(1, 1, H, W)\\nConv2d(1, 2, 3, stride=2)"), {"H": 9}, count=2)
[{'H': 9, 'W': 3}, {'H': 9, 'W': 4}]

One dynamic export, one ``onnxruntime.InferenceSession`` per provider reused for every size. Sizes
come from ``sizes=`` (one assignment, a partial one completed by the solver, or a list) or from
``convgraph.solve.sizes.check_sizes`` (from the solver's exact valid sets): the smallest valid sizes, every
residue class of the strides, a larger size, and H != W. At each size and provider:

- every output's actual shape must equal convgraph's formula evaluated at that size;
- every output must equal the independent numpy reference (``convgraph.validate.reference``, float64, same
  float32 inputs and weights) and, when torch is importable, PyTorch in float32;
- the tolerance is ``TOL_C * eps32 * sqrt(A) * max|ref|``, where A is the accumulation length of
  the output: the sum, along the longest path from an input, of each layer's number of summed
  terms (a conv's ``C_in/groups * prod(kernel)``, a Linear's ``in_features``, ...).

The torch comparison is a runtime feature: torch is an optional dependency, so it goes through a
small functional mirror of the IR here (``torch.nn.functional`` calls, ``_TORCH_LAYERS``), written
apart from both the ONNX emitters and the tests' module-based ``tests/torch_equiv.py``. When torch
is missing the report says so and the numpy reference alone decides.
"""
from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import numpy as np

from convgraph import dims as D
from convgraph import ir
from convgraph.errors import ConvGraphError, Loc
from convgraph.shapes import infer, softmax_dim
from convgraph.validate._placement import Placement, fallbacks, read_profile

T = TypeVar("T")
Ints = tuple[int, ...]
#: sizes to check: one (possibly partial) assignment, a list of full ones, or None (the solver picks)
Sizes = Mapping[str, int] | Iterable[Mapping[str, int]] | None

__all__ = ["TOL_C", "CheckReport", "OutputCheck", "SizeCheck", "check"]

#: safety factor of the tolerance. Measured max |err| / (eps32*sqrt(A)*max|ref|): 0.19 over every
#: model in models/ (4 sizes, 2 seeds), 1.1 over thousands of randomized single layers (trilinear
#: interpolation, whose float32 source coordinates round); all pass at 2.
TOL_C = 4.0
EPS32 = float(np.finfo(np.float32).eps)

#: --provider name -> onnxruntime execution provider
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}

#: show a progress bar from this many session runs on (and only on a terminal)
PROGRESS_MIN_RUNS = 4


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCheck:
    """One output at one size on one provider."""

    name: str
    expected: tuple[int, ...]
    actual: tuple[int, ...]
    err_ref: float  # max |ort - numpy reference| (inf when the shapes differ)
    err_torch: float | None  # max |ort - torch|; None when torch is not installed
    tol: float

    @property
    def shape_ok(self) -> bool:
        return self.expected == self.actual

    @property
    def ok(self) -> bool:
        errs = [e for e in (self.err_ref, self.err_torch) if e is not None]
        return self.shape_ok and all(e <= self.tol for e in errs)


@dataclass(frozen=True)
class SizeCheck:
    """Every output at one size assignment on one provider."""

    sizes: dict[str, int]
    provider: str  # as asked: 'cpu' | 'cuda'
    ran: str  # the provider the session actually used (session.get_providers()[0])
    outputs: tuple[OutputCheck, ...]
    error: str | None = None  # onnxruntime failed to run

    @property
    def ok(self) -> bool:
        return self.error is None and all(o.ok for o in self.outputs)


@dataclass(frozen=True)
class CheckReport:
    """The validator's frozen result; ``ok`` is False on any shape or value mismatch."""

    model: str
    opset: int
    results: tuple[SizeCheck, ...]
    notes: tuple[str, ...] = ()
    torch: str | None = None  # torch version used, None when not installed
    seconds: dict[str, float] = field(default_factory=dict)
    #: per provider asked for other than 'cpu': the nodes onnxruntime ran on another provider
    #: (read from its profiler at the first size; the nodes of the optimized graph)
    fallbacks: dict[str, tuple[Placement, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def to_json(self) -> dict:
        return {
            "model": self.model, "opset": self.opset, "ok": self.ok, "torch": self.torch,
            "notes": list(self.notes), "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "fallbacks": {p: [f.to_json() for f in fs] for p, fs in self.fallbacks.items()},
            "results": [{
                "sizes": r.sizes, "provider": r.provider, "ran": r.ran, "ok": r.ok, "error": r.error,
                "outputs": [{"name": o.name, "expected": list(o.expected), "actual": list(o.actual),
                             "err_ref": _finite(o.err_ref), "err_torch": _finite(o.err_torch), "tol": o.tol,
                             "ok": o.ok}
                            for o in r.outputs]} for r in self.results],
        }

    def table(self) -> str:
        """One row per size, provider and output: shapes, largest errors and the tolerance."""
        rows = [TABLE_HEAD] + [row for r in self.results for row in result_rows(r)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEAD))]
        return "\n".join([*(format_row(row, widths) for row in rows), *self.footer()])

    def footer(self) -> list[str]:
        """The notes and the verdict line under the table."""
        failed = sum(not r.ok for r in self.results)
        verdict = (f"ok: {len(self.results)} runs" if self.ok else f"MISMATCH in {failed} of {len(self.results)} runs")
        split = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        return [*(f"note: {n}" for n in self.notes), *self._fallback_lines(),
                f"{self.model} (opset {self.opset}): {verdict}; time: {split}"]

    def _fallback_lines(self) -> list[str]:
        out = []
        for p, fs in self.fallbacks.items():
            if not fs:
                out.append(f"{p}: every node ran on {PROVIDERS[p]}")
                continue
            nodes = ", ".join(f"{f.node} ({f.op}) on {f.provider.removesuffix('ExecutionProvider')}" for f in fs)
            out.append(f"{p}: {len(fs)} node(s) fell back to another provider: {nodes}")
        return out


TABLE_HEAD = ["sizes", "provider", "output", "shape", "max|ort-ref|", "max|ort-torch|", "tol", ""]


def sizes_text(env: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


def result_rows(r: SizeCheck) -> list[list[str]]:
    """The table rows of one run: one per output (one FAIL row when onnxruntime failed)."""
    at, rows = sizes_text(r.sizes), []
    if r.error:
        rows.append([at, r.ran, "-", "-", "-", "-", "-", f"FAIL: {r.error}"])
    for o in r.outputs:
        shape = "x".join(map(str, o.actual)) + ("" if o.shape_ok else f" (expected {'x'.join(map(str, o.expected))})")
        rows.append([at, r.ran, o.name, shape, _fmt(o.err_ref), _fmt(o.err_torch), _fmt(o.tol),
                     "ok" if o.ok else "MISMATCH"])
    return rows


def format_row(row: list[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: a shape mismatch's error is null there (``expected`` != ``actual``)."""
    return x if x is None or math.isfinite(x) else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------


def _loc(graph: ir.Graph) -> Loc:
    return Loc(graph.filename, 0, 0)


def choose_sizes(graph: ir.Graph, sizes: Sizes = None, count: int = 6) -> list[dict[str, int]]:
    """The size assignments to check: ``sizes`` as given (a dict, possibly partial, or a list of
    dicts), completed with the solver's choice for the symbols it leaves free; an int is how many
    the solver picks (``cg.check(g, sizes=6)``, as ``count``)."""
    from convgraph.export import validate_sizes
    from convgraph.solve.sizes import check_sizes

    if isinstance(sizes, int) and not isinstance(sizes, bool):
        if sizes < 1:
            raise ConvGraphError(f"sizes={sizes}: the number of sizes to check must be positive", _loc(graph))
        sizes, count = None, sizes

    if sizes is None or isinstance(sizes, Mapping):
        fixed = dict(sizes or {})
        validate_sizes(graph, fixed)
        free = [s for s in graph.symbols if s not in fixed]
        if not free:
            return [fixed]
        from convgraph.solve import solve

        err = solve(graph, tiling=False).no_valid_size()
        if err is not None:
            raise err
        found = check_sizes(ir.bake(graph, fixed), count)
        if not found:
            raise ConvGraphError("no valid input size found to check" +
                                 (f" with {', '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else ""),
                                 _loc(graph))
        return [{s: {**fixed, **env}[s] for s in graph.symbols} for env in found]
    envs = [dict(e) for e in sizes]
    for env in envs:
        validate_sizes(graph, env)
        missing = [s for s in graph.symbols if s not in env]
        if missing:
            raise ConvGraphError(f"sizes {env} leave {', '.join(missing)} unset", _loc(graph))
    return envs


# --------------------------------------------------------------------------------------------
# Tolerance: accumulation length
# --------------------------------------------------------------------------------------------


def _fan_conv(spec: ir.Conv, x: Ints) -> int:
    return spec.in_channels // spec.groups * math.prod(spec.kernel_size)


def _fan_conv_t(spec: ir.ConvTranspose, x: Ints) -> int:
    return spec.in_channels // spec.groups * math.prod(-(-k // s) for k, s in zip(spec.kernel_size, spec.stride))


def _fan_pool(spec: ir.Pool, x: Ints) -> int:
    return math.prod(spec.kernel_size) if spec.mode == "avg" else 1


def _fan_adaptive(spec: ir.AdaptiveAvgPool, x: Ints) -> int:
    return math.prod(-(-i // o) + 1 for i, o in zip(x[2:], spec.output_size) if o)


def _fan_upsample(spec: ir.Upsample, x: Ints) -> int:
    """Linear modes: 2**nd taps, and the float32 source coordinate's rounding, which grows with
    the input size (an error of eps*i in the coordinate moves the result by eps*i*|slope|)."""
    return 2 ** (len(x) - 2) * (1 + max(x[2:])) if "linear" in spec.mode else 1


def _fan_batchnorm(spec: ir.BatchNorm, x: Ints) -> int:
    return 4 if spec.track_running_stats else 4 + x[0] * math.prod(x[2:])


def _fan_instancenorm(spec: ir.InstanceNorm, x: Ints) -> int:
    return 4 if spec.track_running_stats else 4 + math.prod(x[2:])


def _fan_groupnorm(spec: ir.GroupNorm, x: Ints) -> int:
    return 4 + x[1] // spec.num_groups * math.prod(x[2:])


#: number of float32 terms a layer adds up per output element (elementwise ops: a few roundings)
_FANS: dict[type, Callable[[Any, Ints], int]] = {  # keyed by the spec type each takes
    ir.Conv: _fan_conv,
    ir.ConvTranspose: _fan_conv_t,
    ir.Pool: _fan_pool,
    ir.AdaptiveAvgPool: _fan_adaptive,
    ir.AdaptiveMaxPool: lambda spec, x: 1,
    ir.Pad: lambda spec, x: 0,
    ir.PixelShuffle: lambda spec, x: 0,
    ir.Upsample: _fan_upsample,
    ir.BatchNorm: _fan_batchnorm,
    ir.InstanceNorm: _fan_instancenorm,
    ir.GroupNorm: _fan_groupnorm,
    ir.PReLU: lambda spec, x: 2,
    ir.Softmax: lambda spec, x: 4 + x[softmax_dim(spec.dim, len(x))],
    ir.Elementwise: lambda spec, x: 4,
    ir.Flatten: lambda spec, x: 0,
    ir.Unflatten: lambda spec, x: 0,
    ir.Linear: lambda spec, x: spec.in_features,
}


def _merge_fan(node: ir.Node, xs: list[tuple]) -> int:
    """Float32 terms per output element of a non-layer node: one rounding for arithmetic, the
    interpolation taps (and the coordinate rounding, as Upsample) for interpolate(like=), the
    square of the averaged elements for mean."""
    if node.op in ("add", "sub", "mul", "scalar"):
        return 1
    if node.op == "interp_like" and "linear" in str(node.attr("mode")):
        return 2 ** (len(xs[0]) - 2) * (1 + max(max(xs[0][2:]), max(xs[1][2:])))
    if node.op == "mean":  # squared: a mean cancels, so its size is far below the terms' (the scale)
        return math.prod(xs[0][d] for d in node.attr("dims")) ** 2
    return 0


def accumulation(graph: ir.Graph, shapes: Mapping[str, tuple]) -> dict[str, int]:
    """Per value: the largest sum of fan-ins along a path from an input (concrete ``shapes``)."""
    acc: dict[str, int] = {}
    for node in graph.nodes:
        before = max((acc[i] for i in node.inputs), default=0)
        if node.op == "layer":
            acc[node.name] = before + _FANS[type(node.layer)](node.layer, shapes[node.inputs[0]])
        else:
            acc[node.name] = before + _merge_fan(node, [shapes[i] for i in node.inputs])
    return acc


def tolerance(acc: int, ref: np.ndarray, cond: float = 1.0) -> float:
    """``TOL_C * eps32 * sqrt(acc) * max|ref| * cond`` (a floor of eps32 for an all-zero reference);
    ``cond`` is the conditioning of the normalisations on the way (``conditioning``)."""
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return TOL_C * EPS32 * math.sqrt(max(acc, 1)) * max(scale, EPS32) * cond


# --------------------------------------------------------------------------------------------
# Tolerance: conditioning of the normalisations that compute their statistics at run time
# --------------------------------------------------------------------------------------------
#
# A normalisation y = (x - m) / s, with m the mean and s = sqrt(var + eps) of a group g of n
# elements, computed in float32 (eps32 = u) from inputs that carry a relative error of their own:
#
# - the input's error (|dx| <= u * sqrt(A) * M_g, M_g = max|x_g|, the accumulated bound before the
#   layer) and the rounding of m (|dm| <= u * sqrt(n) * M_g) are absolute errors of size ~ M_g
#   that the subtraction does not shrink: |d(x - m)| <= u * (sqrt(A) + sqrt(n) + 1) * M_g, and
#   the division by s makes that u * sqrt(A') * M_g / s in y;
# - the rounding of var (two-pass or E[x^2] - m^2) moves s by a relative u * sqrt(n) * (M_g/s)^2
#   / 2 at most, i.e. y by |y| times that; |y| * M_g / s <= (M_g / s)^2, the same form squared.
#
# The plain tolerance allows u * sqrt(A') * max|y|, so the error is within K * tolerance with
#     K = max_g (M_g / s_g) / max_g max|y_g| ( * max_g M_g / s_g for the variance term ),
# the factor by which subtracting the mean cancels: K ~ 1 for zero-mean data (M_g ~ max|x - m|),
# and K = |mean| / std when the group barely varies around a large mean (InstanceNorm over 2
# pooled elements). Measured on onnxruntime's CPU kernels (InstanceNorm, GroupNorm, BatchNorm
# without running stats after ``x + c``, c up to 1000, so K up to ~10^4): max|err| / tolerance stays
# at 0.04 to 0.1, linear in K: the squared variance term does not show, so ``_norm_conditioning``
# uses K, bounded below by 1 (a GPU kernel with a one-pass variance would need the square). The
# affine weight and bias scale y and max|ref| alike. BatchNorm with running statistics, and
# InstanceNorm with track_running_stats, are an affine map with fixed scale: no K.


def _norm_groups(spec: ir.LayerSpec, x: np.ndarray) -> np.ndarray | None:
    """``x`` as (groups, elements) for a layer that normalises with statistics of its input, else None."""
    if isinstance(spec, ir.InstanceNorm) and spec.uses_input_stats:
        return x.reshape(x.shape[0] * x.shape[1], -1)
    if isinstance(spec, ir.GroupNorm):
        return x.reshape(x.shape[0] * spec.num_groups, -1)
    if isinstance(spec, ir.BatchNorm) and not spec.track_running_stats:
        return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    return None


def _norm_conditioning(spec: ir.LayerSpec, x: np.ndarray) -> float:
    """K of the comment above, from the float64 reference input ``x`` of the layer (1 for others)."""
    groups = _norm_groups(spec, x)
    if groups is None or groups.size == 0:
        return 1.0
    centred = groups - groups.mean(axis=1, keepdims=True)
    s = np.sqrt(groups.var(axis=1) + getattr(spec, "eps", 0.0))
    big = float(np.max(np.max(np.abs(groups), axis=1) / s))
    spread = float(np.max(np.max(np.abs(centred), axis=1) / s))
    return max(1.0, big / max(spread, 1.0))


def conditioning(graph: ir.Graph, values: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per value: the product of the normalisations' K along the worst path from an input
    (``values``: every value of the float64 reference)."""
    cond: dict[str, float] = {}
    for node in graph.nodes:
        before = max((cond[i] for i in node.inputs), default=1.0)
        own = _norm_conditioning(node.spec, values[node.inputs[0]]) if node.op == "layer" else 1.0
        cond[node.name] = before * own
    return cond


# --------------------------------------------------------------------------------------------
# torch: a functional mirror of the IR (runtime comparison; torch is optional)
# --------------------------------------------------------------------------------------------


def _torch_pads(pads: ir.Pads) -> list[int]:
    """F.pad order: (begin, end) pairs from the last axis backwards."""
    return [p for pair in reversed(pads) for p in pair]


def _t_conv(F: Any, spec: ir.Conv, x: Any, p: dict[str, Any]) -> Any:
    pads = spec.padding
    if spec.padding_mode != "zeros" or any(b != e for b, e in pads):
        mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
        x, pads = F.pad(x, _torch_pads(pads), mode=mode), tuple((0, 0) for _ in pads)
    conv = getattr(F, f"conv{spec.nd}d")
    return conv(x, p["weight"], p.get("bias"), spec.stride, tuple(b for b, _ in pads), spec.dilation, spec.groups)


def _t_conv_t(F: Any, spec: ir.ConvTranspose, x: Any, p: dict[str, Any]) -> Any:
    """torch crops p at both ends; (begin, end) pairs that differ: no crop, then slice each axis."""
    conv = getattr(F, f"conv_transpose{spec.nd}d")
    symmetric = all(b == e for b, e in spec.padding)
    pads = tuple(b for b, _ in spec.padding) if symmetric else (0,) * spec.nd
    y = conv(x, p["weight"], p.get("bias"), spec.stride, pads, spec.output_padding, spec.groups, spec.dilation)
    if symmetric:
        return y
    crop = tuple(slice(b, n - e) for (b, e), n in zip(spec.padding, y.shape[2:]))
    return y[tuple([Ellipsis, *crop])]


def _t_pool(F: Any, spec: ir.Pool, x: Any, p: dict[str, Any]) -> Any:
    if any(b != e for b, e in spec.padding):
        raise ConvGraphError(f"{spec.type_name}: the torch mirror has no asymmetric (begin, end) pool padding, "
                             f"got {spec.padding}")
    pads = tuple(b for b, _ in spec.padding)
    if spec.mode == "max":
        return getattr(F, f"max_pool{spec.nd}d")(x, spec.kernel_size, spec.stride, pads, spec.dilation,
                                                 ceil_mode=spec.ceil_mode)
    extra = {} if spec.divisor_override is None else {"divisor_override": spec.divisor_override}
    return getattr(F, f"avg_pool{spec.nd}d")(x, spec.kernel_size, spec.stride, pads,
                                             ceil_mode=spec.ceil_mode, count_include_pad=spec.count_include_pad,
                                             **extra)


def _t_upsample(F: Any, spec: ir.Upsample, x: Any, p: dict[str, Any]) -> Any:
    return F.interpolate(x, size=spec.size, scale_factor=spec.scale_factor, mode=spec.mode,
                         align_corners=spec.align_corners)


def _t_batchnorm(F: Any, spec: ir.BatchNorm, x: Any, p: dict[str, Any]) -> Any:
    return F.batch_norm(x, p.get("running_mean"), p.get("running_var"), p.get("weight"), p.get("bias"),
                        training=not spec.track_running_stats, momentum=0.0, eps=spec.eps)


def _t_instancenorm(F: Any, spec: ir.InstanceNorm, x: Any, p: dict[str, Any]) -> Any:
    return F.instance_norm(x, p.get("running_mean"), p.get("running_var"), p.get("weight"), p.get("bias"),
                           use_input_stats=spec.uses_input_stats, momentum=0.0, eps=spec.eps)


def _t_pad(F: Any, spec: ir.Pad, x: Any, p: dict[str, Any]) -> Any:
    flat = [v for pair in reversed(spec.padding) for v in pair]
    if spec.mode == "constant":
        return F.pad(x, flat, mode="constant", value=spec.value)
    return F.pad(x, flat, mode=spec.mode)


#: Elementwise kinds that are the identity at inference
IDENTITY_AT_INFERENCE = ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d")


#: Elementwise kinds by type_name: ``(F, spec, x) -> y``
_TORCH_ELEMENTWISE: dict[str, Callable] = {
    "ReLU": lambda F, spec, t: F.relu(t),
    "ReLU6": lambda F, spec, t: F.relu6(t),
    "LeakyReLU": lambda F, spec, t: F.leaky_relu(t, spec.number("negative_slope", 0.01)),
    "ELU": lambda F, spec, t: F.elu(t, float(spec.param("alpha", 1.0))),
    "Sigmoid": lambda F, spec, t: t.sigmoid(),
    "Tanh": lambda F, spec, t: t.tanh(),
    "GELU": lambda F, spec, t: F.gelu(t, approximate=str(spec.param("approximate", "none"))),
    "SiLU": lambda F, spec, t: F.silu(t),
    "Mish": lambda F, spec, t: F.mish(t),
    "Hardswish": lambda F, spec, t: F.hardswish(t),
    "Hardsigmoid": lambda F, spec, t: F.hardsigmoid(t),
    **{name: (lambda F, spec, t: t) for name in IDENTITY_AT_INFERENCE},
}


def _t_elementwise(F: Any, spec: ir.Elementwise, x: Any, p: dict[str, Any]) -> Any:
    return _TORCH_ELEMENTWISE[spec.type_name](F, spec, x)


_TORCH_LAYERS: dict[type, Callable[..., Any]] = {
    ir.Conv: _t_conv,
    ir.ConvTranspose: _t_conv_t,
    ir.Pool: _t_pool,
    ir.AdaptiveAvgPool: lambda F, spec, x, p: getattr(F, f"adaptive_avg_pool{spec.nd}d")(x, spec.output_size),
    ir.AdaptiveMaxPool: lambda F, spec, x, p: getattr(F, f"adaptive_max_pool{spec.nd}d")(x, spec.output_size),
    ir.Pad: _t_pad,
    ir.PixelShuffle: lambda F, spec, x, p: (F.pixel_shuffle if spec.upscale else F.pixel_unshuffle)(x, spec.factor),
    ir.Upsample: _t_upsample,
    ir.BatchNorm: _t_batchnorm,
    ir.InstanceNorm: _t_instancenorm,
    ir.GroupNorm: lambda F, spec, x, p: F.group_norm(x, spec.num_groups, p.get("weight"), p.get("bias"), spec.eps),
    ir.PReLU: lambda F, spec, x, p: F.prelu(x, p["weight"]),
    ir.Softmax: lambda F, spec, x, p: (F.log_softmax if spec.log else F.softmax)(x, softmax_dim(spec.dim, x.dim())),
    ir.Elementwise: _t_elementwise,
    ir.Flatten: lambda F, spec, x, p: x.flatten(spec.start_dim, spec.end_dim),
    ir.Unflatten: lambda F, spec, x, p: x.unflatten(spec.dim, spec.sizes),
    ir.Linear: lambda F, spec, x, p: F.linear(x, p["weight"], p.get("bias")),
}


def _t_crop(v: Any, like: Any) -> Any:
    index = [slice(None), slice(None)]
    for a, b in zip(v.shape[2:], like.shape[2:]):
        index.append(slice((a - b) // 2, (a - b) // 2 + b))
    return v[tuple(index)]


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_node(F: Any, torch: Any, node: ir.Node, args: list[Any], tparams: dict[str, Any],
                sizes: Mapping[str, int] | None = None) -> Any:
    if node.op == "layer":
        local = {k.rsplit(".", 1)[1]: v for k, v in tparams.items() if k.rsplit(".", 1)[0] == node.layer_name}
        return _TORCH_LAYERS[type(node.layer)](F, node.layer, args[0], local)
    if node.op == "cat":
        return torch.cat(args, dim=node.dim)
    if node.op == "reshape":
        return args[0].reshape(tuple(ir.reshape_entry(e, sizes or {}) for e in node.attr("shape")))
    return _TORCH_MERGES[node.op](F, node, *args)


def _t_pad_like(F: Any, node: ir.Node, v: Any, like: Any) -> Any:
    flat: list[int] = []
    for a, b in reversed(list(zip(v.shape[2:], like.shape[2:]))):
        flat += [(b - a) // 2, (b - a) - (b - a) // 2]
    mode = str(node.attr("mode", "constant"))
    if mode == "constant":
        return F.pad(v, flat, mode=mode, value=float(node.attr("value", 0.0)))
    return F.pad(v, flat, mode=mode)


_TORCH_SCALAR = {"add": lambda x, c: x + c, "sub": lambda x, c: x - c, "rsub": lambda x, c: c - x,
                 "mul": lambda x, c: x * c, "div": lambda x, c: x / c}

#: the non-layer node ops but cat: ``(F, node, *inputs) -> value``
_TORCH_MERGES: dict[str, Callable] = {
    "add": lambda F, node, a, b: a + b,
    "sub": lambda F, node, a, b: a - b,
    "mul": lambda F, node, a, b: a * b,
    "crop": lambda F, node, v, like: _t_crop(v, like),
    "pad_like": _t_pad_like,
    "interp_like": lambda F, node, v, like: F.interpolate(v, size=tuple(like.shape[2:]), mode=node.attr("mode"),
                                                          align_corners=node.attr("align_corners")),
    "scalar": lambda F, node, x: _TORCH_SCALAR[node.attr("op")](x, float(node.attr("value"))),
    "slice": lambda F, node, x: x[tuple(slice(a, z) for a, z in ir.slice_index(node, tuple(x.shape)))],
    "mean": lambda F, node, x: x.mean(dim=tuple(node.attr("dims")), keepdim=bool(node.attr("keepdim"))),
    "unsqueeze": lambda F, node, x: x.unsqueeze(node.attr("dim")),
    "squeeze": lambda F, node, x: x.squeeze() if node.attr("dims") is None else x.squeeze(tuple(node.attr("dims"))),
}


def run_torch(graph: ir.Graph, inputs: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray]) -> dict:
    """The graph's outputs computed by torch (float32, CPU) through the functional mirror."""
    torch = _import_torch()
    import torch.nn.functional as F

    tparams = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.items()}
    env = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()}
    # oneDNN builds kernels and reorders weights for every new shape: several times slower than
    # torch's native kernels for one run per size, with the same semantics
    onednn, threads = torch.backends.mkldnn.enabled, torch.get_num_threads()
    torch.backends.mkldnn.enabled = False
    # one thread: the reference's BLAS and onnxruntime share the cores with torch's pool, whose
    # idle workers keep spinning after each op and slow the others down (a 2-3x wall-time cost)
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            sizes = {d: int(inputs[n.name].shape[k]) for n in graph.inputs for k, d in enumerate(n.dims)
                     if isinstance(d, str)}
            rules = ir.Rules(lambda node, x: _torch_node(F, torch, node, [x], tparams),
                             lambda node, args: _torch_node(F, torch, node, args, tparams, sizes))
            env = ir.interpret(graph, rules, env)
    finally:
        torch.backends.mkldnn.enabled = onednn
        torch.set_num_threads(threads)
    return {name: env[name].numpy() for name in graph.outputs}


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def _sessions(model_bytes: bytes | str, providers: Sequence[str], loc: Loc) -> tuple[list, list[str]]:
    """One InferenceSession per available provider (asked name, session); notes for the others.
    Asking only for providers that are unavailable is a user error."""
    import onnxruntime as ort

    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        raise ConvGraphError(f"unknown provider {unknown[0]!r}; choose from {', '.join(PROVIDERS)}", loc)
    available = ort.get_available_providers()
    sessions, notes = [], []
    for p in dict.fromkeys(providers):
        if PROVIDERS[p] not in available:
            notes.append(f"{p}: onnxruntime has no {PROVIDERS[p]} (available: {', '.join(available)}); "
                         "install onnxruntime-gpu for CUDA" if p == "cuda" else f"{p}: not available")
            continue
        chain: list = list(dict.fromkeys([PROVIDERS[p], "CPUExecutionProvider"]))
        if chain[0] == "CUDAExecutionProvider":  # float32 as specified: TF32 convs miss the tolerance by 2-45x
            chain[0] = (chain[0], {"use_tf32": "0"})
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to the reference
        if p != "cpu":  # the profiler says which provider ran each node (see _placement)
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"convgraph-ort-{os.getpid()}")
        sessions.append((p, _session(ort, model_bytes, opts, chain, loc)))
    if not sessions:
        raise ConvGraphError(f"no requested provider can run: {'; '.join(notes)}", loc)
    return sessions, notes


def _session(ort: Any, model: bytes | str, opts: Any, chain: list, loc: Loc) -> Any:
    """``ort.InferenceSession``; a model this onnxruntime cannot load (an IR version or opset newer
    than it reads, an op it lacks) is one user error, with onnxruntime's reason."""
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=chain)
    except Exception as e:  # onnxruntime raises its own classes (Fail, InvalidGraph, NotImplemented, ...)
        if isinstance(e, MemoryError):
            raise
        raise ConvGraphError(f"onnxruntime {ort.__version__} cannot load the model: {_ort_reason(e)}", loc) from e


def _ort_reason(e: Exception) -> str:
    """onnxruntime's message without its status prefix and C++ source position: 'Unsupported model
    IR version: 14, max supported IR version: 11'."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(e).strip())
    if "onnxruntime_src/" in text or "onnxruntime::" in text:
        text = text.rsplit(") ", 1)[-1]
    return text.splitlines()[0] if text else type(e).__name__


#: the values one check run may hold, in bytes; and what each element costs (float32 for
#: onnxruntime, float64 for the reference)
MAX_RUN_BYTES = 4 * 2**30
BYTES_PER_ELEMENT = 12

# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _inputs(graph: ir.Graph, env: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {n.name: rng.standard_normal(tuple(D.evaluate(d, env) for d in infer(graph).values[n.name]))
            .astype(np.float32) for n in graph.inputs}


def _check_memory(graph: ir.Graph, env: Mapping[str, int]) -> None:
    """ConvGraphError, before anything is allocated, when one run at ``env`` would hold more than
    MAX_RUN_BYTES of values (every value as float32 for onnxruntime and float64 for the reference)."""
    shapes = infer(graph).shapes(**env)
    sizes = {name: math.prod(dims) for name, dims in shapes.items()}
    total = BYTES_PER_ELEMENT * sum(sizes.values())
    if total > MAX_RUN_BYTES:
        at = ", ".join(f"{k}={v}" for k, v in env.items())
        big = max(sizes, key=lambda k: sizes[k])
        raise ConvGraphError(f"checking at {at} would hold {_gib(total)} of values ('{big}' alone is "
                             f"{sizes[big]} elements); at most {_gib(MAX_RUN_BYTES)}: check at smaller sizes",
                             _loc(graph))


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


@overload
def _max_err(a: np.ndarray, b: np.ndarray) -> float: ...


@overload
def _max_err(a: np.ndarray, b: np.ndarray | None) -> float | None: ...


def _max_err(a: np.ndarray, b: np.ndarray | None) -> float | None:
    """max |a - b|; inf when the shapes differ; None when there is no b (torch not installed)."""
    if b is None:
        return None
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def timed(self, key: str, fn: Callable[..., T], *args: Any) -> T:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t


def _progress(total: int, progress: bool | None) -> Any:
    show = progress if progress is not None else (total >= PROGRESS_MIN_RUNS and sys.stderr.isatty())
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, desc="check", unit="run", leave=True)


def check(graph: ir.Graph, sizes: Sizes = None, providers: Sequence[str] = ("cpu",),
          params: Mapping[str, np.ndarray] | None = None, seed: int = 0, progress: bool | None = None,
          weights: str | None = None, count: int = 6, opset: int | None = None,
          on_result: Callable[[SizeCheck], None] | None = None, model_path: str | None = None) -> CheckReport:
    """Validate the dynamic ONNX export of ``graph`` on onnxruntime at several input sizes (see the
    module docstring). ``providers``: any of 'cpu', 'cuda'. ``progress``: None shows a tqdm bar on
    a terminal for long runs (it names the size running and stays on screen). ``on_result`` is
    called with each run's result as soon as it is known (the CLI streams its table so). Raises
    ConvGraphError on user errors (bad sizes, no provider, no valid size). ``model_path`` runs that
    ONNX file instead of the export (a model imported from it, ``params`` its weights)."""
    from convgraph.export import to_onnx
    from convgraph.export.weights import resolve_params
    from convgraph.validate.reference import run as reference_run

    clock = _Clock()
    random_weights = params is None and weights is None
    params = resolve_params(graph, params, seed, weights)
    envs = clock.timed("sizes", choose_sizes, graph, sizes, count)
    for env in envs:
        _check_memory(graph, env)
    if model_path is None:
        model = clock.timed("export", lambda: to_onnx(graph, opset=opset, params=params))
        source: bytes | str = model.SerializeToString()
    else:
        import onnx

        model, source = onnx.load(model_path, load_external_data=False), model_path
    sessions, notes = clock.timed("onnxruntime", _sessions, source, tuple(providers), _loc(graph))
    torch = _import_torch()
    if torch is None:
        notes.append("torch is not installed: values compared with the numpy reference only")
    notes += _undecided_notes(graph)
    if random_weights:
        notes.append(f"the weights are random (PyTorch's default initialisation, seed {seed}); "
                     f"give weights= (--weights FILE) to check trained ones")
    rng = np.random.default_rng(seed)
    bar = _progress(len(envs) * len(sessions), progress)
    results, placed = [], {}
    for env in envs:
        inputs = _inputs(graph, env, rng)
        shapes = infer(graph).shapes(**env)
        refs = clock.timed("reference", reference_run, graph, inputs, params)
        ref_t = clock.timed("torch", run_torch, graph, inputs, params) if torch is not None else {}
        acc = accumulation(graph, shapes)
        cond = conditioning(graph, refs)
        for asked, sess in sessions:
            if bar is not None:
                bar.set_description(f"check {sizes_text(env)} on {asked}")
            results.append(clock.timed("onnxruntime", _run_one, graph, sess, asked, env, inputs, shapes, refs,
                                       ref_t, acc, cond))
            if asked != "cpu" and asked not in placed:  # one profiled run tells where every node runs
                placed[asked] = fallbacks(read_profile(sess.end_profiling()), PROVIDERS[asked])
            if on_result is not None:
                on_result(results[-1])
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return CheckReport(model.graph.name, opset, tuple(results), tuple(notes),
                       None if torch is None else torch.__version__, clock.seconds, placed)


def _undecided_notes(graph: ir.Graph) -> list[str]:
    """What the solver could not decide exactly (the sizes were then drawn from a bounded search)."""
    from convgraph.solve import solve
    from convgraph.solve._report import NO_PERIOD

    sol = solve(graph, tiling=False)
    return [f"the valid sizes of {s.name} are not exact ({NO_PERIOD}): sizes drawn from a size-by-size search"
            for s in sol.symbols.values() if not s.decided]


def _run_one(graph: ir.Graph, sess: Any, asked: str, env: Mapping[str, int], inputs: Mapping[str, np.ndarray],
             shapes: Mapping[str, Ints], refs: Mapping[str, np.ndarray], ref_t: Mapping[str, np.ndarray],
             acc: Mapping[str, int], cond: Mapping[str, float]) -> SizeCheck:
    ran = sess.get_providers()[0].removesuffix("ExecutionProvider").lower()
    try:
        outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))
    except Exception as e:
        return SizeCheck(dict(env), asked, ran, (), f"{type(e).__name__}: {str(e).splitlines()[0]}")
    checks = []
    for name in graph.outputs:
        got, ref = outs[name], refs[name]
        checks.append(OutputCheck(name, tuple(shapes[name]), tuple(got.shape), _max_err(got, ref),
                                  _max_err(got, ref_t.get(name)), tolerance(acc[name], ref, cond[name])))
    return SizeCheck(dict(env), asked, ran, tuple(checks))
