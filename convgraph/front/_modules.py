"""Modules of the text DSL: ``Sequential(...)`` and block calls, both expanded by the parser into
plain layer nodes whose layer names are module paths (``inc.double_conv.0``).

A mixin of the DSL parser (``dsl._Parser``): it reads and writes the parser's scope, nodes and
layer names through the parser's own methods.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from convgraph.errors import ConvGraphError, GraphError, Loc
from convgraph.front import _blocks
from convgraph.front._consts import MAX_ITEMS
from convgraph.front.catalogue import CATALOGUE, CONTAINERS, suggest
from convgraph.ir import LayerSpec, Node

MAX_BLOCK_DEPTH = 32  # block calls inside block calls
MAX_SEQUENTIAL_DEPTH = 8


@dataclass
class Scope:
    """Where statements are being read: the file (prefix "") or one block call (prefix "inc.")."""

    prefix: str = ""
    env: dict[str, str] = field(default_factory=dict)  # local name -> node name of its latest binding
    consts: dict[str, object] = field(default_factory=dict)
    current: str | None = None
    modules: int = 0  # modules made here so far: the shorthand's next index
    calls: tuple[tuple[str, Loc], ...] = ()  # the block calls this scope lies in, innermost first
    block: str | None = None


class Modules:
    """Sequential and block calls (mixed into the DSL parser, whose state and methods they use:
    ``error``, ``loc``, ``callee``, ``layer``, ``value``, ``literal``, ``fresh``, ``define``, ...)."""

    FUNCTIONS: tuple[str, ...]
    scope: Scope
    top: Scope
    nodes: list[Node]
    values: dict[str, Node]
    layer_names: dict[str, Loc]  # layer name -> where it is defined
    containers: dict[str, Loc]  # module paths holding layers (Sequential, block calls) -> where
    symbols: dict[str, Loc]
    blocks: dict[str, _blocks.Block]
    later: dict[str, int]  # every block of the file -> its line
    expanded: int  # statements expanded by block calls so far
    # the parser's methods used here (declared for the type checker)
    error: Callable[..., ConvGraphError]
    forbidden: Callable[[ast.AST], ConvGraphError]
    loc: Callable[[ast.AST], Loc]
    callee: Callable[[ast.expr], str]
    layer: Callable[[ast.Call], tuple[LayerSpec, str | None]]
    explicit_name: Callable[[ast.keyword], str]
    value: Callable[[ast.expr], str]
    literal: Callable[[ast.expr], object]
    default: Callable[[ast.expr], object]
    fresh: Callable[..., str]
    fresh_exact: Callable[[str], str]
    define: Callable[[Node, str | None], None]
    statement: Callable[[ast.stmt], None]
    check_value_name: Callable[[ast.Name | ast.arg], None]

    # -- module paths ---------------------------------------------------------------------------

    def claim_layer(self, node: ast.AST, name: str) -> str:
        """Reserve ``name`` as a layer name: not used, not inside another layer, not a container."""
        if name in self.layer_names:
            raise self.error(node, f"layer name {name!r} is already used at line {self.layer_names[name].line}",
                             GraphError)
        self.claim_container(node, name.rpartition(".")[0], leaf=name)
        self.layer_names[name] = self.loc(node)
        return name

    def claim_container(self, node: ast.AST, path: str, leaf: str | None = None) -> None:
        """``path`` and its parents hold modules: none of them may be a layer."""
        parts = path.split(".") if path else []
        for k in range(1, len(parts) + 1):
            parent = ".".join(parts[:k])
            if parent in self.layer_names:
                inner = leaf or path
                raise self.error(node, f"layer name {inner!r} would be inside the layer {parent!r} (line "
                                       f"{self.layer_names[parent].line}): a layer has no children", GraphError)
            self.containers.setdefault(parent, self.loc(node))
        if leaf is not None and leaf in self.containers:
            raise self.error(node, f"layer name {leaf!r} is already a module path (line "
                                   f"{self.containers[leaf].line}): a layer has no children", GraphError)

    def explicit_path(self, kw: ast.keyword) -> str:
        return self.scope.prefix + self.explicit_name(kw)

    # -- Sequential -----------------------------------------------------------------------------

    def children(self, seq: ast.Call, depth: int = 0) -> list[tuple[str, LayerSpec, ast.Call]]:
        """(relative path, spec, constructor) of every layer in a Sequential, nested ones flattened."""
        if depth >= MAX_SEQUENTIAL_DEPTH:
            raise self.error(seq, f"Sequential nested too deeply (at most {MAX_SEQUENTIAL_DEPTH} levels)")
        if not 1 <= len(seq.args) <= MAX_ITEMS:
            raise self.error(seq, f"Sequential takes 1 to {MAX_ITEMS} layers, got {len(seq.args)}")
        out: list[tuple[str, LayerSpec, ast.Call]] = []
        for i, child in enumerate(seq.args):
            if not isinstance(child, ast.Call) or isinstance(child.func, ast.Call):
                raise self.error(child, "a Sequential child is a layer constructor, e.g. Sequential(Conv2d(3, 8, 3), "
                                        "ReLU()); a block is called with name=, e.g. B(x, name=\"seq.1\")")
            kind = self.callee(child.func)
            if kind in self.blocks:
                raise self.error(child, f"block {kind!r} cannot be a Sequential child: call it on a value with "
                                        f"the child's path, e.g. h = {kind}(x, ..., name=\"<sequential>.{i}\")")
            if kind in CONTAINERS:
                self.no_keywords(child)
                out += [(f"{i}.{rel}", spec, c) for rel, spec, c in self.children(child, depth + 1)]
                continue
            if kind not in CATALOGUE:
                raise self.error(child, f"{kind}(...) cannot be a Sequential child: it is not a layer")
            spec, explicit = self.layer(child)
            if explicit is not None:
                raise self.error(child, "a Sequential child is named by its index: drop name=")
            out.append((str(i), spec, child))
        return out

    def no_keywords(self, seq: ast.Call) -> str | None:
        """A Sequential's only keyword is name= (at the top); returns it."""
        explicit = None
        for kw in seq.keywords:
            if kw.arg != "name":
                raise self.error(kw if kw.arg else seq, "Sequential takes layers and name= only")
            explicit = self.explicit_name(kw)
        return explicit

    def sequential(self, seq: ast.Call, src: str, target: str | None) -> None:
        """``t = Sequential(A, B)(v)`` (target ``t``) or a bare ``Sequential(A, B)`` (the shorthand)."""
        explicit = self.no_keywords(seq)
        kids = self.children(seq)
        if target is not None:
            last = self.fresh(target, names_layer=explicit is None)
            path = self.scope.prefix + explicit if explicit is not None else last
        else:
            path = self.scope.prefix + (explicit if explicit is not None else str(self.scope.modules))
            last = path
            if last in self.values:
                raise self.error(seq, f"value name {last!r} is already used", GraphError)
        self.claim_container(seq, path)
        for k, (rel, spec, ctor) in enumerate(kids):
            layer_name = self.claim_layer(ctor, f"{path}.{rel}")
            final = k == len(kids) - 1
            name = last if final else self.fresh_exact(f"{last}.{rel}")
            self.define(Node(name, "layer", (src,), self.loc(ctor), spec, layer_name), target if final else None)
            src = name
        self.scope.modules += 1

    # -- blocks ---------------------------------------------------------------------------------

    def define_block(self, fn: ast.stmt) -> None:
        name = getattr(fn, "name", "")
        if name in self.blocks:
            raise self.error(fn, f"block {name!r} is already defined at line {self.blocks[name].line}")
        if name in RESERVED_BLOCK_NAMES or name in CATALOGUE or name in CONTAINERS or name in self.FUNCTIONS:
            raise self.error(fn, f"{name!r} cannot name a block: it is a reserved name")
        if name in self.scope.env or name in self.scope.consts or name in self.symbols:
            raise self.error(fn, f"{name!r} cannot name a block: it already names a value, constant or size symbol")
        self.blocks[name] = _blocks.define(fn, self.blocks, self.later, self)

    def check_param_name(self, arg: ast.arg) -> None:
        if arg.annotation is not None:
            raise self.error(arg.annotation, "annotations are not allowed in a .cg file")
        if arg.arg == "name":
            raise self.error(arg, "'name' cannot be a block parameter: name= sets a block call's module path")
        self.check_value_name(arg)

    def block_call(self, call: ast.Call, targets: list[ast.expr], is_tuple: bool) -> None:
        block = self.blocks[self.callee(call.func)]
        values, consts, explicit = self.bind(block, call)
        self.budget(block, call)
        names = [t.id for t in targets]  # type: ignore[attr-defined]
        if explicit is None and len(names) != 1:
            raise self.error(call, f"a call of block {block.name!r} assigned to several names needs name= for "
                                   f"its module path, e.g. name=\"{names[0]}\"")
        first = self.fresh(names[0], names_layer=True)
        path = self.scope.prefix + explicit if explicit is not None else first
        if path in self.containers or path in self.layer_names:
            where = (self.containers.get(path) or self.layer_names[path]).line
            raise self.error(call, f"module path {path!r} is already used at line {where}", GraphError)
        self.claim_container(call, path)
        returned, start = self.expand(block, call, path, values, consts)
        self.bind_returns(block, call, names, returned, start, is_tuple)

    def bind(self, block: _blocks.Block, call: ast.Call) -> tuple[dict[str, str], dict[str, object], str | None]:
        """Arguments to parameters, as Python binds them: value names or constants."""
        params = [p for p, _ in block.params]
        if len(call.args) > len(params):
            raise self.error(call, f"block {block.name!r} takes {len(params)} arguments, got {len(call.args)}")
        given: dict[str, ast.expr] = dict(zip(params, call.args))
        explicit = None
        for kw in call.keywords:
            if kw.arg == "name":
                explicit = self.explicit_name(kw)
            elif kw.arg is None or kw.arg not in params:
                raise self.error(kw, f"block {block.name!r} has no parameter {kw.arg!r}"
                                     f"{suggest(kw.arg or '', params)}")
            elif kw.arg in given:
                raise self.error(kw, f"block {block.name!r} got multiple values for {kw.arg!r}")
            else:
                given[kw.arg] = kw.value
        values: dict[str, str] = {}
        consts: dict[str, object] = {}
        for p, default in block.params:
            if p in given:
                self.bind_one(p, given[p], values, consts)
            elif default is _blocks.NO_DEFAULT:
                raise self.error(call, f"block {block.name!r}: missing argument {p!r}")
            else:
                consts[p] = default
        return values, consts, explicit

    def bind_one(self, param: str, arg: ast.expr, values: dict[str, str], consts: dict[str, object]) -> None:
        if isinstance(arg, ast.Name) and arg.id in self.scope.env:
            values[param] = self.scope.env[arg.id]
        else:
            consts[param] = self.literal(arg)

    def budget(self, block: _blocks.Block, call: ast.Call) -> None:
        """Refuse, before expanding anything, a call that would pass the file's expansion bound."""
        if len(self.scope.calls) >= MAX_BLOCK_DEPTH:
            raise self.error(call, f"block calls nested too deeply (at most {MAX_BLOCK_DEPTH})")
        if self.scope.block is not None:
            return  # counted with the outermost call: a block's cost includes its nested calls
        if self.expanded + block.cost > _blocks.MAX_EXPANDED:
            raise self.error(call, f"too many block expansions: this call of {block.name!r} expands to "
                                   f"{'more than ' * (block.cost > _blocks.MAX_EXPANDED)}"
                                   f"{min(block.cost, _blocks.MAX_EXPANDED)} statements, the file's calls to "
                                   f"more than {_blocks.MAX_EXPANDED} in all")
        self.expanded += block.cost

    def expand(self, block: _blocks.Block, call: ast.Call, path: str, values: dict[str, str],
               consts: dict[str, object]) -> tuple[list[str], int]:
        site = self.loc(call)
        calls = ((block.name, Loc(site.file, site.line, site.col)), *self.scope.calls)
        first_value = next((values[p] for p, _ in block.params if p in values), None)
        inner = Scope(path + ".", dict(values), dict(consts), first_value, 0, calls, block.name)
        outer, start = self.scope, len(self.nodes)
        self.scope = inner
        try:
            for stmt in block.body:
                self.statement(stmt)
            returned = [self.value(n) for n in block.returns]
        finally:
            self.scope = outer
        return returned, start

    def bind_returns(self, block: _blocks.Block, call: ast.Call, names: list[str], returned: list[str],
                     start: int, is_tuple: bool) -> None:
        """Each target names what the block returns; a value made by this call takes that name."""
        if block.tuple_return != is_tuple or len(names) != len(returned):
            got = f"{len(names)} name{'s' * (len(names) != 1)}"
            raise self.error(call, f"block {block.name!r} returns {len(returned)} value"
                                   f"{'s' * (len(returned) != 1)}{' (a tuple)' * block.tuple_return}, "
                                   f"assigned to {got}")
        made = {n.name for n in self.nodes[start:]}
        renamed: dict[str, str] = {}
        for target, node in zip(names, returned):
            if node in made and node not in renamed:
                renamed[node] = self.fresh(target, names_layer=False)
                self.rename(start, node, renamed[node], target)
            self.scope.env[target] = renamed.get(node, node)
            self.scope.consts.pop(target, None)
        self.scope.current = self.scope.env[names[0]]
        self.scope.modules += 1

    def rename(self, start: int, old: str, new: str, source: str) -> None:
        """Rename a value made since node ``start`` (and its uses, all made since then too); its
        source name becomes ``source``, the name it has where the block is called."""
        for i in range(start, len(self.nodes)):
            n = self.nodes[i]
            if n.name == old:
                n = replace(n, name=new, source=source)
            if old in n.inputs:
                n = replace(n, inputs=tuple(new if v == old else v for v in n.inputs))
            if n is not self.nodes[i]:
                self.nodes[i] = n
                self.values[n.name] = n
        del self.values[old]


RESERVED_BLOCK_NAMES = frozenset({"nn", "torch", "floor", "ceiling", "name"})
