"""Evaluation metrics: macro-F1, per-class recall, clean-selection diagnostics (the paper's
Table 1), query precision and label efficiency. Pure functions over numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, recall_score


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 over all ``num_classes`` classes (absent classes count as 0)."""
    return float(
        f1_score(y_true, y_pred, labels=np.arange(num_classes), average="macro", zero_division=0)
    )


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall of each class, shape ``(num_classes,)``; classes absent from ``y_true`` give 0."""
    return np.asarray(
        recall_score(y_true, y_pred, labels=np.arange(num_classes), average=None, zero_division=0),
        dtype=np.float64,
    )


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (nan when ``y_true`` is empty)."""
    y_true = np.asarray(y_true)
    if y_true.size == 0:
        return float("nan")
    present = np.unique(y_true)
    return float(per_class_recall(y_true, y_pred, num_classes)[present].mean())


def selection_precision_recall(
    selected: np.ndarray, candidates: np.ndarray, given: np.ndarray, true: np.ndarray
) -> tuple[float, float]:
    """Precision and recall of a clean-set selection.

    ``selected`` and ``candidates`` are item indices (``selected`` a subset of ``candidates``);
    an item is clean when ``given[i] == true[i]``. Precision = clean share of the selection,
    recall = share of all clean candidates that were selected.
    """
    selected = np.unique(np.asarray(selected, dtype=np.int64))
    candidates = np.unique(np.asarray(candidates, dtype=np.int64))
    clean = candidates[given[candidates] == true[candidates]]
    hit = np.intersect1d(selected, clean).size
    precision = hit / selected.size if selected.size else 0.0
    recall = hit / clean.size if clean.size else 0.0
    return float(precision), float(recall)


def class_selection_diagnostics(
    selected: np.ndarray,
    candidates: np.ndarray,
    given: np.ndarray,
    true: np.ndarray,
    class_names: Sequence[str],
) -> pd.DataFrame:
    """Per-class selection diagnostics (docs/design.md, "Metrics"; the paper's Table 1).

    For class c with S the selected set and C_c the candidates whose given label is c and correct:
    ``recall = |S ∩ C_c| / |C_c|`` and ``guess_pct = 100 · |S ∩ C_c| / |S ∩ {given = c}|``.
    """
    sel_mask = np.zeros(given.shape[0], dtype=bool)
    sel_mask[np.asarray(selected, dtype=np.int64)] = True
    cand = np.unique(np.asarray(candidates, dtype=np.int64))
    g, t, s = given[cand], true[cand], sel_mask[cand]
    rows = []
    for c, name in enumerate(class_names):
        correct_c = (g == c) & (t == c)
        selected_given_c = s & (g == c)
        hit = int(np.sum(s & correct_c))
        rows.append(
            {
                "class": name,
                "n_given": int(np.sum(g == c)),
                "n_correct": int(np.sum(correct_c)),
                "n_selected": int(np.sum(selected_given_c)),
                "recall": hit / correct_c.sum() if correct_c.sum() else float("nan"),
                "guess_pct": 100.0 * hit / selected_given_c.sum()
                if selected_given_c.sum()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def query_precision(queried: np.ndarray, given: np.ndarray, true: np.ndarray) -> float:
    """Share of queried items whose given label was wrong (nan for an empty query)."""
    q = np.asarray(queried, dtype=np.int64)
    if q.size == 0:
        return float("nan")
    return float(np.mean(given[q] != true[q]))


def labels_to_reach(labels_bought: Sequence[int], f1: Sequence[float], target: float) -> int | None:
    """Fewest labels bought at which ``f1`` first reaches ``target``; None if it never does."""
    if len(labels_bought) != len(f1):
        raise ValueError("labels_bought and f1 must have the same length")
    for n, score in zip(labels_bought, f1, strict=True):
        if score >= target:
            return int(n)
    return None
