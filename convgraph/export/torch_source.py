r"""PyTorch source for a graph: ``to_torch_source(graph)`` writes a standalone module file.

The file imports only torch. Its ``Model`` registers every layer under its layer name, so
``Model().state_dict()`` keys are the ONNX initializer names and the weight-file keys
(``{layer_name}.weight``, ...); a dotted layer name ``inc.double_conv.0`` is reached through nested
containers (numeric children in an ``nn.Sequential``, named ones in an ``nn.ModuleDict``), so it is
that state_dict key too. ``forward`` applies the graph's nodes in order, one line per value.

Each DSL block (``Graph.blocks``) is a class of its own, instantiated at the call's module path
(``self.inc = DoubleConv(3, 64)``) and called in its parent's forward (``inc = self.inc(x)``); its
``__init__`` creates its layers under their names inside the block, so the state_dict keys do not
change. The calls of a block share one class where their layers differ only in counts (channels,
features, groups) that the block's int parameters give, e.g. ``nn.Conv2d(cin, cout, ...)``; the
calls that differ otherwise get a class of their own (``DoubleConv_2``). A Sequential stays an
``nn.Sequential``, also of block modules (``self.layer1 = nn.Sequential(BasicBlock(64), ...)``).

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

One generator per layer kind (``LAYER_SOURCE``) and per node op (``OP_SOURCE``, both in
``_torch_codegen``); what a constructor cannot express (asymmetric conv pads, a centre crop) comes
from a small helper written into the file only when used.
"""
from __future__ import annotations

import dataclasses
import itertools
import keyword
from dataclasses import dataclass
from typing import Any

from convgraph import ir
from convgraph.export import _torch_scopes as _sc
from convgraph.export._torch_codegen import HELPERS, LAYER_SOURCE, OP_SOURCE, Source, arg_list, layer_source
from convgraph.shapes import infer

__all__ = ["HELPERS", "LAYER_SOURCE", "OP_SOURCE", "Source", "layer_source", "to_torch_source"]

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


def _tree(leaves: dict[str, Source]) -> Tree:
    """The module tree of a class: its layers' (and child modules') relative dotted names."""
    root: Tree = {}
    for dotted, src in leaves.items():
        *path, leaf = dotted.split(".")
        at = root
        for part in path:
            at = at.setdefault(part, {})
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


# --- one class's forward --------------------------------------------------------------------------------

_TAKEN = frozenset({"self", "torch", "nn", "F", "Model", *HELPERS})


def _local_names(graph: ir.Graph) -> dict[str, str]:
    """Each value's Python variable in the Model's forward: its own name where that is an identifier."""
    used = set(_TAKEN)
    return {node.name: _sc.identifier(node.name, used) for node in graph.nodes}


def _subtree(tree: Tree, dotted: str) -> Tree | Source:
    at: Tree | Source = tree
    for part in dotted.split("."):
        at = at[part]  # type: ignore[index]
    return at


@dataclass
class _Writer:
    """What the forward of one class is written from (``scope.items`` in order)."""

    graph: ir.Graph
    scope: _sc.Scope
    tree: Tree
    local: dict[str, str]
    helpers: set[str]
    outputs: tuple[str, ...]

    def path(self, item: _sc.Item) -> str | None:
        """The module path of an item with a module here (a layer or a child call), else None."""
        if isinstance(item, ir.BlockCall):
            return self.scope.relative(item.path)
        if item.op == "layer" and not layer_source(item.spec).inline:
            return self.scope.relative(_lname(item))
        return None

    def uses(self) -> dict[str, int]:
        count: dict[str, int] = {}
        for item in self.scope.items:
            for v in (v for _, v in item.inputs) if isinstance(item, ir.BlockCall) else item.inputs:
                count[v] = count.get(v, 0) + 1
        return count


def _single(item: _sc.Item) -> tuple[str, str] | None:
    """(input, output) of an item that takes one value and makes one."""
    if isinstance(item, ir.BlockCall):
        ok = len(item.inputs) == 1 and len(item.outputs) == 1 and not item.tuple_return
        return (item.inputs[0][1], item.outputs[0]) if ok else None
    return (item.inputs[0], item.name) if item.op == "layer" else None


