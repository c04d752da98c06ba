"""The solver's test graphs, shared by the fix-search tests: the benchmark's generators
(``benchmarks/bench_solver_scaling.py``, imported as ``bench``) at small depths, and the U-Net models."""
from __future__ import annotations

import sys
from pathlib import Path

import convgraph as cg

MODELS = Path(__file__).resolve().parent.parent / "models"
sys.path.insert(0, str(MODELS.parent / "benchmarks"))
import bench_solver_scaling as bench  # noqa: E402

GRAPHS = {"unet_padded_4": lambda: bench.unet(4), "unet3d_3": lambda: bench.unet(3, nd=3),
          "unet_unpadded_3": lambda: bench.unet(3, padded=False), "nest_2_3": lambda: bench.nest([2, 3], "nest"),
          "unet.cg": lambda: cg.load(str(MODELS / "unet.cg")),
          "unet_strided.cg": lambda: cg.load(str(MODELS / "unet_strided.cg")),
          "needs_output_padding.cg": lambda: cg.load(str(MODELS / "needs_output_padding.cg"))}
