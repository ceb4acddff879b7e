"""The reading page's look-alikes: for the given label and the model's top suggestion, the
nearest confirmed items of that class (:mod:`labelrefine.campaign.lookalikes`).

The campaign's features (already L2-normalised), item ids and trusted labels are read once per
server process, on the first item shown, and kept; the expert labels are read on every
request, so an answer or an adjudication shows up on the next item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from labelrefine.campaign.ledger import Ledger
from labelrefine.campaign.lookalikes import confirmed_labels, stored_features, trusted_labels
from labelrefine.lookalikes import nearest_of_class, unit_rows

PER_CLASS = 3
"""Look-alikes shown per class."""

BLIND_NOTE = "hidden in blind mode"
NONE_YET = "none confirmed yet"


class Lookalikes:
    """Look-alike rows of one campaign, with its features loaded once (thread-safe)."""

    def __init__(self, ledger: Ledger,
                 load: Callable[[Ledger], tuple[np.ndarray | None, str]] = stored_features,
                 k: int = PER_CLASS):
        self.ledger = ledger
        self.k = k
        self._load = load
        self._lock = threading.Lock()
        self._features: np.ndarray | None = None
        self._why = ""
        self._keys: list[str] = []
        self._trusted = np.zeros(0, dtype=np.int64)
        self._loaded = False

    def features(self) -> tuple[np.ndarray | None, str]:
        """The campaign's unit-length features (or None and why), loaded on the first call."""
        with self._lock:
            if not self._loaded:
                x, why = self._load(self.ledger)
                self._keys = [str(k) for k in self.ledger.items()["key"]]
                self._trusted = trusted_labels(self.ledger)  # fixed at init
                n = len(self._keys)
                if x is not None and x.shape[0] != n:
                    x, why = None, f"the features have {x.shape[0]} rows for {n} items"
                self._features = None if x is None else unit_rows(x)
                self._why = why
                self._loaded = True
            return self._features, self._why

    def rows(self, idx: int, given: int | None, suggested: int | None) -> dict[str, Any]:
        """The payload for item ``idx``: ``rows``, one per class to compare with -- the given
        label ``given`` (None: hidden) first, then the model's top suggestion ``suggested``
        (None: none or hidden; merged into one row when it equals ``given``) -- each with its
        nearest confirmed items (``idx``, ``item`` id, ``image_url``, cosine ``distance``);
        ``note`` says why there are no rows or no items (else None)."""
        wanted: list[tuple[int, list[str]]] = []
        if given is not None:
            wanted.append((given, ["given"]))
        if suggested is not None:
            if wanted and wanted[0][0] == suggested:
                wanted[0][1].append("suggested")
            else:
                wanted.append((suggested, ["suggested"]))
        if not wanted:
            return {"rows": [], "note": None}
        x, why = self.features()
        if x is None:
            return {"rows": [], "note": f"unavailable ({why})"}
        labels = confirmed_labels(self.ledger, self._trusted)
        names = self.ledger.class_names
        rows = []
        for cls, roles in wanted:
            near = nearest_of_class(x, labels, idx, cls, self.k)
            rows.append({
                "label": names[cls],
                "roles": roles,
                "items": [{"idx": j, "item": self._keys[j], "image_url": f"/image/{j}",
                           "distance": round(d, 4)} for j, d in near],
                "note": None if near else NONE_YET,
            })
        return {"rows": rows, "note": None}


def blind() -> dict[str, Any]:
    """The payload in blind mode: the rows would name the given label or the model's
    suggestion, which the page hides."""
    return {"rows": [], "note": BLIND_NOTE}
