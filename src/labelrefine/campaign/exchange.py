"""Cleaned labels with provenance, and CSV export / import of expert answers."""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger import UNSURE, CampaignError, ImportResult, Ledger
from labelrefine.data.loaders import not_utf8_message
from labelrefine.io import atomic_open

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
    "decision",
    "reader_answers",
    "note",
    "adjudicator",
    "cleaned_label",
    "source",
)
"""Columns of the CSV export, one row per item.

``expert_answer`` is the final expert answer (a class, ``unsure``, or empty while readers
disagree); ``annotator`` who gave it (several agreeing readers joined by ``; ``, or the
adjudicator); ``decision`` how it was reached (``single``, ``agreed``, ``adjudicated``,
``conflict``, ``unsure`` or ``given``); ``reader_answers`` every reader's live answer
(``name: answer; ...``); ``note`` the readers' notes on their live answers (one reader's note
as written; with several readers, one ``name: note`` line per reader who wrote one).
"""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Cell starts that spreadsheets treat as a formula; exported text cells starting so get a
leading apostrophe (removed again on import)."""


def provenance(ledger: Ledger) -> pd.DataFrame:
    """One row per item: the original label, the latest model suggestion, the queue it was in,
    the current expert answer (who, when) and the resulting cleaned label; then one column per
    DICOM attribute kept at ``init`` (:func:`~labelrefine.campaign.create.campaign_tags`)."""
    from labelrefine.campaign.create import campaign_tags

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
    expert: list[Any] = [None] * n
    who: list[Any] = [None] * n
    when: list[Any] = [None] * n
    secs: list[Any] = [None] * n
    around: list[Any] = [None] * n
    readers: list[Any] = [None] * n
    adjudicator: list[Any] = [None] * n
    decision = list(items["decision"])
    answers = ledger.answers()
    for i, group in answers.groupby("item"):
        i = int(i)
        shown = [
            UNSURE if k == UNSURE else names[int(lab)]
            for k, lab in zip(group["kind"], group["label"], strict=True)
        ]
        readers[i] = "; ".join(f"{a}: {x}" for a, x in zip(group["annotator"], shown, strict=True))
        last = group.iloc[-1]
        when[i] = last["answered_at"]
        around[i] = None if pd.isna(last["round"]) else int(last["round"])
        s = group["seconds"].dropna()
        secs[i] = float(s.sum()) if len(s) else None
        labeled = [a for a, k in zip(group["annotator"], group["kind"], strict=True) if k != UNSURE]
        if decision[i] in ("single", "agreed"):
            expert[i] = names[int(items.at[i, "current_label"])]
            who[i] = "; ".join(labeled)
        elif decision[i] == "unsure":
            expert[i] = UNSURE
            who[i] = "; ".join(group["annotator"])
    for row in ledger.adjudications().itertuples():
        i = int(row.item)
        adjudicator[i] = row.adjudicator
        if decision[i] == "adjudicated":
            expert[i] = names[int(items.at[i, "current_label"])]
            who[i] = row.adjudicator
            when[i] = row.created_at
    df["expert_answer"] = expert
    df["annotator"] = who
    df["answered_at"] = when
    df["seconds"] = secs
    df["answer_round"] = around
    df["decision"] = decision
    df["reader_answers"] = readers
    notes = item_notes(answers)
    df["note"] = [notes.get(i) for i in range(n)]
    df["adjudicator"] = adjudicator
    df["cleaned_label"] = [names[i] for i in items["current_label"]]
    df["source"] = items["source"]
    tags = {t: v for t, v in campaign_tags(ledger).items() if t not in PROVENANCE_COLUMNS}
    for tag, values in tags.items():
        df[tag] = [values.get(str(k), "") for k in items["key"]]
    return df[[*PROVENANCE_COLUMNS, *tags]]


def item_notes(answers: pd.DataFrame) -> dict[int, str]:
    """The export's ``note`` cell per answered item with a note: the note itself when one
    reader answered, else one ``name: note`` line per reader who wrote one."""
    out: dict[int, str] = {}
    for i, group in answers.groupby("item"):
        if len(group) == 1:
            text = str(group["note"].iloc[0])
        else:
            text = "\n".join(
                f"{a}: {note}" for a, note in zip(group["annotator"], group["note"], strict=True)
                if note
            )
        if text:
            out[int(i)] = text
    return out


def _queue_items(ledger: Ledger, round: int) -> tuple[list[int], list[str]]:
    q = ledger.queue(round)
    return [int(i) for i in q["item"]], [str(r) for r in q["reason"]]


def atomic_writer(path: str | Path) -> AbstractContextManager[TextIO]:
    """Open a text file next to ``path`` (UTF-8, newlines as written) that replaces ``path``
    only if the block succeeds (:func:`labelrefine.io.atomic_open`)."""
    return atomic_open(path, "w", newline="")


def export_csv(ledger: Ledger, out: str | Path) -> int:
    """Write the provenance table to ``out`` (atomically); returns the number of rows."""
    table = provenance(ledger)
    with atomic_writer(out) as fh:
        neutralise_formulas(table).to_csv(fh, index=False)
    ledger.log_event("export", {"format": "csv", "file": Path(out).name, "rows": len(table)})
    return len(table)


def import_csv(
    ledger: Ledger,
    path: str | Path,
    *,
    item_column: str = "item",
    answer_column: str = "expert_answer",
    annotator: str = "import",
) -> ImportResult:
    """Import expert answers from a CSV (e.g. this module's export, edited or filled by hand).

    Needs ``item_column`` and ``answer_column``; optional ``annotator``, ``answered_at``,
    ``seconds``, ``answer_round`` and ``note`` (the reader's note; an empty cell leaves the
    stored note as it is) columns. Rows with an empty answer are skipped. An answer is a
    class name or ``unsure``. Every row is validated first -- an unknown item or class is an
    error naming the item and line -- and then all answers are stored in one transaction, so
    nothing is imported on error. Re-importing the same file -- or the campaign's own export --
    adds nothing: a row whose answer is already the item's final answer, or already that
    reader's answer, is counted as present. Cells quoted against formula injection by the export
    are read back as they were. Returns an :class:`ImportResult` (unpacks as
    ``(imported, already_present)``).
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
    items = ledger.items()
    keys = {k: i for i, k in enumerate(items["key"])}
    finals = {
        int(i): (UNSURE if d == "unsure" else ledger.class_names[int(lab)])
        for i, d, lab in zip(items["idx"], items["decision"], items["current_label"], strict=True)
        if d in ("single", "agreed", "adjudicated", "unsure")
    }
    notes = item_notes(ledger.answers())
    answers = []
    present = 0
    seen = AnswerTracker()
    for row_no, row in enumerate(df.to_dict("records")):
        where = f"{path.name} line {row_no + 2}"
        answer = _unquote(str(row[answer_column]).strip())
        if not answer:
            continue
        key = _unquote(str(row[item_column]).strip())
        if key not in keys:
            raise CampaignError(f"{where}: unknown item {key!r}: not in this campaign")
        label = _parse_answer(ledger, answer, key, where)
        who = _unquote(str(row.get("annotator") or "").strip())
        if not who or ";" in who:  # several readers (an export of agreeing readers)
            who = annotator
        seen.add(where, key, who, answer)
        note = _unquote(str(row.get("note") or "").strip()) or None
        if finals.get(keys[key]) == answer and note in (None, notes.get(keys[key])):
            present += 1  # the campaign already holds this final answer (e.g. its own export)
            continue
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
                "note": note,
                "submission_id": content_id("csv", key, answer, who, when or "",
                                            *([note] if note else [])),
            }
        )
    res = ledger.import_answers(answers, origin="csv", source_name=path.name)
    return ImportResult(
        res.imported, res.already_present + present, res.conflicts, res.conflict_items
    )


class AnswerTracker:
    """Refuses a file that gives one reader two different answers on one item: which of them
    the reader meant cannot be told, so the error names both rows."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, where: str, key: str, reader: str, answer: str) -> None:
        prior = self._first.setdefault((key, reader), (where, answer))
        if prior[1] != answer:
            raise CampaignError(
                f"{prior[0]} and {where} give reader {reader!r} two different answers on item "
                f"{key!r} ({prior[1]!r}, {answer!r}); keep one of them; nothing was imported"
            )


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot run as spreadsheet formulas: a cell starting with
    ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe."""
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = [
                "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v
                for v in out[col]
            ]
    return out


def _unquote(text: str) -> str:
    """Undo :func:`neutralise_formulas` for one cell."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


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
