"""Where and how an output is written (no onnx here: every verb that writes a file uses it).

A symlink is written through, at its target; a device, a FIFO, a socket, a directory or one of the
command's own input files (the same inode, whatever the name) is refused before any work is done.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable

from convgraph.errors import ExportError, Loc


def _loc(path: str) -> Loc:
    return Loc(path, 0, 0)


def check_destination(path: str, sources: Iterable[str | os.PathLike[str] | None] = ()) -> str:
    """Fail early, before any work, when the output cannot be written; returns the path to write:
    a symlink is written through (atomically at its target), anything but a regular file refused,
    and so is a destination that is one of the ``sources`` (the same file, by inode)."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise ExportError(f"cannot write '{path}': it is a directory", _loc(path))
    if os.path.exists(target) and not os.path.isfile(target):
        raise ExportError(f"cannot write '{path}': it is not a regular file (a device, FIFO or socket)", _loc(path))
    for src in sources:
        if src is not None and os.path.exists(target) and _same_file(target, os.fspath(src)):
            raise ExportError(f"cannot write '{path}': it is the input file '{os.fspath(src)}'", _loc(path))
    if not os.path.isdir(folder):
        raise ExportError(f"cannot write '{path}': directory '{folder}' does not exist", _loc(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write '{path}': directory '{folder}' is not writable", _loc(path))
    return target


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _file_mode(path: str) -> int:
    """Keep an existing file's permissions; a new file gets 0o666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_atomic(path: str, data: bytes) -> None:
    """``data`` to ``path`` through a temp file in the same directory, fsynced, and one ``os.replace``."""
    _write_atomic(path, (data,))


def _write_atomic(path: str, chunks: Iterable[bytes | memoryview]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    mode = _file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise ExportError(f"cannot write '{path}': {e.strerror or e}", _loc(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError):
            raise ExportError(f"cannot write '{path}': {e.strerror or e}", _loc(path)) from e
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
