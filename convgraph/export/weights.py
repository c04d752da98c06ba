"""Parameters of a graph: names and shapes, PyTorch's default initialisation, weight files.

Keys are those of the equivalent module's ``state_dict()``: ``{layer_name}.weight``,
``{layer_name}.bias`` and, for BatchNorm, ``{layer_name}.running_mean`` / ``.running_var``
(``num_batches_tracked`` is ignored). Shapes are torch's: Conv ``[C_out, C_in/g, *k]``,
ConvTranspose ``[C_in, C_out/g, *k]``, Linear ``[out, in]``.

>>> from convgraph import ir
>>> from convgraph.errors import Loc
>>> x = ir.Node("x", "input", (), Loc(), dims=(1, 3, "H", "W"))
>>> c = ir.Node("c", "layer", ("x",), Loc(), layer_name="0",
...             layer=ir.Conv("Conv2d", 2, 3, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)))
>>> param_specs(ir.Graph((x, c), ("c",)))
{'0.weight': (8, 3, 3, 3), '0.bias': (8,)}
"""
from __future__ import annotations

import json
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Union

import numpy as np

from convgraph import ir
from convgraph.errors import Loc, WeightsError

Shapes = dict[str, tuple[int, ...]]
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["init_params", "load_weights", "param_specs"]

# --- names and shapes -----------------------------------------------------------------------------


def _conv_params(spec: ir.Conv | ir.ConvTranspose) -> Iterator[tuple[str, tuple[int, ...]]]:
    yield "weight", spec.weight_shape
    if spec.bias:
        yield "bias", (spec.out_channels,)


def _linear_params(spec: ir.Linear) -> Iterator[tuple[str, tuple[int, ...]]]:
    yield "weight", (spec.out_features, spec.in_features)
    if spec.bias:
        yield "bias", (spec.out_features,)


def _bn_params(spec: ir.BatchNorm) -> Iterator[tuple[str, tuple[int, ...]]]:
    """weight/bias when affine, running_mean/running_var when track_running_stats (torch's order)."""
    c = (spec.num_features,)
    if spec.affine:
        yield from (("weight", c), ("bias", c))
    if spec.track_running_stats:
        yield from (("running_mean", c), ("running_var", c))


def _gn_params(spec: ir.GroupNorm) -> Iterator[tuple[str, tuple[int, ...]]]:
    if spec.affine:
        yield from (("weight", (spec.num_channels,)), ("bias", (spec.num_channels,)))


def _prelu_params(spec: ir.PReLU) -> Iterator[tuple[str, tuple[int, ...]]]:
    yield "weight", (spec.num_parameters,)


def _no_params(spec: object) -> Iterator[tuple[str, tuple[int, ...]]]:
    return iter(())


#: every layer kind's parameters (kinds without parameters map to ``_no_params``)
_PARAM_RULES: dict[type, Callable[..., Iterator[tuple[str, tuple[int, ...]]]]] = {
    ir.Conv: _conv_params,
    ir.ConvTranspose: _conv_params,
    ir.Linear: _linear_params,
    ir.BatchNorm: _bn_params,
    ir.InstanceNorm: _bn_params,
    ir.GroupNorm: _gn_params,
    ir.PReLU: _prelu_params,
    ir.Pool: _no_params,
    ir.AdaptiveAvgPool: _no_params,
    ir.AdaptiveMaxPool: _no_params,
    ir.Pad: _no_params,
    ir.PixelShuffle: _no_params,
    ir.Upsample: _no_params,
    ir.Softmax: _no_params,
    ir.Elementwise: _no_params,
    ir.Flatten: _no_params,
    ir.Unflatten: _no_params,
}


def _layer_params(node: ir.Node) -> Iterator[tuple[str, tuple[int, ...]]]:
    for local, shape in _PARAM_RULES[type(node.layer)](node.layer):
        yield f"{node.layer_name}.{local}", tuple(shape)


def param_specs(graph: ir.Graph) -> Shapes:
    """Every parameter the graph needs, in node order: ``{"0.weight": (8, 3, 3, 3), ...}``."""
    return {key: shape for node in graph.layers() for key, shape in _layer_params(node)}


# --- initialisation -------------------------------------------------------------------------------


