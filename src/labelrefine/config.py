"""Experiment configuration: pydantic models for the YAML files, with every default in one place.

A wrong key or value raises :class:`ConfigError` whose message names the key path
(e.g. ``lnl.vog.window: Input should be greater than 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from labelrefine import extensions


class ConfigError(ValueError):
    """Invalid configuration; the message names the offending key."""


#: The phase-1 method of ``ours`` and campaigns (``lnl.method``'s default).
PHASE1_METHOD = "ct_vog"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class IntensityConfig(_Strict):
    """How images with more than 8 bits per pixel (16-bit / float PNG and TIFF, DICOM) map to
    the 8-bit pictures that are embedded and shown (:mod:`labelrefine.data.images`); 8-bit
    images are never changed.

    ``percentile`` (default): values from the ``low``-th to the ``high``-th percentile of each
    image onto 0..255, clipped. ``minmax``: each image's minimum..maximum. ``window``: one fixed
    window for the whole dataset, ``center`` / ``width`` in the images' values (for DICOM: after
    rescale slope / intercept, e.g. Hounsfield units; it replaces the files' own windows).
    DICOM files with their own VOI LUT or window use it unless ``mode`` is ``window``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    mode: Literal["percentile", "minmax", "window"] = "percentile"
    low: float = Field(0.5, ge=0, lt=100)
    high: float = Field(99.5, gt=0, le=100)
    center: float | None = None
    width: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> IntensityConfig:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.mode == "window" and (self.center is None or self.width is None):
            raise ValueError("mode 'window' needs 'center' and 'width'")
        if self.mode != "window" and (self.center is not None or self.width is not None):
            raise ValueError(f"center / width apply to mode 'window', not '{self.mode}'")
        return self


class TrustedConfig(_Strict):
    """Labels already known to be right, marked by a column of the labels CSV: an item is
    trusted when its ``column`` holds one of ``values`` (e.g. HAM10000's ``dx_type: histo``,
    a histopathology-confirmed diagnosis). Trusted items are never listed as suspects and
    count as correct in the estimate of wrong labels (:mod:`labelrefine.finder`)."""

    column: str
    values: list[str] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        # YAML reads 1 or yes as numbers / booleans; the CSV cells are text
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

    @model_validator(mode="after")
    def _not_blank(self) -> TrustedConfig:
        if not self.column.strip():
            raise ValueError("column must name a column (it is empty)")
        if any(not v.strip() for v in self.values):
            raise ValueError("values must not be empty strings")
        return self


class DatasetConfig(_Strict):
    """Where the data lives and which layout it has."""

    # a registered format (labelrefine.data.formats, one module each); which of the keys below
    # it needs comes from its entry there
    format: str = "csv"
    # image folder (csv, isic2019) or the root of a folder layout (nct_crc, ...)
    images: Path | None = None
    labels: Path | None = None  # CSV file (csv, isic2019)
    npz: Path | None = None  # MedMNIST .npz file
    npz_split: Literal["train", "val", "test", "all"] = "all"
    id_column: str = "image_id"
    label_column: str = "dx"
    classes: list[str] | None = None  # fixes class order; default: sorted names found
    # display names shown beside the class codes on the reading page, e.g.
    # {akiec: "actinic keratosis / Bowen's"}; every key must be a class of the data
    class_names: dict[str, str] | None = None
    image_suffix: str = ".jpg"
    # csv, isic2019: column naming each image's split (train, val or test) in the dataset's own
    # partition; used with split.keep_dataset
    split_column: str | None = None
    # how high-bit-depth images (16-bit, float, DICOM) become 8-bit; 8-bit images never change
    intensity: IntensityConfig = Field(default_factory=IntensityConfig)
    # csv, isic2019: labels already known to be right ({column: dx_type, values: [histo]})
    trusted: TrustedConfig | None = None

    @field_validator("format")
    @classmethod
    def _registered_format(cls, value: str) -> str:
        extensions.use("get_format")(value)  # ValueError naming the choices
        return value

    @field_validator("class_names", mode="before")
    @classmethod
    def _codes_as_text(cls, value: Any) -> Any:
        # YAML reads numeric class codes (0: normal) as integers
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _needs_source(self) -> DatasetConfig:
        fmt = extensions.use("get_format")(self.format)
        if any(getattr(self, key) is None for key in fmt.needs):
            raise ValueError(f"format '{self.format}' needs "
                             + " and ".join(f"'{key}'" for key in fmt.needs))
        for code, shown in (self.class_names or {}).items():
            if not str(shown).strip():
                raise ValueError(f"class_names: the display name of {code!r} is empty")
        with_csv = " and ".join(extensions.use("labels_csv_names")())
        if self.split_column is not None:
            if not fmt.labels_csv:
                raise ValueError(
                    f"split_column applies to formats {with_csv}, not '{self.format}'"
                    + (" (it carries its own split)" if fmt.own_split is not None else "")
                )
            if not self.split_column.strip():
                raise ValueError("split_column must name a column (it is empty)")
            taken = {"id_column": self.id_column, "label_column": self.label_column}
            for key, column in taken.items():
                if self.format == "csv" and self.split_column == column:
                    raise ValueError(f"split_column {column!r} is also the {key}")
        if self.trusted is not None and not fmt.labels_csv:
            raise ValueError(f"trusted applies to formats {with_csv} (a column of the "
                             f"labels CSV), not '{self.format}'")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_options(self, handler: Any) -> dict[str, Any]:
        # Unset (or default), they are left out of dumps, so configs (and the run fingerprints
        # made from them) read as before the options existed.
        data = handler(self)
        if self.split_column is None:
            data.pop("split_column", None)
        if self.intensity == IntensityConfig():
            data.pop("intensity", None)
        if self.class_names is None:
            data.pop("class_names", None)
        if self.trusted is None:
            data.pop("trusted", None)
        return data


