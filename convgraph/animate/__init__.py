"""Animated convolution arithmetic for one layer (GIF frames or a PNG strip)."""
from convgraph.animate._animate import (  # noqa: F401
    MAX_FRAMES, MAX_STRIP_FRAMES, STRIP_COLUMNS, AnimationResult, render_frames, animate,
    frame_duration_ms, save_gif, strip_image, parse_size,
)
