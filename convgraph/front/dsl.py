"""The text DSL (``.cg`` files): a restricted subset of Python syntax, parsed with ``ast`` and
never executed (no eval, no exec, no imports, no attribute access beyond the layer prefixes).

>>> g = parse("input(1, 1, H, W)\\nConv2d(1, 1, 3)\\nReLU()")
>>> [(n.name, n.op) for n in g.nodes]
[('x', 'input'), ('0', 'layer'), ('1', 'layer')]

Constants and arithmetic. ``C = 64`` binds a constant (int, float, str, bool, None or a tuple of
them); ``h = x`` makes ``h`` another name of the value ``x``. Wherever a layer argument, an input
size or a size expression is expected, ints combine with ``+ - * // %`` and unary minus, and
``a or b`` picks a default for a None, all evaluated by the parser (``_consts``). No integer,
written or computed, may exceed ``2**31`` in magnitude; ``**`` is not an operator of the DSL.

Blocks. A top-level ``def`` is a block (``_blocks``): its call expands the body in place, the
layers inside named ``<call's target>.<local name>`` (or ``<name=>.<local name>``), so the layer
names are the state_dict keys of the PyTorch module tree the file mirrors. ``Sequential(...)``
expands into its children ``<target>.0``, ``<target>.1``, ... Both are bounded: every block call of
a file together expands to at most ``MAX_EXPANDED`` statements, checked before expanding.

Naming. A value is named by the name it is assigned to; a reassigned name gets the first free
suffix (``h``, ``h_1``, ``h_2``, ...). A layer is named after its value unless ``name="..."`` is
given (a dotted module path, e.g. ``name="inc.double_conv.0"``). A layer written as a bare statement
(the sequential shorthand) is named by its position among the modules of its scope, "0", "1", ...,
as ``torch.nn.Sequential`` numbers its children, and its value takes the same name. An unassigned
``input(...)`` is named ``x``. Inside a block call the values are named ``<prefix>.<local name>``,
except what the block returns, which takes the name it is assigned to at the call.

Every error is a ConvGraphError subclass whose position is the offending node (1-based line and
column), with the block calls it lies in; nothing in this module imports torch, onnx, onnxruntime
or sympy.
"""
from __future__ import annotations

import ast
import itertools
import os
import re
import stat
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal, TypeVar, overload

from convgraph import dims as D
from convgraph.errors import ConvGraphError, DSLSyntaxError, GraphError, Loc
from convgraph.front import _blocks
from convgraph.front._consts import MAX_ITEMS, Evaluator, is_int
from convgraph.front._dsl_functions import FunctionsMixin
from convgraph.front._modules import Modules, Scope
from convgraph.front.catalogue import CATALOGUE, CONTAINERS, construct, suggest
from convgraph.front.functions import DSL_FUNCTIONS
from convgraph.ir import Assume, Expect, Graph, LayerSpec, Node

MAX_SOURCE_CHARS = 1_000_000
T = TypeVar("T")
MAX_DEPTH = 32  # nesting of size expressions
MAX_NODES = 100_000  # values one file may define, block expansions included

FUNCTIONS = ("input", "output", "cat", "crop", "assume", "expect")
RESERVED = (frozenset(FUNCTIONS) | frozenset(CATALOGUE) | frozenset(CONTAINERS)
            | {"nn", "torch", "F", "floor", "ceiling"})
#: callable names that are not reserved: a value may be named ``flatten`` (``flatten(v, 1)`` still calls)
CALLABLE = frozenset(FUNCTIONS) | frozenset(DSL_FUNCTIONS) | frozenset(CATALOGUE) | frozenset(CONTAINERS)
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: a layer name: a module path, names of letters, digits, '_' or '-' joined by '.'
LAYER_NAME_RE = re.compile(r"(?=.{1,256}\Z)[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*\Z")
LAYER_NAME_RULE = ("a module path: names of letters, digits, '_' or '-' joined by '.', e.g. 'inc.double_conv.0' "
                   "(at most 256 characters)")
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


