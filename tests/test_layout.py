"""The package layout shows the architecture: each stage imports only from the stages before it.

Every module's imports are read with ``ast`` (function-level imports included), so a lazy import
that runs uphill fails here as surely as a top-level one.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "convgraph"

#: the stages in data-flow order; a module may import its own stage and the ones before it
STAGES = ("_version", "errors", "dims", "ir", "front", "shapes", "solve", "export", "validate", "animate",
          "api", "cli", "__main__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> int:
    """The stage of ``convgraph.<stage>...``; the bare package is the public API's face."""
    parts = module.split(".")
    if parts == ["convgraph"]:
        return STAGES.index("api")
    return STAGES.index(parts[1])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of a convgraph module in the file."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "convgraph"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            mod = node.module or ""
            if mod.split(".")[0] != "convgraph":
                continue
            for a in node.names:  # `from convgraph import dims` names the submodule
                sub = f"{mod}.{a.name}"
                out.append((node.lineno, sub if (PACKAGE.parent / sub.replace(".", "/")).exists()
                            or (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() else mod))
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_stage():
    for path in MODULES:
        name = _module_name(path)
        if name != "convgraph":
            assert name.split(".")[1] in STAGES, f"{name} is in no stage: add it to STAGES in its place"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downhill(path):
    here = _stage(_module_name(path))
    uphill = [f"{path.relative_to(PACKAGE.parent)}:{line}: imports {mod}" for line, mod in _imports(path)
              if _stage(mod) > here]
    assert not uphill, "an earlier stage imports a later one:\n" + "\n".join(uphill)


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from convgraph.export import to_onnx\n")
    assert _imports(f) == [(2, "convgraph.export")]
