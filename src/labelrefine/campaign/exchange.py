"""Cleaned labels with provenance, and CSV export / import of expert answers."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger import UNSURE, CampaignError, Ledger
from labelrefine.data.loaders import not_utf8_message

PROVENANCE_COLUMNS = (
    "item",
    "path",
    "role",
    "given_label",
    "model_label",
    "model_confidence",
    "model_round",
    "queued_round",
    "reason",
    "expert_answer",
    "annotator",
    "answered_at",
    "seconds",
    "answer_round",
    "cleaned_label",
    "source",
)
"""Columns of the CSV export, one row per item."""


def provenance(ledger: Ledger) -> pd.DataFrame:
    """One row per item: the original label, the latest model suggestion, the queue it was in,
    the current expert answer (who, when) and the resulting cleaned label."""
    names = ledger.class_names
    items = ledger.items()
    df = pd.DataFrame(
        {
            "item": items["key"],
            "path": items["path"],
            "role": items["role"],
            "given_label": [names[i] for i in items["given_label"]],
        }
    )
    n = len(items)
    model_label: list[Any] = [None] * n
    model_conf: list[Any] = [None] * n
    model_round: list[Any] = [None] * n
    current = ledger.current_round()
    if current is not None:
        scores = ledger.scores(current)
        for idx, pred, probs in zip(scores["item"], scores["pred"], scores["probs"], strict=True):
            model_label[idx] = names[int(pred)]
            model_conf[idx] = float(np.max(probs))
            model_round[idx] = current
    df["model_label"] = model_label
    df["model_confidence"] = model_conf
    df["model_round"] = model_round
    queued_round: list[Any] = [None] * n
    reason: list[Any] = [None] * n
    for r in [] if current is None else range(current + 1):
        for idx, why in zip(*_queue_items(ledger, r), strict=True):
            queued_round[idx] = r
            reason[idx] = why
    df["queued_round"] = queued_round
    df["reason"] = reason
    answers = ledger.answers().set_index("item")
    expert: list[Any] = [None] * n
    who: list[Any] = [None] * n
    when: list[Any] = [None] * n
    secs: list[Any] = [None] * n
    around: list[Any] = [None] * n
    for idx, row in answers.iterrows():
        i = int(idx)
        expert[i] = UNSURE if row["kind"] == UNSURE else names[int(row["label"])]
        who[i] = row["annotator"]
        when[i] = row["answered_at"]
        secs[i] = None if pd.isna(row["seconds"]) else float(row["seconds"])
        around[i] = None if pd.isna(row["round"]) else int(row["round"])
    df["expert_answer"] = expert
    df["annotator"] = who
    df["answered_at"] = when
    df["seconds"] = secs
    df["answer_round"] = around
    df["cleaned_label"] = [names[i] for i in items["current_label"]]
    df["source"] = items["source"]
    return df[list(PROVENANCE_COLUMNS)]


def _queue_items(ledger: Ledger, round: int) -> tuple[list[int], list[str]]:
    q = ledger.queue(round)
    return [int(i) for i in q["item"]], [str(r) for r in q["reason"]]


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[TextIO]:
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_csv(ledger: Ledger, out: str | Path) -> int:
    """Write the provenance table to ``out`` (atomically); returns the number of rows."""
    table = provenance(ledger)
    with atomic_writer(out) as fh:
        table.to_csv(fh, index=False)
    ledger.log_event("export", {"format": "csv", "file": Path(out).name, "rows": len(table)})
    return len(table)


def import_csv(
    ledger: Ledger,
    path: str | Path,
    *,
    item_column: str = "item",
    answer_column: str = "expert_answer",
    annotator: str = "import",
) -> tuple[int, int]:
    """Import expert answers from a CSV (e.g. this module's export, edited or filled by hand).

    Needs ``item_column`` and ``answer_column``; optional ``annotator``, ``answered_at``,
    ``seconds``, ``answer_round`` columns. Rows with an empty answer are skipped. An answer is a
    class name or ``unsure``. Every row is validated first -- an unknown item or class is an
    error naming the item and line -- and then all answers are stored in one transaction, so
    nothing is imported on error. Re-importing the same file adds nothing (each row's submission
    id is a hash of its content). Returns ``(imported, already_present)``.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"answer file not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CampaignError(not_utf8_message(path)) from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise CampaignError(f"cannot read answer CSV {path}: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in (item_column, answer_column):
        if col not in df.columns:
            raise CampaignError(
                f"{path.name}: missing column {col!r}; columns present: "
                f"{', '.join(map(repr, df.columns))}"
            )
    keys = {k: i for i, k in enumerate(ledger.items()["key"])}
    answers = []
    for row_no, row in enumerate(df.to_dict("records")):
        where = f"{path.name} line {row_no + 2}"
        answer = str(row[answer_column]).strip()
        if not answer:
            continue
        key = str(row[item_column]).strip()
        if key not in keys:
            raise CampaignError(f"{where}: unknown item {key!r}: not in this campaign")
        label = _parse_answer(ledger, answer, key, where)
        who = str(row.get("annotator") or "").strip() or annotator
        when = str(row.get("answered_at") or "").strip() or None
        seconds = _optional_float(row.get("seconds"), key, where, "seconds")
        rnd = _optional_float(row.get("answer_round"), key, where, "answer_round")
        answers.append(
            {
                "item": keys[key],
                "label": label,
                "annotator": who,
                "answered_at": when,
                "seconds": seconds,
                "round": None if rnd is None else int(rnd),
                "submission_id": content_id("csv", key, answer, who, when or ""),
            }
        )
    return ledger.import_answers(answers, origin="csv", source_name=path.name)


def content_id(*parts: str) -> str:
    """A stable submission id for imported answers: a hash of their content."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{parts[0]}:{digest}"


def _parse_answer(ledger: Ledger, answer: str, key: str, where: str) -> int | None:
    if answer.lower() == UNSURE:
        return None
    try:
        return ledger.class_index(answer)
    except CampaignError:
        known = ", ".join(ledger.class_names)
        raise CampaignError(
            f"{where}: item {key!r} has unknown class {answer!r} (known: {known}, or {UNSURE})"
        ) from None


def _optional_float(value: Any, key: str, where: str, column: str) -> float | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        out = float(text)
    except ValueError:
        raise CampaignError(f"{where}: item {key!r} has non-numeric {column} {text!r}") from None
    if not np.isfinite(out) or out < 0:
        raise CampaignError(f"{where}: item {key!r} has invalid {column} {text!r}")
    return out
