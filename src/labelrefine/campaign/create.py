"""Create a campaign from an image folder and a CSV of (possibly wrong) labels."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger import ROLES, CampaignError, ItemRecord, Ledger, file_sha256
from labelrefine.config import IntensityConfig
from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.data.external import trusted_mask
from labelrefine.data.images import check_dicom_keywords, dicom_tags
from labelrefine.data.loaders import check_display_names, load_csv_folder
from labelrefine.data.splits import stratified_split


def init_campaign(
    images: str | Path,
    labels_csv: str | Path,
    out: str | Path,
    *,
    id_column: str = "image_id",
    label_column: str = "dx",
    classes: Sequence[str] | None = None,
    suffix: str = ".jpg",
    split_column: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    intensity: IntensityConfig | None = None,
    keep_tags: Sequence[str] = (),
    display_names: Mapping[str, str] | None = None,
    trusted_column: str | None = None,
    trusted_values: Sequence[str] = (),
    features: str | Path | None = None,
    features_ids: str | Path | None = None,
    encoder_file: str | Path | None = None,
    pred_probs: str | Path | None = None,
) -> Ledger:
    """Validate the folder and CSV completely, then write a new campaign file at ``out``.

    Every image is opened and checked first (a corrupt or missing one is an error naming the
    item); on any error nothing is written.

    Validation split: real data has no clean validation set, so model selection needs one.
    With ``split_column`` the CSV says which items are ``train`` (relabeled by the campaign),
    ``val`` (used to pick the best epoch) and ``test`` (held out, reported only) -- use this when
    the team has an expert-verified subset. Without it, a stratified ``val_fraction`` of the items
    (seeded) is held out as ``val`` with its given labels; it is never queued for relabeling.

    ``intensity``: how high-bit-depth and DICOM images become 8-bit pictures for the model and
    the reading page (default: percentile clipping; DICOM files' own windows); kept in the
    campaign (:func:`campaign_intensity`).

    ``keep_tags``: DICOM attribute keywords (e.g. ``PatientID``, ``StudyInstanceUID``) whose
    values are kept per item (:func:`campaign_tags`) and added to the CSV export; empty for
    non-DICOM files.

    ``display_names``: class code -> the name shown beside it on the reading page
    (:func:`campaign_class_names`); every code must be a class of the data.

    ``trusted_column`` / ``trusted_values``: labels the team already trusts (e.g. HAM10000's
    ``dx_type`` = ``histo``, confirmed by histopathology) -- items whose CSV value in that column
    is one of the values. They are never queued, always in the training set, counted as correct
    in the estimates of wrong labels left (:func:`campaign_trusted`), and the validation
    hold-out is drawn from them first (stratified), so model selection and calibration rest on
    the best labels the team has.

    ``features`` (with ``features_ids`` for a ``.npy``) / ``encoder_file``: the team's own
    model. Embeddings keyed by id (:func:`labelrefine.data.external.load_features`), or a
    TorchScript / ONNX image encoder (:mod:`labelrefine.models.encoder_file`); every step then
    trains and ranks on those features instead of the built-in encoder's (embedding mode).
    Checked here (every item present, finite; the encoder's spec readable); the file's sha256
    is kept and checked again at every step (:func:`campaign_features`).
    """
    images = Path(images)
    labels_csv = Path(labels_csv)
    out = Path(out)
    if out.exists():
        raise CampaignError(f"{out} already exists; choose another --out or remove it")
    if not 0 <= val_fraction < 1:
        raise CampaignError(f"val fraction must be in [0, 1), got {val_fraction}")
    keep_tags = list(dict.fromkeys(keep_tags))
    check_dicom_keywords(keep_tags)
    dataset = load_csv_folder(
        images,
        labels_csv,
        id_column=id_column,
        label_column=label_column,
        classes=classes,
        suffix=suffix,
        check_images=True,
    )
    shown = check_display_names(dict(display_names or {}), dataset.class_names,
                                "class display names")
    trusted = _trusted(dataset, labels_csv, id_column, trusted_column, trusted_values)
    own = _own_model(dataset, features, features_ids, encoder_file, id_column, pred_probs)
    roles = _roles(dataset, labels_csv, id_column, split_column, val_fraction, seed, trusted)
    root = images.resolve()
    records = []
    for key, path, label, role in zip(
        dataset.ids, dataset.paths or (), dataset.labels, roles, strict=True
    ):
        records.append(
            ItemRecord(
                key=key,
                path=_relative(path, root, key),
                given_label=int(label),
                role=role,
                sha256=file_sha256(path),  # lets 'campaign relocate' check a moved folder
            )
        )
    meta = {
        "labels_csv": labels_csv.name,
        "id_column": id_column,
        "label_column": label_column,
        "suffix": suffix,
        "split": split_column or f"stratified hold-out val_fraction={val_fraction:g}",
        "seed": int(seed),
        "dataset_name": dataset.name,
    }
    if intensity is not None and intensity != IntensityConfig():
        meta[INTENSITY_META] = intensity.model_dump_json()
    if shown:
        meta[CLASS_NAMES_META] = json.dumps(shown)
    if own is not None:
        meta[FEATURES_META] = json.dumps(own)
    if trusted_column is not None:
        meta[TRUSTED_META] = json.dumps({
            "column": trusted_column, "values": list(trusted_values),
            "items": [k for k, t in zip(dataset.ids, trusted, strict=True) if t]})
    if keep_tags:
        values = [dicom_tags(p, keep_tags) for p in dataset.paths or ()]
        meta[TAGS_META] = json.dumps({
            tag: {key: v[tag] for key, v in zip(dataset.ids, values, strict=True)}
            for tag in keep_tags
        })
    return Ledger.create(
        out, image_root=root, class_names=dataset.class_names, items=records, meta=meta
    )


FEATURES_META = "own_model"
"""Campaign meta key of the team's own model: ``{"kind": "features" | "encoder", "path",
"ids", "sha256"}`` (paths absolute)."""


def _own_model(dataset: ImageDataset, features: str | Path | None,
               features_ids: str | Path | None, encoder_file: str | Path | None,
               id_column: str, pred_probs: str | Path | None = None) -> dict[str, Any] | None:
    """Check the team's own features, encoder file or probabilities against the items; what
    the campaign keeps about it (None when none is given)."""
    given = [n for n, v in (("--features", features), ("--encoder", encoder_file),
                            ("--pred-probs", pred_probs)) if v is not None]
    if len(given) > 1:
        raise CampaignError(f"give one of --features, --encoder, --pred-probs, not "
                            f"{' and '.join(given)}")
    if features_ids is not None and features is None and pred_probs is None:
        raise CampaignError("--ids needs --features or --pred-probs")
    if pred_probs is not None:
        from labelrefine.data.external import load_pred_probs

        load_pred_probs(pred_probs, dataset.ids, dataset.class_names, ids_file=features_ids,
                        id_column=id_column)
        return {"kind": "pred_probs", "path": os.path.abspath(pred_probs),
                "ids": None if features_ids is None else os.path.abspath(features_ids),
                "id_column": id_column, "sha256": file_sha256(Path(pred_probs))}
    if features is not None:
        from labelrefine.data.external import load_features

        load_features(features, dataset.ids, ids_file=features_ids, id_column=id_column)
        return {"kind": "features", "path": os.path.abspath(features),
                "ids": None if features_ids is None else os.path.abspath(features_ids),
                "id_column": id_column, "sha256": file_sha256(Path(features))}
    if encoder_file is not None:
        from labelrefine.models.encoder_file import read_encoder_spec

        read_encoder_spec(encoder_file)
        return {"kind": "encoder", "path": os.path.abspath(encoder_file),
                "sha256": file_sha256(Path(encoder_file))}
    return None


def _own_file(ledger: Ledger) -> tuple[dict[str, Any], Path] | None:
    """The campaign's own-model record and its file, checked unchanged since ``init``."""
    text = ledger.meta().get(FEATURES_META)
    if not text:
        return None
    own = json.loads(text)
    path = Path(own["path"])
    if not path.is_file():
        raise CampaignError(f"the campaign's {own['kind']} file is missing: {path}")
    if file_sha256(path) != own["sha256"]:
        raise CampaignError(f"{path.name} changed since 'campaign init' (sha256 differs); "
                            "a campaign's model cannot change under it")
    return own, path


def campaign_pred_probs(ledger: Ledger) -> np.ndarray | None:
    """``(N, C)`` out-of-sample probabilities the team gave at ``init`` (``--pred-probs``), in
    item order; None when the campaign trains its own model."""
    got = _own_file(ledger)
    if got is None or got[0]["kind"] != "pred_probs":
        return None
    own, path = got
    from labelrefine.data.external import load_pred_probs

    keys = tuple(str(k) for k in ledger.items()["key"])
    return load_pred_probs(path, keys, ledger.class_names, ids_file=own.get("ids"),
                           id_column=own.get("id_column", "image_id"))


def campaign_features(ledger: Ledger, dataset: ImageDataset, *, device: str = "cpu",
                      progress: bool = False) -> np.ndarray | None:
    """``(N, D)`` features of the campaign's items from the team's own model (None when the
    campaign uses the built-in encoders or given probabilities); the file must be the one
    checked at ``init``."""
    got = _own_file(ledger)
    if got is None or got[0]["kind"] == "pred_probs":
        return None
    own, path = got
    if own["kind"] == "features":
        from labelrefine.data.external import load_features

        return load_features(path, dataset.ids, ids_file=own.get("ids"),
                             id_column=own.get("id_column", "image_id"))
    from labelrefine.models.encoder_file import embed_with_encoder_file, read_encoder_spec

    return np.asarray(embed_with_encoder_file(dataset, read_encoder_spec(path), device=device,
                                              progress=progress).plain)


TRUSTED_META = "trusted"
"""Campaign meta key holding the trusted labels: ``{"column", "values", "items": [ids]}``."""


def campaign_trusted(ledger: Ledger) -> np.ndarray:
    """Item indices of the campaign's trusted labels (empty when it has none)."""
    text = ledger.meta().get(TRUSTED_META)
    if not text:
        return np.zeros(0, dtype=np.int64)
    keys = set(json.loads(text)["items"])
    items = ledger.items()
    return np.flatnonzero(items["key"].isin(keys).to_numpy()).astype(np.int64)


def _trusted(dataset: ImageDataset, labels_csv: Path, id_column: str, column: str | None,
             values: Sequence[str]) -> np.ndarray:
    """Boolean per item: its ``column`` value in the CSV is one of ``values``."""
    n = len(dataset)
    if column is None:
        if values:
            raise CampaignError("--trusted-values needs --trusted-column")
        return np.zeros(n, dtype=bool)
    if not any(str(v).strip() for v in values):
        raise CampaignError(f"--trusted-column {column!r} needs --trusted-values")
    df = pd.read_csv(labels_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.columns = [str(c).strip() for c in df.columns]
    rows = df.set_index(df[id_column].str.strip()).loc[list(dataset.ids)]  # the items' order
    try:
        return trusted_mask(rows, column, values)
    except DataError as err:
        raise CampaignError(f"{labels_csv.name}: {err}") from None


INTENSITY_META = "intensity"
"""Campaign meta key holding the :class:`~labelrefine.config.IntensityConfig` (JSON); absent
for the default."""


def campaign_intensity(ledger: Ledger) -> IntensityConfig:
    """The campaign's intensity setting (the default when it set none)."""
    text = ledger.meta().get(INTENSITY_META)
    return IntensityConfig() if not text else IntensityConfig.model_validate(json.loads(text))


TAGS_META = "image_tags"
"""Campaign meta key holding the kept DICOM attributes: ``{keyword: {item id: value}}``."""


def campaign_tags(ledger: Ledger) -> dict[str, dict[str, str]]:
    """The DICOM attributes kept at ``init`` (``keep_tags``): ``{keyword: {item id: value}}``,
    in the order they were asked for; empty when none were kept."""
    text = ledger.meta().get(TAGS_META)
    return {} if not text else dict(json.loads(text))


CLASS_NAMES_META = "class_display_names"
"""Campaign meta key holding the class display names (JSON ``{code: name}``)."""


def campaign_class_names(ledger: Ledger) -> dict[str, str]:
    """The campaign's class display names ``{code: name}`` (empty when it has none)."""
    text = ledger.meta().get(CLASS_NAMES_META)
    return {} if not text else dict(json.loads(text))


def set_class_names(ledger: Ledger, names: Mapping[str, str]) -> dict[str, str]:
    """Replace the campaign's class display names (an empty mapping removes them); every code
    must be one of its classes."""
    shown = check_display_names(dict(names), ledger.class_names, "class display names")
    ledger.set_meta(CLASS_NAMES_META, json.dumps(shown))
    return shown


def read_class_names(path: str | Path) -> dict[str, str]:
    """Class display names from a YAML (or JSON) file: a mapping ``code: display name``, or an
    experiment config whose ``dataset.class_names`` holds it. Errors name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"class names file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise CampaignError(f"{path.name}: not a YAML mapping ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("dataset"), dict):
        data = data["dataset"].get("class_names")
        if data is None:
            raise CampaignError(f"{path.name}: dataset.class_names is not set")
    if not isinstance(data, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in data.values()
    ):
        raise CampaignError(
            f"{path.name}: expected a mapping of class codes to display names, e.g. "
            "akiec: \"actinic keratosis / Bowen's\""
        )
    return {str(k): str(v) for k, v in data.items()}


def _relative(path: Path, root: Path, key: str) -> str:
    """``path`` relative to ``root``; an error naming ``key`` when it lies outside the root."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        raise CampaignError(
            f"item {key!r}: image {path} lies outside the image folder {root}"
        ) from None
    if ".." in rel.parts or not (root / rel).resolve().is_relative_to(root):
        raise CampaignError(f"item {key!r}: image {path} lies outside the image folder {root}")
    return rel.as_posix()


def _roles(
    dataset: ImageDataset,
    labels_csv: Path,
    id_column: str,
    split_column: str | None,
    val_fraction: float,
    seed: int,
    trusted: np.ndarray | None = None,
) -> list[str]:
    n = len(dataset)
    if split_column is not None:
        df = pd.read_csv(labels_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        df.columns = [str(c).strip() for c in df.columns]
        if split_column not in df.columns:
            raise CampaignError(
                f"{labels_csv.name}: missing split column {split_column!r}; "
                f"columns present: {', '.join(map(repr, df.columns))}"
            )
        by_id = dict(zip(df[id_column].str.strip(), df[split_column].str.strip(), strict=True))
        roles = []
        for key in dataset.ids:
            role = by_id[key].lower()
            if role not in ROLES:
                raise CampaignError(
                    f"item {key!r}: split {by_id[key]!r} in column {split_column!r} must be one "
                    f"of {', '.join(ROLES)}"
                )
            roles.append(role)
        return roles
    if val_fraction == 0:
        return ["train"] * n
    roles_arr = np.full(n, "train", dtype=object)
    if trusted is None or not trusted.any():
        train, val = stratified_split(dataset.labels, (1 - val_fraction, val_fraction), seed)
        roles_arr[val] = "val"
        return [str(r) for r in roles_arr]
    # the hold-out from the trusted labels first (stratified), topped up from the rest
    labels = np.asarray(dataset.labels)
    want = int(round(val_fraction * n))
    pos = np.flatnonzero(trusted)
    if pos.size > want:
        share = want / pos.size
        _, val_pos = stratified_split(labels[pos], (1 - share, share), seed)
        val = pos[val_pos]
    else:
        val = pos
        rest = np.flatnonzero(~trusted)
        if want > val.size and rest.size:
            share = (want - val.size) / rest.size
            extra = (np.arange(rest.size) if share >= 1 else
                     stratified_split(labels[rest], (1 - share, share), seed)[1])
            val = np.concatenate([val, rest[extra]])
    roles_arr[val] = "val"
    return [str(r) for r in roles_arr]


def campaign_dataset(ledger: Ledger) -> ImageDataset:
    """The campaign's images as an :class:`ImageDataset` (labels: the given labels), with the
    campaign's intensity setting: what the campaign embeds and its feature caches are keyed on."""
    items = ledger.items()
    root = ledger.image_root
    return ImageDataset(
        ids=tuple(str(k) for k in items["key"]),
        labels=items["given_label"].to_numpy(dtype=np.int64),
        class_names=ledger.class_names,
        paths=tuple(root / str(p) for p in items["path"]),
        name=ledger.meta().get("dataset_name", ledger.path.stem),
        intensity=campaign_intensity(ledger),
    )