def _sequential_run(w: _Writer, start: int, uses: dict[str, int]) -> int:
    """How many items from ``start`` apply one whole nn.Sequential in order (0 if they do not):
    modules ``P.0`` ... ``P.(n-1)`` each on the previous value, intermediates used nowhere else."""
    items = w.scope.items
    first = w.path(items[start])
    if first is None or not first.endswith(".0"):
        return 0
    prefix = first[:-2]
    seq = _subtree(w.tree, prefix)
    n = len(seq) if isinstance(seq, dict) and _is_sequential(seq) else 0
    run = items[start:start + n]
    if n < 2 or len(run) < n:
        return 0
    ends = [_single(i) for i in run]
    if any(e is None or w.path(i) != f"{prefix}.{k}" for k, (i, e) in enumerate(zip(run, ends))):
        return 0
    chained = all(b[0] == a[1] for a, b in itertools.pairwise(ends))  # type: ignore[index]
    private = all(uses.get(e[1], 0) == 1 and e[1] not in w.outputs for e in ends[:-1])  # type: ignore[index]
    return n if chained and private else 0


def _unpacked_parts(w: _Writer, node: ir.Node) -> str | None:
    """``a, b = torch.chunk(v, 2, dim=1)`` at the first part of a chunk/split ("" at the others)."""
    part = node.attr("part") if node.op == "slice" else None
    if part is None:
        return None
    kind, arg, dim, k, _ = part
    if k:
        return ""
    names = [w.local[n.name] for n in w.scope.items if isinstance(n, ir.Node) and n.op == "slice"
             and n.inputs == node.inputs and n.attr("part") is not None and n.attr("part")[:3] == (kind, arg, dim)]
    targets = ", ".join(names) + ("," if len(names) == 1 else "")
    return f"{targets} = torch.{kind}({w.local[node.inputs[0]]}, {arg!r}, dim={dim})"


def _call_line(w: _Writer, call: ir.BlockCall, path: str) -> str:
    """``a, b = self.enc1(x)``: a child module's call."""
    targets = ", ".join(w.local[o] for o in call.outputs) + ("," if call.tuple_return and len(call.outputs) == 1
                                                             else "")
    return f"{targets} = {_access(w.tree, path)}({', '.join(w.local[v] for _, v in call.inputs)})"


def _forward_lines(w: _Writer) -> list[str]:
    """One line per value; a whole nn.Sequential applied in order is one call; chunk/split unpacked."""
    lines, uses, i, items = [], w.uses(), 0, w.scope.items
    while i < len(items):
        item, n = items[i], _sequential_run(w, i, uses)
        if n:
            first, last = _single(item), _single(items[i + n - 1])
            lines.append(f"{w.local[last[1]]} = {_access(w.tree, w.path(item)[:-2])}({w.local[first[0]]})")  # type: ignore
            i += n
            continue
        if isinstance(item, ir.BlockCall):
            lines.append(_call_line(w, item, w.path(item)))  # type: ignore[arg-type]
        elif (unpacked := _unpacked_parts(w, item)) is not None:
            lines += [unpacked] if unpacked else []
        elif item.op != "input":
            lines.append(_forward_line(w, item))
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


def _forward_line(w: _Writer, node: ir.Node) -> str:
    args, local = [w.local[i] for i in node.inputs], w.local
    if node.op == "layer":
        src = layer_source(node.spec)
        if src.inline:
            w.helpers.update(src.helpers)
            return f"{local[node.name]} = {src.expr.format(x=args[0])}"
        return f"{local[node.name]} = {_access(w.tree, w.scope.relative(_lname(node)))}({args[0]})"
    if node.op == "reshape":
        return f"{local[node.name]} = {_reshape_expr(w.graph, node, args[0], local)}"
    src = OP_SOURCE[node.op](node, args, len(infer(w.graph).values[node.name]))  # type: ignore[misc]
    w.helpers.update(src.helpers)
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


def _returns(n: int) -> str:
    return "torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]"


def _forward(w: _Writer, params: list[str]) -> list[str]:
    body = _forward_lines(w)
    outs = [w.local[o] for o in w.outputs]
    tail = "," if len(outs) == 1 and w.scope.call is not None and w.scope.call.tuple_return else ""
    args = "".join(f", {p}: torch.Tensor" for p in params)
    return [f"def forward(self{args}) -> {_returns(len(outs))}:", *("    " + b for b in body),
            f"    return {', '.join(outs)}{tail}"]