#: the line ends ``ast`` counts (``str.splitlines`` also splits on \f, \v, \x1c, \x85, \u2028, ...)
_LINE_END = re.compile(r"\r\n|\r|\n")


def source_lines(text: str) -> list[str]:
    """The lines of ``text`` as ``ast`` numbers them (``lineno``/``col_offset`` index into these)."""
    return _LINE_END.split(text)


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
    data = read_bounded(p, 4 * MAX_SOURCE_CHARS, "a .cg file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DSLSyntaxError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x})", Loc(str(p), line, col)) from e
    return parse(text, filename=str(p))


def read_bounded(p: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Opened without blocking (a FIFO
    would wait for a writer), refused unless regular (a device's size says nothing: /dev/zero is
    endless), and read up to ``limit + 1`` bytes whatever the size said (the file may grow)."""
    loc = Loc(str(p), 0, 0)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ConvGraphError(f"cannot read {p}: {e.strerror or e}", loc) from e
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
        raise ConvGraphError(f"cannot read {p}: it is {kind}", loc)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise ConvGraphError(f"cannot read {p}: {e.strerror or e}", loc) from e
    if len(data) > limit:
        raise ConvGraphError(f"{p} is too large for {what} (more than {limit} bytes)", loc)
    return data


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
        with warnings.catch_warnings():  # '\d' in a string: a SyntaxWarning on stderr before any error
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=filename, mode=mode)
        assert isinstance(tree, (ast.Module, ast.Expression))
    except SyntaxError as e:
        msg = e.msg if e.msg.startswith("invalid syntax") else f"invalid syntax: {e.msg}"
        raise DSLSyntaxError(msg, Loc(filename, e.lineno or 1, e.offset or 1)) from None
    except (RecursionError, MemoryError):
        raise DSLSyntaxError("the source is nested too deeply", Loc(filename, 1, 1)) from None
    _check_keywords(tree, text, filename)
    return tree


def _check_keywords(tree: ast.AST, text: str, filename: str) -> None:
    """A keyword given twice in one call is refused, as Python's compiler refuses it (``ast.parse``
    accepts ``f(padding=1, padding=2)``; the last would silently win)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        seen: set[str] = set()
        for kw in node.keywords:
            if kw.arg is not None and kw.arg in seen:
                raw = source_lines(text)[kw.lineno - 1].encode("utf-8")[:kw.col_offset]
                col = len(raw.decode("utf-8", errors="replace")) + 1
                raise DSLSyntaxError(f"keyword argument repeated: {kw.arg}", Loc(filename, kw.lineno, col))
            seen.add(kw.arg or "")


# --------------------------------------------------------------------------------------------
# The parser: one pass over the statements, building nodes in definition order
# --------------------------------------------------------------------------------------------


