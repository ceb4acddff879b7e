"""The reading page's look-alikes: for the given label and the model's top suggestion, the
nearest confirmed items of that class (:mod:`labelrefine.campaign.lookalikes`).

The campaign's features (already L2-normalised), item ids and trusted labels are read once per
server process, in a background thread started by the first item shown, and kept (finding a
cached feature file hashes every image, seconds for a large campaign); the expert labels are
read on every request, so an answer or an adjudication shows up on the next item.
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
LOADING = "loading the campaign's features (first use); they appear on a later item"


class Lookalikes:
    """Look-alike rows of one campaign. Its features are read once, in a background thread
    started by the first item shown; a request waits for them at most ``wait_s`` seconds (a
    large campaign's first items then say the features are loading)."""

    def __init__(self, ledger: Ledger,
                 load: Callable[[Ledger], tuple[np.ndarray | None, str]] = stored_features,
                 k: int = PER_CLASS, wait_s: float = 3.0):
        self.ledger = ledger
        self.k = k
        self.wait_s = wait_s
        self._load = load
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._features: np.ndarray | None = None
        self._why = ""
        self._keys: list[str] = []
        self._trusted = np.zeros(0, dtype=np.int64)

    def warm(self) -> None:
        """Start reading the features in the background (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._read, daemon=True,
                                                name="lookalike-features")
                self._thread.start()

    def _read(self) -> None:
        try:
            x, why = self._load(self.ledger)
            self._keys = [str(k) for k in self.ledger.items()["key"]]
            self._trusted = trusted_labels(self.ledger)  # fixed at init
            n = len(self._keys)
            if x is not None and x.shape[0] != n:
                x, why = None, f"the features have {x.shape[0]} rows for {n} items"
            self._features = None if x is None else unit_rows(x)
            self._why = why
        except Exception as err:  # a background thread: say what failed, never hang the page
            self._features, self._why = None, f"the campaign's features cannot be read ({err})"
        finally:
            self._done.set()

    def features(self) -> tuple[np.ndarray | None, str] | None:
        """The campaign's unit-length features (or None and why); None while they are still
        being read after waiting ``wait_s`` seconds."""
        self.warm()
        if not self._done.wait(self.wait_s):
            return None
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
        got = self.features()
        if got is None:
            return {"rows": [], "note": LOADING}
        x, why = got
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
