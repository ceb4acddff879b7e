"""A small campaign with its own features file, for the look-alike tests.

Item ``i`` has the unit feature at angle ``0.1 * i``, so the cosine distance between two items
grows with the difference of their indices: the nearest items to item 0 are 1, 2, 3, ...
Given labels are ``i % 3``; items 0..10 are queued (train), item 11 is a validation item.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from labelrefine.campaign.create import FEATURES_META, TRUSTED_META
from labelrefine.campaign.ledger import ItemRecord, Ledger, file_sha256

CLASSES = ("akiec", "bcc", "nv")
N = 12


def angles(n: int = N) -> np.ndarray:
    t = 0.1 * np.arange(n)
    return np.stack([np.cos(t), np.sin(t)], axis=1).astype(np.float32)


def make_feature_campaign(tmp_path: Path, *, trusted: tuple[int, ...] = (),
                          features: bool = True, size: int = 8,
                          settings: dict | None = None) -> Ledger:
    """The campaign (module docstring); ``trusted``: items whose labels the team trusts;
    item 0's model suggestion is bcc (its given label is akiec), every other item's akiec;
    ``settings``: round 0's stored settings."""
    root = tmp_path / "images"
    root.mkdir(parents=True)
    keys = [f"img{i:03d}" for i in range(N)]
    rng = np.random.default_rng(0)
    for k in keys:
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            root / f"{k}.png")
    items = [ItemRecord(k, f"{k}.png", i % 3, "val" if i == N - 1 else "train")
             for i, k in enumerate(keys)]
    meta: dict[str, str] = {
        "class_display_names": json.dumps({"akiec": "actinic keratosis", "bcc": "basal cell"}),
    }
    if features:
        path = tmp_path / "features.npz"
        np.savez(path, ids=np.asarray(keys), features=angles())
        meta[FEATURES_META] = json.dumps({"kind": "features", "path": str(path.resolve()),
                                          "ids": None, "id_column": "image_id",
                                          "sha256": file_sha256(path)})
    if trusted:
        meta[TRUSTED_META] = json.dumps({"column": "dx_type", "values": ["histo"],
                                         "items": [keys[i] for i in trusted]})
    ledger = Ledger.create(tmp_path / "c.db", image_root=root, class_names=CLASSES,
                           items=items, meta=meta)
    probs = np.tile([0.6, 0.3, 0.1], (N, 1))
    probs[0] = [0.2, 0.7, 0.1]
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=N - 1, seed=0,
                       settings=settings or {},
                       metrics={}, probs=probs, scored_items=np.arange(N),
                       clean=np.zeros(N, bool), pool_scores={},
                       queue=[(i, 1.0, f"reason {i}") for i in range(N - 1)])
    return ledger
