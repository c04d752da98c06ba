"""Command line: ``convgraph {shapes,solve,fix,export,check,animate} ...``.

Each subcommand lives in the module that owns its stage and is imported only when it runs, so
``convgraph shapes`` never imports onnx or onnxruntime. User errors print one line
``FILE:LINE:COL: error: ...`` (hint lines may follow) and exit 2; a failed check exits 1. With
``--json``, an error is ``{"error": {"file", "line", "col", "message", "hints"}}`` on stdout.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from convgraph.errors import ConvGraphError, Loc

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.ir import Graph

#: subcommand -> (module, function); the function takes the parsed args and returns an exit code
COMMANDS = {
    "shapes": ("convgraph.cli.shapes", "cli_shapes"),
    "fix": ("convgraph.cli.fix", "cli_fix"),
    "export": ("convgraph.cli.export", "cli_export"),
    "check": ("convgraph.cli.check", "cli_check"),
    "solve": ("convgraph.cli.solve", "cli_solve"),
    "animate": ("convgraph.cli.animate", "cli_animate"),
    "torch": ("convgraph.cli.torch", "cli_torch"),
    "summary": ("convgraph.cli.summary", "cli_summary"),
    "annotate": ("convgraph.cli.annotate", "cli_annotate"),
}


#: a size on the command line: ASCII digits only (``str.isdigit`` also accepts '²'), at most 2**63 - 1
_SIZE = re.compile(r"\s*\+?([0-9]{1,19})\s*")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_at(items: list[str] | None, flag: str = "--at") -> dict[str, int]:
    """``["H=64", "W=48"]`` -> ``{"H": 64, "W": 48}``; a malformed item or a size that is not a
    positive int below 2**63 is a user error."""
    out: dict[str, int] = {}
    for item in items or ():
        name, eq, val = item.partition("=")
        m = _SIZE.fullmatch(val)
        if not eq or not NAME.fullmatch(name) or not m or not 1 <= int(m.group(1)) < 2**63:
            raise ConvGraphError(f"{flag} expects SYM=INT with INT a positive size below 2**63, got "
                                 f"{_clip(item)!r}", Loc("<command line>", 0, 0))
        out[name] = int(m.group(1))
    return out


def parse_dims(items: list[str] | None) -> list[tuple]:
    """``["x=N,3,H,W"]`` (or ``["N,3,H,W"]``) -> ``[("N", 3, "H", "W")]``, one per forward input."""
    out = []
    for item in items or ():
        _, _, text = item.rpartition("=")
        parts = [p.strip() for p in text.split(",")]
        if not parts or not all(p.isdigit() or p.isidentifier() for p in parts):
            raise ConvGraphError(f"--dims expects [NAME=]D,D,... with ints or symbols, got {item!r}",
                                 Loc("<command line>", 0, 0))
        out.append(tuple(int(p) if p.isdigit() else p for p in parts))
    return out


def load_input(args: argparse.Namespace) -> Graph:
    """The graph of FILE: a .cg file, or ``model.py:ClassName`` (imported and run) with ``--dims``."""
    from convgraph.front.python_file import is_python_target

    if is_python_target(args.file):
        from convgraph.api import load_python

        dims = parse_dims(getattr(args, "dims", None))
        if not dims:
            raise ConvGraphError("a Python module needs --dims for its inputs, e.g. --dims x=N,3,H,W",
                                 Loc(args.file, 0, 0))
        return load_python(args.file, dims)
    from convgraph.api import load
    from convgraph.front.onnx_import import parse_dims as onnx_dims

    return load(args.file, onnx_dims(getattr(args, "dims", None)) or None)  # an ONNX model takes --dims too


#: the loader of every verb's FILE (.cg, ONNX model, or model.py:ClassName)
load_arg = load_input


PY_HELP = ("a .cg file (parsed, never executed), an ONNX model (told apart by content), or "
           "path/to/model.py:ClassName: a PyTorch module, which "
           "convgraph IMPORTS AND RUNS (the file's code executes, then ClassName() is built and traced "
           "with torch.fx; needs torch and --dims)")
DIMS_HELP = ("input dims of a Python module, one per forward input, or of an ONNX model's input by name "
             "(the exporter's names replaced, fixed sizes made symbolic): x=N,3,H,W")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def seed(text: str) -> int:
    """``--seed``: an int in numpy's seed range, 0 to 2**63 - 1 (argparse reports anything else)."""
    m = _SIZE.fullmatch(text)
    if not m or int(m.group(1)) >= 2**63:
        raise argparse.ArgumentTypeError(f"expected an int from 0 to 2**63 - 1, got {_clip(text)!r}")
    return int(m.group(1))