def _fan_in(weight_shape: tuple[int, ...]) -> int:
    """torch's ``_calculate_fan_in_and_fan_out``: ``shape[1] * prod(shape[2:])``. For ConvTranspose
    that is ``(C_out/g) * prod(k)``, as torch computes it."""
    return weight_shape[1] * math.prod(weight_shape[2:])


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...]) -> np.ndarray:
    """U(-bound, bound) drawn in float32 (half the time of a float64 draw and cast): ``(2u - 1) * b``
    with u ~ U[0, 1) in float32 (2u - 1 is exact) and b the float32 bound rounded towards zero,
    so that ``|w| <= bound`` holds exactly."""
    b = np.float32(bound)
    if float(b) > bound:  # compared in float64 (a float32 scalar would compare in float32)
        b = np.nextafter(b, np.float32(0))
    u = rng.random(shape, dtype=np.float32)
    u *= 2
    u -= 1
    u *= b
    return u


def _bound(fan_in: int) -> float:
    """kaiming_uniform(a=sqrt(5)) gives ``gain*sqrt(3/fan_in)`` with ``gain = sqrt(2/(1+5))``,
    i.e. ``1/sqrt(fan_in)``; the bias uses the same bound (0 when fan_in is 0)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def _init_affine(rng: np.random.Generator, shapes: Shapes, prefix: str) -> dict[str, np.ndarray]:
    """Conv, ConvTranspose, Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = _bound(_fan_in(shapes[prefix + "weight"]))
    return {key: _uniform(rng, bound, shape) for key, shape in shapes.items()}


def _init_bn(rng: np.random.Generator, shapes: Shapes, prefix: str, realistic: bool) -> dict[str, np.ndarray]:
    """torch: weight 1, bias 0, running_mean 0, running_var 1. ``realistic``: weight ~ U(0.5, 1.5),
    bias ~ N(0, 0.1), running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5)."""
    draw: dict[str, Callable[[tuple[int, ...]], np.ndarray]] = {
        "weight": (lambda s: rng.uniform(0.5, 1.5, s)) if realistic else np.ones,
        "bias": (lambda s: rng.normal(0.0, 0.1, s)) if realistic else np.zeros,
        "running_mean": (lambda s: rng.normal(0.0, 0.1, s)) if realistic else np.zeros,
        "running_var": (lambda s: rng.uniform(0.5, 1.5, s)) if realistic else np.ones,
    }
    return {key: draw[key[len(prefix):]](shape) for key, shape in shapes.items()}


def _init_prelu(rng: np.random.Generator, shapes: Shapes, prefix: str, spec: ir.PReLU,
                realistic: bool) -> dict[str, np.ndarray]:
    """torch fills the slopes with ``init``; ``realistic``: U(0, 0.5) per slope."""
    shape = shapes[prefix + "weight"]
    return {prefix + "weight": rng.uniform(0.0, 0.5, shape) if realistic else np.full(shape, spec.init)}


def init_params(graph: ir.Graph, seed: int = 0, *, realistic_bn: bool = False) -> dict[str, np.ndarray]:
    """Deterministic float32 parameters from ``numpy.random.default_rng(seed)``, drawn in
    ``param_specs`` order.

    The default reproduces PyTorch's default initialisation *distributions* (not its random
    stream): conv/linear weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BatchNorm the
    identity (weight 1, bias 0, mean 0, var 1); this is what export uses. ``realistic_bn=True``
    draws non-trivial BatchNorm parameters and statistics so that tests exercise BatchNorm."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for node in graph.layers():
        shapes = dict(_layer_params(node))
        if not shapes:
            continue
        prefix = f"{node.layer_name}."
        if isinstance(node.layer, (ir.BatchNorm, ir.InstanceNorm, ir.GroupNorm)):
            out.update(_init_bn(rng, shapes, prefix, realistic_bn))
        elif isinstance(node.layer, ir.PReLU):
            out.update(_init_prelu(rng, shapes, prefix, node.layer, realistic_bn))
        else:
            out.update(_init_affine(rng, shapes, prefix))
    return {key: np.asarray(v, dtype=np.float32) for key, v in out.items()}


# --- weight files ---------------------------------------------------------------------------------

_IGNORED_SUFFIXES = (".num_batches_tracked",)


def _sniff(path: str) -> str:
    """The format by content: 'npz' (zip of .npy), 'torch' (zip with data.pkl, or a pickle),
    'safetensors' (u64 header length + JSON object), else 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(9)
        size = os.fstat(f.fileno()).st_size
    if head[:4] == b"PK\x03\x04":
        return _sniff_zip(path)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch"  # legacy torch.save: a pickle stream
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return "safetensors"
    return "unknown"


