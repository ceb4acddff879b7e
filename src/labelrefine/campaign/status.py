"""Campaign progress: labels bought, per-class counts, query precision and remaining noise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger import UNSURE, Ledger


@dataclass(frozen=True)
class CampaignStatus:
    """A snapshot of a campaign (all counts are over ``train`` items unless said otherwise).

    - ``labels_bought``: items with a current expert label (``unsure`` answers not counted).
    - ``query_precision``: share of expert-labeled queued items whose given label was wrong.
    - ``flip_rate``: share of all expert-labeled items whose given label was wrong.
    - ``suspects_left``: items the latest model did not trust (not in its clean set) and no
      expert has answered yet.
    - ``estimated_noise``: ``suspects_left / n_train * flip_rate`` -- the share of training
      labels estimated still wrong, assuming unanswered suspects are wrong as often as the
      answered ones were and the trusted (clean) set is clean. None before any answer.
    """

    n_items: int
    n_train: int
    rounds: int
    current_round: int | None
    queue_answered: int
    queue_size: int
    labels_bought: int
    unsure: int
    labels_changed: int
    query_precision: float | None
    flip_rate: float | None
    suspects_left: int | None
    estimated_noise: float | None
    per_class: pd.DataFrame
    per_round: pd.DataFrame
    annotators: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, pd.DataFrame)}
        out["per_class"] = self.per_class.to_dict("records")
        out["per_round"] = self.per_round.to_dict("records")
        return out


def campaign_status(ledger: Ledger) -> CampaignStatus:
    """Compute the :class:`CampaignStatus` of ``ledger``."""
    names = ledger.class_names
    c = len(names)
    items = ledger.items()
    train = items["role"].to_numpy() == "train"
    given = items["given_label"].to_numpy()
    current_label = items["current_label"].to_numpy()
    answers = ledger.answers()
    labeled = answers[answers["kind"] == "label"]
    lab_items = labeled["item"].to_numpy(dtype=np.int64)
    lab_labels = labeled["label"].to_numpy(dtype=np.int64)
    changed = lab_labels != given[lab_items]
    rounds = ledger.rounds()
    current = ledger.current_round()
    answered_q, size_q = ledger.progress(current)

    queued_ever: set[int] = set()
    per_round_rows = []
    for r in rounds["round"]:
        q = ledger.queue(int(r))
        q_items = q["item"].to_numpy(dtype=np.int64)
        queued_ever.update(int(i) for i in q_items)
        ans = q[q["answer_kind"] == "label"]
        a_items = ans["item"].to_numpy(dtype=np.int64)
        a_labels = ans["answer_label"].to_numpy(dtype=np.int64)
        wrong = int(np.sum(a_labels != given[a_items])) if len(a_items) else 0
        metrics = rounds.loc[rounds["round"] == r, "metrics"].iloc[0]
        per_round_rows.append(
            {
                "round": int(r),
                "queued": len(q_items),
                "answered": int(q["answer_kind"].notna().sum()),
                "labeled": len(a_items),
                "given_wrong": wrong,
                "query_precision": wrong / len(a_items) if len(a_items) else None,
                "val_f1": metrics.get("val_f1"),
                "test_f1": metrics.get("test_f1"),
                "labels_bought_before": metrics.get("labels_bought"),
            }
        )
    per_round = pd.DataFrame(
        per_round_rows,
        columns=[
            "round",
            "queued",
            "answered",
            "labeled",
            "given_wrong",
            "query_precision",
            "val_f1",
            "test_f1",
            "labels_bought_before",
        ],
    )
    in_queue = np.isin(lab_items, np.fromiter(queued_ever, dtype=np.int64, count=len(queued_ever)))
    qp = float(np.mean(changed[in_queue])) if in_queue.any() else None
    flip = float(np.mean(changed)) if len(changed) else None

    suspects_left: int | None = None
    est: float | None = None
    if current is not None:
        s = ledger.scores(current)
        suspect = np.zeros(len(items), dtype=bool)
        suspect[s["item"].to_numpy(dtype=np.int64)[~s["clean"].to_numpy()]] = True
        answered = np.zeros(len(items), dtype=bool)
        answered[answers["item"].to_numpy(dtype=np.int64)] = True
        suspects_left = int(np.sum(suspect & train & ~answered))
        if flip is not None and train.sum():
            est = suspects_left / int(train.sum()) * flip

    per_class = pd.DataFrame(
        {
            "class": names,
            "given": np.bincount(given[train], minlength=c),
            "current": np.bincount(current_label[train], minlength=c),
            "expert_labels": np.bincount(lab_labels, minlength=c),
            "given_as": np.bincount(given[lab_items], minlength=c),
            "changed_from": np.bincount(given[lab_items][changed], minlength=c),
        }
    )
    return CampaignStatus(
        n_items=len(items),
        n_train=int(train.sum()),
        rounds=len(rounds),
        current_round=current,
        queue_answered=answered_q,
        queue_size=size_q,
        labels_bought=len(lab_items),
        unsure=int(np.sum(answers["kind"] == UNSURE)),
        labels_changed=int(changed.sum()),
        query_precision=qp,
        flip_rate=flip,
        suspects_left=suspects_left,
        estimated_noise=est,
        per_class=per_class,
        per_round=per_round,
        annotators={str(k): int(v) for k, v in answers["annotator"].value_counts().items()},
    )
