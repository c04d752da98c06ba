"""Animated convolution arithmetic for one layer (GIF frames or a PNG strip)."""
from convgraph.animate._animate import (  # noqa: F401
    MAX_FRAMES,
    MAX_STRIP_FRAMES,
    STRIP_COLUMNS,
    AnimationResult,
    animate,
    frame_duration_ms,
    parse_size,
    render_frames,
    save_gif,
    strip_image,
)
