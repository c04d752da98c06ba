r"""PyTorch source for a graph: ``to_torch_source(graph)`` writes a standalone module file.

The file imports only torch. Its ``Model`` registers every layer under its layer name, so
``Model().state_dict()`` keys are the ONNX initializer names and the weight-file keys
(``{layer_name}.weight``, ...); a dotted layer name ``inc.double_conv.0`` is reached through nested
containers (numeric children in an ``nn.Sequential``, named ones in an ``nn.ModuleDict``), so it is
that state_dict key too. ``forward`` applies the graph's nodes in order, one line per value.

>>> import convgraph as cg
>>> src = to_torch_source(cg.parse("x = input(N, 3, H, W)\nc = Conv2d(3, 8, 3)(x)"))
>>> print(src[src.index("class Model"):])
class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, kernel_size=(3, 3))
<BLANKLINE>
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.c(x)
        return c
<BLANKLINE>

One generator per layer kind (``LAYER_SOURCE``) and per node op (``OP_SOURCE``); what a
constructor cannot express (asymmetric conv pads, a centre crop) comes from a small helper
written into the file only when used.
"""
from __future__ import annotations

import itertools
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass

from convgraph import ir
from convgraph.shapes import infer


@dataclass(frozen=True)
class Source:
    """A constructor expression and the helpers (names in ``HELPERS``) it needs; ``inline``: a
    parameter-free call written in forward instead (``expr`` has ``{x}`` for its input)."""

    expr: str
    helpers: tuple[str, ...] = ()
    inline: bool = False


def _args(*positional: object, **keywords: object) -> str:
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
        return Source(f"nn.Conv{spec.nd}d({_args(*head, **kw)})")
    if all(s == 1 for s in spec.stride) and spec.padding == _same_pads(spec):
        return Source(f"nn.Conv{spec.nd}d({_args(*head, kernel_size=spec.kernel_size, padding='same', **common)})")
    mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
    common.pop("padding_mode", None)
    flat = tuple(p for pair in reversed(spec.padding) for p in pair)  # F.pad order: last axis first
    kw = {"kernel_size": spec.kernel_size, **common, "pads": flat, "pad_mode": mode}
    return Source(f"PadThenConv{spec.nd}d({_args(*head, **kw)})", (f"PadThenConv{spec.nd}d",))


def _conv_transpose(spec: ir.ConvTranspose) -> Source:
    ones, zeros = (1,) * spec.nd, (0,) * spec.nd
    kw = _non_default({"stride": spec.stride, "padding": spec.padding, "output_padding": spec.output_padding,
                       "groups": spec.groups, "bias": spec.bias, "dilation": spec.dilation},
                      {"stride": ones, "padding": zeros, "output_padding": zeros, "groups": 1, "bias": True,
                       "dilation": ones})
    args = _args(spec.in_channels, spec.out_channels, kernel_size=spec.kernel_size, **kw)
    return Source(f"nn.ConvTranspose{spec.nd}d({args})")


def _pool(spec: ir.Pool) -> Source:
    zeros, ones = (0,) * spec.nd, (1,) * spec.nd
    kw: dict[str, object] = {"kernel_size": spec.kernel_size}
    if spec.stride != spec.kernel_size:
        kw["stride"] = spec.stride
    extra = {"padding": spec.padding, "ceil_mode": spec.ceil_mode}
    if spec.mode == "max":
        kw |= _non_default({**extra, "dilation": spec.dilation},
                           {"padding": zeros, "ceil_mode": False, "dilation": ones})
        return Source(f"nn.MaxPool{spec.nd}d({_args(**kw)})")
    kw |= _non_default({**extra, "count_include_pad": spec.count_include_pad},
                       {"padding": zeros, "ceil_mode": False, "count_include_pad": True})
    return Source(f"nn.AvgPool{spec.nd}d({_args(**kw)})")


def _adaptive(spec: ir.AdaptiveAvgPool) -> Source:
    return Source(f"nn.AdaptiveAvgPool{spec.nd}d({spec.output_size!r})")


def _adaptive_max(spec: ir.AdaptiveMaxPool) -> Source:
    return Source(f"nn.AdaptiveMaxPool{spec.nd}d({spec.output_size!r})")


def _pad(spec: ir.Pad) -> Source:
    """A pad module, or for the F.pad spelling (nd 0) the FPad helper (F.pad in a module)."""
    flat = tuple(v for pair in reversed(spec.padding) for v in pair)
    if spec.nd == 0:  # F.pad in the file: F.pad in forward
        kw = {"value": spec.value} if spec.mode == "constant" else {"mode": spec.mode}
        return Source(f"F.pad({{x}}, {_args(flat, **kw)})", ("F",), inline=True)
    if spec.type_name.startswith("Constant"):
        return Source(f"nn.{spec.type_name}({_args(flat, spec.value)})")
    return Source(f"nn.{spec.type_name}({_args(flat)})")


