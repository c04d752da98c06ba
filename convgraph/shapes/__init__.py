"""The shape stage: a rule per layer kind turns the IR into exact dims and constraints
(``infer(graph) -> ShapeResult``)."""
from convgraph.shapes._infer import (  # noqa: F401
    LAYER_RULES,
    MERGE_RULES,
    Constraint,
    Known,
    Reuse,
    Shape,
    ShapeResult,
    ceil_window_count,
    effective_kernel,
    infer,
    infer_reusing,
    merge_failures_reusing,
    node_conditions,
    node_dims_only,
    node_failures,
    node_shape,
    reshape_plan,
    rule_failures,
    slice_bounds,
    softmax_dim,
    transposed_size,
    window_count,
)
from convgraph.shapes._ints import node_dims  # noqa: F401