class SplitConfig(_Strict):
    """Stratified train/val/test fractions. The split seed is ``seed + run seed`` (each run
    seed gets its own split, so results include split variance); ``vary_seed: false`` fixes it
    to ``seed`` for every run seed."""

    train: float = Field(0.7, gt=0, lt=1)
    val: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    # vary_seed: the split seed is ``seed + run seed`` (results then include split variance).
    # keep_dataset: use the dataset's own train/val/test instead (MedMNIST files, or
    # dataset.split_column); the fractions and seeds above are then ignored.
    vary_seed: bool = True
    keep_dataset: bool = False

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:.4f}")
        return self


def check_split_source(dataset: DatasetConfig, split: SplitConfig) -> None:
    """``split.keep_dataset`` needs a dataset that carries its own split: a format with one
    (a MedMNIST file, split folders), or ``dataset.split_column`` (formats with a labels CSV)."""
    fmt = extensions.use("get_format")(dataset.format)
    if split.keep_dataset and fmt.own_split is None and dataset.split_column is None:
        known = extensions.use("formats")().items()
        own = ", ".join(n for n, f in known if f.own_split is not None)
        hint = ("set dataset.split_column to the CSV column naming each image's split "
                "(train, val or test)" if fmt.labels_csv
                else f"use format csv with dataset.split_column, or a format with its own "
                     f"split ({own})")
        raise ConfigError(
            f"split.keep_dataset: dataset format '{dataset.format}' carries no train/val/test "
            f"split; {hint}"
        )


class NoiseConfig(_Strict):
    """Label noise injected into the training split only."""

    # clinical: each class wrong at ``rate``, wrong labels drawn from its look-alikes
    # (labelrefine.data.noise.CLINICAL_LOOKALIKES; needs dermoscopy class codes)
    # a registered noise model (labelrefine.data.noise.NOISE_MODELS)
    kind: str = "symmetric"
    rate: float = Field(0.4, ge=0, lt=1)
    transition: list[list[float]] | None = None  # kind 'matrix': row-stochastic C x C
    # Per-setting overrides (the paper tunes a_l and m per noise rate); None: use active / lnl.
    budget_per_round: float | None = Field(None, gt=0)
    mix: float | None = Field(None, ge=0, le=1)
    # inject the noise only into training items whose labels are not trusted
    # (dataset.trusted): the trusted ones keep their true labels
    spare_trusted: bool = False

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        extensions.use("get_noise_model")(value)  # ValueError naming the choices
        return value

    @model_validator(mode="after")
    def _matrix_given(self) -> NoiseConfig:
        model = extensions.use("get_noise_model")(self.kind)
        if model.needs_transition and self.transition is None:
            raise ValueError(f"kind '{self.kind}' needs 'transition'")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_options(self, handler: Any) -> dict[str, Any]:
        # off, it is left out of dumps (configs and run fingerprints read as before it existed)
        data = handler(self)
        if not self.spare_trusted:
            data.pop("spare_trusted", None)
        return data

    @property
    def tag(self) -> str:
        base = "clean" if self.kind == "none" else f"{self.kind}{self.rate:g}"
        return base + ("-untrusted" if self.spare_trusted else "")


