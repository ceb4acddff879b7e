"""benchmarks/same_results.py: the check that a change left every run record's results alone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "same_results.py"


def _module():
    spec = importlib.util.spec_from_file_location("same_results", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RECORD = {"pipeline": "ours", "rounds": [{"round": 0, "test_f1": 0.31, "seconds": 2.0,
                                          "queried_per_class": [3, 1]}],
          "phase1": {"shared": False, "history": [{"time_s": 0.1, "loss": 1.25}]}}


def _variant(**round0):
    rec = json.loads(json.dumps(RECORD))
    rec["rounds"][0].update(round0)
    return rec


def test_results_differ_only_where_a_result_changed():
    mod = _module()
    assert mod.differences(RECORD, _variant(seconds=9.0)) == []  # a time is not a result
    assert mod.differences(RECORD, _variant(test_f1=0.31 * (1 + 1e-9))) == []
    assert mod.differences(RECORD, _variant(test_f1=0.3101)) == [
        ".rounds[0].test_f1: 0.31 vs 0.3101"]
    assert mod.differences(RECORD, _variant(queried_per_class=[2, 2])) == [
        ".rounds[0].queried_per_class[0]: 3 vs 2", ".rounds[0].queried_per_class[1]: 1 vs 2"]
    longer = json.loads(json.dumps(RECORD))
    longer["rounds"].append({"round": 1})
    assert mod.differences(RECORD, longer) == [".rounds: 1 entries vs 2"]


def test_exit_status_names_missing_and_differing_records(tmp_path, capsys):
    mod = _module()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for name, rec in [("x.json", RECORD), ("y.json", RECORD)]:
        (a / name).write_text(json.dumps(rec))
    (b / "x.json").write_text(json.dumps(_variant(seconds=5.0)))
    assert mod.main([str(a), str(b)]) == 1
    assert "y.json: missing" in capsys.readouterr().out
    (b / "y.json").write_text(json.dumps(RECORD))
    assert mod.main([str(a), str(b)]) == 0
    (b / "y.json").write_text(json.dumps(_variant(test_f1=0.5)))
    assert mod.main([str(a), str(b)]) == 1
    assert "y.json: 1 differences" in capsys.readouterr().out


def test_a_record_only_in_the_second_sweep_is_missing_from_the_first(tmp_path, capsys):
    mod = _module()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.json").write_text(json.dumps(RECORD))
    (b / "x.json").write_text(json.dumps(RECORD))
    (b / "z.json").write_text(json.dumps(RECORD))
    assert mod.main([str(a), str(b)]) == 1
    assert f"z.json: missing from {a}" in capsys.readouterr().out
