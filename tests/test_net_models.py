"""The published architectures of issue 9 in models/: for each, the set of sizes convgraph
accepts equals the set torch runs (brute force over a range of every spatial symbol, the others at
the docstring's first example), and ``check`` passes (onnxruntime == numpy reference == torch)."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_models import doc_sizes, full_sizes, torch_output_shapes, torch_refuses
from torch_equiv import load_params, to_torch

import convgraph as cg
from convgraph.errors import ShapeError
from convgraph.export.weights import init_params

MODELS = Path(__file__).resolve().parent.parent / "models"
NEW = ["unet_milesial.cg", "espcn.cg", "mobilenetv3_small.cg", "cyclegan_resnet.cg", "wavenet_gated.cg",
       "tcn_causal.cg"]
#: the brute-force range per model (sizes 1..SPAN of each symbol)
SPAN = {"unet_milesial.cg": 40}


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_valid_sizes_equal_torch_brute_force(torch, name):
    path = MODELS / name
    g = cg.load(str(path))
    module = to_torch(g)
    load_params(module, init_params(g, seed=1, realistic_bn=True))
    base = full_sizes(g, doc_sizes(path, "Example")[0])
    for sym in (s for s in g.symbols if s != "N"):
        for v in range(1, SPAN.get(name, 30) + 1):
            sizes = {**base, sym: v}
            try:
                want = g.output_shapes(**sizes)
            except ShapeError as e:
                assert torch_refuses(torch, module, g, sizes), f"torch runs {sizes}, convgraph refuses: {e}"
                continue
            assert torch_output_shapes(torch, module, g, sizes) == want, sizes


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_check_passes(torch, name):
    report = cg.check(cg.load(str(MODELS / name)), count=3, progress=False)
    assert report.ok, report.table()
