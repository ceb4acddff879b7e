"""Label Studio interchange: export tasks with pre-annotations, import its exports back.

Export (a folder, :func:`export_labelstudio`):

- ``tasks.json``: a list of tasks in Label Studio's JSON import format. Each task has ``data``
  (``image``: the image URL, ``item``: the campaign item id, ``given_label``, ``model_top3`` and
  ``reason`` for display, ``labelrefine``: the campaign's own record of the answers the task
  carries), ``predictions`` (one per task) and, for answered items, one ``annotations`` entry
  per reader.
- ``labeling_config.xml``: the matching labeling configuration -- an ``<Image name="image">``, the
  given label, the model's top-3 and the queue reason as text, a single-choice
  ``<Choices name="label" toName="image">`` with one ``<Choice>`` per class plus ``unsure``, and
  a ``<TextArea name="note" toName="image">`` for the reader's optional note.

A reader's note travels as a TextArea result of the annotation (``{"from_name": "note",
"to_name": "image", "type": "textarea", "value": {"text": [note]}}``; the ``note`` column of
JSON-MIN and CSV exports) and in ``data.labelrefine``. An annotation without a note result
leaves the campaign's note as it is.

Pre-annotations pre-select the **given** label (the prediction's score is the model's
probability of it), so a reader who submits a task unchanged keeps the given label -- as the
``k`` key does in the web app. The model's top-3 is shown as text, never pre-selected, so the
reader is not nudged towards the model's guess.

In blind mode (``campaign configure --blind``) the export is blind too: tasks carry only the
image and the item id -- no given label, top-3, reason or pre-selected prediction, and no
reader's answer -- and the labeling configuration shows none of them.

Image URLs follow Label Studio's Local Files layout: the document root is the *parent* of the
campaign's image folder (Label Studio refuses the storage folder itself as document root), a
Local Files storage points at the image folder, and each URL is
``/data/local-files/?d=<image folder name>/<path inside it>`` (:func:`local_files_layout`).

Import (:func:`import_labelstudio`) reads Label Studio's JSON, JSON-MIN and CSV exports
(detected from the content, :func:`detect_format`). Every answer goes through
:meth:`Ledger.import_answers`, the path every import takes, so two readers' different answers
become a conflict for adjudication and nothing is overwritten. Identity, so that importing any
export any number of times changes nothing:

- an annotation that came from a labelrefine export (matched by its ``import_id`` or, in
  JSON-MIN / CSV, by its answer among the answers listed in ``data.labelrefine``) keeps the
  campaign's submission id, reader and time -- Label Studio rewrites ``completed_by`` and
  ``created_at`` when it imports annotations, so those are not trusted for such answers;
- any other annotation is identified by item + Label Studio annotation id + ``updated_at``
  (submission id) and item + annotation id + reader (external id); an edit in Label Studio is a
  new answer of the same reader that replaces the earlier one, with the edit time (in a JSON
  export, an edited copy of an exported answer is credited to the user who edited it).

Label Studio names readers by numeric user id; ids are resolved to names (e-mail) through the
``/api/users`` listing (``users`` argument), which is saved in the campaign for later imports.
Cancelled (skipped) annotations are not answers and are counted apart; answers on held-out items
or without a choice are skipped and reported (or refused with ``strict``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import quoteattr

import numpy as np

from labelrefine.campaign.exchange import AnswerTracker, atomic_writer, content_id
from labelrefine.campaign.ledger import UNSURE, CampaignError, Ledger

FROM_NAME = "label"
NOTE_NAME = "note"
TO_NAME = "image"
LOCAL_FILES_ROUTE = "/data/local-files/?d="
CARRY_KEY = "labelrefine"
"""``data`` key of the campaign's own record of a task's answers (kept by Label Studio)."""
USERS_META_KEY = "labelstudio_users"
"""Campaign meta key holding the saved Label Studio user id -> name mapping."""
FORMATS = ("json", "json-min", "csv")
_MISSING = object()


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------


def labeling_config(class_names: tuple[str, ...] | list[str], *, blind: bool = False) -> str:
    """Label Studio labeling config (XML) for single-choice image classification + unsure;
    ``blind`` leaves out the given label, the model's top-3 and the queue reason."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in (*class_names, UNSURE))
    shown = "" if blind else (
        '  <Header value="Given label: $given_label"/>\n'
        '  <Text name="model" value="$model_top3"/>\n'
        '  <Text name="reason" value="$reason"/>\n'
    )
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f"{shown}"
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f'  <TextArea name="{NOTE_NAME}" toName="{TO_NAME}" placeholder="note (optional)" '
        f'rows="2" maxSubmissions="1" editable="true"/>\n'
        "</View>\n"
    )


