"""Every layer kind appears in every per-kind table (shape rule, lowering, numpy reference,
parameters, accumulation length, torch mirrors, animation or its opt-out list), and every
elementwise kind in every per-activation table: a kind cannot be half added."""
from __future__ import annotations

import typing

import pytest
from torch_equiv import _BUILDERS

from convgraph import ir
from convgraph.animate._geometry import GATHER_AXIS, NOT_ANIMATED
from convgraph.errors import ConvGraphError
from convgraph.export._emit import ELEMENTWISE_EMITTERS, LOWERINGS
from convgraph.export.weights import PARAM_RULES
from convgraph.front.catalogue import CATALOGUE, construct
from convgraph.shapes import LAYER_RULES
from convgraph.validate._check import _FANS, _TORCH_LAYERS, TORCH_ELEMENTWISE
from convgraph.validate.reference import ELEMENTWISE_IMPLS, LAYER_IMPLS

KINDS = frozenset(typing.get_args(ir.LayerSpec))
TABLES = {"shape rules": LAYER_RULES, "ONNX lowerings": LOWERINGS, "numpy reference": LAYER_IMPLS,
          "parameters": PARAM_RULES, "accumulation lengths": _FANS, "torch mirror (validate)": _TORCH_LAYERS,
          "torch modules (tests)": _BUILDERS}


def _elementwise_names() -> set[str]:
    """The catalogue entries that build an Elementwise spec (each constructs with its defaults)."""
    names = set()
    for name in CATALOGUE:
        try:
            spec = construct(name)
        except ConvGraphError:
            continue  # has required arguments: not an activation
        if isinstance(spec, ir.Elementwise):
            names.add(name)
    return names


def test_the_kinds_are_the_specs():
    assert KINDS == {ir.Conv, ir.ConvTranspose, ir.Pool, ir.AdaptiveAvgPool, ir.Upsample, ir.BatchNorm,
                     ir.Elementwise, ir.Flatten, ir.Linear}


@pytest.mark.parametrize("table", TABLES)
def test_every_kind_in_every_table(table):
    assert set(TABLES[table]) == KINDS, f"{table}: missing {KINDS - set(TABLES[table])}, " \
                                        f"extra {set(TABLES[table]) - KINDS}"


def test_every_kind_is_animated_or_opted_out():
    assert set(GATHER_AXIS) | NOT_ANIMATED == KINDS
    assert not set(GATHER_AXIS) & NOT_ANIMATED


@pytest.mark.parametrize("table", [ELEMENTWISE_IMPLS, ELEMENTWISE_EMITTERS, TORCH_ELEMENTWISE],
                         ids=["numpy reference", "ONNX emitters", "torch mirror"])
def test_every_activation_in_every_table(table):
    names = _elementwise_names()
    assert {"ReLU", "Identity", "Dropout"} <= names
    assert set(table) == names
