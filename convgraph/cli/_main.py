"""Command line: ``convgraph {shapes,export,check,solve,animate} ...``.

Each subcommand lives in the module that owns its stage and is imported only when it runs, so
``convgraph shapes`` never imports onnx or onnxruntime. User errors print one line
``FILE:LINE:COL: error: ...`` and exit 2; a failed check exits 1.
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
from typing import NoReturn

from convgraph.errors import ConvGraphError, Loc

#: subcommand -> (module, function); the function takes the parsed args and returns an exit code
COMMANDS = {
    "shapes": ("convgraph.cli.shapes", "cli_shapes"),
    "export": ("convgraph.cli.export", "cli_export"),
    "check": ("convgraph.cli.check", "cli_check"),
    "solve": ("convgraph.cli.solve", "cli_solve"),
    "animate": ("convgraph.cli.animate", "cli_animate"),
}


#: a size on the command line: ASCII digits only (``str.isdigit`` also accepts '²'), at most 2**63 - 1
_SIZE = re.compile(r"\s*\+?([0-9]{1,19})\s*")


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


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    """argparse, but its errors are ``<command line>:0:0: error: ...`` (exit 2) rather than a usage
    block; subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {_clip(message, 300)}", Loc("<command line>", 0, 0),
                         hints=(f"see '{self.prog} --help'",))


def build_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="convgraph", description=__doc__.splitlines()[0])
    from convgraph._version import __version__

    p.add_argument("--version", action="version", version=f"convgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("shapes", help="every value's shape as an exact formula, and the constraints")
    s.add_argument("file")
    s.add_argument("--at", action="append", metavar="SYM=INT", help="evaluate at these sizes")
    s.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="export ONNX with symbolic dims named by the formulas")
    e.add_argument("file")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--opset", type=int)
    e.add_argument("--at", action="append", metavar="SYM=INT", help="bake in static sizes")
    e.add_argument("--weights", help=".npz, .safetensors or a PyTorch state_dict file")
    e.add_argument("--seed", type=seed, default=0)

    c = sub.add_parser("check", help="run the export on onnxruntime across sizes and compare")
    c.add_argument("file")
    c.add_argument("--at", action="append", metavar="SYM=INT")
    c.add_argument("--provider", choices=("cpu", "cuda", "all"), default="cpu")
    c.add_argument("--json", action="store_true")
    c.add_argument("--weights")
    c.add_argument("--seed", type=seed, default=0)

    v = sub.add_parser("solve", help="the exact valid input sizes, merge-point proofs and fixes")
    v.add_argument("file")
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
    return p


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
    try:
        args = build_parser().parse_args(argv)
        module, func = COMMANDS[args.command]
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except ConvGraphError as err:
        report_error(err, "--json" in argv)
        return 2
    except KeyboardInterrupt:
        print("convgraph: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `convgraph solve ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def report_error(err: ConvGraphError, as_json: bool) -> None:
    """``FILE:LINE:COL: error: ...`` on stderr, or with ``--json`` the documented JSON object on stdout."""
    if not as_json:
        print(err.render(), file=sys.stderr)
        return
    loc = err.loc
    print(json.dumps({"error": {"file": loc.file, "line": loc.line, "col": loc.col, "message": err.message,
                                "hints": list(err.hints)}}))


if __name__ == "__main__":
    sys.exit(main())