class LongTailConfig(_Strict):
    """Optional long-tail subsampling of the training split (paper: ratio 100)."""

    ratio: float = Field(100.0, gt=1)


class EncoderConfig(_Strict):
    """Frozen pretrained encoder and the embedding cache (embedding mode)."""

    name: Literal["efficientnet_lite0", "resnet18", "resnet34", "resnet50"] = "efficientnet_lite0"
    weights: Path | None = None  # torchvision backbones: local state_dict file
    image_size: int = Field(128, ge=16)
    views: int = Field(8, ge=0)  # augmented views per image (plus one plain view)
    batch_size: int = Field(64, ge=1)
    cache_dir: Path | None = None  # None: $LABELREFINE_CACHE_DIR or the user cache folder


class VOGConfig(_Strict):
    """Variance of Gradients options (docs/design.md, "VOG")."""

    window: int = Field(5, ge=2)
    gradient: Literal["last_layer", "input_features"] = "last_layer"
    pass_: Literal["extra", "inline"] = Field("inline", alias="pass")
    dtype: Literal["float16", "float32"] = "float32"


class LNLConfig(_Strict):
    """Phase 1: CE / Co-teaching / CT_VOG training."""

    # a registered LNL method (labelrefine.lnl.methods); the pipelines ours, ours_plus and
    # ours_find and campaigns train CT_VOG (Co-teaching with mix 0) and refuse another
    method: str = PHASE1_METHOD
    mode: Literal["embedding", "finetune"] = "embedding"
    epochs: int = Field(30, ge=1)
    warmup: int = Field(10, ge=0)  # 0: no warm-up (forget rate tau from the first epoch)
    c: float = Field(1.0, gt=0)
    tau: float | None = Field(None, ge=0, lt=1)  # None: the noise rate
    mix: float = Field(0.2, ge=0, le=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-3, ge=0)  # measured: benchmarks/bench_heads.py
    head: Literal["linear", "mlp"] = "mlp"
    hidden: int = Field(256, ge=1)
    vog: VOGConfig = VOGConfig()
    # fine-tune mode (paper protocol)
    backbone: Literal["resnet18", "resnet34", "resnet50", "efficientnet_lite0"] = "resnet18"
    backbone_weights: Path | None = None
    image_size: int = Field(224, ge=16)
    resize: int = Field(256, ge=16)
    amp: bool = True
    # Head fitting (models.heads / lnl.trainer; chosen by benchmarks/bench_heads.py).
    # standardize: 'plain' = plain view's statistics over all items; 'train_views' = the
    # training split's statistics over all views, scale floored at std_floor x median scale.
    standardize: Literal["plain", "train_views"] = "train_views"
    std_floor: float = Field(0.1, gt=0, le=1)
    # balanced: class-weighted CE; logit_adjusted: log prior added to the logits in the loss
    loss: Literal["ce", "balanced", "logit_adjusted"] = "logit_adjusted"
    calibrate: bool = True  # temperature scaling fitted on the validation split
    selection: Literal["best_val", "smoothed", "average_last"] = "smoothed"
    select_window: int = Field(3, ge=1)  # epochs smoothed / averaged by 'selection'
    # auto_schedule: epochs, warmup, batch_size, lr (and active.epochs_per_round / lr) from
    # the training-set size where the config does not set them (labelrefine.lnl.adaptive)
    auto_schedule: bool = True
    # CT_VOG counts per batch: 'floor' R1 = floor((1-m)R), R2 = floor(mR) (often R1 + R2 =
    # R - 1); 'exact' R2 = R - R1
    mix_counts: Literal["floor", "exact"] = "exact"

    @field_validator("method")
    @classmethod
    def _registered_method(cls, value: str) -> str:
        method_names = extensions.use("method_names")
        if value not in method_names():
            raise ValueError(f"unknown LNL method {value!r}; choose one of "
                             f"{', '.join(method_names())}")
        return value

    @model_validator(mode="after")
    def _combination_supported(self) -> LNLConfig:
        check_lnl_config(self)
        return self