def _pixel_shuffle(spec: ir.PixelShuffle) -> Source:
    return Source(f"nn.{spec.type_name}({spec.factor})")


def _instancenorm(spec: ir.InstanceNorm) -> Source:
    kw = _non_default({"eps": spec.eps, "momentum": spec.momentum, "affine": spec.affine,
                       "track_running_stats": spec.track_running_stats},
                      {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False})
    return Source(f"nn.InstanceNorm{spec.nd}d({_args(spec.num_features, **kw)})")


def _groupnorm(spec: ir.GroupNorm) -> Source:
    kw = _non_default({"eps": spec.eps, "affine": spec.affine}, {"eps": 1e-5, "affine": True})
    return Source(f"nn.GroupNorm({_args(spec.num_groups, spec.num_channels, **kw)})")


def _prelu(spec: ir.PReLU) -> Source:
    kw = _non_default({"num_parameters": spec.num_parameters, "init": spec.init}, {"num_parameters": 1, "init": 0.25})
    return Source(f"nn.PReLU({_args(**kw)})")


def _softmax(spec: ir.Softmax) -> Source:
    return Source(f"nn.{spec.type_name}({_args(**({} if spec.dim is None else {'dim': spec.dim}))})")


def _upsample(spec: ir.Upsample) -> Source:
    kw = _non_default({"size": spec.size, "scale_factor": spec.scale_factor, "mode": spec.mode,
                       "align_corners": spec.align_corners},
                      {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None})
    return Source(f"nn.Upsample({_args(**kw)})")


def _batchnorm(spec: ir.BatchNorm) -> Source:
    kw = _non_default({"eps": spec.eps, "momentum": spec.momentum, "affine": spec.affine,
                       "track_running_stats": spec.track_running_stats},
                      {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True})
    return Source(f"nn.BatchNorm{spec.nd}d({_args(spec.num_features, **kw)})")


def _elementwise(spec: ir.Elementwise) -> Source:
    """Activations, Identity, Dropout*: torch's class of the same name with the IR's knobs."""
    return Source(f"nn.{spec.type_name}({_args(**dict(spec.params))})")


def _flatten(spec: ir.Flatten) -> Source:
    kw = _non_default({"start_dim": spec.start_dim, "end_dim": spec.end_dim}, {"start_dim": 1, "end_dim": -1})
    return Source(f"nn.Flatten({_args(**kw)})")


def _unflatten(spec: ir.Unflatten) -> Source:
    return Source(f"nn.Unflatten({_args(spec.dim, spec.sizes)})")


def _linear(spec: ir.Linear) -> Source:
    kw = {} if spec.bias else {"bias": False}
    return Source(f"nn.Linear({_args(spec.in_features, spec.out_features, **kw)})")


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

# --- the module tree of dotted layer names -------------------------------------------------------------

#: names that cannot be attributes of a module: nn.Module's and nn.ModuleDict's own members
_RESERVED = frozenset((
    "training", "forward", "train", "eval", "to", "type", "cuda", "cpu", "float", "double", "half", "bfloat16",
    "ipu", "xpu", "mtia", "parameters", "buffers", "children", "modules", "state_dict", "load_state_dict",
    "apply", "zero_grad", "share_memory", "compile", "register_buffer", "register_parameter", "register_module",
    "add_module", "get_submodule", "set_submodule", "get_parameter", "get_buffer", "get_extra_state",
    "set_extra_state", "named_parameters", "named_modules", "named_children", "named_buffers", "requires_grad_",
    "extra_repr", "dump_patches", "call_super_init", "keys", "items", "values", "update", "pop", "clear",
))

Tree = dict  # name -> Tree | Source, in first-use order


