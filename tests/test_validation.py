"""Label and index array checks (labelrefine.validation)."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.validation import IndexOutOfRange, check_indices, check_labels


def test_check_labels_accepts_and_converts():
    out = check_labels(np.array([0, 2, 1], dtype=np.uint8), 3)
    assert out.dtype == np.int64 and out.tolist() == [0, 2, 1]
    same = np.array([1, 0], dtype=np.int64)
    assert check_labels(same) is same  # no copy when already int64
    assert check_labels([], 4).shape == (0,)  # an empty list (float dtype) is fine


@pytest.mark.parametrize(
    ("labels", "num_classes", "message"),
    [
        (np.zeros((2, 2), dtype=int), 3, r"labels must be a 1-D integer array, got shape \(2, 2\)"),
        (np.array([0.0, 1.0]), 3, "labels must be integers .*got dtype float64"),
        (np.array([True, False]), 3, "got dtype bool"),
        (np.array([0, 1, 5, 7]), 3, r"labels\[2\] = 5: label 5 outside 0..2"),
        (np.array([0, -1, 1]), 3, r"labels\[1\] = -1: label -1 outside 0..2"),
        (np.array([0, 4, -2]), None, r"labels\[2\] = -2: labels must be non-negative"),
        (np.array([0, 1]), 0, "num_classes must be a positive integer, got 0"),
    ],
)
def test_check_labels_names_the_bad_item(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, num_classes)


def test_check_labels_uses_the_given_name_and_length():
    with pytest.raises(ValueError, match=r"true_labels\[0\] = 9"):
        check_labels([9, 0], 2, name="true_labels")
    assert check_labels([1, 0], 2, n=2).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"given_labels must have shape \(3,\), got \(2,\)"):
        check_labels([1, 0], 2, name="given_labels", n=3)


def test_check_indices():
    assert check_indices([[3, 1]], 4).tolist() == [3, 1]  # flattened
    assert check_indices([], 4).dtype == np.int64
    with pytest.raises(ValueError, match="train_idx is empty"):
        check_indices([], 4, name="train_idx", allow_empty=False)
    with pytest.raises(IndexOutOfRange, match="pool: item index 4 out of range for 4 items"):
        check_indices([0, 4, 9], 4, name="pool")
    with pytest.raises(IndexError, match="item index -1"):  # also an IndexError ...
        check_indices([-1], 4)
    with pytest.raises(ValueError, match="item index -1"):  # ... and a ValueError
        check_indices([-1], 4)
    with pytest.raises(ValueError, match=r"duplicate indices \(item 2 more than once\)"):
        check_indices([2, 0, 2, 0], 4, unique=True)
    assert check_indices([2, 2], 4).tolist() == [2, 2]  # repeats allowed unless unique=True
    with pytest.raises(ValueError, match="must be integers .*float64"):
        check_indices([0.5], 4)


def test_unsure_has_one_definition():
    from labelrefine.active import oracle
    from labelrefine.campaign import ledger
    from labelrefine.validation import UNSURE, UNSURE_LABEL

    assert ledger.UNSURE is UNSURE == "unsure"  # by name: files, exports, web form
    assert oracle.UNSURE == UNSURE_LABEL == -1  # inside integer label arrays
    with pytest.raises(ValueError, match="outside"):
        check_labels([UNSURE_LABEL], 3)  # never a class