# --- the classes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """A child call's module in its parent: ``DoubleConv(3, 64)``."""

    cls: str
    args: tuple[object, ...]


Leaf = ir.LayerSpec | Instance


def _leaves(scope: _sc.Scope, instances: dict[ir.BlockCall, Instance]) -> dict[str, Leaf]:
    """A class's modules by relative path: its layers' specs and its child calls' instances."""
    out: dict[str, Leaf] = {}
    for item in scope.items:
        if isinstance(item, ir.BlockCall):
            out[scope.relative(item.path)] = instances[item]
        elif item.op == "layer" and not layer_source(item.spec).inline:
            out[scope.relative(_lname(item))] = item.spec
    return out


def _leaf_source(leaf: Leaf) -> Source:
    if isinstance(leaf, Instance):
        return Source(f"{leaf.cls}({arg_list(*leaf.args)})")
    return layer_source(leaf)


def _module_lines(w: _Writer, name: str, params: list[str], init_params: str = "") -> list[str]:
    """``class {name}(nn.Module)`` with its __init__ and forward."""
    forward = _forward(w, params)
    init = [f"def __init__(self{init_params}) -> None:", "    super().__init__()",
            *("    " + line for line in _init_lines(w.tree))]
    return [f"class {name}(nn.Module):", *("    " + line if line else "" for line in [*init, "", *forward])]


def _block_writer(graph: ir.Graph, scope: _sc.Scope, leaves: dict[str, Leaf], helpers: set[str]) -> _Writer:
    call = scope.call
    assert call is not None
    tree = _tree({k: _leaf_source(v) for k, v in leaves.items()})
    helpers |= _helpers_used(tree)
    return _Writer(graph, scope, tree, _sc.block_locals(scope, _TAKEN), helpers, call.outputs)


def _leaf_values(leaf: Leaf) -> tuple[object, ...]:
    return leaf.args if isinstance(leaf, Instance) else tuple(getattr(leaf, f.name) for f in dataclasses.fields(leaf))


#: the layer arguments a block's parameter may give (counts of channels, features, groups)
_COUNTS = frozenset({"in_channels", "out_channels", "num_features", "num_channels", "num_groups", "in_features",
                     "out_features", "num_parameters", "groups"})


def _merged_leaf(column: list[Leaf], consts: list[dict[str, object]], params: list[str]) -> Leaf | None:
    """The leaf of every call at one path, differing arguments as parameter expressions."""
    first = column[0]
    if any(type(v) is not type(first) or (isinstance(v, Instance) and v.cls != first.cls)  # type: ignore[union-attr]
           for v in column):
        return None
    values = [_leaf_values(v) for v in column]
    names = [None] * len(values[0]) if isinstance(first, Instance) else [f.name for f in dataclasses.fields(first)]
    new = [_sc.follow([v[j] for v in values], consts, params, names[j] is None or names[j] in _COUNTS)
           for j in range(len(values[0]))]
    if any(v is _sc.NOTHING for v in new):
        return None
    if isinstance(first, Instance):
        return Instance(first.cls, tuple(new))
    changed: dict[str, Any] = {f.name: v for f, v in zip(dataclasses.fields(first), new)}
    return dataclasses.replace(first, **changed)


def _merged(calls: list[ir.BlockCall], leaves: list[dict[str, Leaf]]) -> tuple[dict[str, Leaf], list[str]] | None:
    """One set of leaves for every call of a block, arguments that differ written as expressions of
    the block's int parameters (``Conv2d(cin, cout, ...)``), and the parameters used; None if no
    parameter explains a difference."""
    if any(list(lv) != list(leaves[0]) for lv in leaves):
        return None
    consts = [dict(c.consts) for c in calls]
    params = [p for p, _ in calls[0].consts if p not in _TAKEN]
    out: dict[str, Leaf] = {}
    for key in leaves[0]:
        leaf = _merged_leaf([lv[key] for lv in leaves], consts, params)
        if leaf is None:
            return None
        out[key] = leaf
    used = {v.param for leaf in out.values() for v in _leaf_values(leaf) if isinstance(v, _sc.Expr)}
    return out, [p for p in params if p in used]