def check_lnl_config(lnl: LNLConfig) -> None:
    """Reject option combinations the engine cannot honour, naming the keys.

    Applied when a config is loaded (every entry point) and again after command-line overrides
    (``model_copy`` does not validate).
    """
    if lnl.vog.gradient == "input_features" and not (lnl.mode == "embedding" and
                                                     lnl.head == "mlp"):
        raise ConfigError(
            "lnl.vog.gradient: 'input_features' needs lnl.mode 'embedding' with lnl.head 'mlp' "
            "(for a linear last layer the gradient is the same for every sample of a class)"
        )


class ActiveConfig(_Strict):
    """Phase 2: rounds of querying the oracle and fine-tuning."""

    rounds: int = Field(8, ge=0)
    budget_per_round: float = Field(0.022, gt=0)  # < 1: fraction of the training set; >= 1: count
    epochs_per_round: int = Field(25, ge=1)
    lr: float = Field(0.01, gt=0)
    oracle_error: float = Field(0.0, ge=0, lt=1)
    oracle_leak: bool = False  # reproduce the official code's leak (upper bound); off by default
    # 'equal': every pipeline continues from its best-validation weights (phase 1 included, so
    # round 0 reports the model phase 2 starts from) and alc_coteaching keeps its forget rate
    # from a round's first epoch; 'original': the behaviour of the first release
    protocol: Literal["original", "equal"] = "equal"
    # campaign step: when the model fails its sanity check (lnl.guard), queue by neighbour
    # label disagreement instead of the model's probabilities
    guard_fallback: bool = True

    def budget(self, n_train: int) -> int:
        if self.budget_per_round >= 1:
            return int(self.budget_per_round)
        return max(1, round(self.budget_per_round * n_train))


def sampler_names() -> tuple[str, ...]:
    """Samplers a config may name: the registry's (:mod:`labelrefine.active.registry`, found
    through :mod:`labelrefine.extensions`, so the registry stays the one list)."""
    return extensions.use("sampler_names")()


class PlusConfig(_Strict):
    """``ours_plus``: each step past the paper behind its own switch, so each can be ablated.

    Defaults were chosen on validation F1 of development seeds (see
    ``labelrefine.pipelines.ours_plus``): queries from every training item (``pool: all``),
    entropy with per-class quotas, and each round the better-validating of two fits (clean set
    plus answers, or answers only). ``resplit`` and ``unqueried: agree`` lowered test F1 in
    results/peers/ (they add wrong labels to the trusted set) and stay off.
    """

    # query score over the pool; cl = cleanlab label quality, combined = cl + entropy
    # a registered score sampler that needs only the model's probabilities and the labels
    # (registry.score_sampler_names)
    sampler: str = "entropy"
    weight: float = Field(0.25, ge=0, le=1)  # combined: weight of the entropy rank
    class_budget: Literal["none", "pool", "inverse", "noise"] = "noise"  # per-class quotas
    resplit: bool = False  # redo the clean/suspect split each round (relabeled items trusted)
    unqueried: Literal["drop", "agree"] = "drop"  # agree: pseudo-labels where both nets agree
    agree_min: float = Field(0.9, gt=0, le=1)  # both networks at least this confident
    # where queries come from: phase 1's suspects, or every training item not asked yet
    pool: Literal["suspects", "all"] = "all"
    # what each round trains on: the clean set plus the expert's answers (as ours), the
    # answers only (as ce_al), the answers plus the trusted classes' clean-set items, or
    # (select) the first two fitted from the same weights and the higher val F1 kept
    train_on: Literal["clean", "relabeled", "trusted", "select"] = "select"
    # trusted: the answers plus the clean-set items of the classes whose clean-set labels the
    # expert's answers confirmed at least this often (posterior mean, see trusted_classes)
    trust_min: float = Field(0.8, ge=0, le=1)

    @field_validator("sampler")
    @classmethod
    def _score_sampler(cls, value: str) -> str:
        names = extensions.use("score_sampler_names")(("probs", "given_labels"))
        if value not in names:
            raise ValueError(f"ours_plus ranks by a per-item score of the model's "
                             f"probabilities: {value!r} is not one of {', '.join(names)}")
        return value