def _attr_ok(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name not in _RESERVED and not name.startswith("_")


def _lname(node: ir.Node) -> str:
    """A layer node's layer name (every layer node has one)."""
    if node.layer_name is None:
        raise TypeError(f"node '{node.name}' has no layer name")
    return node.layer_name


def _tree(graph: ir.Graph) -> Tree:
    root: Tree = {}
    for node in graph.layers():
        *path, leaf = _lname(node).split(".")
        at = root
        for part in path:
            at = at.setdefault(part, {})
        src = layer_source(node.spec)
        if not src.inline:
            at[leaf] = src
    return root


def _is_sequential(tree: Tree) -> bool:
    """Children named 0, 1, ..., n-1: what nn.Sequential names them."""
    return sorted(tree, key=lambda k: int(k) if k.isdigit() else -1) == [str(i) for i in range(len(tree))]


def _render(item: Tree | Source, indent: str) -> str:
    if isinstance(item, Source):
        return item.expr
    inner = indent + "    "
    if _is_sequential(item):
        body = "".join(f"{inner}{_render(item[str(i)], inner)},\n" for i in range(len(item)))
        return f"nn.Sequential(\n{body}{indent})"
    body = "".join(f"{inner}{k!r}: {_render(v, inner)},\n" for k, v in item.items())
    return f"nn.ModuleDict({{\n{body}{indent}}})"


def _access(tree: Tree, dotted: str) -> str:
    """``self.inc.double_conv[0]``: the path to a layer through the containers."""
    out, at = "self", tree
    for i, part in enumerate(dotted.split(".")):
        if i == 0:
            out += f".{part}" if _attr_ok(part) else f"._modules[{part!r}]"
        elif _is_sequential(at):
            out += f"[{part}]"
        else:
            out += f".{part}" if _attr_ok(part) else f"[{part!r}]"
        at = at[part] if isinstance(at, dict) else at
    return out


def _helpers_used(tree: Tree) -> set[str]:
    used: set[str] = set()
    for v in tree.values():
        used |= _helpers_used(v) if isinstance(v, dict) else set(v.helpers)
    return used


# --- the file ------------------------------------------------------------------------------------------

_TAKEN = frozenset({"self", "torch", "nn", "F", "Model", *HELPERS})


def _local_names(graph: ir.Graph) -> dict[str, str]:
    """Each value's Python variable in forward: its own name where that is an identifier."""
    names: dict[str, str] = {}
    used = set(_TAKEN)
    for node in graph.nodes:
        base = re.sub(r"\W", "_", node.name)  # inc.pooled -> inc_pooled
        base = base if base.isidentifier() and not keyword.iskeyword(base) else f"v_{base}"
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names[node.name] = name
    return names


def _subtree(tree: Tree, dotted: str) -> Tree | Source:
    at: Tree | Source = tree
    for part in dotted.split("."):
        at = at[part]  # type: ignore[index]
    return at


def _sequential_run(graph: ir.Graph, tree: Tree, start: int, uses: dict[str, int]) -> int:
    """How many nodes from ``start`` apply one whole nn.Sequential in order (0 if they do not):
    layers ``P.0`` ... ``P.(n-1)`` each on the previous value, intermediates used nowhere else."""
    first = graph.nodes[start]
    if first.op != "layer" or not _lname(first).endswith(".0"):
        return 0
    prefix = _lname(first)[:-2]
    seq = _subtree(tree, prefix)
    n = len(seq) if isinstance(seq, dict) and _is_sequential(seq) else 0
    run = graph.nodes[start:start + n]
    if n < 2 or len(run) < n:
        return 0
    chained = all(b.op == "layer" and b.layer_name == f"{prefix}.{i}" and b.inputs == (a.name,)
                  for i, (a, b) in enumerate(itertools.pairwise(run), 1))
    private = all(uses.get(a.name, 0) == 1 and a.name not in graph.outputs for a in run[:-1])
    return n if chained and private else 0


def _uses(graph: ir.Graph) -> dict[str, int]:
    count: dict[str, int] = {}
    for node in graph.nodes:
        for i in node.inputs:
            count[i] = count.get(i, 0) + 1
    return count


def _unpacked_parts(graph: ir.Graph, node: ir.Node, local: dict[str, str]) -> str | None:
    """``a, b = torch.chunk(v, 2, dim=1)`` at the first part of a chunk/split ("" at the others)."""
    part = node.attr("part") if node.op == "slice" else None
    if part is None:
        return None
    kind, arg, dim, k, _ = part
    if k:
        return ""
    names = [local[n.name] for n in graph.nodes if n.op == "slice" and n.inputs == node.inputs
             and n.attr("part") is not None and n.attr("part")[:3] == (kind, arg, dim)]
    targets = ", ".join(names) + ("," if len(names) == 1 else "")
    return f"{targets} = torch.{kind}({local[node.inputs[0]]}, {arg!r}, dim={dim})"


def _forward_lines(graph: ir.Graph, tree: Tree, local: dict[str, str], helpers: set[str]) -> list[str]:
    """One line per value; a whole nn.Sequential applied in order is one call; chunk/split unpacked."""
    lines, uses, i = [], _uses(graph), 0
    while i < len(graph.nodes):
        node, n = graph.nodes[i], _sequential_run(graph, tree, i, uses)
        unpacked = _unpacked_parts(graph, node, local)
        if unpacked is not None:
            lines += [unpacked] if unpacked else []
            i += 1
            continue
        if n:
            last = graph.nodes[i + n - 1]
            lines.append(f"{local[last.name]} = {_access(tree, _lname(node)[:-2])}({local[node.inputs[0]]})")
            i += n
            continue
        if node.op != "input":
            lines.append(_forward_line(graph, node, tree, local, helpers))
        i += 1
    return lines


def _symbol_size(graph: ir.Graph, symbol: str, local: dict[str, str]) -> str:
    """``x.shape[2]``: where an input carries the size symbol."""
    for n in graph.inputs:
        if symbol in n.dims:
            return f"{local[n.name]}.shape[{n.dims.index(symbol)}]"
    raise ValueError(f"no input has the size {symbol}")


def _reshape_expr(graph: ir.Graph, node: ir.Node, arg: str, local: dict[str, str]) -> str:
    """``v.reshape(x.shape[0], 2, 16, x.shape[2])``: a symbol's size read from the input that has it."""
    entries = []
    for e in node.attr("shape"):
        if isinstance(e, tuple):
            size = _symbol_size(graph, e[0], local)
            entries.append(size if e[1] == 1 else f"{e[1]} * {size}")
        else:
            entries.append(repr(e))
    return f"{arg}.reshape({', '.join(entries)})"


def _forward_line(graph: ir.Graph, node: ir.Node, tree: Tree, local: dict[str, str], helpers: set[str]) -> str:
    args = [local[i] for i in node.inputs]
    if node.op == "layer":
        src = layer_source(node.spec)
        if src.inline:
            helpers.update(src.helpers)
            return f"{local[node.name]} = {src.expr.format(x=args[0])}"
        return f"{local[node.name]} = {_access(tree, _lname(node))}({args[0]})"
    if node.op == "reshape":
        return f"{local[node.name]} = {_reshape_expr(graph, node, args[0], local)}"
    src = OP_SOURCE[node.op](node, args, len(infer(graph).values[node.name]))  # type: ignore[misc]
    helpers.update(src.helpers)
    return f"{local[node.name]} = {src.expr}"


def _init_lines(tree: Tree) -> list[str]:
    lines = []
    for name, item in tree.items():
        expr = _render(item, " " * 8)
        if _attr_ok(name):
            lines.append(f"self.{name} = {expr}")
        else:
            lines.append(f"self.add_module({name!r}, {expr})" if not name.startswith("_") and name not in _RESERVED
                         else f"self._modules[{name!r}] = {expr}")
    return lines


def _forward(graph: ir.Graph, tree: Tree, helpers: set[str]) -> list[str]:
    local = _local_names(graph)
    params = ", ".join(f"{local[n.name]}: torch.Tensor" for n in graph.inputs)
    body = _forward_lines(graph, tree, local, helpers)
    outs = [local[o] for o in graph.outputs]
    ret = "torch.Tensor" if len(outs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outs))}]"
    return [f"def forward(self, {params}) -> {ret}:", *("    " + b for b in body), f"    return {', '.join(outs)}"]