@dataclass(frozen=True)
class LocalFilesLayout:
    """How Label Studio serves the campaign's images from local files.

    ``document_root``: the value of ``LOCAL_FILES_DOCUMENT_ROOT`` (the image folder's parent);
    ``storage_path``: the absolute path of the Local Files storage to add to the project (the
    image folder); ``prefix``: what each task's image URL starts with.
    """

    document_root: Path
    storage_path: Path
    prefix: str

    def instructions(self) -> list[str]:
        """The settings to make, one line each."""
        return [
            "start Label Studio with LOCAL_FILES_SERVING_ENABLED=true "
            f"LOCAL_FILES_DOCUMENT_ROOT={self.document_root}",
            f"in the project, add a Local Files source storage with absolute path "
            f"{self.storage_path} (no need to sync it: the tasks come from tasks.json)",
        ]


def local_files_layout(image_root: str | Path) -> LocalFilesLayout:
    """The Local Files layout for an image folder (see the module docstring)."""
    root = Path(image_root).resolve()
    if root.parent == root:
        raise CampaignError(
            f"image folder {root} has no parent folder to serve as Label Studio's document root; "
            "pass --image-url-prefix"
        )
    return LocalFilesLayout(
        document_root=root.parent,
        storage_path=root,
        prefix=LOCAL_FILES_ROUTE + quote(root.name, safe="") + "/",
    )


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_labelstudio` wrote: ``tasks`` tasks carrying ``answers`` answers;
    ``layout`` is set when the image URLs use the default Local Files layout."""

    tasks: int
    answers: int
    image_url_prefix: str
    layout: LocalFilesLayout | None
    #: exported images a browser (so Label Studio) cannot show as they are: DICOM, 16-bit, TIFF
    not_viewable: int = 0
    blind: bool = False


def _choice_result(choice: str) -> dict[str, Any]:
    return {
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "choices",
        "value": {"choices": [choice]},
    }


def _note_result(note: str) -> dict[str, Any]:
    return {
        "from_name": NOTE_NAME,
        "to_name": TO_NAME,
        "type": "textarea",
        "value": {"text": [note]},
    }


def export_labelstudio(
    ledger: Ledger,
    out_dir: str | Path,
    *,
    image_url_prefix: str | None = None,
    scope: str = "queue",
) -> ExportResult:
    """Write ``tasks.json`` and ``labeling_config.xml`` into ``out_dir``.

    ``scope``: ``queue`` (the current round's queue, the default), ``answered`` (every item with
    a live answer) or ``train`` (every relabelable item). ``image_url_prefix`` defaults to the
    Local Files layout of the campaign's image folder (:func:`local_files_layout`). Each reader's
    live answer on an item becomes one annotation, recorded in ``data.labelrefine`` too so a
    later import recognises it (in blind mode: neither answers nor suggestions, see the module
    docstring). Files are written atomically.
    """
    if scope not in ("queue", "answered", "train"):
        raise CampaignError(f"unknown scope {scope!r} (use queue, answered or train)")
    layout = None
    if image_url_prefix is None:
        layout = local_files_layout(ledger.image_root)
        image_url_prefix = layout.prefix
    names = ledger.class_names
    items = ledger.items()
    current = ledger.current_round()
    answers = ledger.answers()
    reasons: dict[int, str] = {}
    if current is not None:
        q = ledger.queue(current)
        reasons = {int(i): str(r) for i, r in zip(q["item"], q["reason"], strict=True)}
    if scope == "queue":
        if current is None:
            raise CampaignError("the campaign has no queue yet; run 'labelrefine campaign step'")
        chosen = [int(i) for i in ledger.queue(current)["item"]]
    elif scope == "answered":
        chosen = sorted({int(i) for i in answers["item"]})
    else:
        chosen = [int(i) for i in items.loc[items["role"] == "train", "idx"]]
    probs_by_item: dict[int, np.ndarray] = {}
    if current is not None:
        s = ledger.scores(current)
        probs_by_item = dict(zip((int(i) for i in s["item"]), s["probs"], strict=True))
    by_item: dict[int, list[dict[str, Any]]] = {}
    for a in answers.to_dict("records"):
        by_item.setdefault(int(a["item"]), []).append(a)
    blind = ledger.blind
    tasks = []
    n_answers = 0
    for idx in chosen:
        row = items.iloc[idx]
        task: dict[str, Any] = {
            "data": {
                "image": image_url_prefix + quote(str(row["path"]), safe="/"),
                "item": str(row["key"]),
            }
        }
        if not blind:  # blind: nothing that could steer the reader, no one else's answer
            _add_suggestions(task, names, int(row["given_label"]), reasons.get(idx, ""),
                             probs_by_item.get(idx))
            n_answers += _add_answers(task, names, by_item.get(idx, []))
        tasks.append(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out_dir / "labeling_config.xml") as fh:
        fh.write(labeling_config(names, blind=blind))
    with atomic_writer(out_dir / "tasks.json") as fh:
        json.dump(tasks, fh, indent=1)
    ledger.log_event(
        "export",
        {"format": "labelstudio", "folder": out_dir.name, "tasks": len(tasks),
         "answers": n_answers},
    )
    paths = [ledger.image_root / str(items.iloc[idx]["path"]) for idx in chosen]
    return ExportResult(len(tasks), n_answers, image_url_prefix, layout,
                        not_viewable=_not_viewable(paths), blind=blind)


def _not_viewable(paths: list[Path]) -> int:
    """How many of ``paths`` are image files a browser cannot show as they are."""
    from labelrefine.data.images import browser_ready

    n = 0
    for path in paths:
        try:
            n += not browser_ready(path)
        except OSError:  # missing or unreadable: Label Studio will not show it either
            n += 1
    return n


def _add_suggestions(
    task: dict[str, Any], names: tuple[str, ...], given: int, reason: str,
    probs: np.ndarray | None,
) -> None:
    """The given label, the model's top-3 and the queue reason as text, and a prediction that
    pre-selects the given label."""
    data = task["data"]
    data.update({"given_label": names[given], "model_top3": "", "reason": reason})
    prediction: dict[str, Any] = {
        "model_version": "labelrefine-given-label",
        "result": [_choice_result(names[given])],
    }
    if probs is not None:
        top = np.argsort(-probs, kind="stable")[:3]
        data["model_top3"] = ", ".join(f"{names[k]} {probs[k]:.2f}" for k in top)
        prediction["score"] = float(probs[given])
    task["predictions"] = [prediction]


def _add_answers(
    task: dict[str, Any], names: tuple[str, ...], answers: list[dict[str, Any]]
) -> int:
    """One annotation per reader's live answer, also recorded in ``data.labelrefine``."""
    carried = []
    annotations = []
    for a in answers:
        choice = UNSURE if a["kind"] == UNSURE else names[int(a["label"])]
        seconds = None if _isnan(a["seconds"]) else float(a["seconds"])
        note = str(a.get("note") or "")
        ann: dict[str, Any] = {
            "id": int(a["id"]),  # kept by Label Studio as the annotation's import_id
            "result": [_choice_result(choice), *([_note_result(note)] if note else [])],
            "was_cancelled": False,
            "ground_truth": False,
            "created_at": a["answered_at"],
        }
        if seconds is not None:
            ann["lead_time"] = seconds
        annotations.append(ann)
        carried.append(
            {
                "annotation": int(a["id"]),
                "submission_id": str(a["submission_id"]),
                "annotator": str(a["annotator"]),
                "label": choice,
                "answered_at": a["answered_at"],
                "seconds": seconds,
                "note": note,
            }
        )
    if annotations:
        task["annotations"] = annotations
        task["data"][CARRY_KEY] = {"answers": carried}
    return len(annotations)


def _isnan(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return True


# ----------------------------------------------------------------------------------------------
# reading exports
# ----------------------------------------------------------------------------------------------


@dataclass
class Annotation:
    """One Label Studio annotation, whatever format it came in."""

    where: str
    """Where it is in the file, for messages (``task #3``, ``row 7``)."""
    task: str
    """The task's identity within the file (its Label Studio id, else its position)."""
    key: str
    choice: str | None
    annotation_id: int | None
    user: Any
    updated_at: str | None
    lead_time: float | None
    cancelled: bool
    import_id: Any
    """The annotation's import_id (JSON only; ``_MISSING`` in formats that lack it)."""
    carried: list[dict[str, Any]]
    updated_by: Any = None
    """Who last changed it (JSON only)."""
    note: str | None = None
    """The reader's note (None: the annotation has no note result, so says nothing of one)."""


def detect_format(path: str | Path) -> str:
    """``json``, ``json-min`` or ``csv`` for a Label Studio export (``.json`` files by their
    content; CSV files by Label Studio's ``annotation_id`` column); ``campaign-csv`` for any other
    CSV file (the campaign's own answer CSV). A clear CampaignError for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"file not found: {path}")
    if path.suffix.lower() == ".json":
        return _json_kind(_load_json(path), path.name)
    header = _csv_header(path)
    return "csv" if "annotation_id" in header else "campaign-csv"


def _csv_header(path: Path) -> list[str]:
    # Only the header decides the format; the reader of the chosen format reports bad bytes.
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        return [c.strip() for c in next(csv.reader(fh), [])]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CampaignError(f"{path.name} is not valid JSON: {err}") from None


def _json_kind(doc: Any, name: str) -> str:
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(t, dict) for t in doc):
        raise CampaignError(f"{name}: expected a list of Label Studio tasks (JSON or JSON-MIN)")
    if not doc or any("data" in t or "annotations" in t for t in doc):
        return "json"
    if all("annotation_id" in t or FROM_NAME in t or "item" in t or "image" in t for t in doc):
        return "json-min"
    raise CampaignError(
        f"{name}: not a Label Studio export: a JSON export holds tasks with 'data' and "
        "'annotations', a JSON-MIN export rows with 'annotation_id' and the 'label' answer"
    )


def read_export(path: str | Path, lookup: Mapping[str, str]) -> tuple[str, list[Annotation]]:
    """Parse a Label Studio export into annotations (format detected); ``lookup`` maps image
    paths / file names to item ids for tasks without ``data.item``."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "campaign-csv":
        raise CampaignError(
            f"{path.name}: not a Label Studio CSV export (no 'annotation_id' column)"
        )
    if fmt == "csv":
        return fmt, _read_flat(_csv_rows(path), lookup, path.name, row_base=2, kind="line")
    doc = _load_json(path)
    doc = [doc] if isinstance(doc, dict) else doc
    if fmt == "json-min":
        return fmt, _read_flat(doc, lookup, path.name, row_base=0, kind="row")
    return fmt, _read_json(doc, lookup, path.name)


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise CampaignError(f"cannot read {path.name}: {err}") from None
    return [{k.strip(): (v if v != "" else None) for k, v in r.items() if k} for r in rows]


def _read_json(tasks: list[Any], lookup: Mapping[str, str], name: str) -> list[Annotation]:
    out = []
    for n, task in enumerate(tasks):
        where = f"{name}: task #{n}" + (f" (id {task['id']})" if "id" in task else "")
        data = task.get("data")
        if not isinstance(data, dict):
            raise CampaignError(
                f"{where}: no 'data' object (a JSON export's tasks all have one; is this a "
                "JSON-MIN export mixed with JSON?)"
            )
        key = _task_item(data, lookup, where)
        carried = _carried(data.get(CARRY_KEY), where)
        anns = task.get("annotations") or []
        if not isinstance(anns, list):
            raise CampaignError(f"{where}: 'annotations' is not a list")
        for k, ann in enumerate(anns):
            if not isinstance(ann, dict):
                raise CampaignError(f"{where}: annotation #{k} is not an object")
            ann_id = _int_or_none(ann.get("id"))
            w = f"{where}, annotation {ann_id if ann_id is not None else '#' + str(k)}"
            cancelled = bool(ann.get("was_cancelled"))
            import_id = ann.get("import_id")
            if "import_id" not in ann and "completed_by" not in ann:
                import_id = ann.get("id")  # the campaign's own tasks.json, not yet in LS
            out.append(
                Annotation(
                    where=w,
                    task=str(task.get("id", n)),
                    key=key,
                    choice=None if cancelled else _choice_of_result(ann.get("result"), w),
                    annotation_id=ann_id,
                    user=ann.get("completed_by"),
                    updated_at=ann.get("updated_at") or ann.get("created_at"),
                    lead_time=_lead_time(ann.get("lead_time")),
                    cancelled=cancelled,
                    import_id=_int_or_none(import_id),
                    carried=carried,
                    updated_by=ann.get("updated_by"),
                    note=None if cancelled else _note_of_result(ann.get("result")),
                )
            )
    return out


def _read_flat(
    rows: list[Any], lookup: Mapping[str, str], name: str, *, row_base: int, kind: str
) -> list[Annotation]:
    """JSON-MIN / CSV: one row per annotation with the task's data fields flattened in."""
    out = []
    for n, row in enumerate(rows):
        where = f"{name} {kind} {n + row_base}"
        if not isinstance(row, dict):
            raise CampaignError(f"{where}: not an object")
        key = _task_item(row, lookup, where)
        if row.get("annotation_id") is None and row.get(FROM_NAME) is None:
            continue  # a task nobody answered
        out.append(
            Annotation(
                where=where,
                task=str(row.get("id", f"{kind}{n}")),
                key=key,
                choice=_choice_of_value(row.get(FROM_NAME), where),
                annotation_id=_int_or_none(row.get("annotation_id")),
                user=row.get("annotator"),
                updated_at=row.get("updated_at") or row.get("created_at"),
                lead_time=_lead_time(row.get("lead_time")),
                cancelled=False,  # these formats leave cancelled annotations out
                import_id=_MISSING,
                carried=_carried(row.get(CARRY_KEY), where),
                note=_note_of_value(row.get(NOTE_NAME)),
            )
        )
    return out


def _int_or_none(x: Any) -> int | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        return int(str(x).strip())
    except ValueError:
        return None


def _lead_time(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v >= 0 else None


def _carried(value: Any, where: str) -> list[dict[str, Any]]:
    """The answers a labelrefine export recorded in ``data.labelrefine`` (JSON or its text)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise CampaignError(f"{where}: '{CARRY_KEY}' is not valid JSON") from None
    answers = value.get("answers") if isinstance(value, dict) else None
    if not isinstance(answers, list) or not all(
        isinstance(a, dict) and a.get("submission_id") and a.get("annotator") and "label" in a
        for a in answers
    ):
        raise CampaignError(
            f"{where}: '{CARRY_KEY}' is damaged (expected answers with submission_id, annotator "
            "and label)"
        )
    return answers


def _task_item(data: Mapping[str, Any], lookup: Mapping[str, str], where: str) -> str:
    """The campaign item id of one task: ``data.item``, else matched by the image file."""
    if data.get("item") not in (None, ""):
        return str(data["item"])
    image = unquote(str(data.get("image") or ""))
    rel = image.split("?d=", 1)[-1]
    parts = rel.split("/")
    base = parts[-1]
    # Label Studio prefixes uploaded files with 8 hex characters and a dash.
    stripped = base[9:] if re.fullmatch(r"[0-9a-f]{8}-.+", base) else base
    # "<image folder>/<path>" (the Local Files layout) or the path itself.
    for cand in (rel, "/".join(parts[1:]), base, stripped):
        if cand and cand in lookup:
            return lookup[cand]
    raise CampaignError(f"{where}: cannot tell which item it is (no data.item; image {image!r})")


def _path_lookup(keys: list[str], paths: list[str]) -> dict[str, str]:
    """Relative path and (when unique) file name -> item id."""
    lookup = dict(zip(paths, keys, strict=True))
    names = [p.rsplit("/", 1)[-1] for p in paths]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for name, key in zip(names, keys, strict=True):
        if counts[name] == 1:
            lookup.setdefault(name, key)
    return lookup


def _choice_of_result(result: Any, where: str) -> str | None:
    """The chosen class of one JSON annotation (None when it has no ``label`` choice)."""
    picked = []
    for res in result or []:
        if not isinstance(res, dict):
            continue
        value = res.get("value") or {}
        if res.get("type", "choices") != "choices" or "choices" not in value:
            continue
        if res.get("from_name", FROM_NAME) != FROM_NAME:
            continue
        picked.append(_single(value["choices"], where))
    if len(picked) > 1:
        raise CampaignError(f"{where}: one annotation holds {len(picked)} choices")
    return picked[0] if picked else None


def _note_of_result(result: Any) -> str | None:
    """The text of an annotation's ``note`` TextArea result (lines joined; None: none)."""
    texts = []
    for res in result or []:
        if not isinstance(res, dict) or res.get("from_name") != NOTE_NAME:
            continue
        value = res.get("value") or {}
        if res.get("type") == "textarea" and isinstance(value, dict):
            texts.extend(str(x) for x in _as_list(value.get("text")))
    return "\n".join(texts) if texts else None


def _note_of_value(value: Any) -> str | None:
    """JSON-MIN / CSV cell of the ``note`` TextArea: its text, or a list of texts (CSV writes
    a list as JSON text); None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            texts = json.loads(value)
        except json.JSONDecodeError:
            texts = None
        if isinstance(texts, list) and all(isinstance(x, str) for x in texts):
            value = texts  # a list of texts, not a note that starts with "["
    if isinstance(value, dict):
        value = value.get("text")
    return "\n".join(str(x) for x in _as_list(value)) or None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _choice_of_value(value: Any, where: str) -> str | None:
    """JSON-MIN / CSV cell of the ``label`` control: a string, ``{"choices": [...]}`` or a list
    (CSV writes the last two as JSON text)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, list):
        return _single(value, where)
    return str(value)


def _single(choices: Any, where: str) -> str:
    if not isinstance(choices, list) or len(choices) != 1:
        raise CampaignError(f"{where}: expected exactly one choice, got {choices!r}")
    return str(choices[0])


# ----------------------------------------------------------------------------------------------
# users
# ----------------------------------------------------------------------------------------------


def read_users(path: str | Path) -> dict[str, str]:
    """Label Studio user id -> name from the ``/api/users`` listing (a list of users with
    ``id`` and ``email`` / ``username`` / names) or a plain ``{"id": "name"}`` object. The name
    is the e-mail address, else the username, else first and last name."""
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"users file not found: {path}")
    doc = _load_json(path)
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        doc = doc["results"]  # paginated listing
    out: dict[str, str] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            if _int_or_none(k) is None or not isinstance(v, str) or not v.strip():
                raise CampaignError(f"{path.name}: entry {k!r}: expected user id -> name")
            out[str(int(k))] = v.strip()
        return out
    if not isinstance(doc, list):
        raise CampaignError(f"{path.name}: expected Label Studio's /api/users listing")
    for n, user in enumerate(doc):
        uid = _int_or_none(user.get("id")) if isinstance(user, dict) else None
        if uid is None:
            raise CampaignError(f"{path.name}: user #{n} has no numeric 'id'")
        name = _user_name(user)
        if name is None:
            raise CampaignError(f"{path.name}: user {uid} has no e-mail, username or name")
        out[str(uid)] = name
    return out


def _user_name(user: Mapping[str, Any]) -> str | None:
    for key in ("email", "username"):
        if str(user.get(key) or "").strip():
            return str(user[key]).strip()
    full = f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip()
    return full or None


def saved_users(ledger: Ledger) -> dict[str, str]:
    """The user mapping saved by an earlier ``import --users`` (empty when none)."""
    text = ledger.meta().get(USERS_META_KEY)
    return {} if not text else {str(k): str(v) for k, v in json.loads(text).items()}


def _resolve_user(user: Any, users: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(name, unknown id) of a ``completed_by`` / ``annotator`` value."""
    if isinstance(user, dict):
        name = _user_name(user)
        if name is not None:
            return name, None
        user = user.get("id")
    uid = _int_or_none(user)
    if uid is not None:
        name = users.get(str(uid))
        return (name, None) if name else (None, str(uid))
    if isinstance(user, str) and user.strip():
        return user.strip(), None
    return None, None


# ----------------------------------------------------------------------------------------------
# import
# ----------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Outcome of an import: ``new`` answers stored, ``present`` already held, ``conflicts``
    items that now have readers disagreeing (``conflict_items``: their ids), ``skipped``
    ``(where, reason)`` pairs, ``cancelled`` annotations cancelled in Label Studio."""

    format: str
    new: int = 0
    present: int = 0
    conflicts: int = 0
    conflict_items: tuple[str, ...] = ()
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0

    def __iter__(self):  # ``done, present = report`` like Ledger.import_answers
        return iter((self.new, self.present))

    def summary(self) -> str:
        """``N new, M already present, K conflicts, J skipped (reasons)``."""
        text = (
            f"{self.new} new, {self.present} already present, {self.conflicts} conflicts, "
            f"{len(self.skipped)} skipped"
        )
        if self.skipped:
            text += f" ({_reasons(self.skipped)})"
        if self.cancelled:
            text += f"; {self.cancelled} cancelled in Label Studio (not answers)"
        return text


def _reasons(skipped: Sequence[tuple[str, str]], show: int = 3) -> str:
    groups: dict[str, list[str]] = {}
    for where, why in skipped:
        groups.setdefault(why, []).append(where)
    parts = []
    for why, wheres in groups.items():
        shown = ", ".join(wheres[:show]) + (f", +{len(wheres) - show} more" if
                                           len(wheres) > show else "")
        parts.append(f"{len(wheres)} {why}: {shown}")
    return "; ".join(parts)


def _normalise_time(value: Any) -> str | None:
    """ISO time in the ledger's form (UTC, microseconds); other text is kept as given."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def import_labelstudio(
    ledger: Ledger,
    path: str | Path,
    *,
    users: str | Path | Mapping[str, str] | None = None,
    strict: bool = False,
    annotator: str | None = None,
) -> ImportReport:
    """Import a Label Studio export (JSON, JSON-MIN or CSV; detected) into the campaign.

    ``users``: the ``/api/users`` listing (a file or an id -> name mapping) to name readers; it
    is saved in the campaign and used by later imports without one. ``annotator``: the name
    used when an annotation names no user at all (files written by hand). Unknown items or
    classes and unknown user ids are errors naming them; answers on held-out items, answers
    without a choice and answers undone in the campaign are skipped and reported -- with
    ``strict`` they are errors. Everything is validated first and stored in one transaction,
    so nothing is written on error.
    """
    path = Path(path)
    items = ledger.items()
    keys = {str(k): int(i) for k, i in zip(items["key"], items["idx"], strict=True)}
    lookup = _path_lookup([str(k) for k in items["key"]], [str(p) for p in items["path"]])
    fmt, anns = read_export(path, lookup)
    given_users = dict(users) if isinstance(users, Mapping) else (
        read_users(users) if users is not None else None
    )
    user_map = given_users if given_users is not None else saved_users(ledger)
    report = ImportReport(format=fmt)
    known = ", ".join(ledger.class_names)
    retracted = _retracted_ids(ledger)
    rows: list[dict[str, Any]] = []
    unknown_users: dict[str, str] = {}
    used: dict[str, set[int]] = {}
    seen = AnswerTracker()
    for a in sorted(anns, key=lambda a: (a.task, a.annotation_id or 0)):
        if a.cancelled:
            report.cancelled += 1
            continue
        if a.key not in keys:
            raise CampaignError(f"{a.where}: unknown item {a.key!r}: not in this campaign")
        if a.choice is None:
            report.skipped.append((a.key, "without a 'label' choice"))
            continue
        if a.choice.lower() == UNSURE:
            label = None
        elif a.choice in ledger.class_names:
            label = ledger.class_names.index(a.choice)
        else:
            raise CampaignError(
                f"{a.where}: item {a.key!r} has unknown class {a.choice!r} "
                f"(known: {known}, or {UNSURE})"
            )
        idx = keys[a.key]
        why = ledger.answerable(idx)
        if why is not None:
            report.skipped.append((a.key, "on held-out items" if "held out" in why else why))
            continue
        entry = _match_carried(a, used.setdefault(a.task, set()))
        if entry is not None:
            row = {
                "item": idx,
                "label": label,
                "annotator": str(entry["annotator"]),
                "submission_id": str(entry["submission_id"]),
                "answered_at": entry.get("answered_at"),
                "seconds": _lead_time(entry.get("seconds")),
                "note": a.note,
            }
        else:
            who, unknown = _resolve_user(_author(a), user_map)
            if unknown is not None:
                unknown_users.setdefault(unknown, a.where)
                continue
            who = who or annotator
            if who is None:
                raise CampaignError(f"{a.where}: the annotation names no annotator")
            when = _normalise_time(a.updated_at)
            ext = None if a.annotation_id is None else str(a.annotation_id)
            noted = [a.note] if a.note else []
            if ext is None:
                sid = content_id("labelstudio", a.key, a.choice, who, when or "", *noted)
            else:
                sid = content_id("labelstudio", a.key, ext, when or "", a.choice, *noted)
            row = {
                "item": idx,
                "label": label,
                "annotator": who,
                "submission_id": sid,
                "answered_at": when,
                "seconds": a.lead_time,
                "external_id": ext,
                "note": a.note,
            }
        seen.add(a.where, a.key, str(row["annotator"]), a.choice)
        if row["submission_id"] in retracted:
            report.skipped.append((a.key, "undone in the campaign"))
            continue
        rows.append(row)
    if unknown_users:
        listed = ", ".join(f"{u} ({w})" for u, w in list(unknown_users.items())[:5])
        raise CampaignError(
            f"{path.name}: Label Studio user id(s) without a name: {listed}; pass --users with "
            "Label Studio's user listing (GET /api/users saved as JSON)"
        )
    if strict and report.skipped:
        raise CampaignError(
            f"{path.name}: --strict: {len(report.skipped)} answer(s) would be skipped "
            f"({_reasons(report.skipped)}); nothing was imported"
        )
    rows.sort(key=lambda r: r["answered_at"] or "")
    res = ledger.import_answers(rows, origin="labelstudio", source_name=path.name)
    report.new, report.present, report.conflicts = (
        res.imported, res.already_present, res.conflicts
    )
    inverse = {v: k for k, v in keys.items()}
    report.conflict_items = tuple(inverse[i] for i in res.conflict_items)
    if given_users is not None and given_users != saved_users(ledger):
        ledger.set_meta(USERS_META_KEY, given_users)
    return report


def _match_carried(a: Annotation, used: set[int]) -> dict[str, Any] | None:
    """The campaign answer (from ``data.labelrefine``) this annotation is an unchanged copy of.

    JSON exports keep the id our export gave the annotation as its ``import_id``; JSON-MIN and
    CSV lack it, so there the first unused carried answer with the same choice is taken. A copy
    whose note was changed is not unchanged (exports before notes carry none: an empty note).
    """
    for k, entry in enumerate(a.carried):
        if k in used or str(entry["label"]) != a.choice:
            continue
        if a.note is not None and a.note != str(entry.get("note") or ""):
            continue
        if a.import_id is not _MISSING and _int_or_none(entry.get("annotation")) != a.import_id:
            continue
        used.add(k)
        return entry
    return None


def _author(a: Annotation) -> Any:
    """Whom a new answer is credited to: ``completed_by``, except for an edited copy of an
    exported answer (its ``completed_by`` is whoever imported the tasks), which is credited to
    the user who edited it."""
    edited_copy = a.import_id is not _MISSING and a.import_id is not None and any(
        _int_or_none(e.get("annotation")) == a.import_id for e in a.carried
    )
    if edited_copy and a.updated_by not in (None, ""):
        return a.updated_by
    return a.user


def _retracted_ids(ledger: Ledger) -> set[str]:
    every = ledger.answers(include_retracted=True)
    if not len(every):
        return set()
    undone = every[every["retracted"]]
    return {str(s) for s in undone["submission_id"]}

