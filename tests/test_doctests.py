"""The doctests in convgraph/ run with the tests (``--doctest-modules`` in pyproject.toml); here:
they pass when run on their own, and none of them imports torch (torch is a test oracle, never
what a documented example needs)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import doctest, importlib, pkgutil, sys
import convgraph
failed = attempted = 0
for info in pkgutil.walk_packages(convgraph.__path__, "convgraph."):
    if info.name.endswith("__main__"):
        continue
    result = doctest.testmod(importlib.import_module(info.name))
    failed, attempted = failed + result.failed, attempted + result.attempted
print(failed, attempted, "torch" in sys.modules)
"""


def test_doctests_pass_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", _RUN], cwd=ROOT, capture_output=True, text=True, timeout=600)
    failed, attempted, torch_imported = out.stdout.split()[-3:]
    assert failed == "0", out.stdout[-3000:]
    assert int(attempted) >= 17
    assert torch_imported == "False"
