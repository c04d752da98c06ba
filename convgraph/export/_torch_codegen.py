"""PyTorch source of one layer or node op: the constructor of a layer kind (``LAYER_SOURCE``), the
forward expression of a node op (``OP_SOURCE``) and the helpers written into the file when used
(``HELPERS``: asymmetric conv pads, centre crop, pad to another value's size). Read by
``torch_source``, which writes the file.

>>> layer_source(ir.Conv(type_name="Conv2d", nd=2, in_channels=3, out_channels=8, kernel_size=(3, 3), stride=(1, 1),
...                      padding=((1, 1), (1, 1)), dilation=(1, 1))).expr
'nn.Conv2d(3, 8, kernel_size=(3, 3), padding=(1, 1))'
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from convgraph import ir
from convgraph.errors import ExportError


@dataclass(frozen=True)
class Source:
    """A constructor expression and the helpers (names in ``HELPERS``) it needs; ``inline``: a
    parameter-free call written in forward instead (``expr`` has ``{x}`` for its input)."""

    expr: str
    helpers: tuple[str, ...] = ()
    inline: bool = False


def arg_list(*positional: object, **keywords: object) -> str:
    """``3, 8, kernel_size=(3, 3)``: positional reprs, then keywords."""
    parts = [repr(p) for p in positional]
    parts += [f"{k}={v!r}" for k, v in keywords.items()]
    return ", ".join(parts)


def _non_default(values: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if k not in defaults or defaults[k] != v}


# --- layer kinds ----------------------------------------------------------------------------------


def _same_pads(spec: ir.Conv) -> ir.Pads:
    """PyTorch's padding='same': total d*(k-1) per axis, floor half at the start."""
    totals = [d * (k - 1) for k, d in zip(spec.kernel_size, spec.dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)


def _conv(spec: ir.Conv) -> Source:
    ones = (1,) * spec.nd
    common = _non_default({"stride": spec.stride, "dilation": spec.dilation, "groups": spec.groups,
                           "bias": spec.bias, "padding_mode": spec.padding_mode},
                          {"stride": ones, "dilation": ones, "groups": 1, "bias": True, "padding_mode": "zeros"})
    head = (spec.in_channels, spec.out_channels)
    if all(b == e for b, e in spec.padding):
        pads = tuple(b for b, _ in spec.padding)
        kw = {"kernel_size": spec.kernel_size, **({"padding": pads} if any(pads) else {}), **common}
        return Source(f"nn.Conv{spec.nd}d({arg_list(*head, **kw)})")
    if all(s == 1 for s in spec.stride) and spec.padding == _same_pads(spec):
        return Source(f"nn.Conv{spec.nd}d({arg_list(*head, kernel_size=spec.kernel_size, padding='same', **common)})")
    mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
    common.pop("padding_mode", None)
    flat = tuple(p for pair in reversed(spec.padding) for p in pair)  # F.pad order: last axis first
    kw = {"kernel_size": spec.kernel_size, **common, "pads": flat, "pad_mode": mode}
    return Source(f"PadThenConv{spec.nd}d({arg_list(*head, **kw)})", (f"PadThenConv{spec.nd}d",))


def _symmetric(spec: ir.ConvTranspose | ir.Pool) -> ir.Ints:
    """torch's one-int-per-axis padding; (begin, end) pairs that differ have no torch spelling."""
    if any(b != e for b, e in spec.padding):
        raise ExportError(f"{spec.type_name}: padding {spec.padding} is asymmetric (begin, end) per axis, "
                          f"which torch's nn.{spec.type_name} cannot express; only symmetric padding "
                          "has a torch source")
    return tuple(b for b, _ in spec.padding)


def _conv_transpose(spec: ir.ConvTranspose) -> Source:
    ones, zeros = (1,) * spec.nd, (0,) * spec.nd
    kw = _non_default({"stride": spec.stride, "padding": _symmetric(spec), "output_padding": spec.output_padding,
                       "groups": spec.groups, "bias": spec.bias, "dilation": spec.dilation},
                      {"stride": ones, "padding": zeros, "output_padding": zeros, "groups": 1, "bias": True,
                       "dilation": ones})
    args = arg_list(spec.in_channels, spec.out_channels, kernel_size=spec.kernel_size, **kw)
    return Source(f"nn.ConvTranspose{spec.nd}d({args})")


def _pool(spec: ir.Pool) -> Source:
    zeros, ones = (0,) * spec.nd, (1,) * spec.nd
    kw: dict[str, object] = {"kernel_size": spec.kernel_size}
    if spec.stride != spec.kernel_size:
        kw["stride"] = spec.stride
    extra = {"padding": _symmetric(spec), "ceil_mode": spec.ceil_mode}
    if spec.mode == "max":
        kw |= _non_default({**extra, "dilation": spec.dilation},
                           {"padding": zeros, "ceil_mode": False, "dilation": ones})
        return Source(f"nn.MaxPool{spec.nd}d({arg_list(**kw)})")
    kw |= _non_default({**extra, "count_include_pad": spec.count_include_pad},
                       {"padding": zeros, "ceil_mode": False, "count_include_pad": True})
    return Source(f"nn.AvgPool{spec.nd}d({arg_list(**kw)})")


def _adaptive(spec: ir.AdaptiveAvgPool) -> Source:
    return Source(f"nn.AdaptiveAvgPool{spec.nd}d({spec.output_size!r})")


def _adaptive_max(spec: ir.AdaptiveMaxPool) -> Source:
    return Source(f"nn.AdaptiveMaxPool{spec.nd}d({spec.output_size!r})")


def _pad(spec: ir.Pad) -> Source:
    """A pad module, or for the F.pad spelling (nd 0) the FPad helper (F.pad in a module)."""
    flat = tuple(v for pair in reversed(spec.padding) for v in pair)
    if spec.nd == 0:  # F.pad in the file: F.pad in forward
        kw = {"value": spec.value} if spec.mode == "constant" else {"mode": spec.mode}
        return Source(f"F.pad({{x}}, {arg_list(flat, **kw)})", ("F",), inline=True)
    if spec.type_name.startswith("Constant"):
        return Source(f"nn.{spec.type_name}({arg_list(flat, spec.value)})")
    return Source(f"nn.{spec.type_name}({arg_list(flat)})")


def _pixel_shuffle(spec: ir.PixelShuffle) -> Source:
    return Source(f"nn.{spec.type_name}({spec.factor})")


def _instancenorm(spec: ir.InstanceNorm) -> Source:
    return _running_norm(f"InstanceNorm{spec.nd}d", spec, affine=False, track_running_stats=False)


def _groupnorm(spec: ir.GroupNorm) -> Source:
    kw = _non_default({"eps": spec.eps, "affine": spec.affine}, {"eps": 1e-5, "affine": True})
    return Source(f"nn.GroupNorm({arg_list(spec.num_groups, spec.num_channels, **kw)})")


def _prelu(spec: ir.PReLU) -> Source:
    kw = _non_default({"num_parameters": spec.num_parameters, "init": spec.init}, {"num_parameters": 1, "init": 0.25})
    return Source(f"nn.PReLU({arg_list(**kw)})")


def _softmax(spec: ir.Softmax) -> Source:
    return Source(f"nn.{spec.type_name}({arg_list(**({} if spec.dim is None else {'dim': spec.dim}))})")


def _upsample(spec: ir.Upsample) -> Source:
    kw = _non_default({"size": spec.size, "scale_factor": spec.scale_factor, "mode": spec.mode,
                       "align_corners": spec.align_corners},
                      {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None})
    return Source(f"nn.Upsample({arg_list(**kw)})")


def _batchnorm(spec: ir.BatchNorm) -> Source:
    return _running_norm(f"BatchNorm{spec.nd}d", spec, affine=True, track_running_stats=True)


def _running_norm(cls: str, spec: ir.BatchNorm | ir.InstanceNorm, **defaults: bool) -> Source:
    """BatchNorm and InstanceNorm share their knobs; only the defaults of affine and
    track_running_stats differ (given as ``defaults``)."""
    kw = _non_default({"eps": spec.eps, "momentum": spec.momentum, "affine": spec.affine,
                       "track_running_stats": spec.track_running_stats},
                      {"eps": 1e-5, "momentum": 0.1, **defaults})
    return Source(f"nn.{cls}({arg_list(spec.num_features, **kw)})")


def _elementwise(spec: ir.Elementwise) -> Source:
    """Activations, Identity, Dropout*: torch's class of the same name with the IR's knobs."""
    return Source(f"nn.{spec.type_name}({arg_list(**dict(spec.params))})")


def _flatten(spec: ir.Flatten) -> Source:
    kw = _non_default({"start_dim": spec.start_dim, "end_dim": spec.end_dim}, {"start_dim": 1, "end_dim": -1})
    return Source(f"nn.Flatten({arg_list(**kw)})")


def _unflatten(spec: ir.Unflatten) -> Source:
    return Source(f"nn.Unflatten({arg_list(spec.dim, spec.sizes)})")


def _linear(spec: ir.Linear) -> Source:
    kw = {} if spec.bias else {"bias": False}
    return Source(f"nn.Linear({arg_list(spec.in_features, spec.out_features, **kw)})")


#: layer kind -> its constructor source
LAYER_SOURCE: dict[type, Callable] = {
    ir.Conv: _conv,
    ir.ConvTranspose: _conv_transpose,
    ir.Pool: _pool,
    ir.AdaptiveAvgPool: _adaptive,
    ir.AdaptiveMaxPool: _adaptive_max,
    ir.Pad: _pad,
    ir.PixelShuffle: _pixel_shuffle,
    ir.InstanceNorm: _instancenorm,
    ir.GroupNorm: _groupnorm,
    ir.PReLU: _prelu,
    ir.Softmax: _softmax,
    ir.Upsample: _upsample,
    ir.BatchNorm: _batchnorm,
    ir.Elementwise: _elementwise,
    ir.Flatten: _flatten,
    ir.Unflatten: _unflatten,
    ir.Linear: _linear,
}


def layer_source(spec: ir.LayerSpec) -> Source:
    """The constructor expression of one layer: ``nn.Conv2d(3, 8, kernel_size=(3, 3))``."""
    return LAYER_SOURCE[type(spec)](spec)


# --- helpers written into the file when used --------------------------------------------------------

_PAD_THEN_CONV = '''
class PadThenConv{nd}d(nn.Conv{nd}d):
    """nn.Conv{nd}d after F.pad with (begin, end) pads that Conv{nd}d's constructor cannot express
    (pads in F.pad order: last axis first). Same parameters, so the same state_dict keys."""

    def __init__(self, *args, pads: tuple, pad_mode: str = "constant", **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)
        self.pads, self.pad_mode = pads, pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads, mode=self.pad_mode))
'''

_AXES = ("depth", "top", "left")


def _center_crop(nd: int) -> str:
    """``center_crop{nd}d``: one line per axis (no loop, so torch.fx can trace it)."""
    names = _AXES[3 - nd:]
    starts = "".join(f"    {n} = (v.shape[{j}] - like.shape[{j}]) // 2\n" for j, n in enumerate(names, 2))
    index = ", ".join(f"{n}:{n} + like.shape[{j}]" for j, n in enumerate(names, 2))
    return (f"\ndef center_crop{nd}d(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:\n"
            f'    """v cut to like\'s spatial size: (v - like) // 2 dropped at the start, the rest at the end."""\n'
            f"{starts}    return v[:, :, {index}]\n")


def _pad_to(nd: int) -> str:
    """``pad_to{nd}d``: pad v's spatial dims up to like's, (like - v) // 2 at the start (milesial's Up)."""
    names = _AXES[3 - nd:]
    diffs = "".join(f"    d{n} = like.shape[{j}] - v.shape[{j}]\n" for j, n in enumerate(names, 2))
    flat = ", ".join(f"d{n} // 2, d{n} - d{n} // 2" for n in reversed(names))
    return (f"\ndef pad_to{nd}d(v: torch.Tensor, like: torch.Tensor, mode: str = \"constant\", value: float = 0.0)"
            " -> torch.Tensor:\n"
            f'    """v padded to like\'s spatial size: (like - v) // 2 at the start, the rest at the end."""\n'
            f"{diffs}    pads = [{flat}]\n"
            "    return F.pad(v, pads, value=value) if mode == \"constant\" else F.pad(v, pads, mode=mode)\n")


HELPERS: dict[str, str] = {
    **{f"pad_to{nd}d": _pad_to(nd) for nd in (1, 2, 3)},
    **{f"PadThenConv{nd}d": _PAD_THEN_CONV.format(nd=nd) for nd in (1, 2, 3)},
    **{f"center_crop{nd}d": _center_crop(nd) for nd in (1, 2, 3)},
}

# --- node ops -----------------------------------------------------------------------------------------


def _op_cat(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"torch.cat([{', '.join(args)}], dim={node.dim})")


def _op_add(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"{args[0]} + {args[1]}")


def _op_crop(node: ir.Node, args: list[str], rank: int) -> Source:
    helper = f"center_crop{rank - 2}d"
    return Source(f"{helper}({args[0]}, {args[1]})", (helper,))


def _op_sub(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"{args[0]} - {args[1]}")


def _op_mul(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"{args[0]} * {args[1]}")


def _op_pad_like(node: ir.Node, args: list[str], rank: int) -> Source:
    mode, value = node.attr("mode", "constant"), node.attr("value", 0.0)
    kw = "".join([f", mode={mode!r}" if mode != "constant" else "", f", value={value!r}" if value else ""])
    return Source(f"pad_to{rank - 2}d({args[0]}, {args[1]}{kw})", (f"pad_to{rank - 2}d",))


def _op_interp_like(node: ir.Node, args: list[str], rank: int) -> Source:
    ac = node.attr("align_corners")
    kw = f", align_corners={ac!r}" if ac is not None else ""
    return Source(f"F.interpolate({args[0]}, size={args[1]}.shape[2:], mode={node.attr('mode')!r}{kw})", ("F",))


_SCALAR = {"add": "{v} + {c!r}", "sub": "{v} - {c!r}", "rsub": "{c!r} - {v}", "mul": "{v} * {c!r}",
           "div": "{v} / {c!r}"}


def _op_scalar(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(_SCALAR[str(node.attr("op"))].format(v=args[0], c=node.attr("value")))


def _slice_text(a: object, b: object) -> str:
    return f"{'' if a is None else a}:{'' if b is None else b}"


def _op_slice(node: ir.Node, args: list[str], rank: int) -> Source:
    part = node.attr("part")
    if part is not None:  # output k of torch.chunk / torch.split
        kind, arg, dim, k, _ = part
        return Source(f"torch.{kind}({args[0]}, {arg!r}, dim={dim})[{k}]")
    index = node.attr("index", ())
    return Source(f"{args[0]}[{', '.join(_slice_text(a, b) for a, b in index)}]")


def _op_mean(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"{args[0]}.mean(dim={node.attr('dims')!r}, keepdim={node.attr('keepdim')!r})")


def _op_unsqueeze(node: ir.Node, args: list[str], rank: int) -> Source:
    return Source(f"{args[0]}.unsqueeze({node.attr('dim')!r})")


def _op_squeeze(node: ir.Node, args: list[str], rank: int) -> Source:
    dims = node.attr("dims")
    return Source(f"{args[0]}.squeeze({'' if dims is None else repr(dims)})")


#: node op (other than 'input' and 'layer') -> its forward expression (given the value's rank)
OP_SOURCE: dict[str, Callable[[ir.Node, list[str], int], Source] | None] = {
    "cat": _op_cat,
    "add": _op_add,
    "sub": _op_sub,
    "mul": _op_mul,
    "crop": _op_crop,
    "pad_like": _op_pad_like,
    "interp_like": _op_interp_like,
    "scalar": _op_scalar,
    "slice": _op_slice,
    "mean": _op_mean,
    "unsqueeze": _op_unsqueeze,
    "squeeze": _op_squeeze,
    "reshape": None,  # needs the inputs' names: _reshape_line
}
