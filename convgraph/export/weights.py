"""Parameters of a graph: names and shapes, PyTorch's default initialisation, weight files.

Keys are those of the equivalent module's ``state_dict()``: ``{layer_name}.weight``,
``{layer_name}.bias`` and, for BatchNorm, ``{layer_name}.running_mean`` / ``.running_var``
(``num_batches_tracked`` is ignored). Shapes are torch's: Conv ``[C_out, C_in/g, *k]``,
ConvTranspose ``[C_in, C_out/g, *k]``, Linear ``[out, in]``.

>>> from convgraph import ir
>>> from convgraph.errors import Loc
>>> x = ir.Node("x", "input", (), Loc(), dims=(1, 3, "H", "W"))
>>> c = ir.Node("c", "layer", ("x",), Loc(), layer_name="0",
...             layer=ir.Conv(type_name="Conv2d", nd=2, in_channels=3, out_channels=8, kernel_size=(3, 3),
...                           stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1)))
>>> param_specs(ir.Graph((x, c), ("c",)))
{'0.weight': (8, 3, 3, 3), '0.bias': (8,)}
"""
from __future__ import annotations

import difflib
import json
import math
import os
import pickle
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Union

import numpy as np

from convgraph import ir
from convgraph.errors import Loc, WeightsError, one_line

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
    for local, shape in _PARAM_RULES[type(node.spec)](node.spec):
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


#: the most parameter bytes (float32) export and check will allocate
MAX_PARAM_BYTES = 16 * 2**30


def check_param_budget(graph: ir.Graph) -> None:
    """WeightsError naming the largest parameter when the graph's parameters exceed MAX_PARAM_BYTES
    (Conv1d(3, 65536, 65536) holds 48 GiB), before anything is allocated."""
    sizes = {k: math.prod(s) for k, s in param_specs(graph).items()}
    total = 4 * sum(sizes.values())
    if total > MAX_PARAM_BYTES:
        big = max(sizes, key=lambda k: sizes[k])
        raise WeightsError(f"the parameters need {total / 2**30:.3g} GiB ('{big}' alone {sizes[big]} floats); "
                           f"at most {MAX_PARAM_BYTES / 2**30:.3g} GiB can be exported or checked",
                           _param_loc(graph, big))


def _param_loc(graph: ir.Graph, key: str) -> Loc:
    layer = key.rsplit(".", 1)[0]
    return next((n.loc for n in graph.layers() if n.layer_name == layer), Loc(graph.filename, 0, 0))


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


#: the dtypes a weights file may hold (numpy kinds; safetensors names): floats, ints, bools
_NUMPY_KINDS = "fiub"
_SAFETENSORS_DTYPES = frozenset({"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"})
#: the most bytes a stored element may take, and the slack allowed per archive member (headers)
_MAX_ITEMSIZE, _MEMBER_SLACK = 8, 1 << 16
_MAX_SAFETENSORS_HEADER = 1 << 26


def _refuse(path: str, why: str) -> WeightsError:
    return WeightsError(f"weights file '{path}' {why}", Loc(path, 0, 0))


def _check_declared_size(path: str, info: zipfile.ZipInfo, elements: int) -> None:
    """A member may not declare more bytes than ``elements`` stored at the widest dtype (a zip
    bomb is refused from its directory, before anything is decompressed)."""
    if info.file_size > elements * _MAX_ITEMSIZE + _MEMBER_SLACK:
        raise _refuse(path, f"member '{info.filename}' declares {info.file_size} bytes, more than the "
                            f"{elements} parameters it can hold need")


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(shape), dtype


def _read_npz(path: str, expected: Shapes) -> dict[str, np.ndarray]:
    """Members named as parameters are read after their declared size and .npy header (shape,
    dtype) are checked; other members are listed as extra, never decompressed."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            key = info.filename[:-len(".npy")]
            if key not in expected:
                out[key] = np.empty(0)
                continue
            _check_declared_size(path, info, math.prod(expected[key]))
            with z.open(info) as f:
                shape, dtype = _npy_header(f)
                _check_kind(path, key, dtype)
                if shape != expected[key]:
                    out[key] = np.broadcast_to(np.zeros((), dtype), shape)  # its shape, for the report
                    continue
            with z.open(info) as f:
                out[key] = np.lib.format.read_array(f, allow_pickle=False)
    return out


def _check_kind(path: str, key: str, dtype: np.dtype) -> None:
    if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
        raise _refuse(path, f"holds '{key}' as {dtype}: weights are float, int or bool arrays")


def _read_safetensors(path: str, expected: Shapes) -> dict[str, np.ndarray]:
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as e:
        raise WeightsError(f"reading '{path}' needs the safetensors package: {one_line(e)}", Loc(path, 0, 0)) from e
    _check_safetensors_header(path)
    try:
        return load_file(path)
    except SafetensorError as e:
        raise _refuse(path, f"is not a valid safetensors file: {one_line(e)}") from e


def _check_safetensors_header(path: str) -> None:
    """Every tensor's dtype is one numpy can hold (not F8_E4M3, BF16, ...), read from the header alone."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > _MAX_SAFETENSORS_HEADER:
            raise _refuse(path, f"declares a {n}-byte header (at most {_MAX_SAFETENSORS_HEADER})")
        header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise _refuse(path, "is not a valid safetensors file: its header is not a JSON object")
    for key, meta in header.items():
        dtype = meta.get("dtype") if isinstance(meta, dict) else None
        if key != "__metadata__" and isinstance(dtype, str) and dtype not in _SAFETENSORS_DTYPES:
            raise _refuse(path, f"holds '{key}' as {dtype}: weights are float, int or bool tensors "
                                f"({', '.join(sorted(_SAFETENSORS_DTYPES))})")


