"""The IR: frozen, canonical layer specs, graph nodes and the graph. Every front end produces it;
every later stage reads it. It imports no later stage."""
from convgraph.ir._graph import (  # noqa: F401
    Ints, Pads, Conv, ConvTranspose, Pool, AdaptiveAvgPool, AdaptiveMaxPool, Pad, PixelShuffle, Upsample,
    InstanceNorm, GroupNorm, PReLU, Softmax, BatchNorm, Elementwise,
    Flatten, Linear, LayerSpec, MERGE_OPS, BINARY_OPS, SCALAR_OPS, Node, part_bounds, slice_index, Assume, Expect, Graph, bake,
)