class _Parser(Modules, FunctionsMixin):
    FUNCTIONS = FUNCTIONS

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.lines = source_lines(text)
        self.nodes: list[Node] = []
        self.values: dict[str, Node] = {}  # node name -> node
        self.layer_names: dict[str, Loc] = {}
        self.next_suffix: dict[tuple[str, bool], int] = {}  # (base, names_layer) -> first suffix to try
        self.containers: dict[str, Loc] = {}  # module paths that hold layers (Sequential, block calls)
        self.symbols: dict[str, Loc] = {}
        self.top = self.scope = Scope()
        self.blocks: dict[str, _blocks.Block] = {}
        self.later: dict[str, int] = {}  # every block of the file -> its line
        self.expanded = 0
        self.outputs: tuple[str, ...] | None = None
        self.output_loc: Loc | None = None
        self.assumes: list[Assume] = []
        self.expects: list[Expect] = []
        self.evaluate = Evaluator(self.constant_name, self.error, self.forbidden)

    @property
    def env(self) -> dict[str, str]:
        return self.scope.env

    # -- positions and errors ------------------------------------------------------------------

    def loc(self, node: ast.AST) -> Loc:
        line = getattr(node, "lineno", 1)
        raw = self.lines[line - 1].encode("utf-8") if line <= len(self.lines) else b""
        col = len(raw[:getattr(node, "col_offset", 0)].decode("utf-8", errors="replace")) + 1
        return Loc(self.filename, line, col, self.scope.calls)

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
        self.later = {s.name: s.lineno for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
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
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and self.scope.block is None:
            self.define_block(stmt)
        else:
            raise self.forbidden(stmt)

    def file_level(self, node: ast.AST, kind: str) -> None:
        if self.scope.block is not None:
            raise self.error(node, f"{kind}() belongs at the top level of the file, not inside block "
                                   f"{self.scope.block!r}")

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
            self.file_level(expr, kind)
            return handler()
        if kind in CATALOGUE or kind in CONTAINERS:
            return self.shorthand(expr, kind)
        if kind in self.blocks:
            raise self.error(expr, f"assign the result of block {kind!r} to a name, e.g. h = {kind}(...)")
        raise self.error(expr, f"assign the result of {kind}(...) to a name")

    def assignment(self, stmt: ast.Assign) -> None:
        target, value = stmt.targets[0], stmt.value
        if len(stmt.targets) == 1 and isinstance(target, ast.Tuple):
            if not self.is_block_call(value):
                return self.multi(stmt)
            for t in target.elts:
                if not isinstance(t, ast.Name):
                    raise self.error(t, "assign to plain names, e.g. a, b = Block(x)")
                self.check_value_name(t)
            return self.block_call(value, target.elts, True)  # type: ignore[arg-type]
        if len(stmt.targets) != 1 or not isinstance(target, ast.Name):
            raise self.error(stmt.targets[-1] if len(stmt.targets) > 1 else target,
                             "assign to exactly one plain name, e.g. h = ...")
        self.check_value_name(target)
        if isinstance(value, ast.Call):
            return self.call_assignment(value, target)
        if self.mentions_value(value):
            if isinstance(value, ast.Name):
                return self.alias(target.id, value)
            if isinstance(value, ast.BinOp):
                return self.binop(value, target.id)
            if isinstance(value, ast.Subscript):
                return self.subscript(value, target.id)
            if type(value) in _WORDS:
                raise self.forbidden(value)
            raise self.error(value, "assign a layer applied to a value, input(...), cat(...), crop(...) or a + b")
        self.scope.consts[target.id] = self.literal(value)
        self.scope.env.pop(target.id, None)

    def call_assignment(self, value: ast.Call, target: ast.Name) -> None:
        if isinstance(value.func, ast.Call):
            return self.applied(value, target.id)
        kind = self.callee(value.func)
        if kind in self.blocks:
            return self.block_call(value, [target], False)
        if kind == "input":
            self.file_level(value, kind)
            return self.input(value, target.id)
        if kind in ("cat", "crop"):
            return self.cat(value, target.id) if kind == "cat" else self.crop(value, target.id)
        if kind in CATALOGUE or kind in CONTAINERS:
            raise self.error(value, f"apply the layer to a value: {target.id} = {kind}(...)(x)")
        if kind in ("output", "assume", "expect"):
            raise self.error(value, f"{kind}(...) has no value to assign")
        return self.function(value, target.id, kind)

    def is_block_call(self, value: ast.expr) -> bool:
        return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and self.callee(value.func) in self.blocks)

    def mentions_value(self, node: ast.expr) -> bool:
        """Whether an expression refers to a value (else it may be a constant expression)."""
        return any(isinstance(n, ast.Name) and n.id in self.scope.env for n in ast.walk(node))

    def is_constant(self, name: str) -> bool:
        return name in self.scope.consts or name in self.top.consts

    def alias(self, name: str, value: ast.Name) -> None:
        """``h = x``: another name for the same value (no node)."""
        self.scope.env[name] = self.value(value)
        self.scope.consts.pop(name, None)
        self.scope.current = self.scope.env[name]

    # -- names ---------------------------------------------------------------------------------

    def callee(self, func: ast.expr) -> str:
        """The function, layer or block a call names: 'input', 'cat', 'Conv2d', ...; rejects anything else."""
        if isinstance(func, ast.Name):
            if func.id in CALLABLE or func.id in self.blocks:
                return func.id
            if func.id in self.later:
                raise self.error(func, f"block {func.id!r} is used before its definition (line "
                                       f"{self.later[func.id]}): define blocks before using them")
            hint = suggest(func.id, (*CATALOGUE, *CONTAINERS, *FUNCTIONS, *DSL_FUNCTIONS, *self.blocks))
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
        if last not in CATALOGUE and last not in CONTAINERS:
            raise self.error(func, f"unknown layer {'.'.join((*prefix, last))!r}{suggest(last)}")
        return last

    def check_value_name(self, target: ast.Name | ast.arg) -> None:
        name = target.id if isinstance(target, ast.Name) else target.arg
        if name in RESERVED or not NAME_RE.match(name):
            why = "a reserved name" if name in RESERVED else "not an ASCII identifier"
            raise self.error(target, f"{name!r} cannot name a value: it is {why}")
        if name in self.symbols:
            raise self.error(target, f"{name!r} is a size symbol (line {self.symbols[name].line}) "
                                     "and cannot also name a value")
        if name in self.later:
            raise self.error(target, f"{name!r} names a block (line {self.later[name]}) and cannot also name a value")

    def value(self, node: ast.expr) -> str:
        """The node name a value reference resolves to."""
        if not isinstance(node, ast.Name):
            got = repr(node.value) if isinstance(node, ast.Constant) else describe(node)
            raise self.error(node, f"expected a value name, got {got}")
        if node.id in self.scope.env:
            return self.scope.env[node.id]
        if node.id in self.scope.consts or (node.id in self.top.consts and self.scope.block):
            raise self.error(node, f"{node.id!r} is a constant, not a value", GraphError)
        if self.scope.block is not None and node.id in self.top.env:
            raise self.error(node, f"{node.id!r} is a value of the file, not of block {self.scope.block!r}: "
                                   "pass it as a parameter", GraphError)
        raise self.error(node, f"undefined value {node.id!r}{suggest(node.id, self.scope.env)}", GraphError)

    def constant_name(self, node: ast.Name) -> object:
        """The constant a name stands for in a layer argument (block scope first, then the file)."""
        for scope in (self.scope, self.top):
            if node.id in scope.consts:
                return scope.consts[node.id]
        if node.id in self.symbols:
            raise self.error(node, f"{node.id!r} is not a literal: layer arguments are numbers, strings, "
                                   "True/False/None or tuples of them (size symbols belong in input(), "
                                   "assume() and expect())")
        if node.id in self.scope.env:
            raise self.error(node, f"{node.id!r} is a value, not a constant: layer arguments are numbers, "
                                   "strings, True/False/None, constants or tuples of them")
        if node.id in self.later:
            raise self.error(node, f"{node.id!r} is a block: call it, e.g. {node.id}(x, ...)")
        known = {**self.top.consts, **self.scope.consts}
        raise self.error(node, f"undefined constant {node.id!r}{suggest(node.id, known)}", GraphError)

    def fresh(self, base: str, names_layer: bool) -> str:
        """``base`` (in the current scope's prefix), else ``base_1``, ``base_2``, ...: the first name free
        as a value (and as a layer name, when the layer is named after its value)."""
        # names are never freed, so the first free suffix only moves up: resume where the last
        # search for this base stopped (linear in all, where restarting at 0 was quadratic)
        full = self.scope.prefix + base
        key = (full, names_layer)
        k = self.next_suffix.get(key, 0)
        while True:
            name = f"{full}_{k}" if k else full
            if name not in self.values and not (
                    names_layer and (name in self.layer_names or name in self.containers)):
                self.next_suffix[key] = k
                return name
            k += 1

    def fresh_exact(self, name: str) -> str:
        return next(n for n in suffixed(name) if n not in self.values)

    def define(self, node: Node, source_name: str | None) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise ConvGraphError(f"too many values (at most {MAX_NODES}, block expansions included)", node.loc)
        if source_name is not None:
            node = replace(node, source=source_name)
        self.nodes.append(node)
        self.values[node.name] = node
        if source_name is not None:
            self.scope.env[source_name] = node.name
            self.scope.consts.pop(source_name, None)
        self.scope.current = node.name

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
        """A symbol or a positive int (or a constant); the batch N may be 0 (torch runs an empty batch)."""
        if isinstance(node, ast.Name) and node.id not in self.top.consts:
            if node.id in RESERVED or not NAME_RE.match(node.id):
                why = "a reserved name" if node.id in RESERVED else "not an ASCII identifier"
                raise self.error(node, f"{node.id!r} cannot be a size symbol: it is {why}")
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
        kind = self.callee(ctor.func) if isinstance(ctor, ast.Call) and not isinstance(ctor.func, ast.Call) \
            else None
        if not isinstance(ctor, ast.Call) or (kind not in CATALOGUE and kind not in CONTAINERS):
            raise self.error(ctor, "only a layer can be applied to a value, e.g. Conv2d(3, 8, 3)(x)")
        if len(call.args) != 1 or call.keywords:
            raise self.error(call, "a layer is applied to exactly one value, e.g. Conv2d(3, 8, 3)(x)")
        src = self.value(call.args[0])
        if kind in CONTAINERS:
            return self.sequential(ctor, src, target)
        spec, explicit = self.layer(ctor)
        name = self.fresh(target, names_layer=explicit is None)
        layer_name = self.layer_name(ctor, explicit, name)
        self.define(Node(name, "layer", (src,), self.loc(ctor), spec, layer_name), target)
        self.scope.modules += 1

    def layer_name(self, ctor: ast.Call, explicit: str | None, default: str) -> str:
        """``name=`` within the scope's module path, else ``default``; claimed as a layer name."""
        return self.claim_layer(ctor, self.scope.prefix + explicit if explicit is not None else default)

    def shorthand(self, ctor: ast.Call, kind: str) -> None:
        if self.scope.current is None:
            raise self.error(ctor, "no current value for this layer: declare an input first, e.g. input(1, 3, H, W)")
        if kind in CONTAINERS:
            return self.sequential(ctor, self.scope.current, None)
        spec, explicit = self.layer(ctor)
        name = self.scope.prefix + (explicit if explicit is not None else str(self.scope.modules))
        if name in self.values:
            raise self.error(ctor, f"value name {name!r} is already used", GraphError)
        self.claim_layer(ctor, name)
        self.define(Node(name, "layer", (self.scope.current,), self.loc(ctor), spec, name), None)
        self.scope.modules += 1

    def layer(self, ctor: ast.Call) -> tuple[LayerSpec, str | None]:
        """Construct the layer a call describes; returns the spec and its ``name=`` (or None)."""
        type_name = self.callee(ctor.func)
        args = tuple(self.literal(a) for a in ctor.args)
        kwargs: dict[str, object] = {}
        explicit = None
        for kw in ctor.keywords:  # a repeated keyword was refused with the syntax (_check_keywords)
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
            raise self.error(v, f"name= must be {LAYER_NAME_RULE}")
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
        if not is_int(dim):
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
            const = self.scope.consts.get(node.id, self.top.consts.get(node.id))
            if is_int(const):
                return const
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

    # -- literals and constants ---------------------------------------------------------------

    def literal(self, node: ast.expr) -> object:
        """A constant: int, float, bool, str, None, tuples/lists of them, named constants, integer
        arithmetic and ``a or b`` (``_consts``)."""
        return self.evaluate(node)

    def default(self, node: ast.expr) -> object:
        """A block parameter's default: a literal, no names."""
        def no_name(name: ast.Name) -> object:
            raise self.error(name, f"a default is a literal (a number, string, True/False/None or a tuple of "
                                   f"them), got the name {name.id!r}")

        def other(n: ast.AST) -> ConvGraphError:
            return self.error(n, f"a default is a literal (a number, string, True/False/None or a tuple of "
                                 f"them), got {describe(n)}")

        return Evaluator(no_name, self.error, other)(node)
