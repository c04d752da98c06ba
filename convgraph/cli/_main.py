"""Command line: ``convgraph {shapes,export,check,solve,animate,annotate} ...``.

Each subcommand lives in the module that owns its stage and is imported only when it runs, so
``convgraph shapes`` never imports onnx or onnxruntime. User errors print one line
``FILE:LINE:COL: error: ...`` and exit 2; a failed check exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from convgraph.errors import ConvGraphError, Loc

#: subcommand -> (module, function); the function takes the parsed args and returns an exit code
COMMANDS = {
    "shapes": ("convgraph.cli.shapes", "cli_shapes"),
    "export": ("convgraph.cli.export", "cli_export"),
    "check": ("convgraph.cli.check", "cli_check"),
    "solve": ("convgraph.cli.solve", "cli_solve"),
    "animate": ("convgraph.cli.animate", "cli_animate"),
    "annotate": ("convgraph.cli.annotate", "cli_annotate"),
}

DIMS_HELP = "an ONNX model's input shape, e.g. x=N,3,H,W (names become size symbols; repeatable)"


def parse_at(items: list[str] | None, flag: str = "--at") -> dict[str, int]:
    """``["H=64", "W=48"]`` -> ``{"H": 64, "W": 48}``; a malformed item is a user error."""
    out: dict[str, int] = {}
    for item in items or ():
        name, eq, val = item.partition("=")
        if not eq or not name.isidentifier() or not val.strip().lstrip("-").isdigit():
            raise ConvGraphError(f"{flag} expects SYM=INT, got {item!r}", Loc("<command line>", 0, 0))
        out[name] = int(val)
    return out


def load_arg(args: argparse.Namespace) -> Any:
    """The graph of ``args.file`` (a .cg file or an ONNX model), with ``--dims`` where given."""
    from convgraph.api import load
    from convgraph.front.onnx_import import parse_dims

    return load(args.file, parse_dims(getattr(args, "dims", None)) or None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convgraph", description=__doc__.splitlines()[0])
    from convgraph._version import __version__

    p.add_argument("--version", action="version", version=f"convgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("shapes", help="every value's shape as an exact formula, and the constraints")
    s.add_argument("file")
    s.add_argument("--at", action="append", metavar="SYM=INT", help="evaluate at these sizes")
    s.add_argument("--json", action="store_true")
    s.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...", help=DIMS_HELP)

    e = sub.add_parser("export", help="export ONNX with symbolic dims named by the formulas")
    e.add_argument("file")
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
    c.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...", help=DIMS_HELP)

    v = sub.add_parser("solve", help="the exact valid input sizes, merge-point proofs and fixes")
    v.add_argument("file")
    v.add_argument("--near", action="append", metavar="SYM=INT")
    v.add_argument("--json", action="store_true")
    v.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...", help=DIMS_HELP)

    n = sub.add_parser("annotate", help="write an ONNX model's exact dims, constraints and valid sizes into it")
    n.add_argument("file", help="an ONNX model")
    n.add_argument("-o", "--output", required=True)
    n.add_argument("--dims", action="append", metavar="INPUT=D0,D1,...", help=DIMS_HELP)

    a = sub.add_parser("animate", help="animated convolution arithmetic for one layer")
    a.add_argument("target", help='a layer, e.g. "Conv2d(1, 1, 3)", or a .cg file')
    a.add_argument("--input", help="input spatial size for a layer string, e.g. 5x7")
    a.add_argument("--layer", help="layer name in the file")
    a.add_argument("--at", action="append", metavar="SYM=INT")
    a.add_argument("-o", "--output", required=True)
    a.add_argument("--png", action="store_true", help="write a static strip of frames instead")
    a.add_argument("--scatter", action="store_true", help="transposed conv: scatter view")
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