class UsageError(ConvGraphError):
    """The command line itself is malformed (argparse's errors, in the documented one-line form)."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but its errors are ``<command line>:0:0: error: ...`` (exit 2; JSON with --json)
    rather than a usage block; subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {_clip(message, 300)}", Loc("<command line>", 0, 0),
                         hints=(f"see '{self.prog} --help'",))


def check_at(graph: Graph, sizes: dict[str, int]) -> None:
    """The sizes given on the command line name the graph's symbols and let it run; otherwise a
    ShapeError naming the failed rule, with the exact valid set and the nearest valid sizes as
    hints (the same in every verb)."""
    from convgraph.errors import ShapeError
    from convgraph.shapes import infer

    try:
        infer(graph).validate(sizes)
    except ShapeError as err:
        raise ShapeError(err.message, err.loc, err.hints + size_hints(graph, sizes)) from None


def size_hints(graph: Graph, sizes: dict[str, int]) -> tuple[str, ...]:
    """For each given symbol outside its valid set: the set and the nearest valid sizes; for a
    coupled group: its exact description."""
    from convgraph.solve import solve
    from convgraph.solve._report import valid_lines

    sol = solve(graph, tiling=False)
    hints = []
    for name, x in sizes.items():
        if name in sol.symbols and x not in sol.runs(name):
            below, above = sol.nearest(name, x)
            near = ", ".join(str(v) for v in (below, above) if v is not None) or "none"
            hints.append(f"valid {name}: {sol.describe_runs(name)}; nearest valid: {near}")
    given = set(sizes)
    for line in valid_lines(sol):
        names = line.split(" (coupled): ")[0].split(", ") if " (coupled): " in line else []
        if names and given & set(names):
            hints.append(f"valid {line}")
    return tuple(hints)


_RUNS_TEXT = """\
runs: the sizes at which PyTorch would accept the input: every layer's own rule (output size >= 1,
  input at least the dilated kernel, ...) holds, every cat / + / crop / Linear merge lines up, and
  every assume and expect holds.
tiles exactly: the sizes at which the graph runs and, at every strided Conv/Pool, the windows tile
  the input exactly: no trailing input row is discarded and no ceil-mode window runs past the
  padding (pad_begin + i <= (o - 1)*s + ek); without padding that is (i - ek) % s == 0.