class FindConfig(_Strict):
    """The finding strategy (campaign default ``--strategy find``, simulated as ``ours_find``):
    queue from every unanswered training item, ranked by out-of-sample label quality and
    neighbour agreement on the cached features, with a random audit share for the estimate of
    wrong labels left (:mod:`labelrefine.active.finding`, :mod:`labelrefine.active.audit`)."""

    # share of each round's budget drawn as a stratified random audit (0 = no estimate)
    audit_share: float = Field(0.1, ge=0, le=1)
    # share of the rest spent on the highest-entropy items (model-improving) instead of finding
    info_share: float = Field(0.0, ge=0, le=1)
    # weight of the neighbour-agreement rank against cleanlab's label quality (0 = cleanlab);
    # weight, c and dims chosen on development seeds (results/finding/grid-dev.md)
    weight: float = Field(0.25, ge=0, le=1)
    c: float = Field(0.003, gt=0)  # inverse L2 strength of the cross-fitted logistic heads
    # trusted labels (dataset.trusted) never queued, always trained on, outside the estimate
    use_trusted: bool = True
    dims: int | None = Field(128, ge=1)  # principal components the heads see (None: all)
    folds: int = Field(5, ge=2, le=20)
    neighbours: int = Field(10, ge=1, le=200)
    # what each round fine-tunes on: clean set + answers, answers only, or the better-validating
    # (active.round.TRAIN_ON; pruned: all items with current labels but the flagged unanswered;
    # select_pruned won on development seeds 10-12 and lost on the published seeds,
    # results/finding/dev.md, so select stays)
    train_on: Literal["clean", "relabeled", "pruned", "select", "select_pruned"] = "select"


class PipelineSpec(_Strict):
    """One pipeline in a sweep; ``label`` names it in reports."""

    name: str  # a registered pipeline (labelrefine.pipelines.PIPELINES)
    sampler: str | None = None  # a registered sampler (sampler_names()); None: the default
    mix: float | None = Field(None, ge=0, le=1)  # overrides lnl.mix for this pipeline
    ce_al_train_on: Literal["relabeled", "all"] = "relabeled"
    plus: PlusConfig | None = None  # ours_plus only (None: PlusConfig's defaults)
    find: FindConfig | None = None  # ours_find only (None: FindConfig's defaults)
    label: str | None = None

    @field_validator("name")
    @classmethod
    def _registered_pipeline(cls, value: str) -> str:
        pipeline_names = extensions.use("pipeline_names")
        if value not in pipeline_names():
            raise ValueError(f"unknown pipeline {value!r}; choose one of "
                             f"{', '.join(pipeline_names())}")
        return value

    @field_validator("sampler")
    @classmethod
    def _registered_sampler(cls, value: str | None) -> str | None:
        names = sampler_names()
        if value is not None and value not in names:
            raise ValueError(f"unknown sampler {value!r}; choose one of {', '.join(names)}")
        return value

    @model_validator(mode="after")
    def _plus_only_for_ours_plus(self) -> PipelineSpec:
        if self.plus is not None and self.name != "ours_plus":
            raise ValueError(f"'plus' applies to pipeline ours_plus, not {self.name}")
        if self.find is not None and self.name != "ours_find":
            raise ValueError(f"'find' applies to pipeline ours_find, not {self.name}")
        return self

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        parts = [self.name]
        if self.sampler:
            parts.append(self.sampler)
        if self.mix is not None:
            parts.append(f"m{self.mix:g}")
        return "+".join(parts)


