"""Plain-word pieces of the reasons shown beside a queued item (one house style for every
sampler and the finder): class names, percentages, what the model finds more likely than the
given label, how spread out a prediction is.

Pure functions over one probability row; numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_name(class_names: Sequence[str] | None, c: int) -> str:
    """``class_names[c]``, or ``c`` as text when there are no names."""
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return str(c)


def percent(p: float) -> str:
    """A probability as a whole percentage: ``0.934`` -> ``"93%"``."""
    return f"{float(p):.0%}"


def top_classes(row: np.ndarray, names: Sequence[str] | None, n: int = 3) -> str:
    """The ``n`` most likely classes with their probabilities: ``"nv 25%, mel 22%, bkl 18%"``
    (ties in the order of the classes)."""
    order = np.argsort(-np.asarray(row, dtype=np.float64), kind="stable")[:n]
    return ", ".join(f"{class_name(names, int(c))} {percent(row[c])}" for c in order)


def against_given(row: np.ndarray, given: int, names: Sequence[str] | None) -> str:
    """What the model says about the given label: ``"the model finds bcc more likely (93%)
    than the given nv (2%)"``, or ``"the model agrees with the given nv (60%)"``."""
    pred = int(np.argmax(row))
    g = class_name(names, given)
    if pred != given:
        return (f"the model finds {class_name(names, pred)} more likely ({percent(row[pred])}) "
                f"than the given {g} ({percent(row[given])})")
    return f"the model agrees with the given {g} ({percent(row[pred])})"


def given_suffix(given: int | None, names: Sequence[str] | None) -> str:
    """``"; given nv"`` (empty without a given label)."""
    return "" if given is None else f"; given {class_name(names, given)}"
