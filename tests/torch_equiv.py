r"""The PyTorch module equivalent to a convgraph Graph: the semantic oracle for tests.

``to_torch(graph)`` builds, from the IR alone, the module a PyTorch user would write for the same
model, with parameter names equal to convgraph's (``{layer_name}.weight``, ``.bias``, BatchNorm
``.running_mean`` / ``.running_var``), so weights move between the two by name:

>>> import convgraph as cg
>>> from convgraph.export.weights import init_params
>>> g = cg.parse("input(1, 1, H, W)\nConv2d(1, 4, 3)\nReLU()")
>>> to_torch(g)                       # children "0", "1" as nn.Sequential numbers them
Sequential(
  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))
  (1): ReLU()
)
>>> run_torch(g, {"x": np.ones((1, 1, 5, 6))}, init_params(g))["1"].shape
(1, 4, 3, 4)

- A pure chain of layers (one input, each layer applied to the previous value, the last value the
  only output; what the sequential shorthand writes) becomes a ``torch.nn.Sequential`` whose
  children are named by ``Node.layer_name`` ("0", "1", ... in the shorthand).
- Any other graph becomes a ``GraphModule``: every layer registered under its layer name (a
  dotted name becomes nested containers, so state_dict keys are still ``{layer_name}.weight``)
  and a forward that walks ``graph.nodes``: ``cat`` is ``torch.cat(dim=node.dim)``, ``add`` is
  ``+``, ``crop(v, like=w)`` keeps w's spatial size from the centre of v, dropping ``(v - w) // 2``
  at the start of each spatial axis.

Every IR spec maps to the torch module with identical arguments (``_BUILDERS``). Conv padding is
explicit (begin, end) pairs in the IR: symmetric pads become torch's int tuple; asymmetric pads
become ``padding='same'`` when that is exactly what 'same' gives (stride 1, begin = floor(T/2),
end = T - begin with T = d*(k-1), which is how convgraph resolves 'same'); any other asymmetric
pads (not writable in PyTorch's constructor) become ``PaddedConv``: ``F.pad`` with the padding
mode, then the conv with padding 0.

Modules are returned in eval mode (BatchNorm uses running statistics, Dropout is the identity),
which is the inference semantics convgraph models. torch is imported inside the functions, so this
module imports without torch.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from convgraph import ir

__all__ = ["crop_center", "is_chain", "load_params", "run_torch", "to_torch", "torch_layer"]

#: buffers torch keeps that convgraph has no parameter for
IGNORED_KEYS = ("num_batches_tracked",)


# --- one torch module per IR spec -------------------------------------------------------------------


def _nn():
    import torch.nn as nn

    return nn


def _same_pads(spec: ir.Conv) -> tuple[tuple[int, int], ...]:
    """What PyTorch's padding='same' pads per axis: T = d*(k-1), begin floor(T/2), end the rest."""
    totals = [d * (k - 1) for k, d in zip(spec.kernel_size, spec.dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)


def conv_padding(spec: ir.Conv) -> tuple[int, ...] | str | None:
    """The constructor's ``padding`` for the IR's (begin, end) pads, or None when PyTorch's
    constructor cannot express them (then ``PaddedConv`` pads explicitly)."""
    if all(b == e for b, e in spec.padding):
        return tuple(b for b, _ in spec.padding)
    if all(s == 1 for s in spec.stride) and spec.padding == _same_pads(spec):
        return "same"
    return None


def _conv(spec: ir.Conv):
    nn = _nn()
    padding = conv_padding(spec)
    args = dict(kernel_size=spec.kernel_size, stride=spec.stride, dilation=spec.dilation,
                groups=spec.groups, bias=spec.bias)
    if padding is None:
        return PaddedConv.create(spec, args)
    cls = getattr(nn, f"Conv{spec.nd}d")
    return cls(spec.in_channels, spec.out_channels, padding=padding, padding_mode=spec.padding_mode, **args)


def _conv_transpose(spec: ir.ConvTranspose):
    cls = getattr(_nn(), f"ConvTranspose{spec.nd}d")
    return cls(spec.in_channels, spec.out_channels, spec.kernel_size, stride=spec.stride,
               padding=_symmetric(spec), output_padding=spec.output_padding, groups=spec.groups,
               bias=spec.bias, dilation=spec.dilation)


def _symmetric(spec: ir.ConvTranspose | ir.Pool) -> tuple[int, ...]:
    """torch's one int per axis; the canonical (begin, end) pairs of a torch layer are equal."""
    assert all(b == e for b, e in spec.padding), spec.padding
    return tuple(b for b, _ in spec.padding)


def _pool(spec: ir.Pool):
    nn = _nn()
    if spec.mode == "max":
        return getattr(nn, f"MaxPool{spec.nd}d")(spec.kernel_size, stride=spec.stride, padding=_symmetric(spec),
                                                 dilation=spec.dilation, ceil_mode=spec.ceil_mode)
    extra = {} if spec.divisor_override is None else {"divisor_override": spec.divisor_override}
    return getattr(nn, f"AvgPool{spec.nd}d")(spec.kernel_size, stride=spec.stride, padding=_symmetric(spec),
                                             ceil_mode=spec.ceil_mode, count_include_pad=spec.count_include_pad,
                                             **extra)


def _adaptive(spec: ir.AdaptiveAvgPool):
    return getattr(_nn(), f"AdaptiveAvgPool{spec.nd}d")(spec.output_size)


def _adaptive_max(spec: ir.AdaptiveMaxPool):
    return getattr(_nn(), f"AdaptiveMaxPool{spec.nd}d")(spec.output_size)


def _pad(spec: ir.Pad):
    """The pad module of the spec's class; F.pad's spellings (nd 0) become ``FPad``."""
    flat = tuple(v for pair in reversed(spec.padding) for v in pair)
    if spec.nd == 0:
        return FPad(flat, spec.mode, spec.value)
    cls = getattr(_nn(), spec.type_name)
    return cls(flat, spec.value) if spec.type_name.startswith("Constant") else cls(flat)


def _pixel_shuffle(spec: ir.PixelShuffle):
    return getattr(_nn(), spec.type_name)(spec.factor)


def _instancenorm(spec: ir.InstanceNorm):
    return getattr(_nn(), f"InstanceNorm{spec.nd}d")(spec.num_features, eps=spec.eps, momentum=spec.momentum,
                                                     affine=spec.affine, track_running_stats=spec.track_running_stats)


def _groupnorm(spec: ir.GroupNorm):
    return _nn().GroupNorm(spec.num_groups, spec.num_channels, eps=spec.eps, affine=spec.affine)


def _prelu(spec: ir.PReLU):
    return _nn().PReLU(spec.num_parameters, spec.init)


def _softmax(spec: ir.Softmax):
    return getattr(_nn(), spec.type_name)(spec.dim)


def _upsample(spec: ir.Upsample):
    return _nn().Upsample(size=spec.size, scale_factor=spec.scale_factor, mode=spec.mode,
                          align_corners=spec.align_corners)


def _batchnorm(spec: ir.BatchNorm):
    return getattr(_nn(), f"BatchNorm{spec.nd}d")(spec.num_features, eps=spec.eps, momentum=spec.momentum,
                                                  affine=spec.affine, track_running_stats=spec.track_running_stats)


def _elementwise(spec: ir.Elementwise):
    """Activations, Identity, Dropout*: the torch class of the same name with the IR's knobs."""
    return getattr(_nn(), spec.type_name)(**dict(spec.params))


def _flatten(spec: ir.Flatten):
    return _nn().Flatten(spec.start_dim, spec.end_dim)


def _linear(spec: ir.Linear):
    return _nn().Linear(spec.in_features, spec.out_features, bias=spec.bias)


_BUILDERS: dict[type, Callable[[Any], Any]] = {
    ir.Conv: _conv,
    ir.ConvTranspose: _conv_transpose,
    ir.Pool: _pool,
    ir.AdaptiveAvgPool: _adaptive,
    ir.AdaptiveMaxPool: _adaptive_max,
    ir.Pad: _pad,
    ir.PixelShuffle: _pixel_shuffle,
    ir.Upsample: _upsample,
    ir.BatchNorm: _batchnorm,
    ir.InstanceNorm: _instancenorm,
    ir.GroupNorm: _groupnorm,
    ir.PReLU: _prelu,
    ir.Softmax: _softmax,
    ir.Elementwise: _elementwise,
    ir.Flatten: _flatten,
    ir.Unflatten: lambda spec: _nn().Unflatten(spec.dim, spec.sizes),
    ir.Linear: _linear,
}


def torch_layer(spec: ir.LayerSpec):
    """The torch module for one IR layer spec, constructed with identical arguments."""
    try:
        build = _BUILDERS[type(spec)]
    except KeyError:
        raise NotImplementedError(f"no torch equivalent registered for {type(spec).__name__}") from None
    return build(spec)


class _PaddedConvMixin:
    """A ConvNd built with padding 0 that first pads ``self.pads`` (F.pad order) with ``self.pad_mode``.

    For (begin, end) pads that the constructor cannot express. The parameters are the ConvNd's own,
    so the state_dict keys are the same as for a plain ConvNd."""

    pads: tuple[int, ...]
    pad_mode: str

    def forward(self, x):
        import torch.nn.functional as F

        return super().forward(F.pad(x, self.pads, mode=self.pad_mode))  # type: ignore[misc]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}, pad_mode={self.pad_mode!r}"  # type: ignore[misc]


class PaddedConv:
    """Factory for ``_PaddedConvMixin`` subclasses of Conv1d/2d/3d."""

    _classes: ClassVar[dict[int, type]] = {}

    @classmethod
    def create(cls, spec: ir.Conv, args: dict):
        nn = _nn()
        if spec.nd not in cls._classes:
            base = getattr(nn, f"Conv{spec.nd}d")
            cls._classes[spec.nd] = type(f"PaddedConv{spec.nd}d", (_PaddedConvMixin, base), {})
        m = cls._classes[spec.nd](spec.in_channels, spec.out_channels, padding=0, **args)
        # F.pad takes (begin, end) pairs from the last axis backwards
        m.pads = tuple(p for pair in reversed(spec.padding) for p in pair)
        m.pad_mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
        return m


@functools.cache
def _fpad_class():
    import torch.nn as nn

    class FPadModule(nn.Module):
        """``F.pad(x, pads, mode, value)`` as a module (no parameters)."""

        def __init__(self, pads: tuple[int, ...], mode: str, value: float):
            super().__init__()
            self.pads, self.mode, self.value = pads, mode, value

        def forward(self, x):
            import torch.nn.functional as F

            if self.mode == "constant":
                return F.pad(x, self.pads, mode="constant", value=self.value)
            return F.pad(x, self.pads, mode=self.mode)

    return FPadModule


def FPad(pads: tuple[int, ...], mode: str, value: float):
    return _fpad_class()(pads, mode, value)


# --- the graph -------------------------------------------------------------------------------------


def is_chain(graph: ir.Graph) -> bool:
    """One input, then layers each applied to the previous value, the last one the only output."""
    nodes = graph.nodes
    if len(nodes) < 2 or nodes[0].op != "input" or graph.outputs != (nodes[-1].name,):
        return False
    return all(n.op == "layer" and n.inputs == (prev.name,) for prev, n in itertools.pairwise(nodes))


def crop_center(v, like_spatial: tuple[int, ...]):
    """Keep ``like_spatial`` from the centre of v's spatial axes, dropping (v - w) // 2 first."""
    index = [slice(None), slice(None)]
    for size, keep in zip(v.shape[2:], like_spatial):
        start = (size - keep) // 2
        index.append(slice(start, start + keep))
    return v[tuple(index)]


def _register(root, dotted: str, module) -> None:
    """Register ``module`` under a possibly dotted name, creating plain containers on the way.

    Writes ``_modules`` directly rather than ``add_module``: a layer may be named like an
    ``nn.Module`` attribute ("train", "to", "type", "forward"), which add_module refuses; the
    state_dict only looks at ``_modules``."""
    import torch.nn as nn

    *path, leaf = dotted.split(".")
    if not all([*path, leaf]):
        raise ValueError(f"invalid layer name {dotted!r}")
    for part in path:
        root = root._modules.setdefault(part, nn.Module())
    if leaf in root._modules:
        raise ValueError(f"duplicate layer name {dotted!r}")
    root._modules[leaf] = module


@functools.cache
def _graph_module_class():
    import torch
    import torch.nn as nn

    class GraphModule(nn.Module):
        """A convgraph Graph as a torch module: layers registered under their layer names; forward
        takes the inputs in ``graph.inputs`` order (or by name) and returns the output tensor, or a
        tuple in ``graph.outputs`` order when there are several."""

        def __init__(self, graph: ir.Graph):
            super().__init__()
            self._cg_graph = graph
            self._cg_layer_of: dict[str, str] = {}
            for node in graph.layers():
                _register(self, node.layer_name, torch_layer(node.layer))
                self._cg_layer_of[node.name] = node.layer_name

        def _cg_layer(self, layer_name: str):
            m = self
            for part in layer_name.split("."):
                m = m._modules[part]
            return m

        def forward(self, *args, **kwargs):
            names = [n.name for n in self._cg_graph.inputs]
            if len(args) > len(names):
                raise TypeError(f"expected at most {len(names)} inputs, got {len(args)}")
            env = dict(zip(names, args), **kwargs)
            missing = [n for n in names if n not in env]
            if missing:
                raise TypeError(f"missing input(s): {', '.join(missing)}")
            self._cg_sizes = {d: int(env[n.name].shape[k]) for n in self._cg_graph.inputs
                              for k, d in enumerate(n.dims) if isinstance(d, str)}
            for node in self._cg_graph.nodes:
                if node.op != "input":
                    env[node.name] = self._step(node, [env[i] for i in node.inputs])
            outs = tuple(env[o] for o in self._cg_graph.outputs)
            return outs[0] if len(outs) == 1 else outs

        def _step(self, node: ir.Node, xs: list):
            if node.op == "layer":
                return self._cg_layer(self._cg_layer_of[node.name])(xs[0])
            if node.op == "cat":
                return torch.cat(xs, dim=node.dim)
            if node.op == "add":
                return xs[0] + xs[1]
            if node.op == "crop":
                return crop_center(xs[0], tuple(xs[1].shape[2:]))
            if node.op == "reshape":  # entries (symbol, k) are k times the symbol's size
                return xs[0].reshape(tuple(ir.reshape_entry(e, self._cg_sizes) for e in node.attr("shape")))
            return _functional_step(node, xs)

    return GraphModule


def _functional_step(node: ir.Node, xs: list):
    """The DSL functions as a PyTorch user writes them in ``forward``."""
    import torch.nn.functional as F

    op, attr = node.op, node.attr
    if op in ("sub", "mul"):
        return xs[0] - xs[1] if op == "sub" else xs[0] * xs[1]
    if op == "pad_like":  # the milesial U-Net's Up.forward
        v, like = xs
        flat: list[int] = []
        for a, b in reversed(list(zip(v.shape[2:], like.shape[2:]))):
            flat += [(b - a) // 2, (b - a) - (b - a) // 2]
        mode = attr("mode", "constant")
        return F.pad(v, flat, mode=mode, value=attr("value", 0.0)) if mode == "constant" else F.pad(v, flat, mode=mode)
    if op == "interp_like":
        return F.interpolate(xs[0], size=xs[1].shape[2:], mode=attr("mode"), align_corners=attr("align_corners"))
    if op == "scalar":
        x, c = xs[0], attr("value")
        return {"add": x + c, "sub": x - c, "rsub": c - x, "mul": x * c, "div": x / c}[attr("op")]
    if op == "slice":  # chunk / split parts: what torch.chunk / torch.split return
        part = attr("part")
        if part is not None:
            import torch

            kind, arg, dim, k, _ = part
            return (torch.chunk if kind == "chunk" else torch.split)(xs[0], arg, dim)[k]
        return xs[0][tuple(slice(a, z) for a, z in attr("index", ()))]
    if op == "mean":
        return xs[0].mean(dim=tuple(attr("dims")), keepdim=attr("keepdim"))
    if op == "unsqueeze":
        return xs[0].unsqueeze(attr("dim"))
    if op == "squeeze":
        return xs[0].squeeze() if attr("dims") is None else xs[0].squeeze(tuple(attr("dims")))
    raise NotImplementedError(f"node op {op!r}")


def to_torch(graph: ir.Graph):
    """The equivalent torch module, in eval mode (see the module docstring)."""
    import torch.nn as nn

    if is_chain(graph) and all("." not in n.layer_name for n in graph.nodes[1:]):
        seq = nn.Sequential()
        for n in graph.nodes[1:]:
            _register(seq, n.layer_name, torch_layer(n.layer))
        return seq.eval()
    return _graph_module_class()(graph).eval()


# --- parameters and running --------------------------------------------------------------------------


def _is_ignored(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in IGNORED_KEYS


def load_params(module, params: Mapping[str, np.ndarray]) -> None:
    """Copy numpy arrays into the module's parameters and buffers by name, strictly: every key must
    exist with the same shape, and every parameter/buffer must be given (``num_batches_tracked``
    excepted). Values are cast to the module's dtype."""
    import torch

    state = {k: v for k, v in module.state_dict().items() if not _is_ignored(k)}
    missing = sorted(set(state) - set(params))
    unexpected = sorted(set(params) - set(state))
    wrong = sorted(k for k in set(state) & set(params) if tuple(state[k].shape) != tuple(np.shape(params[k])))
    if missing or unexpected or wrong:
        detail = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                  "shape mismatch " + ", ".join(f"{k}: module {tuple(state[k].shape)} vs {np.shape(params[k])}"
                                                for k in wrong) if wrong else ""]
        raise KeyError("load_params: " + "; ".join(d for d in detail if d))
    with torch.no_grad():
        for key, target in state.items():
            target.copy_(torch.from_numpy(np.array(params[key])).to(target.dtype))  # a writable copy


def run_torch(graph: ir.Graph, inputs: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray] | None,
              *, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Run the equivalent torch module on numpy inputs (by input name) and parameters; returns
    ``{output_name: array}`` in float64. Computes in ``dtype`` (float64 by default, the most
    exact reference). ``params=None`` keeps torch's own initialisation."""
    import torch

    module = to_torch(graph).to(getattr(torch, dtype))
    if params is not None:
        load_params(module, params)
    names = [n.name for n in graph.inputs]
    unknown = sorted(set(inputs) - set(names))
    if unknown or len(inputs) != len(names):
        raise KeyError(f"run_torch: inputs are {names}, got {sorted(inputs)}")
    args = [torch.from_numpy(np.array(inputs[n])).to(getattr(torch, dtype)) for n in names]
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    return {name: t.detach().cpu().numpy().astype(np.float64) for name, t in zip(graph.outputs, outs)}
