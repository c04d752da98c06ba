"""Command line: ``convgraph {shapes,solve,fix,export,check,animate,annotate} ...``.

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
import sys
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
    "annotate": ("convgraph.cli.annotate", "cli_annotate"),
}


def parse_at(items: list[str] | None, flag: str = "--at") -> dict[str, int]:
    """``["H=64", "W=48"]`` -> ``{"H": 64, "W": 48}``; a malformed item is a user error."""
    out: dict[str, int] = {}
    for item in items or ():
        name, eq, val = item.partition("=")
        if not eq or not name.isidentifier() or not val.strip().lstrip("-").isdigit():
            raise ConvGraphError(f"{flag} expects SYM=INT, got {item!r}", Loc("<command line>", 0, 0))
        out[name] = int(val)
    return out


def load_arg(args: argparse.Namespace) -> Graph:
    """The graph of ``args.file`` (a .cg file or an ONNX model), with ``--dims`` where given."""
    from convgraph.api import load
    from convgraph.front.onnx_import import parse_dims

    return load(args.file, parse_dims(getattr(args, "dims", None)) or None)


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


def _file(p: argparse.ArgumentParser, onnx: bool = True) -> None:
    p.add_argument("file", help="the model: a .cg file or an ONNX model (told apart by content)" if onnx else
                   "the model: a .cg file")
    if onnx:
        _dims(p)


def _dims(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...",
                   help="an ONNX model's input dims, e.g. x=N,3,H,W: names become size symbols (the exporter's "
                        "names replaced, fixed sizes made symbolic); repeat per input")


def _at(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--at", action="append", metavar="SYM=INT", help=f"{what}; repeat per symbol, e.g. --at H=64")


def _json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"{what} as JSON on stdout (errors too)")


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="FILE",
                   help=".npz, .safetensors or a PyTorch state_dict file, keys = layer names; "
                        "without it the weights are random (PyTorch's default initialisation)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the random weights and inputs (default 0)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convgraph",
                                description="exact shapes, valid sizes and ONNX export for conv layer stacks",
                                epilog="run 'convgraph VERB --help' for a verb's options and an example")
    from convgraph._version import __version__

    p.add_argument("--version", action="version", version=f"convgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="VERB")

    s = _sub(sub, "shapes")
    _file(s)
    _at(s, "evaluate every shape at these sizes (an error with hints when the graph does not run there)")
    _json(s, "values, constraints and valid sizes")

    v = _sub(sub, "solve")
    _file(v)
    v.add_argument("--near", action="append", metavar="SYM=INT",
                   help="also show the valid sizes nearest to this one, e.g. --near H=100")
    _json(v, "the sets, merge verdicts and fixes")

    f = _sub(sub, "fix")
    _file(f, onnx=False)
    f.add_argument("-o", "--output", required=True, metavar="OUT.cg",
                   help="where to write the edited file (never the input itself)")

    e = _sub(sub, "export")
    _file(e)
    e.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    e.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset (default: the lowest the graph needs, at least 17), e.g. --opset 22")
    _at(e, "bake these sizes in as static dims")
    _weights(e)

    c = _sub(sub, "check")
    _file(c)
    _at(c, "check at these sizes only (symbols left out are chosen by the solver)")
    c.add_argument("--sizes", type=int, default=6, metavar="K",
                   help="how many size assignments the solver picks (default 6)")
    c.add_argument("--provider", choices=("cpu", "cuda", "all"), default="cpu",
                   help="onnxruntime execution provider(s) to run on (default cpu)")
    _json(c, "the report")
    _weights(c)

    n = _sub(sub, "annotate")
    n.add_argument("file", help="the ONNX model")
    _dims(n)
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
    return p


class _JSONParser(argparse.ArgumentParser):
    """With --json, a usage error is a user error in the JSON shape too."""

    def error(self, message: str) -> NoReturn:
        raise ConvGraphError(message, Loc("<command line>", 0, 0))


def error_json(err: ConvGraphError) -> dict:
    """``{"error": {"file", "line", "col", "message", "hints"}}``."""
    loc = err.loc
    return {"error": {"file": loc.file, "line": loc.line, "col": loc.col, "message": err.message,
                      "hints": list(err.hints)}}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if "--json" in argv:
        for action in [parser, *_subparsers(parser)]:
            action.__class__ = _JSONParser
    return parser.parse_args(argv)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [p for a in parser._actions if isinstance(a, argparse._SubParsersAction) for p in a.choices.values()]


def main(argv: list[str] | None = None) -> int:
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
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
