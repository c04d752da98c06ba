"""Command line: ``convgraph {shapes,export,check,solve,animate} ...``.

Each subcommand lives in the module that owns its stage and is imported only when it runs, so
``convgraph shapes`` never imports onnx or onnxruntime. User errors print one line
``FILE:LINE:COL: error: ...`` and exit 2; a failed check exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING

from convgraph.errors import ConvGraphError, Loc

if TYPE_CHECKING:
    from convgraph.api import Graph

#: subcommand -> (module, function); the function takes the parsed args and returns an exit code
COMMANDS = {
    "shapes": ("convgraph.cli.shapes", "cli_shapes"),
    "export": ("convgraph.cli.export", "cli_export"),
    "check": ("convgraph.cli.check", "cli_check"),
    "solve": ("convgraph.cli.solve", "cli_solve"),
    "animate": ("convgraph.cli.animate", "cli_animate"),
    "torch": ("convgraph.cli.torch", "cli_torch"),
    "summary": ("convgraph.cli.summary", "cli_summary"),
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

    return load(args.file)


PY_HELP = ("a .cg file (parsed, never executed), or path/to/model.py:ClassName: a PyTorch module, which "
           "convgraph IMPORTS AND RUNS (the file's code executes, then ClassName() is built and traced "
           "with torch.fx; needs torch and --dims)")
DIMS_HELP = "input dims of a Python module, one per forward input: x=N,3,H,W"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convgraph", description=__doc__.splitlines()[0])
    from convgraph._version import __version__

    p.add_argument("--version", action="version", version=f"convgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("shapes", help="every value's shape as an exact formula, and the constraints")
    s.add_argument("file", help=PY_HELP)
    s.add_argument("--dims", action="append", metavar="NAME=D,D,...", help=DIMS_HELP)
    s.add_argument("--at", action="append", metavar="SYM=INT", help="evaluate at these sizes")
    s.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="export ONNX with symbolic dims named by the formulas")
    e.add_argument("file", help=PY_HELP)
    e.add_argument("--dims", action="append", metavar="NAME=D,D,...", help=DIMS_HELP)
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--opset", type=int)
    e.add_argument("--at", action="append", metavar="SYM=INT", help="bake in static sizes")
    e.add_argument("--weights", help=".npz, .safetensors or a PyTorch state_dict file")
    e.add_argument("--seed", type=int, default=0)

    c = sub.add_parser("check", help="run the export on onnxruntime across sizes and compare")
    c.add_argument("file")
    c.add_argument("--at", action="append", metavar="SYM=INT")
    c.add_argument("--provider", choices=("cpu", "cuda", "all"), default="cpu")
    c.add_argument("--json", action="store_true")
    c.add_argument("--weights")
    c.add_argument("--seed", type=int, default=0)

    v = sub.add_parser("solve", help="the exact valid input sizes, merge-point proofs and fixes")
    v.add_argument("file", help=PY_HELP)
    v.add_argument("--dims", action="append", metavar="NAME=D,D,...", help=DIMS_HELP)
    v.add_argument("--near", action="append", metavar="SYM=INT")
    v.add_argument("--json", action="store_true")

    a = sub.add_parser("animate", help="animated convolution arithmetic for one layer")
    a.add_argument("target", help='a layer, e.g. "Conv2d(1, 1, 3)", or a .cg file')
    a.add_argument("--input", help="input spatial size for a layer string, e.g. 5x7")
    a.add_argument("--layer", help="layer name in the file")
    a.add_argument("--at", action="append", metavar="SYM=INT")
    a.add_argument("-o", "--output", required=True)
    a.add_argument("--png", action="store_true", help="write a static strip of frames instead")
    a.add_argument("--scatter", action="store_true", help="transposed conv: scatter view")
    t = sub.add_parser("torch", help="write a PyTorch nn.Module source file (imports only torch)")
    t.add_argument("file")
    t.add_argument("-o", "--output", required=True, help="the .py file to write")
    m = sub.add_parser("summary", help="per value: shape, parameters, MACs as formulas, receptive field")
    m.add_argument("file", help=PY_HELP)
    m.add_argument("--dims", action="append", metavar="NAME=D,D,...", help=DIMS_HELP)
    m.add_argument("--at", action="append", metavar="SYM=INT", help="numbers at these sizes")
    m.add_argument("--json", action="store_true")
    m.add_argument("--plot", metavar="OUT.png", help="draw MACs and activation memory against the input size")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, func = COMMANDS[args.command]
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except ConvGraphError as err:
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
