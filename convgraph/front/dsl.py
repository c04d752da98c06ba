"""The text DSL (``.cg`` files): a restricted subset of Python syntax, parsed with ``ast`` and
never executed (no eval, no exec, no imports, no attribute access beyond the layer prefixes).

>>> g = parse("input(1, 1, H, W)\\nConv2d(1, 1, 3)\\nReLU()")
>>> [(n.name, n.op) for n in g.nodes]
[('x', 'input'), ('0', 'layer'), ('1', 'layer')]

Naming. A value is named by the name it is assigned to; a reassigned name gets the first free
suffix (``h``, ``h_1``, ``h_2``, ...). A layer is named after its value unless ``name="..."`` is
given. A layer written as a bare statement (the sequential shorthand) is named by its position
among all layers, "0", "1", ..., as ``torch.nn.Sequential`` numbers its children, and its value
takes the same name. An unassigned ``input(...)`` is named ``x``.

Every error is a ConvGraphError subclass whose position is the offending node (1-based line and
column); nothing in this module imports torch, onnx, onnxruntime or sympy.
"""
from __future__ import annotations

import ast
import itertools
import os
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal, TypeVar, overload

from convgraph import dims as D
from convgraph.errors import ConvGraphError, DSLSyntaxError, GraphError, Loc
from convgraph.front._dsl_functions import FunctionsMixin
from convgraph.front.catalogue import CATALOGUE, construct, suggest
from convgraph.front.functions import DSL_FUNCTIONS
from convgraph.ir import Assume, Expect, Graph, LayerSpec, Node

MAX_SOURCE_CHARS = 1_000_000
T = TypeVar("T")
MAX_INT = 2**31
MAX_STR = 256
MAX_ITEMS = 64
MAX_DEPTH = 32  # nesting of size expressions
MAX_LITERAL_DEPTH = 4  # nesting of tuples/lists in layer arguments

FUNCTIONS = ("input", "output", "cat", "crop", "assume", "expect")
RESERVED = frozenset(FUNCTIONS) | frozenset(CATALOGUE) | {"nn", "torch", "F", "floor", "ceiling"}
#: callable names that are not reserved: a value may be named ``flatten`` (``flatten(v, 1)`` still calls)
CALLABLE = frozenset(FUNCTIONS) | frozenset(DSL_FUNCTIONS) | frozenset(CATALOGUE)
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
LAYER_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")
_LAYER_PREFIXES = (("nn",), ("torch", "nn"))
COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_DIM_OPS: dict[type, Callable] = {ast.Add: D.add, ast.Sub: lambda a, b: D.add(a, D.mul(b, -1)),
                                  ast.Mult: D.mul, ast.FloorDiv: lambda a, b: D.floordiv(a, b),
                                  ast.Mod: lambda a, b: D.lift(a) % b}

# what a forbidden construct is called in messages
_WORDS = {
    ast.Import: "an import", ast.ImportFrom: "an import", ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition", ast.ClassDef: "a class definition", ast.While: "a 'while' loop",
    ast.For: "a 'for' loop", ast.AsyncFor: "a 'for' loop", ast.If: "an 'if' statement", ast.With: "a 'with' statement",
    ast.AsyncWith: "a 'with' statement", ast.Try: "a 'try' statement", ast.Raise: "a 'raise' statement",
    ast.Return: "a 'return' statement", ast.Delete: "a 'del' statement", ast.Global: "a 'global' statement",
    ast.Nonlocal: "a 'nonlocal' statement", ast.Assert: "an 'assert' statement", ast.Pass: "a 'pass' statement",
    ast.Break: "a 'break' statement", ast.Continue: "a 'continue' statement",
    ast.AugAssign: "an augmented assignment", ast.AnnAssign: "an annotated assignment", ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string",
    ast.NamedExpr: "an assignment expression (:=)", ast.Subscript: "a subscript", ast.Attribute: "attribute access",
    ast.Starred: "a starred argument", ast.IfExp: "a conditional expression", ast.Dict: "a dict",
    ast.Set: "a set", ast.BoolOp: "'and'/'or'", ast.Compare: "a comparison", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield'", ast.Slice: "a slice", ast.Call: "a call",
    ast.BinOp: "arithmetic", ast.UnaryOp: "a unary operator",
}
if hasattr(ast, "Match"):
    _WORDS[ast.Match] = "a 'match' statement"


