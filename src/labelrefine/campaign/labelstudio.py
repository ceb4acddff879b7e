"""Label Studio interchange: export tasks with pre-annotations, import its JSON export back.

Export (a folder):

- ``tasks.json``: a list of tasks in Label Studio's JSON import format. Each task has ``data``
  (``image``: the image URL, ``item``: the campaign item id, ``given_label``, ``model_top3`` and
  ``reason`` for display), ``predictions`` (one per task: the model's top class as a ``choices``
  result with its probability as ``score``, so Label Studio shows it as a pre-annotation) and,
  for items that already have an expert answer, ``annotations`` in the same result format.
- ``labeling_config.xml``: the matching labeling configuration -- an ``<Image name="image">`` and
  a single-choice ``<Choices name="label" toName="image">`` with one ``<Choice>`` per class plus
  ``unsure``.

Image URLs are ``<image_url_prefix><path relative to the image root>``; the default prefix
``/data/local-files/?d=`` is Label Studio's local-files route (serve the campaign's image folder
as local storage with that folder, or its parent, as the document root and adjust the prefix).

Import reads Label Studio's JSON export (a list of tasks with ``annotations[].result[]``); each
non-cancelled annotation whose result holds ``value.choices`` for the ``label`` control becomes
one expert answer. The annotator is taken from ``completed_by`` (an e-mail/username, or a user
id), else from the task's ``meta.labelrefine_annotators`` written by our export, else the default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import quoteattr

import numpy as np

from labelrefine.campaign.exchange import atomic_writer, content_id
from labelrefine.campaign.ledger import UNSURE, CampaignError, Ledger

FROM_NAME = "label"
TO_NAME = "image"
DEFAULT_IMAGE_PREFIX = "/data/local-files/?d="


def labeling_config(class_names: tuple[str, ...] | list[str]) -> str:
    """Label Studio labeling config (XML) for single-choice image classification + unsure."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in (*class_names, UNSURE))
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        '  <Header value="Given label: $given_label"/>\n'
        '  <Text name="model" value="$model_top3"/>\n'
        '  <Text name="reason" value="$reason"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _choice_result(choice: str) -> dict[str, Any]:
    return {
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "choices",
        "value": {"choices": [choice]},
    }


def export_labelstudio(
    ledger: Ledger,
    out_dir: str | Path,
    *,
    image_url_prefix: str = DEFAULT_IMAGE_PREFIX,
    scope: str = "queue",
) -> int:
    """Write ``tasks.json`` and ``labeling_config.xml`` into ``out_dir``; returns the task count.

    ``scope``: ``queue`` (the current round's queue, the default), ``answered`` (every item with
    an expert answer) or ``train`` (every relabelable item). Files are written atomically.
    """
    if scope not in ("queue", "answered", "train"):
        raise CampaignError(f"unknown scope {scope!r} (use queue, answered or train)")
    names = ledger.class_names
    items = ledger.items()
    current = ledger.current_round()
    answers = ledger.answers()
    if scope == "queue":
        if current is None:
            raise CampaignError("the campaign has no queue yet; run 'labelrefine campaign step'")
        q = ledger.queue(current)
        chosen = [int(i) for i in q["item"]]
        reasons = dict(zip(chosen, q["reason"], strict=True))
    else:
        reasons = {}
        if current is not None:
            q = ledger.queue(current)
            reasons = dict(zip((int(i) for i in q["item"]), q["reason"], strict=True))
        if scope == "answered":
            chosen = sorted(int(i) for i in answers["item"])
        else:
            chosen = [int(i) for i in items.loc[items["role"] == "train", "idx"]]
    probs_by_item: dict[int, np.ndarray] = {}
    if current is not None:
        s = ledger.scores(current)
        probs_by_item = dict(zip((int(i) for i in s["item"]), s["probs"], strict=True))
    by_item = answers.set_index("item")
    tasks = []
    for idx in chosen:
        row = items.iloc[idx]
        data: dict[str, Any] = {
            "image": image_url_prefix + str(row["path"]),
            "item": str(row["key"]),
            "given_label": names[int(row["given_label"])],
            "model_top3": "",
            "reason": str(reasons.get(idx, "")),
        }
        task: dict[str, Any] = {"data": data}
        probs = probs_by_item.get(idx)
        if probs is not None:
            top = np.argsort(-probs, kind="stable")[:3]
            data["model_top3"] = ", ".join(f"{names[k]} {probs[k]:.2f}" for k in top)
            task["predictions"] = [
                {
                    "model_version": f"labelrefine-round-{current}",
                    "score": float(probs[top[0]]),
                    "result": [
                        _choice_result(names[int(top[0])]) | {"score": float(probs[top[0]])}
                    ],
                }
            ]
        if idx in by_item.index:
            a = by_item.loc[idx]
            choice = UNSURE if a["kind"] == UNSURE else names[int(a["label"])]
            ann: dict[str, Any] = {
                "result": [_choice_result(choice)],
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": a["answered_at"],
            }
            if a["seconds"] is not None and not _isnan(a["seconds"]):
                ann["lead_time"] = float(a["seconds"])
            task["annotations"] = [ann]
            task["meta"] = {"labelrefine_annotators": [str(a["annotator"])]}
        tasks.append(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out_dir / "labeling_config.xml") as fh:
        fh.write(labeling_config(names))
    with atomic_writer(out_dir / "tasks.json") as fh:
        json.dump(tasks, fh, indent=1)
    ledger.log_event(
        "export", {"format": "labelstudio", "folder": out_dir.name, "tasks": len(tasks)}
    )
    return len(tasks)