def _sniff_zip(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        return "unknown"
    if all(n.endswith(".npy") for n in names):  # np.savez() with no arrays is an empty zip
        return "npz"
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    return "unknown"


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as e:
        raise WeightsError(f"reading '{path}' needs the safetensors package: {e}", Loc(path, 0, 0)) from e
    try:
        return load_file(path)
    except SafetensorError as e:
        raise WeightsError(f"weights file '{path}' is not a valid safetensors file: {e}", Loc(path, 0, 0)) from e


def _read_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise WeightsError(f"'{path}' is a PyTorch file; reading it needs torch, which is not installed",
                           Loc(path, 0, 0)) from e
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"'{path}' is a PyTorch file but not a state_dict (a dict of tensors)",
                           Loc(path, 0, 0))
    return {str(k): v.detach().to(torch.float64 if v.is_floating_point() else v.dtype).numpy()
            for k, v in obj.items()}


_READERS: dict[str, Callable[[str], dict[str, np.ndarray]]] = {
    "npz": _read_npz,
    "safetensors": _read_safetensors,
    "torch": _read_torch,
}


def _read(path: str) -> dict[str, np.ndarray]:
    loc = Loc(path, 0, 0)
    try:
        fmt = _sniff(path)
        if fmt == "unknown":
            raise WeightsError(f"'{path}' is not a weights file: not an .npz archive, a safetensors file "
                               "or a PyTorch state_dict", loc)
        return _READERS[fmt](path)
    except OSError as e:
        raise WeightsError(f"cannot read weights file '{path}': {e.strerror or e}", loc) from e
    except (ValueError, KeyError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile,
            json.JSONDecodeError) as e:
        raise WeightsError(f"weights file '{path}' is damaged or unreadable: {e}", loc) from e


def _mismatch(tensors: dict[str, np.ndarray], expected: Shapes) -> list[str]:
    """'missing a, b', 'extra c', 'misshapen d: file [..], graph [..]' parts, in that order."""
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"extra {', '.join(extra)}"] if extra else []
    parts += [f"misshapen {k}: file {list(tensors[k].shape)}, graph {list(shape)}"
              for k, shape in expected.items() if k in tensors and tuple(tensors[k].shape) != shape]
    return parts


def load_weights(path: PathLike, graph: ir.Graph) -> dict[str, np.ndarray]:
    """Read ``.npz``, ``.safetensors`` or a PyTorch state_dict (torch.load, weights_only) into
    float32 arrays keyed as ``param_specs(graph)``. The format is detected from the content.

    Raises one ``WeightsError`` (loc ``PATH:0:0``) listing every missing, extra and misshapen key,
    e.g. ``weights file 'w.npz' does not match the graph: missing conv1.bias; extra foo.weight``."""
    path = os.fspath(path)
    tensors = {k: v for k, v in _read(path).items() if not k.endswith(_IGNORED_SUFFIXES)}
    expected = param_specs(graph)
    parts = _mismatch(tensors, expected)
    if parts:
        raise WeightsError(f"weights file '{path}' does not match the graph: {'; '.join(parts)}",
                           Loc(path, 0, 0))
    return {k: np.asarray(tensors[k], dtype=np.float32) for k in expected}


def resolve_params(graph: ir.Graph, params: Mapping[str, np.ndarray] | None, seed: int,
            weights: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
    """float32 parameters keyed ``{layer}.weight`` ...: given, loaded from a file, or initialised."""
    if params is None and weights is not None:
        return load_weights(weights, graph)
    if params is None:
        return init_params(graph, seed)
    specs = param_specs(graph)
    missing = [k for k in specs if k not in params]
    extra = [k for k in params if k not in specs]
    wrong = [f"{k}: given {list(np.shape(params[k]))}, graph {list(s)}" for k, s in specs.items()
             if k in params and tuple(np.shape(params[k])) != tuple(s)]
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
            ([f"extra {', '.join(extra)}"] if extra else []) + ([f"misshapen {w}" for w in wrong])
    if parts:
        raise WeightsError(f"params do not match the graph: {'; '.join(parts)}", Loc(graph.filename, 0, 0))
    return {k: np.asarray(params[k], dtype=np.float32) for k in specs}
