"""``convgraph animate``: a layer string and ``--input``, or a .cg file, ``--layer`` and ``--at``."""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from convgraph.animate import animate, parse_size
from convgraph.animate._caption import layer_text
from convgraph.animate._geometry import CLI, Geometry, check_animatable, geometry
from convgraph.api import load
from convgraph.cli._main import parse_at
from convgraph.errors import ConvGraphError, GraphError, Loc
from convgraph.export._paths import check_destination
from convgraph.front.dsl import parse_layer
from convgraph.ir import Conv, ConvTranspose, Graph, LayerSpec, Node
from convgraph.shapes import infer


def cli_animate(args: argparse.Namespace) -> int:
    """``convgraph animate``; user errors are ConvGraphError (the CLI prints one line, exit 2)."""
    _check_output(args)
    if _looks_like_layer(args.target):
        spec, sizes, title, loc = _from_layer_text(args)
    else:
        spec, sizes, title, loc = _from_file(args)
    sources = () if _looks_like_layer(args.target) else (args.target,)
    output = check_destination(args.output, sources)  # never the .cg file itself, a FIFO or a device
    png = args.png or args.output.lower().endswith(".png")
    res = animate(spec, sizes, output, png=png, scatter=args.scatter, title=title, loc=loc)
    kind = "PNG grid of" if png else "GIF,"
    print(f"{res.path}: {kind} {res.frames} frames of {res.size[0]}x{res.size[1]} px "
          f"in {res.seconds:.2f} s")
    return 0


def _check_output(args: argparse.Namespace) -> None:
    """animate writes a GIF, or a PNG strip with --png: any other extension is refused."""
    ext = os.path.splitext(args.output)[1].lower()
    allowed = (".png",) if args.png else (".gif", ".png")
    if ext not in allowed:
        want = "a .png file with --png" if args.png else "a .gif file (or .png for a static strip)"
        raise ConvGraphError(f"animate writes {want}, not {ext or 'a file without extension'!s}: "
                             f"-o {args.output!r}", CLI)


def _looks_like_layer(target: str) -> bool:
    return "(" in target and not os.path.exists(target)


def _from_layer_text(args: argparse.Namespace) -> tuple[LayerSpec, tuple[int, ...], str, Loc]:
    if args.layer or args.at:
        raise ConvGraphError("animate: --layer and --at apply to a .cg file; a layer string takes --input", CLI)
    text = args.target.strip()
    spec = parse_layer(text, filename="<layer>")
    loc = Loc("<layer>", 1, 1)
    sizes = parse_size(args.input, check_animatable(spec, loc).nd)
    x = Node("x", "input", (), loc, dims=(1, _in_channels(spec), *sizes))
    node = Node("layer", "layer", ("x",), loc, layer=spec, layer_name="layer")
    out = infer(Graph((x, node), ("layer",), filename="<layer>")).shapes()["layer"][2:]
    _agree(geometry(spec, sizes, loc=loc), out)
    return spec, sizes, text, loc


def _in_channels(spec: LayerSpec) -> int:
    return spec.in_channels if isinstance(spec, (Conv, ConvTranspose)) else 1


def _from_file(args: argparse.Namespace) -> tuple[LayerSpec, tuple[int, ...], str, Loc]:
    if not os.path.exists(args.target):
        raise ConvGraphError(f"animate: no such file {args.target!r} (a layer is written like "
                             "\"Conv2d(1, 1, 3)\")", CLI)
    if args.input:
        raise ConvGraphError("animate: --input applies to a layer string; for a .cg file give --at SYM=INT", CLI)
    graph = load(args.target)
    node = _find_layer(graph, args.layer)
    spec = node.spec
    check_animatable(spec, node.loc)
    shapes = infer(graph).shapes(**parse_at(args.at))
    sizes = _int_sizes(shapes[node.inputs[0]][2:], node, graph)
    _agree(geometry(spec, sizes, loc=node.loc), shapes[node.name][2:])
    return spec, sizes, f"{node.layer_name} = {layer_text(spec)}", node.loc


def _find_layer(graph: Graph, name: str | None) -> Node:
    layers = graph.layers()
    where = Loc(graph.filename, 0, 0)
    names = ", ".join(f"{n.layer_name} ({n.spec.type_name})" for n in layers)
    if name is None:
        windowed = [n for n in layers if _windowed(n.layer)]
        if len(windowed) == 1:
            return windowed[0]
        raise ConvGraphError(f"animate: give --layer NAME; the layers are: {names}", where)
    for n in layers:
        if n.layer_name == name:
            return n
    for n in layers:
        if n.name == name:
            return n
    raise GraphError(f"animate: no layer named {name!r} in {graph.filename}; the layers are: {names}", where)


def _windowed(spec: LayerSpec | None) -> bool:
    if spec is None:
        return False
    try:
        check_animatable(spec)
    except ConvGraphError:
        return False
    return True


def _int_sizes(dims: tuple, node: Node, graph: Graph) -> tuple[int, ...]:
    """The layer's input spatial sizes; an error naming the symbols that have no --at value."""
    missing = sorted({str(s) for d in dims if not isinstance(d, int) for s in d.free_symbols})
    if missing:
        give = " ".join(f"--at {m}=INT" for m in missing)
        raise ConvGraphError(f"animate: the input of layer '{node.layer_name}' has size "
                             f"{'x'.join(map(str, dims))}, which depends on {', '.join(missing)}: give {give}",
                             node.loc)
    return tuple(int(d) for d in dims)


def _agree(g: Geometry, shape_stage: Sequence) -> None:
    """The drawn output grid must be the shape stage's; a difference is a bug in convgraph."""
    if tuple(int(v) for v in shape_stage) != g.out_sizes:
        raise RuntimeError(f"animate geometry {g.out_sizes} disagrees with the shape stage {tuple(shape_stage)} "
                           f"for {layer_text(g.spec)} on {g.in_sizes}")