def _isnan(x: Any) -> bool:
    try:
        return bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def _annotator(ann: dict[str, Any], task: dict[str, Any], k: int, default: str) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        for key in ("email", "username"):
            if who.get(key):
                return str(who[key])
        if who.get("id") is not None:
            return f"labelstudio-user-{who['id']}"
    elif isinstance(who, str) and who.strip():
        return who.strip()
    elif isinstance(who, int) and not isinstance(who, bool):
        return f"labelstudio-user-{who}"
    meta = task.get("meta") or {}
    names = meta.get("labelrefine_annotators") if isinstance(meta, dict) else None
    if isinstance(names, list) and k < len(names) and str(names[k]).strip():
        return str(names[k]).strip()
    return default


def _task_item(task: dict[str, Any], lookup: dict[str, str], n: int) -> str:
    """The campaign item id of one task: ``data.item``, else matched by the image file."""
    data = task.get("data")
    if not isinstance(data, dict):
        raise CampaignError(f"task #{n}: no 'data' object")
    if "item" in data:
        return str(data["item"])
    image = unquote(str(data.get("image", "")))
    rel = image.split("?d=", 1)[-1]
    base = rel.rsplit("/", 1)[-1]
    # Label Studio prefixes uploaded files with 8 hex characters and a dash.
    stripped = base[9:] if re.fullmatch(r"[0-9a-f]{8}-.+", base) else base
    for cand in (rel, base, stripped):
        if cand in lookup:
            return lookup[cand]
    raise CampaignError(f"task #{n}: cannot tell which item it is (no data.item; image {image!r})")


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


def import_labelstudio(
    ledger: Ledger, path: str | Path, *, annotator: str = "labelstudio"
) -> tuple[int, int]:
    """Import Label Studio's JSON export of annotated tasks; returns ``(imported, skipped)``.

    Validates everything first (unknown items or classes are errors naming the item) and then
    stores all answers in one transaction. Cancelled (skipped) annotations are ignored;
    re-importing the same export adds nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"Label Studio export not found: {path}")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CampaignError(f"{path.name} is not valid JSON: {err}") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise CampaignError(f"{path.name}: expected a list of tasks")
    items = ledger.items()
    keys = {str(k): int(i) for k, i in zip(items["key"], items["idx"], strict=True)}
    lookup = _path_lookup([str(k) for k in items["key"]], [str(p) for p in items["path"]])
    known = ", ".join(ledger.class_names)
    answers = []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise CampaignError(f"{path.name}: task #{n} is not an object")
        key = _task_item(task, lookup, n)
        if key not in keys:
            raise CampaignError(
                f"{path.name}: task #{n}: unknown item {key!r}: not in this campaign"
            )
        for k, ann in enumerate(task.get("annotations") or []):
            if not isinstance(ann, dict) or ann.get("was_cancelled"):
                continue
            choice = _choice(ann, key, path.name)
            if choice is None:
                continue
            if choice.lower() == UNSURE:
                label = None
            elif choice in ledger.class_names:
                label = ledger.class_names.index(choice)
            else:
                raise CampaignError(
                    f"{path.name}: item {key!r} has unknown class {choice!r} "
                    f"(known: {known}, or {UNSURE})"
                )
            who = _annotator(ann, task, k, annotator)
            when = ann.get("created_at") or ann.get("updated_at")
            lead = ann.get("lead_time")
            seconds = float(lead) if isinstance(lead, int | float) and lead >= 0 else None
            sid_parts = ["labelstudio", key, choice, who, str(when or "")]
            if ann.get("id") is not None:
                sid_parts.append(str(ann["id"]))
            answers.append(
                {
                    "item": keys[key],
                    "label": label,
                    "annotator": who,
                    "answered_at": None if when is None else str(when),
                    "seconds": seconds,
                    "submission_id": content_id(*sid_parts),
                }
            )
    answers.sort(key=lambda a: a["answered_at"] or "")
    return ledger.import_answers(answers, origin="labelstudio", source_name=path.name)


def _choice(ann: dict[str, Any], key: str, where: str) -> str | None:
    """The chosen class of one annotation (None when it has no choices result)."""
    picked = []
    for res in ann.get("result") or []:
        if not isinstance(res, dict):
            continue
        value = res.get("value") or {}
        if res.get("type", "choices") != "choices" or "choices" not in value:
            continue
        if res.get("from_name", FROM_NAME) != FROM_NAME:
            continue
        choices = value["choices"]
        if not isinstance(choices, list) or len(choices) != 1:
            raise CampaignError(
                f"{where}: item {key!r}: expected exactly one choice, got {choices!r}"
            )
        picked.append(str(choices[0]))
    if len(picked) > 1:
        raise CampaignError(f"{where}: item {key!r}: one annotation holds {len(picked)} choices")
    return picked[0] if picked else None
