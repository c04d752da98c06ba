"""Shared test set-up. PyTorch is the semantic oracle: tests that need it use the ``torch`` fixture,
which skips with a reason when torch is missing, unless CONVGRAPH_REQUIRE_TORCH=1 (set by CI),
which turns that skip into a failure."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
# CI runs the same examples every time (a failure there is reproducible, never a lucky draw);
# local runs draw new examples and keep the failing ones in .hypothesis/.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")


#: helper modules (not tests) that import torch at the top: pytest's doctest collection would import
#: them and error where torch is missing; the tests that use them ask for the ``torch`` fixture first
collect_ignore = ["onnx_torch_models.py"]


def _import_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the machine
        if os.environ.get("CONVGRAPH_REQUIRE_TORCH") == "1":
            pytest.fail(f"torch is required here (CONVGRAPH_REQUIRE_TORCH=1) but cannot be imported: {e}")
        pytest.skip("PyTorch is not installed: it is the semantic oracle for this test")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def torch():
    return _import_torch()


#: models whose whole-model tests (brute-force sets, onnxruntime checks, torch runs) take seconds
#: each: those tests are ``slow`` (``python -m pytest -m "not slow"`` is the quick run; CI runs all)
HEAVY_MODELS = frozenset({"unet.cg", "unet_original.cg", "unet_strided.cg", "unet3d.cg", "unet_milesial.cg",
                          "resnet18.cg", "transformer_net.cg", "audio_autoencoder.cg", "fpn_lite.cg",
                          "cyclegan_resnet.cg"})


def pytest_collection_modifyitems(items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        path = params.get("path")
        if isinstance(path, Path) and path.name in HEAVY_MODELS:
            item.add_marker(pytest.mark.slow)
        if item.nodeid.startswith("tests/torch_equiv.py") and not _torch_or_required():  # its doctest runs torch
            reason = "PyTorch is not installed: it is the semantic oracle for this test"
            item.add_marker(pytest.mark.skip(reason=reason))


def _torch_or_required() -> bool:
    """torch can be imported, or CI requires it (then a test that needs it fails rather than skips)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None or os.environ.get("CONVGRAPH_REQUIRE_TORCH") == "1"
