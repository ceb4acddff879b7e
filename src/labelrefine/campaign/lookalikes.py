"""What a campaign's look-alikes are drawn from: confirmed labels and stored image features.

**Confirmed** (:func:`confirmed_labels`): an item's label is confirmed when the team trusts it
(``campaign init --trusted-column``; :func:`~labelrefine.campaign.create.campaign_trusted`) or
when its final expert answer is that class -- one reader's label, agreeing readers' label, or an
adjudicator's (:meth:`Ledger.final_answers`). Open conflicts, "unsure" answers and unanswered
items are not confirmed. In a campaign with double reading, an item of the current round that
one reader answered may still wait for its second reading; it counts once a second reader
agrees, an adjudicator decides, or the round is closed by the next ``campaign step``.

**Features** (:func:`stored_features`): the features the campaign ranks on, read from where the
campaign keeps them, never computed here: the team's own features file (``init --features``),
or the feature cache written by ``campaign step`` (the built-in encoder of round 0, or the
team's encoder file). None, with the reason, when there are none (a campaign on given
probabilities, no step yet, or a cleared cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from labelrefine.campaign.create import (
    FEATURES_META,
    campaign_dataset,
    campaign_features,
    campaign_trusted,
)
from labelrefine.campaign.ledger import CampaignError, Ledger
from labelrefine.data.dataset import ImageDataset
from labelrefine.lookalikes import UNCONFIRMED


def trusted_labels(ledger: Ledger) -> np.ndarray:
    """``(N,)`` the given label of every trusted item, :data:`UNCONFIRMED` elsewhere (fixed at
    ``campaign init``)."""
    items = ledger.items()
    labels = np.full(len(items), UNCONFIRMED, dtype=np.int64)
    trusted = campaign_trusted(ledger)
    labels[trusted] = items["given_label"].to_numpy(dtype=np.int64)[trusted]
    return labels


def confirmed_labels(ledger: Ledger, trusted: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` the confirmed class of every item (module docstring), :data:`UNCONFIRMED` for
    items with none; ``trusted``: :func:`trusted_labels`, when the caller keeps it."""
    labels = (trusted_labels(ledger) if trusted is None else trusted).copy()
    final = ledger.final_answers()
    final = final[final["kind"] == "label"]
    idx = final["item"].to_numpy(dtype=np.int64)
    labels[idx] = final["label"].to_numpy(dtype=np.int64)
    labels[_awaiting_second_reading(ledger, final)] = UNCONFIRMED
    return labels


def _awaiting_second_reading(ledger: Ledger, final: pd.DataFrame) -> np.ndarray:
    """Items of the current queue answered by one reader in a campaign with double reading:
    they may still get a second, different answer."""
    if ledger.double_read_share <= 0:
        return np.zeros(0, dtype=np.int64)
    rnd = ledger.current_round()
    if rnd is None:
        return np.zeros(0, dtype=np.int64)
    queued = ledger.queue(rnd)["item"].to_numpy(dtype=np.int64)
    single = final[final["status"] == "single"]["item"].to_numpy(dtype=np.int64)
    return np.intersect1d(single, queued)


def stored_features(ledger: Ledger) -> tuple[np.ndarray | None, str]:
    """``(features, "")``: the ``(N, D)`` features the campaign ranks on, in item order; or
    ``(None, why)`` when the campaign has none stored (see the module docstring)."""
    text = ledger.meta().get(FEATURES_META)
    own = json.loads(text) if text else None
    if own is not None and own.get("kind") == "pred_probs":
        return None, "this campaign works on given probabilities and has no image features"
    try:
        if own is not None and own.get("kind") == "features":
            got = campaign_features(ledger, campaign_dataset(ledger))
            return (None, "the campaign's features file is unreadable") if got is None else (
                np.asarray(got, dtype=np.float32), "")
        rounds = ledger.rounds()
        if rounds.empty:
            return None, "no features yet: run 'campaign step' first"
        settings = rounds["settings"].iloc[0]
        if (own is None or own.get("kind") != "encoder") and "encoder" not in settings:
            return None, "round 0 recorded no encoder settings"
        dataset = campaign_dataset(ledger)
        if own is not None and own.get("kind") == "encoder":
            plain = _cached_encoder_file(dataset, Path(own["path"]))
        else:
            plain = _cached_builtin(dataset, settings)
    except (CampaignError, OSError, ValueError, KeyError, TypeError) as err:
        return None, f"the campaign's features cannot be read ({err})"
    if plain is None:
        return None, ("the campaign's cached features are missing (cleared cache, or a "
                      "fine-tuned campaign); they return with the next 'campaign step'")
    return np.asarray(plain, dtype=np.float32), ""


def _cached_builtin(dataset: ImageDataset, settings: dict) -> np.ndarray | None:
    """Plain-view features of the built-in encoder round 0 used, from the cache (or None)."""
    from labelrefine.config import EncoderConfig
    from labelrefine.models.cache import cached_features

    cfg = EncoderConfig.model_validate(settings["encoder"])
    _, _, features = cached_features(dataset, cfg, seed=0)  # the seed build_source embeds with
    return None if features is None else features.plain


def _cached_encoder_file(dataset: ImageDataset, path: Path) -> np.ndarray | None:
    """Features of the team's encoder file, from the cache (or None)."""
    from labelrefine.config import EncoderConfig
    from labelrefine.models.cache import CacheError, load_features, resolve_cache_dir
    from labelrefine.models.encoder_file import encoder_file_cache_key, read_encoder_spec

    key = encoder_file_cache_key(dataset, read_encoder_spec(path))
    file = resolve_cache_dir(EncoderConfig()) / f"{key}.npz"
    if not file.is_file():
        return None
    try:
        return load_features(file, dataset).plain
    except CacheError:
        return None