def suffixed(base: str) -> Iterator[str]:
    """``base``, ``base_1``, ``base_2``, ...: the names a reassigned value may take, in order."""
    return itertools.chain([base], (f"{base}_{k}" for k in itertools.count(1)))


def describe(node: ast.AST) -> str:
    return _WORDS.get(type(node), f"a {type(node).__name__} node")


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def parse(text: str, filename: str = "<string>") -> Graph:
    """Parse DSL text into a Graph (the shape stage runs later: ``convgraph.parse`` runs it at once).

    >>> parse("x = input(N, 3, H, W)\\ny = Conv2d(3, 8, 3, padding=1)(x)").outputs
    ('y',)
    """
    tree = _python_ast(text, filename, "exec")
    return _Parser(text, filename).module(tree)


def load(path: str | os.PathLike[str]) -> Graph:
    """Read and parse a ``.cg`` file: ``load("models/unet.cg")``."""
    p = Path(path)
    try:
        if p.stat().st_size > 4 * MAX_SOURCE_CHARS:
            raise ConvGraphError(f"{p} is too large for a .cg file ({p.stat().st_size} bytes)", Loc(str(p), 0, 0))
        data = p.read_bytes()
    except OSError as e:
        raise ConvGraphError(f"cannot read {p}: {e.strerror or e}", Loc(str(p), 0, 0)) from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DSLSyntaxError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x})", Loc(str(p), line, col)) from e
    return parse(text, filename=str(p))


def parse_layer(text: str, filename: str = "<layer>") -> LayerSpec:
    """One layer expression, e.g. ``parse_layer("ConvTranspose2d(1, 1, 3, stride=2, padding=1)")``."""
    tree = _python_ast(text.strip(), filename, "eval")
    parser = _Parser(text.strip(), filename)
    call = tree.body
    if not isinstance(call, ast.Call) or parser.callee(call.func) not in CATALOGUE:
        raise parser.error(call, "expected one layer constructor call, e.g. Conv2d(1, 1, 3)")
    spec, explicit = parser.layer(call)
    if explicit is not None:
        raise parser.error(call, "name= has no meaning for a single layer")
    return spec


def parse_conditions(text: str, symbols: Collection[str], loc: Loc) -> list[tuple[D.Dim, str, D.Dim]]:
    """Conditions as DSL text, for the builder: ``parse_conditions("H % 16 == 0", {"H"}, loc)``."""
    return _fragment(text, symbols, loc, lambda parser, expr: parser.conditions(expr))


def parse_size(text: str, symbols: Collection[str], loc: Loc) -> D.Dim:
    """A size expression as DSL text, for the builder: ``parse_size("H // 2", {"H"}, loc)``."""
    return _fragment(text, symbols, loc, lambda parser, expr: parser.dim(expr))


def _fragment(text: str, symbols: Collection[str], loc: Loc, convert: Callable[[_Parser, ast.expr], T]) -> T:
    """Convert one expression; errors are re-anchored at ``loc`` (the builder call)."""
    try:
        tree = _python_ast(text.strip(), loc.file, "eval")
        parser = _Parser(text.strip(), loc.file)
        parser.symbols = {s: loc for s in symbols}
        return convert(parser, tree.body)
    except ConvGraphError as e:
        raise type(e)(f"in {text!r}: {e.message}", loc) from None


@overload
def _python_ast(text: str, filename: str, mode: Literal["exec"]) -> ast.Module: ...


@overload
def _python_ast(text: str, filename: str, mode: Literal["eval"]) -> ast.Expression: ...


