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
HEAVY_MODELS = frozenset({"unet.cg", "unet_original.cg", "unet_strided.cg", "unet3d.cg", "resnet18.cg",
                          "transformer_net.cg", "audio_autoencoder.cg", "fpn_lite.cg", "unet_milesial.cg"})


def pytest_collection_modifyitems(items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        path = params.get("path")
        if isinstance(path, Path) and path.name in HEAVY_MODELS:
            item.add_marker(pytest.mark.slow)
