"""Every user-facing error of convgraph, each carrying the DSL source position.

The CLI prints ``str(err)``, which is exactly one line ``FILE:LINE:COL: error: MESSAGE``
(optional hint lines follow), and exits with status 2.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Loc:
    """A source position: 1-based line and column, as editors show them.

    ``calls`` is the chain of block expansions the position lies in, innermost first: pairs of the
    block's name and the call site (``("DoubleConv", Loc("unet.cg", 52, 7))``). An error at such a
    position names both places: ``... (in DoubleConv, called at unet.cg:52:7)``.

    In an imported ONNX model, ``node`` (``"NAME (OpType)"``) replaces line and column:
    ``FILE:node NAME (OpType)``."""

    file: str = "<string>"
    line: int = 0
    col: int = 0
    calls: tuple[tuple[str, Loc], ...] = ()
    node: str = ""

    def __str__(self) -> str:
        if self.node:
            return f"{self.file}:node {self.node}"
        return f"{self.file}:{self.line}:{self.col}"

    def trail(self) -> str:
        """`` (in B, called at f:3:5; in A, called at f:9:1)``, or ``''`` outside any block."""
        if not self.calls:
            return ""
        return " (" + "; ".join(f"in {name}, called at {site}" for name, site in self.calls) + ")"


NOWHERE = Loc("<builder>", 0, 0)


def one_line(text: object, limit: int = 400) -> str:
    """Another library's error text fit for one error line: ANSI escapes dropped, every run of
    whitespace (newlines included) one space, clipped to ``limit`` characters."""
    flat = " ".join(_ANSI.sub("", str(text)).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class ConvGraphError(Exception):
    """Base class of every error caused by the user's input.

    ``str(err)`` is ``FILE:LINE:COL: error: MESSAGE`` followed by any hint lines.
    """

    def __init__(self, message: str, loc: Loc | None = None, hints: tuple[str, ...] = ()):
        loc = loc or NOWHERE
        trail = loc.trail()
        self.message = message if message.endswith(trail) else message + trail
        self.loc = loc
        self.hints = tuple(hints)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.loc}: error: {self.message}"]
        lines += [f"  hint: {h}" for h in self.hints]
        return "\n".join(lines)

    def at(self, loc: Loc) -> ConvGraphError:
        """The same error, re-anchored at ``loc`` when it has no position yet."""
        if self.loc is NOWHERE or (self.loc.line == 0 and not self.loc.node):
            return type(self)(self.message, loc, self.hints)
        return self


class DSLSyntaxError(ConvGraphError):
    """The text is not in the DSL's grammar (also: injection attempts)."""


class LayerConfigError(ConvGraphError):
    """A layer's constructor arguments are invalid (PyTorch would raise in ``__init__``)."""


class GraphError(ConvGraphError):
    """The graph is malformed: undefined or reused value, channel mismatch, wrong rank."""


class ShapeError(ConvGraphError):
    """A shape constraint fails: at given sizes, or for every size."""


class ExportError(ConvGraphError):
    """The export cannot be done as asked (opset too low, bad output path)."""


class WeightsError(ConvGraphError):
    """A weights file is unreadable, or its keys/shapes do not match the graph."""