def _python_ast(text: str, filename: str, mode: Literal["exec", "eval"]) -> ast.Module | ast.Expression:
    if len(text) > MAX_SOURCE_CHARS:
        raise DSLSyntaxError(f"the source is too large ({len(text)} characters, at most {MAX_SOURCE_CHARS})",
                             Loc(filename, 1, 1))
    if "\0" in text:
        i = text.index("\0")
        line = text.count("\n", 0, i) + 1
        raise DSLSyntaxError("the source contains a NUL character", Loc(filename, line, i - text.rfind("\n", 0, i)))
    try:
        tree = ast.parse(text, filename=filename, mode=mode)
        assert isinstance(tree, (ast.Module, ast.Expression))
        return tree
    except SyntaxError as e:
        msg = e.msg if e.msg.startswith("invalid syntax") else f"invalid syntax: {e.msg}"
        raise DSLSyntaxError(msg, Loc(filename, e.lineno or 1, e.offset or 1)) from None
    except (RecursionError, MemoryError):
        raise DSLSyntaxError("the source is nested too deeply", Loc(filename, 1, 1)) from None


# --------------------------------------------------------------------------------------------
# The parser: one pass over the statements, building nodes in definition order
# --------------------------------------------------------------------------------------------


class _Parser(FunctionsMixin):
    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.lines = text.splitlines()
        self.nodes: list[Node] = []
        self.values: dict[str, Node] = {}  # node name -> node
        self.env: dict[str, str] = {}  # source name -> node name of its latest binding
        self.layer_names: dict[str, Loc] = {}
        self.symbols: dict[str, Loc] = {}
        self.current: str | None = None
        self.outputs: tuple[str, ...] | None = None
        self.output_loc: Loc | None = None
        self.assumes: list[Assume] = []
        self.expects: list[Expect] = []

    # -- positions and errors ------------------------------------------------------------------

    def loc(self, node: ast.AST) -> Loc:
        line = getattr(node, "lineno", 1)
        raw = self.lines[line - 1].encode("utf-8") if line <= len(self.lines) else b""
        col = len(raw[:getattr(node, "col_offset", 0)].decode("utf-8", errors="replace")) + 1
        return Loc(self.filename, line, col)

    def error(self, node: ast.AST, message: str, cls: type[ConvGraphError] = DSLSyntaxError) -> ConvGraphError:
        return cls(message, self.loc(node))

    def forbidden(self, node: ast.AST) -> ConvGraphError:
        return self.error(node, f"not allowed in a .cg file: {describe(node)} (it is parsed, never run)")

    def source(self, first: ast.expr | ast.stmt, last: ast.expr | ast.stmt) -> str:
        """The source text from ``first`` to the end of ``last``, on one line."""
        lines = [ln.encode("utf-8") for ln in self.lines[first.lineno - 1:last.end_lineno]]
        lines[-1] = lines[-1][:last.end_col_offset]
        lines[0] = lines[0][first.col_offset:]
        return " ".join(b" ".join(lines).decode("utf-8").split())

    # -- the module ----------------------------------------------------------------------------

    def module(self, tree: ast.Module) -> Graph:
        body = tree.body
        doc = ast.get_docstring(tree, clean=True)
        if doc is not None:
            body = body[1:]
        for stmt in body:
            self.statement(stmt)
        if not any(n.op == "input" for n in self.nodes):
            where = body[0] if body else tree
            raise self.error(where, "no input: a .cg file starts with an input, e.g. x = input(N, 3, H, W)")
        outputs = self.outputs if self.outputs is not None else (self.nodes[-1].name,)
        return Graph(tuple(self.nodes), outputs, self.filename, doc, tuple(self.assumes), tuple(self.expects))

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            self.assignment(stmt)
        elif isinstance(stmt, ast.Expr):
            self.bare(stmt.value)
        else:
            raise self.forbidden(stmt)

    def bare(self, expr: ast.expr) -> None:
        if not isinstance(expr, ast.Call):
            if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                raise self.error(expr, "a string statement is only allowed as the module docstring")
            if type(expr) in _WORDS:
                raise self.forbidden(expr)
            raise self.error(expr, "a statement is a layer, input(...), output(...), assume(...) or expect(...)")
        if isinstance(expr.func, ast.Call):
            raise self.error(expr, "assign an applied layer to a name, e.g. h = Conv2d(...)(x); "
                                   "a bare Conv2d(...) applies to the current value")
        kind = self.callee(expr.func)
        handler = {"input": lambda: self.input(expr, "x"), "output": lambda: self.output(expr),
                   "assume": lambda: self.assume(expr), "expect": lambda: self.expect(expr)}.get(kind)
        if handler is not None:
            return handler()
        if kind in CATALOGUE:
            return self.shorthand(expr)
        raise self.error(expr, f"assign the result of {kind}(...) to a name")

    def assignment(self, stmt: ast.Assign) -> None:
        if len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Tuple):
            return self.multi(stmt)
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            raise self.error(stmt.targets[-1] if len(stmt.targets) > 1 else stmt.targets[0],
                             "assign to exactly one plain name, e.g. h = ...")
        target = stmt.targets[0]
        self.check_value_name(target)
        value = stmt.value
        if isinstance(value, ast.BinOp):
            return self.binop(value, target.id)
        if isinstance(value, ast.Subscript):
            return self.subscript(value, target.id)
        if not isinstance(value, ast.Call):
            if type(value) in _WORDS:
                raise self.forbidden(value)
            raise self.error(value, "assign a layer applied to a value, input(...), cat(...), crop(...) or a + b")
        if isinstance(value.func, ast.Call):
            return self.applied(value, target.id)
        kind = self.callee(value.func)
        if kind == "input":
            return self.input(value, target.id)
        if kind in ("cat", "crop"):
            return self.cat(value, target.id) if kind == "cat" else self.crop(value, target.id)
        if kind in CATALOGUE:
            raise self.error(value, f"apply the layer to a value: {target.id} = {kind}(...)(x)")
        if kind in ("output", "assume", "expect"):
            raise self.error(value, f"{kind}(...) has no value to assign")
        return self.function(value, target.id, kind)

    # -- names ---------------------------------------------------------------------------------

    def callee(self, func: ast.expr) -> str:
        """The function or layer a call names: 'input', 'cat', 'Conv2d', ...; rejects anything else."""
        if isinstance(func, ast.Name):
            if func.id in CALLABLE:
                return func.id
            hint = suggest(func.id, (*CATALOGUE, *FUNCTIONS, *DSL_FUNCTIONS))
            raise self.error(func, f"unknown layer or function {func.id!r}{hint}")
        if isinstance(func, ast.Attribute):
            return self.dotted(func)
        raise self.error(func, f"not allowed as a callee: {describe(func)}; call a layer or a DSL function")

    def dotted(self, func: ast.Attribute) -> str:
        parts: list[str] = []
        node: ast.expr = func
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise self.error(func, "attribute access is not allowed (only the nn. and torch.nn. layer prefixes)")
        prefix, last = (node.id, *parts[:-1]), parts[-1]
        function = self.function_name(prefix, last)
        if function is not None:
            return function
        if prefix not in _LAYER_PREFIXES:
            raise self.error(func, f"attribute access is not allowed: {'.'.join((node.id, *parts))!r} "
                                   "(only the nn. and torch.nn. layer prefixes, F./torch.nn.functional. "
                                   "functions and torch.cat, torch.flatten, ...)")
        if last not in CATALOGUE:
            raise self.error(func, f"unknown layer {'.'.join((*prefix, last))!r}{suggest(last)}")
        return last

    def check_value_name(self, target: ast.Name) -> None:
        name = target.id
        if name in RESERVED or not NAME_RE.match(name):
            why = "a reserved name" if name in RESERVED else "not an ASCII identifier"
            raise self.error(target, f"{name!r} cannot name a value: it is {why}")
        if name in self.symbols:
            raise self.error(target, f"{name!r} is a size symbol (line {self.symbols[name].line}) "
                                     "and cannot also name a value")

    def value(self, node: ast.expr) -> str:
        """The node name a value reference resolves to."""
        if not isinstance(node, ast.Name):
            got = repr(node.value) if isinstance(node, ast.Constant) else describe(node)
            raise self.error(node, f"expected a value name, got {got}")
        if node.id not in self.env:
            raise self.error(node, f"undefined value {node.id!r}{suggest(node.id, self.env)}", GraphError)
        return self.env[node.id]

    def fresh(self, base: str, names_layer: bool) -> str:
        """``base``, else ``base_1``, ``base_2``, ...: the first name free as a value (and as a
        layer name, when the layer is named after its value)."""
        return next(n for n in suffixed(base) if n not in self.values and not (names_layer and n in self.layer_names))

    def define(self, node: Node, source_name: str | None) -> None:
        if source_name is not None:
            node = replace(node, source=source_name)
        self.nodes.append(node)
        self.values[node.name] = node
        if node.layer_name is not None:
            self.layer_names[node.layer_name] = node.loc
        if source_name is not None:
            self.env[source_name] = node.name
        self.current = node.name

    # -- statements ----------------------------------------------------------------------------

    def input(self, call: ast.Call, name: str) -> None:
        if call.keywords:
            raise self.error(call.keywords[0], "input() takes sizes only, no keywords")
        if not 3 <= len(call.args) <= 5:
            raise self.error(call, f"input() takes N, C and 1 to 3 spatial sizes (3 to 5 entries), "
                                   f"got {len(call.args)}")
        if name in self.env or name in self.values:
            first = self.values[self.env.get(name, name)].loc.line
            raise self.error(call, f"reused value {name!r}: already defined at line {first}", GraphError)
        dims = tuple(self.input_dim(a, j == 0) for j, a in enumerate(call.args))
        self.define(Node(name, "input", (), self.loc(call), dims=dims), name)

    def input_dim(self, node: ast.expr, batch: bool = False) -> int | str:
        """A symbol or a positive int; the batch N may be 0 (torch runs an empty batch)."""
        if isinstance(node, ast.Name):
            if node.id in RESERVED or not NAME_RE.match(node.id):
                raise self.error(node, f"{node.id!r} cannot be a size symbol: it is a reserved name")
            if node.id in self.env:
                raise self.error(node, f"{node.id!r} is a value and cannot also be a size symbol")
            self.symbols.setdefault(node.id, self.loc(node))
            return node.id
        v = self.literal(node)
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if batch else 1):
            what = "a non-negative int (an empty batch)" if batch else "a positive int"
            raise self.error(node, f"an input size is {what} or a symbol name, got {v!r}")
        return v

    def applied(self, call: ast.Call, target: str) -> None:
        ctor = call.func  # a Call: the caller checked
        if not isinstance(ctor, ast.Call) or isinstance(ctor.func, ast.Call) or self.callee(ctor.func) not in CATALOGUE:
            raise self.error(ctor, "only a layer can be applied to a value, e.g. Conv2d(3, 8, 3)(x)")
        if len(call.args) != 1 or call.keywords:
            raise self.error(call, "a layer is applied to exactly one value, e.g. Conv2d(3, 8, 3)(x)")
        src = self.value(call.args[0])
        spec, explicit = self.layer(ctor)
        name = self.fresh(target, names_layer=explicit is None)
        layer_name = self.layer_name(ctor, explicit, name)
        self.define(Node(name, "layer", (src,), self.loc(ctor), spec, layer_name), target)

    def shorthand(self, ctor: ast.Call) -> None:
        if self.current is None:
            raise self.error(ctor, "no current value for this layer: declare an input first, e.g. input(1, 3, H, W)")
        spec, explicit = self.layer(ctor)
        name = self.layer_name(ctor, explicit, str(len(self.layer_names)))
        if name in self.values:
            raise self.error(ctor, f"value name {name!r} is already used", GraphError)
        self.define(Node(name, "layer", (self.current,), self.loc(ctor), spec, name), None)

    def layer_name(self, ctor: ast.Call, explicit: str | None, default: str) -> str:
        name = explicit if explicit is not None else default
        if name in self.layer_names:
            raise self.error(ctor, f"layer name {name!r} is already used at line {self.layer_names[name].line}",
                             GraphError)
        return name

    def layer(self, ctor: ast.Call) -> tuple[LayerSpec, str | None]:
        """Construct the layer a call describes; returns the spec and its ``name=`` (or None)."""
        type_name = self.callee(ctor.func)
        args = tuple(self.literal(a) for a in ctor.args)
        kwargs: dict[str, object] = {}
        explicit = None
        for kw in ctor.keywords:
            if kw.arg is None:
                raise self.error(kw, "**keyword unpacking is not allowed")
            if kw.arg == "name":
                explicit = self.explicit_name(kw)
            else:
                kwargs[kw.arg] = self.literal(kw.value)
        return construct(type_name, args, kwargs, self.loc(ctor)), explicit

    def explicit_name(self, kw: ast.keyword) -> str:
        v = kw.value
        if not (isinstance(v, ast.Constant) and isinstance(v.value, str) and LAYER_NAME_RE.match(v.value)):
            raise self.error(v, "name= must be a string of letters, digits, '_' or '-' (at most 128, no '.')")
        return v.value

    def cat(self, call: ast.Call, target: str) -> None:
        dim_nodes = list(call.args[1:]) + [k.value for k in call.keywords if k.arg == "dim"]
        extra = [k for k in call.keywords if k.arg != "dim"]
        if not call.args or len(call.args) > 2 or extra or len(dim_nodes) > 1:
            raise self.error(extra[0] if extra else call, "cat takes a list of values and dim: cat([a, b], dim=1)")
        seq = call.args[0]
        if not isinstance(seq, (ast.List, ast.Tuple)) or not 1 <= len(seq.elts) <= MAX_ITEMS:
            raise self.error(seq, "cat takes a list of values and dim: cat([a, b], dim=1)")
        inputs = tuple(self.value(e) for e in seq.elts)
        dim = self.literal(dim_nodes[0]) if dim_nodes else 0  # torch.cat's default
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise self.error(dim_nodes[0], f"cat's dim must be an int, got {dim!r}")
        self.define(Node(self.fresh(target, False), "cat", inputs, self.loc(call), dim=dim), target)

    def crop(self, call: ast.Call, target: str) -> None:
        likes = [k.value for k in call.keywords if k.arg == "like"]
        extra = [k for k in call.keywords if k.arg != "like"]
        args = list(call.args) + likes
        if len(args) != 2 or len(call.args) < 1 or extra:
            raise self.error(extra[0] if extra else call, "crop takes a value and a target: crop(v, like=w)")
        inputs = (self.value(args[0]), self.value(args[1]))
        self.define(Node(self.fresh(target, False), "crop", inputs, self.loc(call)), target)

    def output(self, call: ast.Call) -> None:
        if self.outputs is not None:
            first = f" (first at line {self.output_loc.line})" if self.output_loc is not None else ""
            raise self.error(call, f"output() is given twice{first}")
        if call.keywords or not call.args:
            raise self.error(call, "output() lists one or more values: output(a, b)")
        names: list[str] = []
        for arg in call.args:
            name = self.value(arg)
            if name in names:
                shown = arg.id if isinstance(arg, ast.Name) else name
                raise self.error(arg, f"reused value {shown!r}: listed twice in output()", GraphError)
            names.append(name)
        self.outputs, self.output_loc = tuple(names), self.loc(call)

    # -- assume / expect: size expressions -----------------------------------------------------

    def assume(self, call: ast.Call) -> None:
        if call.keywords or not call.args:
            raise self.error(call, "assume() takes one or more conditions, e.g. assume(H % 16 == 0, H >= 64)")
        conds: list[tuple] = []
        for arg in call.args:
            conds += self.conditions(arg)
        self.assumes.append(Assume(self.loc(call), self.source(call.args[0], call.args[-1]), tuple(conds)))

    def conditions(self, node: ast.expr) -> list[tuple]:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return [c for v in node.values for c in self.conditions(v)]
        if not isinstance(node, ast.Compare):
            raise self.error(node, "a condition compares size expressions, e.g. H % 16 == 0 or H >= 64")
        sides = [self.dim(node.left)] + [self.dim(c) for c in node.comparators]
        ops = [COMPARISONS.get(type(op)) for op in node.ops]
        if None in ops:
            raise self.error(node, "conditions use ==, !=, <, <=, > or >=")
        return [(sides[i], op, sides[i + 1]) for i, op in enumerate(ops)]  # a < b < c: a < b and b < c

    def expect(self, call: ast.Call) -> None:
        if call.keywords or len(call.args) < 2:
            raise self.error(call, "expect() takes a value and its dims, e.g. expect(y, N, 8, H, W)")
        value = self.value(call.args[0])
        dims = tuple(self.dim(a) for a in call.args[1:])
        self.expects.append(Expect(self.loc(call), self.source(call.args[0], call.args[-1]), value, dims))

    def dim(self, node: ast.expr, depth: int = 0) -> D.Dim:
        """A size expression: ints, size symbols, + - * // % and unary minus."""
        if depth > MAX_DEPTH:
            raise self.error(node, "size expression nested too deeply")
        if isinstance(node, ast.Name):
            if node.id not in self.symbols:
                known = ", ".join(self.symbols) or "none yet"
                raise self.error(node, f"unknown size symbol {node.id!r} (the inputs declare: {known})")
            return D.sym(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.dim(node.operand, depth + 1)
            return D.mul(inner, -1) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _DIM_OPS:
            a, b = self.dim(node.left, depth + 1), self.dim(node.right, depth + 1)
            try:
                return _DIM_OPS[type(node.op)](a, b)
            except (ValueError, TypeError) as e:
                raise self.error(node, f"cannot use {self.source(node, node)!r} as a size: {e}") from None
        v = self.literal(node) if isinstance(node, ast.Constant) else None
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise self.error(node, "size expressions use ints, size symbols and + - * // %")

    # -- literals ------------------------------------------------------------------------------

    def literal(self, node: ast.expr, depth: int = 0) -> object:
        """int, float, bool, str, None, and tuples/lists of them; negative numbers."""
        if isinstance(node, ast.Constant):
            return self.constant(node, node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = node.operand
            if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)) \
                    and not isinstance(inner.value, bool):
                return self.constant(node, -inner.value if isinstance(node.op, ast.USub) else inner.value)
            raise self.error(node, "a sign applies to a number literal only")
        if isinstance(node, (ast.Tuple, ast.List)):
            if depth >= MAX_LITERAL_DEPTH or len(node.elts) > MAX_ITEMS:
                raise self.error(node, f"literal too large or nested too deeply (at most {MAX_ITEMS} items, "
                                       f"{MAX_LITERAL_DEPTH} levels)")
            items = [self.literal(e, depth + 1) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Name):
            hint = " (size symbols belong in input(), assume() and expect())" if node.id in self.symbols else ""
            raise self.error(node, f"{node.id!r} is not a literal: layer arguments are numbers, strings, "
                                   f"True/False/None or tuples of them{hint}")
        raise self.forbidden(node)

    def constant(self, node: ast.expr, v: object) -> object:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise self.error(node, "integer literal too large (at most 2**31 in magnitude)")
            return v
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise self.error(node, "float literal out of range")
            return v
        if isinstance(v, str):
            if len(v) > MAX_STR:
                raise self.error(node, f"string literal too long ({len(v)} characters, at most {MAX_STR})")
            return v
        raise self.error(node, f"{type(v).__name__} literals are not allowed")
