"""The IR: frozen, canonical layer specs, graph nodes and the graph. Every front end produces it;
every later stage reads it. It imports no later stage."""
from convgraph.ir._graph import (  # noqa: F401
    MERGE_OPS,
    AdaptiveAvgPool,
    Assume,
    BatchNorm,
    Conv,
    ConvTranspose,
    Elementwise,
    Expect,
    Flatten,
    Graph,
    Ints,
    LayerSpec,
    Linear,
    Node,
    PaddingMode,
    Pads,
    Pool,
    PoolMode,
    Upsample,
    UpsampleMode,
    bake,
)
from convgraph.ir._interpret import Rules, interpret  # noqa: F401
