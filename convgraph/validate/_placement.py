"""Where onnxruntime ran each node: read from its profiler, so a silent fallback is reported.

A session created with a GPU provider first and the CPU provider second runs every node the GPU
provider cannot take on the CPU, and says nothing. The profiler records, per executed kernel, the
node and the provider that ran it (``{"cat": "Node", "name": "<node>_kernel_time", "args":
{"op_name": ..., "provider": ...}}``); the nodes are those of the optimized graph, so fused nodes
carry onnxruntime's names.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

KERNEL_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class Placement:
    """One executed node of the optimized graph and the provider that ran it."""

    node: str
    op: str
    provider: str  # onnxruntime's name, e.g. 'CUDAExecutionProvider'

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "op": self.op, "provider": self.provider}


def placements(events: Iterable[dict]) -> tuple[Placement, ...]:
    """Every kernel the profile recorded, once per node, in order of first execution."""
    seen: dict[str, Placement] = {}
    for e in events:
        name, args = e.get("name", ""), e.get("args") or {}
        if e.get("cat") == "Node" and name.endswith(KERNEL_SUFFIX) and "provider" in args:
            node = name[: -len(KERNEL_SUFFIX)]
            seen.setdefault(node, Placement(node, str(args.get("op_name", "?")), str(args["provider"])))
    return tuple(seen.values())


def read_profile(path: str) -> tuple[Placement, ...]:
    """The placements in an onnxruntime profile file, which is removed afterwards."""
    try:
        with open(path, encoding="utf-8") as f:
            return placements(json.load(f))
    finally:
        os.remove(path)


def fallbacks(ran: tuple[Placement, ...], provider: str) -> tuple[Placement, ...]:
    """The nodes that ran on another provider than ``provider``."""
    return tuple(p for p in ran if p.provider != provider)
