"""The shape stage: a rule per layer kind turns the IR into exact dims and constraints
(``infer(graph) -> ShapeResult``)."""
from convgraph.shapes._infer import (  # noqa: F401
    Shape, effective_kernel, window_count, ceil_window_count, transposed_size, Constraint,
    ShapeResult, LAYER_RULES, MERGE_RULES, infer, node_shape,
)
