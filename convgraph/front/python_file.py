"""``path/to/model.py:ClassName``: a PyTorch module class in the user's own Python file.

Unlike a .cg file, which convgraph parses and never executes, this imports (runs) the file, then
builds ``ClassName()`` with no arguments. Every failure is one user error naming the file.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from convgraph.errors import ConvGraphError, Loc


def is_python_target(path: str) -> bool:
    """``model.py:Net`` (a .py file and a class name after the last colon)."""
    file, sep, name = str(path).rpartition(":")
    return bool(sep) and file.endswith(".py") and name.isidentifier()


def _fail(target: str, message: str) -> ConvGraphError:
    return ConvGraphError(message, Loc(target, 0, 0))


def load_module(target: str) -> Any:
    """Import the file and instantiate the class (in eval mode)."""
    file, _, name = target.rpartition(":")
    if not os.path.isfile(file):
        raise _fail(target, f"no such file: {file}")
    spec = importlib.util.spec_from_file_location(f"convgraph_user_{abs(hash(file))}", file)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.path.insert(0, os.path.dirname(os.path.abspath(file)))
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        cls = getattr(module, name, None)
        if cls is None:
            raise _fail(target, f"{file} defines no {name!r}")
        return cls().eval()
    except ConvGraphError:
        raise
    except Exception as e:
        raise _fail(target, f"running {file} to build {name}() failed: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(os.path.dirname(os.path.abspath(file)))
