"""File writes that never leave a half-written file, and JSON conversion of numpy values.

Every output file (run results, reports, plots, feature caches, campaign files and exports) is
written to a temporary file in the target's folder, flushed to disk (``fsync``) and renamed over
the target with :func:`os.replace`, which is atomic on POSIX and Windows: readers see the old
file or the new one, never a part. On any error the temporary file is removed and the target is
left as it was.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

SHARED = 0o644
"""Default permissions of written files (``mkstemp`` creates 0600): readable by others."""


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(
    path: str | Path, *, perms: int | None = SHARED, sidecars: Sequence[str] = ()
) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; on success it replaces ``path``.

    The caller writes the temporary file by name (``savefig``, ``sqlite3.connect`` ...). When
    the block succeeds the file is fsynced, given ``perms`` (None keeps ``mkstemp``'s 0600) and
    renamed over ``path``; when it raises, the temporary file and the ``sidecars`` next to it
    (suffixes such as ``-wal``, ``-journal``) are removed. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        if perms is not None:
            os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        for suffix in ("", *sidecars):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(
    path: str | Path, mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8",
    newline: str | None = None, perms: int | None = SHARED,
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; it replaces ``path`` on success.

    ``mode`` is ``"w"`` (text, ``encoding`` and ``newline`` as for :func:`open`) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    text = {"encoding": encoding, "newline": newline} if mode == "w" else {}
    with atomic_path(path, perms=perms) as tmp, open(tmp, mode, **text) as fh:
        yield fh


def atomic_write_text(path: str | Path, text: str, *, perms: int | None = SHARED) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", perms=perms) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, *, perms: int | None = SHARED) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", perms=perms) as fh:
        fh.write(data)


def to_jsonable(obj: Any, *, nan: Literal["null", "keep"] = "null") -> Any:
    """``obj`` with numpy values turned into plain Python values, recursively.

    Mappings become dicts with string keys, lists / tuples / arrays become lists, numpy scalars
    their Python value and paths strings. Non-finite floats (NaN, +-inf) become None with
    ``nan="null"`` (strict JSON) and stay floats with ``nan="keep"`` (for in-memory records that
    are summarised before being written). Other objects are returned unchanged.
    """
    if nan not in ("null", "keep"):
        raise ValueError(f"nan must be 'null' or 'keep', got {nan!r}")
    return _convert(obj, nan == "null")


def _convert(obj: Any, strict: bool) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _convert(v, strict) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_convert(v, strict) for v in obj]
    if isinstance(obj, np.ndarray):
        return _convert(obj.tolist(), strict)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if strict and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of ``obj`` (see :func:`to_jsonable`; NaN and infinities become null)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1,
               perms: int | None = SHARED) -> None:
    """Atomically write strict JSON (NaN and infinities become null) and a final newline."""
    atomic_write_text(path, dumps_json(obj, indent=indent) + "\n", perms=perms)
