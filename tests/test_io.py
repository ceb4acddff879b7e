"""Atomic writes and JSON conversion (labelrefine.io)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from labelrefine.io import (
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    dumps_json,
    to_jsonable,
    write_json,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_replace_and_permissions(tmp_path: Path):
    out = tmp_path / "sub" / "a.txt"
    atomic_write_text(out, "one\n")
    assert out.read_text() == "one\n" and _mode(out) == 0o644  # parent folder created
    atomic_write_text(out, "two\n", perms=None)
    assert out.read_text() == "two\n" and _mode(out) == 0o600
    atomic_write_bytes(out, b"\x00\x01")
    assert out.read_bytes() == b"\x00\x01"
    assert _leftovers(out.parent) == []


def test_failure_leaves_target_untouched_and_no_temp_file(tmp_path: Path):
    out = tmp_path / "a.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(out, newline="") as fh:
        fh.write("half a file")
        raise RuntimeError("boom")
    assert out.read_text() == "old\n" and _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomic_open(out, "a"):  # type: ignore[arg-type]
            pass
    assert out.read_text() == "old\n"


def test_atomic_path_removes_sidecars_on_error(tmp_path: Path):
    out = tmp_path / "db.sqlite"
    with pytest.raises(KeyError), atomic_path(out, sidecars=("-wal", "-journal")) as tmp:
        assert tmp.parent == tmp_path and tmp != out
        tmp.write_bytes(b"x")
        Path(str(tmp) + "-wal").write_bytes(b"y")
        raise KeyError("stop")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(out, perms=None) as tmp:
        tmp.write_bytes(b"ok")
    assert out.read_bytes() == b"ok" and _mode(out) == 0o600


def test_to_jsonable_numpy_paths_and_nan():
    obj = {
        1: np.float32(0.5),
        "arr": np.array([[1, 2], [3, 4]], dtype=np.int64),
        "t": (np.int64(3), np.bool_(True), float("nan")),
        "p": Path("a") / "b.png",
        "inf": np.float64(np.inf),
        "nested": [{"x": np.array([np.nan, 1.0])}],
    }
    out = to_jsonable(obj)
    assert out == {"1": 0.5, "arr": [[1, 2], [3, 4]], "t": [3, True, None], "p": "a/b.png",
                   "inf": None, "nested": [{"x": [None, 1.0]}]}
    assert type(out["t"][0]) is int and type(out["t"][1]) is bool
    kept = to_jsonable(obj, nan="keep")
    assert np.isnan(kept["t"][2]) and kept["inf"] == float("inf")
    assert np.isnan(kept["nested"][0]["x"][0])
    with pytest.raises(ValueError, match="nan must be 'null' or 'keep', got 'drop'"):
        to_jsonable(obj, nan="drop")  # type: ignore[arg-type]


def test_write_json_is_strict_and_all_or_nothing(tmp_path: Path):
    out = tmp_path / "r.json"
    write_json(out, {"f1": np.float64(0.25), "bad": float("nan"), "n": np.int32(4)})
    text = out.read_text()
    assert text.endswith("\n") and json.loads(text) == {"f1": 0.25, "bad": None, "n": 4}
    assert "NaN" not in text
    with pytest.raises(TypeError, match="object"):
        write_json(out, {"f1": object()})
    assert json.loads(out.read_text())["f1"] == 0.25 and _leftovers(tmp_path) == []
    assert dumps_json([np.float16(1.5)], indent=None) == "[1.5]"