"""

#: verb -> (one-line help, description with an example)
VERBS = {
    "shapes": ("every value's shape as an exact formula, the constraints and the valid sizes",
               "example:\n  convgraph shapes models/unet.cg\n"
               "  convgraph shapes models/unet.cg --at N=1 --at H=64 --at W=96"),
    "solve": ("the exact valid input sizes, merge-point proofs and verified fixes",
              _RUNS_TEXT + "\nexample:\n  convgraph solve models/needs_output_padding.cg --near H=64"),
    "fix": ("apply the verified fixes and write the edited .cg file",
            "Each failing merge's first verified fix is applied to the source text (comments and the\n"
            "layout of untouched lines kept); the output is re-solved before it is written.\n\n"
            "example:\n  convgraph fix models/needs_output_padding.cg -o fixed.cg"),
    "export": ("export ONNX with symbolic dims named by the formulas",
               "example:\n  convgraph export models/unet.cg -o unet.onnx\n"
               "  convgraph export models/unet.cg -o unet64.onnx --at N=1 --at H=64 --at W=64 --weights unet.npz"),
    "check": ("run the export on onnxruntime across sizes and compare with the formulas and references",
              "example:\n  convgraph check models/unet.cg\n  convgraph check models/unet.cg --sizes 12 --provider all"),
    "torch": ("write a PyTorch nn.Module source file (imports only torch)",
              "The file defines class Model; its state_dict keys are the ONNX initializer names.\n\n"
              "example:\n  convgraph torch models/unet.cg -o unet.py"),
    "summary": ("per value: shape, parameters, MACs as formulas, receptive field, jump and start",
                "example:\n  convgraph summary models/resnet18.cg\n"
                "  convgraph summary models/resnet18.cg --at N=1 --at H=224 --at W=224\n"
                "  convgraph summary models/unet.cg --plot unet_cost.png\n"
                "  convgraph summary model.py:Net --dims x=N,3,H,W"),
    "annotate": ("write an ONNX model's exact dims, constraints and valid sizes into it",
                 "Every feature map gets a value_info with its exact dims (the formulas export writes); the\n"
                 "constraints and valid sizes go into metadata_props under export's keys. Nodes and weights\n"
                 "are untouched, external data stays external, the write is atomic.\n\n"
                 "example:\n  convgraph annotate unet.onnx -o unet_annotated.onnx --dims x=N,3,H,W"),
    "animate": ("animated convolution arithmetic for one layer",
                "example:\n  convgraph animate \"Conv2d(1, 1, 3, stride=2)\" --input 5x7 -o conv.gif\n"
                "  convgraph animate models/unet.cg --layer enc1_conv1 --at H=16 --at W=16 -o layer.gif"),
}


def _sub(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    short, desc = VERBS[name]
    return sub.add_parser(name, help=short, description=short + ".\n\n" + desc,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the model: a .cg file")


def _py_file(p: argparse.ArgumentParser) -> None:
    """FILE that may also be a PyTorch module (model.py:ClassName) with --dims."""
    p.add_argument("file", help=PY_HELP)
    p.add_argument("--dims", action="append", metavar="NAME=D,D,...", help=DIMS_HELP)


def _at(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--at", action="append", metavar="SYM=INT", help=f"{what}; repeat per symbol, e.g. --at H=64")


def _json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"{what} as JSON on stdout (errors too)")


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="FILE",
                   help=".npz, .safetensors or a PyTorch state_dict file, keys = layer names; "
                        "without it the weights are random (PyTorch's default initialisation)")
    p.add_argument("--seed", type=seed, default=0, metavar="N",
                   help="seed of the random weights and inputs (default 0)")


def build_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="convgraph",
                                description="exact shapes, valid sizes and ONNX export for conv layer stacks",
                                epilog="run 'convgraph VERB --help' for a verb's options and an example")
    from convgraph._version import __version__

    p.add_argument("--version", action="version", version=f"convgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="VERB")

    s = _sub(sub, "shapes")
    _py_file(s)
    _at(s, "evaluate every shape at these sizes (an error with hints when the graph does not run there)")
    _json(s, "values, constraints and valid sizes")

    v = _sub(sub, "solve")
    _py_file(v)
    v.add_argument("--near", action="append", metavar="SYM=INT",
                   help="also show the valid sizes nearest to this one, e.g. --near H=100")
    _json(v, "the sets, merge verdicts and fixes")

    f = _sub(sub, "fix")
    _file(f)
    f.add_argument("-o", "--output", required=True, metavar="OUT.cg",
                   help="where to write the edited file (never the input itself)")

    e = _sub(sub, "export")
    _py_file(e)
    e.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    e.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset (default: the lowest the graph needs, at least 17), e.g. --opset 22")
    _at(e, "bake these sizes in as static dims")
    _weights(e)

    c = _sub(sub, "check")
    _py_file(c)
    _at(c, "check at these sizes only (symbols left out are chosen by the solver)")
    c.add_argument("--sizes", type=int, default=6, metavar="K",
                   help="how many size assignments the solver picks (default 6)")
    c.add_argument("--provider", choices=("cpu", "cuda", "all"), default="cpu",
                   help="onnxruntime execution provider(s) to run on (default cpu)")
    _json(c, "the report")
    _weights(c)

    n = _sub(sub, "annotate")
    n.add_argument("file", help="the ONNX model")
    n.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...", help=DIMS_HELP)
    n.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the annotated model to write")

    a = _sub(sub, "animate")
    a.add_argument("target", help='a layer, e.g. "Conv2d(1, 1, 3)", or a .cg file')
    a.add_argument("--input", metavar="SIZE", help="input spatial size for a layer string, e.g. 5x7")
    a.add_argument("--layer", metavar="NAME", help="the layer to draw, by its name in the file")
    _at(a, "sizes of the file's symbols")
    a.add_argument("-o", "--output", required=True, metavar="OUT.gif",
                   help="the animation to write: .gif (or .png with --png)")
    a.add_argument("--png", action="store_true", help="write a static strip of frames (.png) instead")
    a.add_argument("--scatter", action="store_true", help="transposed conv: draw the scatter view")

    t = _sub(sub, "torch")
    _file(t)
    t.add_argument("-o", "--output", required=True, metavar="OUT.py", help="the .py file to write")

    m = _sub(sub, "summary")
    _py_file(m)
    _at(m, "numbers instead of formulas at these sizes")
    _json(m, "the table and totals")
    m.add_argument("--plot", metavar="OUT.png", help="draw MACs and activation memory against the input size")
    return p


def error_json(err: ConvGraphError) -> dict:
    """``{"error": {"file", "line", "col", "message", "hints"}}``."""
    loc = err.loc
    return {"error": {"file": loc.file, "line": loc.line, "col": loc.col, "message": err.message,
                      "hints": list(err.hints)}}


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [p for a in parser._actions if isinstance(a, argparse._SubParsersAction) for p in a.choices.values()]


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM unwinds like Ctrl-C (every ``finally`` runs: temp files are removed), exit 143."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals stay as they are
        return _run(argv)
    try:
        return _run(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str]) -> int:
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        module, func = COMMANDS[args.command]
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except ConvGraphError as err:
        if as_json:
            print(json.dumps(error_json(err), indent=2))
        else:
            print(err.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convgraph: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `convgraph solve ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