def phase1_method(lnl: LNLConfig) -> str:
    """CT_VOG, or plain Co-teaching when the mix ratio is 0: the phase 1 of ``ours``,
    ``ours_plus``, ``ours_find`` and campaigns. :class:`ConfigError` when ``lnl.method``
    names another method (they would not train it)."""
    method = "coteaching" if lnl.mix == 0 else "ct_vog"
    if lnl.method not in (PHASE1_METHOD, method):
        raise ConfigError(
            f"lnl.method: {lnl.method!r} is not what the pipelines ours, ours_plus, "
            f"ours_find and campaigns train in phase 1 (ct_vog, plain Co-teaching with "
            f"mix 0); leave lnl.method at {PHASE1_METHOD!r} (lnl.method chooses the "
            f"method of `labelrefine lnl`)"
        )
    return method


@dataclass(frozen=True)
class RunSettings:
    """The settings one run uses once every override is applied (:func:`resolve_settings`).

    ``lnl`` carries the resolved mix ratio; ``active`` the resolved budget; ``tau`` is the
    forget rate. :attr:`phase1_method` is what ``ours`` and a campaign train in phase 1.
    """

    lnl: LNLConfig
    active: ActiveConfig
    tau: float

    @property
    def mix(self) -> float:
        return self.lnl.mix

    @property
    def phase1_method(self) -> str:
        """What ``ours``, ``ours_plus``, ``ours_find`` and campaigns train in phase 1
        (:func:`phase1_method`)."""
        return phase1_method(self.lnl)


def resolve_settings(lnl: LNLConfig, active: ActiveConfig, noise: NoiseConfig | None = None,
                     spec: PipelineSpec | None = None, *,
                     noise_rate: float | None = None) -> RunSettings:
    """Apply the override rules, the one place they are written down:

    * mix ratio m: ``spec.mix`` > ``noise.mix`` > ``lnl.mix``;
    * labels per round: ``noise.budget_per_round`` > ``active.budget_per_round``;
    * forget rate tau: ``lnl.tau`` when given, else the noise rate (``noise.rate``, or
      ``noise_rate`` when there is no noise setting; the paper's choice).
    """
    mix = lnl.mix
    if noise is not None and noise.mix is not None:
        mix = noise.mix
    if spec is not None and spec.mix is not None:
        mix = spec.mix
    if noise is not None and noise.budget_per_round is not None:
        active = active.model_copy(update={"budget_per_round": noise.budget_per_round})
    rate = noise.rate if noise is not None else noise_rate
    if lnl.tau is not None:
        tau = lnl.tau
    elif rate is not None:
        tau = rate
    else:
        raise ConfigError("forget rate: set lnl.tau or give a noise rate")
    if mix != lnl.mix:
        lnl = lnl.model_copy(update={"mix": mix})
    return RunSettings(lnl=lnl, active=active, tau=float(tau))


class ExperimentConfig(_Strict):
    """A whole sweep: seeds x noise settings x pipelines."""

    name: str = "experiment"
    dataset: DatasetConfig
    split: SplitConfig = SplitConfig()
    noise: list[NoiseConfig] = [NoiseConfig()]
    longtail: LongTailConfig | None = None
    encoder: EncoderConfig = EncoderConfig()
    lnl: LNLConfig = LNLConfig()
    active: ActiveConfig = ActiveConfig()
    pipelines: list[PipelineSpec] = [PipelineSpec(name="ours", sampler="entropy")]
    seeds: list[int] = [0]
    output_dir: Path = Path("runs")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(1, ge=1)

    def resolve(self, noise: NoiseConfig, spec: PipelineSpec | None = None) -> RunSettings:
        """Settings of a run with noise setting ``noise`` (and pipeline ``spec``); see
        :func:`resolve_settings` for the precedence rules."""
        return resolve_settings(self.lnl, self.active, noise, spec)


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{loc}: {str(e['msg']).removeprefix('Value error, ')}")
    return "; ".join(lines)


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> ExperimentConfig:
    """Validate a config mapping; relative dataset paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping at the top level")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None
    check_split_source(cfg.dataset, cfg.split)
    if base_dir is not None:
        ds = cfg.dataset
        for key in ("images", "labels", "npz"):
            p = getattr(ds, key)
            if p is not None and not p.is_absolute():
                setattr(ds, key, (base_dir / p))
    return cfg


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML experiment config. Dataset paths are relative to the CWD."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_config(data or {})