def _class_name(block: str, taken: set[str]) -> str:
    name, k = block, 2
    while name in taken:
        name, k = f"{block}_{k}", k + 1
    taken.add(name)
    return name


def _parts(group: list[ir.BlockCall], leaves: list[dict[str, Leaf]], forwards: list[list[str]]) -> list[list[int]]:
    """The calls of one block in classes: each joins the first class whose calls it can share
    (the same forward, its differing arguments explained by the block's parameters)."""
    parts: list[list[int]] = []
    for i in range(len(group)):
        part = next((p for p in parts if forwards[p[0]] == forwards[i]
                     and _merged([group[j] for j in (*p, i)], [leaves[j] for j in (*p, i)]) is not None), None)
        if part is None:
            parts.append([i])
        else:
            part.append(i)
    return parts


def _block_classes(graph: ir.Graph, calls: list[ir.BlockCall], by_call: dict[ir.BlockCall, _sc.Scope],
                   helpers: set[str]) -> tuple[list[list[str]], dict[ir.BlockCall, Instance]]:
    """A class per block (``Name``, ``Name_2``, ... where its calls differ beyond what its parameters
    say), children before parents. Returns the classes' lines and each call's instance."""
    height = _sc.heights(calls, by_call)
    groups: dict[tuple[int, str], list[ir.BlockCall]] = {}
    for c in sorted(calls, key=lambda c: height[c]):
        groups.setdefault((height[c], c.block), []).append(c)
    instances: dict[ir.BlockCall, Instance] = {}
    classes: list[list[str]] = []
    taken = set(_TAKEN) | {p for c in calls for p, _ in c.consts}  # no class named as an __init__ parameter
    for (_, block), group in groups.items():
        leaves = [_leaves(by_call[c], instances) for c in group]
        forwards = [_forward(_block_writer(graph, by_call[c], lv, helpers), list(dict(c.inputs)))
                    for c, lv in zip(group, leaves)]
        for part in _parts(group, leaves, forwards):
            members = [group[j] for j in part]
            merged = _merged(members, [leaves[j] for j in part])
            assert merged is not None  # _parts made sure
            shared, params = merged
            name = _class_name(block, taken)
            w = _block_writer(graph, by_call[members[0]], shared, helpers)
            sig = "".join(f", {p}: int" for p in params)
            classes.append(_module_lines(w, name, list(dict(members[0].inputs)), sig))
            instances |= {c: Instance(name, tuple(dict(c.consts)[p] for p in params)) for c in members}
    return classes, instances


# --- the file ------------------------------------------------------------------------------------------


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


def _classes(graph: ir.Graph, helpers: set[str]) -> list[list[str]]:
    """The block classes, then ``Model``."""
    calls = _sc.class_calls(graph)
    top, by_call = _sc.scopes(graph, calls)
    classes, instances = _block_classes(graph, calls, by_call, helpers)
    tree = _tree({k: _leaf_source(v) for k, v in _leaves(top, instances).items()})
    helpers |= _helpers_used(tree)
    if not calls and _is_chain(graph) and _is_sequential(tree):
        return [_sequential_class(tree)]
    local = _local_names(graph)
    w = _Writer(graph, top, tree, local, helpers, graph.outputs)
    model = _module_lines(w, "Model", [local[n.name] for n in graph.inputs])
    return [*classes, model]


def to_torch_source(graph: ir.Graph) -> str:
    """The source of a standalone module file (imports only torch) defining ``Model``, whose
    state_dict keys are the graph's parameter names and whose forward takes the inputs in order;
    each DSL block is a class of its own."""
    helpers: set[str] = set()
    classes = _classes(graph, helpers)
    needs_f = any(h.startswith(("PadThenConv", "pad_to")) or h == "F" for h in helpers)
    functional = "import torch.nn.functional as F\n" if needs_f else ""
    parts = [_docstring(graph), f"import torch\n{functional}from torch import nn\n",
             *(HELPERS[h].strip("\n") + "\n" for h in sorted(helpers) if h in HELPERS),
             *("\n".join(cls) + "\n" for cls in classes)]
    return "\n\n".join(parts)