def _read_torch(path: str, expected: Shapes) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise WeightsError(f"'{path}' is a PyTorch file; reading it needs torch, which is not installed",
                           Loc(path, 0, 0)) from e
    if zipfile.is_zipfile(path):
        _check_torch_zip(path, expected)
    with warnings.catch_warnings():  # torch's UserWarnings would print before our one line
        warnings.simplefilter("ignore")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"'{path}' is a PyTorch file but not a state_dict (a dict of tensors)",
                           Loc(path, 0, 0))
    for k, v in obj.items():
        _check_torch_tensor(path, str(k), v, torch)
    return {str(k): v.detach().to(torch.float64 if v.is_floating_point() else v.dtype).numpy()
            for k, v in obj.items()}


def _check_torch_zip(path: str, expected: Shapes) -> None:
    """The archive declares no more bytes than the graph's parameters (and a pickle) can take."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    budget = sum(math.prod(s) for s in expected.values()) * _MAX_ITEMSIZE + _MEMBER_SLACK * (len(infos) + 16)
    declared = sum(i.file_size for i in infos)
    if declared > budget:
        raise _refuse(path, f"declares {declared} bytes, more than the graph's parameters can take ({budget})")


def _check_torch_tensor(path: str, key: str, v: Any, torch: Any) -> None:
    why = ("is sparse" if v.layout != torch.strided else "is quantized" if v.is_quantized else
           "has no data (a meta tensor)" if v.device.type == "meta" else "is complex" if v.is_complex() else
           None)
    if why is None and not (v.is_floating_point() or v.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16,
                                                                  torch.int32, torch.int64)):
        why = f"has dtype {v.dtype}"
    if why is not None:
        raise _refuse(path, f"holds '{key}', which {why}: weights are dense float, int or bool tensors")


_READERS: dict[str, Callable[[str, Shapes], dict[str, np.ndarray]]] = {
    "npz": _read_npz,
    "safetensors": _read_safetensors,
    "torch": _read_torch,
}


def _read(path: str, expected: Shapes) -> dict[str, np.ndarray]:
    loc = Loc(path, 0, 0)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise WeightsError(f"cannot read weights file '{path}': it is not a regular file", loc)
        fmt = _sniff(path)
        if fmt == "unknown":
            raise WeightsError(f"'{path}' is not a weights file: not an .npz archive, a safetensors file "
                               "or a PyTorch state_dict", loc)
        return _READERS[fmt](path, expected)
    except OSError as e:
        raise WeightsError(f"cannot read weights file '{path}': {e.strerror or e}", loc) from e
    except (ValueError, KeyError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile,
            json.JSONDecodeError, struct.error) as e:
        raise WeightsError(f"weights file '{path}' is damaged or unreadable: {one_line(e)}", loc) from e


#: a mismatch of at most this many keys is listed in the message itself; a bigger one is counted
#: there and detailed in hint lines, one per missing key
_INLINE_KEYS = 6
_HINTED_KEYS = 10


def _mismatch(tensors: Mapping[str, np.ndarray], expected: Shapes, source: str = "file"
              ) -> tuple[str, tuple[str, ...]] | None:
    """None when the keys and shapes match; else the message's tail and the hint lines: per
    missing key the closest unused keys of the same shape, and the one prefix renaming that maps
    every unused key onto a missing one, when there is such a renaming."""
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    shapes = {k: tuple(np.shape(v)) for k, v in tensors.items()}
    misshapen = [f"{k}: {source} {list(shapes[k])}, graph {list(shape)}"
                 for k, shape in expected.items() if k in tensors and shapes[k] != tuple(shape)]
    if not (missing or extra or misshapen):
        return None
    hints = _prefix_hint(missing, extra)
    hints += _closest_hints(missing, extra, shapes, expected)
    if len(missing) + len(extra) + len(misshapen) <= _INLINE_KEYS:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"extra {', '.join(extra)}"] if extra else []
        parts += [f"misshapen {m}" for m in misshapen]
        return "; ".join(parts), hints
    counts = [f"{len(missing)} missing", f"{len(extra)} extra (unused)", f"{len(misshapen)} misshapen"]
    hints += tuple(f"misshapen {m}" for m in misshapen[:_HINTED_KEYS])
    return ", ".join(c for c in counts if not c.startswith("0 ")) + " keys", hints


def _closest_hints(missing: list[str], extra: list[str], shapes: dict[str, tuple], expected: Shapes) -> tuple[str, ...]:
    """``missing inc.conv.weight [8, 3, 3, 3]: closest unused 'inc.0.weight', ...`` per missing key."""
    out = []
    for key in missing[:_HINTED_KEYS]:
        same = [e for e in extra if shapes[e] == tuple(expected[key])]
        close = difflib.get_close_matches(key, same, n=3, cutoff=0.0) if same else []
        if close or len(missing) + len(extra) > _INLINE_KEYS:
            which = ", ".join(map(repr, close)) if close else "none of the same shape"
            out.append(f"missing {key} {list(expected[key])}: closest unused {which}")
    if len(missing) > _HINTED_KEYS:
        out.append(f"... and {len(missing) - _HINTED_KEYS} more missing keys")
    return tuple(out)


def _prefix_hint(missing: list[str], extra: list[str]) -> tuple[str, ...]:
    """The renaming ``old`` -> ``new`` of a key prefix that turns the unused keys into exactly the
    missing ones, as a line of Python that does it to a state_dict ``sd``."""
    if len(missing) < 2 or len(missing) != len(extra) or len(extra) > 2000:
        return ()
    want = set(missing)
    for e in extra:
        old, new = _prefix_pair(e, missing[0])
        if {new + k[len(old):] if k.startswith(old) else k for k in extra} == want:
            return (f"every key matches after renaming the prefix {old!r} to {new!r} in the file: "
                    f"sd = {{({new!r} + k[{len(old)}:] if k.startswith({old!r}) else k): v for k, v in sd.items()}}",)
    return ()


def _prefix_pair(a: str, b: str) -> tuple[str, str]:
    """The prefixes of ``a`` and ``b`` before their longest common suffix of whole '.'-parts."""
    pa, pb = a.split("."), b.split(".")
    k = 0
    while k < min(len(pa), len(pb)) and pa[-1 - k] == pb[-1 - k]:
        k += 1
    if k == 0:
        return a, b
    return "".join(part + "." for part in pa[:len(pa) - k]), "".join(part + "." for part in pb[:len(pb) - k])


def load_weights(path: PathLike, graph: ir.Graph) -> dict[str, np.ndarray]:
    """Read ``.npz``, ``.safetensors`` or a PyTorch state_dict (torch.load, weights_only) into
    float32 arrays keyed as ``param_specs(graph)``. The format is detected from the content.

    Raises one ``WeightsError`` (loc ``PATH:0:0``) listing every missing, extra and misshapen key,
    e.g. ``weights file 'w.npz' does not match the graph: missing conv1.bias; extra foo.weight``."""
    path = os.fspath(path)
    expected = param_specs(graph)
    tensors = {k: v for k, v in _read(path, expected).items() if not k.endswith(_IGNORED_SUFFIXES)}
    bad = _mismatch(tensors, expected)
    if bad:
        raise WeightsError(f"weights file '{path}' does not match the graph: {bad[0]}", Loc(path, 0, 0), bad[1])
    return {k: _finite_float32(path, k, tensors[k]) for k in expected}


def _finite_float32(path: str, key: str, v: np.ndarray) -> np.ndarray:
    """float32, refused when some value is NaN, infinite or beyond float32's range."""
    with np.errstate(over="ignore", invalid="ignore"):
        arr = np.asarray(v, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise _refuse(path, f"holds non-finite values in '{key}' (NaN, inf or beyond float32's range)")
    return arr


def resolve_params(graph: ir.Graph, params: Mapping[str, np.ndarray] | None, seed: int,
            weights: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
    """float32 parameters keyed ``{layer}.weight`` ...: given, loaded from a file, or initialised."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise WeightsError(f"seed must be an int from 0 to 2**63 - 1, got {seed!r}", Loc(graph.filename, 0, 0))
    check_param_budget(graph)
    if params is None and weights is not None:
        return load_weights(weights, graph)
    if params is None:
        return init_params(graph, seed)
    specs = param_specs(graph)
    bad = _mismatch(params, specs, "given")
    if bad:
        raise WeightsError(f"params do not match the graph: {bad[0]}", Loc(graph.filename, 0, 0), bad[1])
    return {k: np.asarray(params[k], dtype=np.float32) for k in specs}