def _docstring(graph: ir.Graph) -> str:
    head = f"PyTorch module generated by convgraph from {graph.filename}."
    text = f"{head}\n\n{graph.doc.strip()}" if graph.doc else head
    return '"""' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '\n"""'


def _is_chain(graph: ir.Graph) -> bool:
    """One input, then layers each applied to the previous value, the last one the only output."""
    nodes = graph.nodes
    if len(nodes) < 2 or nodes[0].op != "input" or graph.outputs != (nodes[-1].name,):
        return False
    return all(n.op == "layer" and n.inputs == (prev.name,) for prev, n in itertools.pairwise(nodes))


def _sequential_class(tree: Tree) -> list[str]:
    """``class Model(nn.Sequential)`` for a chain of layers named 0, 1, ... (the shorthand)."""
    body = _render(tree, " " * 8)[len("nn.Sequential("):-1].rstrip()
    return ["class Model(nn.Sequential):", "    def __init__(self) -> None:",
            f"        super().__init__({body}", "        )"]


def _module_class(graph: ir.Graph, tree: Tree, helpers: set[str]) -> list[str]:
    forward = _forward(graph, tree, helpers)
    init = ["def __init__(self) -> None:", "    super().__init__()", *("    " + line for line in _init_lines(tree))]
    return ["class Model(nn.Module):", *("    " + line if line else "" for line in [*init, "", *forward])]


def to_torch_source(graph: ir.Graph) -> str:
    """The source of a standalone module file (imports only torch) defining ``Model``, whose
    state_dict keys are the graph's parameter names and whose forward takes the inputs in order."""
    tree = _tree(graph)
    helpers = _helpers_used(tree)
    chain = _is_chain(graph) and _is_sequential(tree)
    cls = _sequential_class(tree) if chain else _module_class(graph, tree, helpers)
    needs_f = any(h.startswith(("PadThenConv", "pad_to")) or h == "F" for h in helpers)
    functional = "import torch.nn.functional as F\n" if needs_f else ""
    parts = [_docstring(graph), f"import torch\n{functional}from torch import nn\n",
             *(HELPERS[h].strip("\n") + "\n" for h in sorted(helpers) if h in HELPERS), "\n".join(cls) + "\n"]
    return "\n\n".join(parts)
