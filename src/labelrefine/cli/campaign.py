"""``labelrefine campaign ...`` and ``labelrefine serve``: relabel real data with a team."""

from __future__ import annotations

import json
import math
import secrets
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from labelrefine.active.registry import SAMPLER_NAMES
from labelrefine.campaign import STRATEGIES
from labelrefine.cli._common import add_row, console, friendly_errors, lit, results, table
from labelrefine.settings import CAMPAIGN_NOISE_RATE, DEFAULT_SAMPLERS

campaign_app = typer.Typer(
    help=(
        "Relabel a real dataset with experts: init a campaign from images + CSV, step (train and "
        "queue suspects), answer in the browser (labelrefine serve), status, export, import."
    ),
    no_args_is_help=True,
)

if TYPE_CHECKING:
    from labelrefine.config import IntensityConfig

CAMPAIGN_ARG = typer.Argument(..., help="Campaign file (SQLite) made by 'campaign init'.")

MAX_SEED = 2**32 - 1
MAX_BUDGET = 2**31 - 1
MIN_TOKEN_LENGTH = 16
"""Shortest admin token ``serve --token`` accepts (the generated ones have 24 characters)."""
DEFAULT_URL = "http://127.0.0.1:8000"
SERVED_URL_KEY = "served_url"
"""Campaign meta key: the address ``serve`` last printed, used by ``reader add`` links."""
DEVICES = ("auto", "cpu", "cuda")


def check_range(flag: str, value: float | None, low: float, high: float) -> None:
    """A CLI number within ``[low, high]`` (None: not given); else one clear error line."""
    if value is None:
        return
    if not (math.isfinite(value) and low <= value <= high):
        raise _error(f"{flag} must be between {low:g} and {high:g}, got {value}")


def check_device(device: str) -> None:
    """``auto``, ``cpu`` or ``cuda`` (with a GPU present), checked before any work."""
    if device not in DEVICES:
        raise _error(f"unknown --device {device!r} (use {', '.join(DEVICES)})")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise _error("--device cuda requested but no CUDA GPU is available")


def _error(message: str) -> Exception:
    from labelrefine.campaign.ledger import CampaignError

    return CampaignError(message)


#: Ranking rules for the queue: every sampler in the registry.
Sampler = StrEnum("Sampler", {name: name for name in SAMPLER_NAMES})  # type: ignore[misc]


#: Campaign strategies (labelrefine.campaign.step).
Strategy = StrEnum("Strategy", {name: name for name in STRATEGIES})  # type: ignore[misc]


class ExportFormat(StrEnum):
    """Export formats."""

    csv = "csv"
    labelstudio = "labelstudio"


class Scope(StrEnum):
    """Which items a Label Studio export holds."""

    queue = "queue"
    answered = "answered"
    train = "train"


@campaign_app.command("init")
def init(
    images: Path = typer.Option(..., "--images", help="Folder holding the image files."),
    labels: Path = typer.Option(..., "--labels", help="CSV with one row per image."),
    out: Path = typer.Option(..., "--out", help="Campaign file to create (must not exist)."),
    id_column: str = typer.Option("image_id", help="CSV column with the image id."),
    label_column: str = typer.Option("dx", help="CSV column with the (possibly wrong) label."),
    classes: str | None = typer.Option(
        None, help="Comma-separated class list fixing the class order (default: sorted names)."
    ),
    suffix: str = typer.Option(".jpg", help="File ending appended to ids that lack it."),
    split_column: str | None = typer.Option(
        None,
        help="CSV column marking items train / val / test (e.g. an expert-verified val set). "
        "Default: hold out a stratified --val-fraction of the given labels as val.",
    ),
    val_fraction: float = typer.Option(
        0.1, help="Share held out (stratified) for model selection when there is no split column."
    ),
    seed: int = typer.Option(0, help="Seed of the validation hold-out."),
    intensity: str = typer.Option(
        "percentile",
        help="How 16-bit, float and DICOM images become 8-bit: percentile (clip each image to "
        "--percentiles), minmax (each image's range) or window (--window for all images, "
        "replacing DICOM files' own windows). 8-bit images never change.",
    ),
    percentiles: str = typer.Option("0.5,99.5", help="LOW,HIGH percentiles of --intensity "
                                    "percentile."),
    window: str | None = typer.Option(
        None, help="CENTER,WIDTH of --intensity window, in the images' values (DICOM: after "
        "rescale slope / intercept, e.g. 40,400 for a CT soft-tissue window)."
    ),
    keep_tags: str | None = typer.Option(
        None, help="Comma-separated DICOM attributes kept per item and added to the CSV export, "
        "e.g. PatientID,StudyInstanceUID."
    ),
    class_names: Path | None = typer.Option(
        None, "--class-names", help="YAML mapping of class codes to the names shown beside "
        "them on the reading page (akiec: \"actinic keratosis / Bowen's\"), or a config "
        "with dataset.class_names.",
    ),
    trusted_column: str | None = typer.Option(
        None, help="CSV column that says how each label was made, e.g. dx_type; items whose "
        "value is one of --trusted-values are trusted: never queued, always trained on, counted "
        "as correct in the wrong-labels-left estimate, and preferred for the validation "
        "hold-out.",
    ),
    trusted_values: str | None = typer.Option(
        None, help="Comma-separated values of --trusted-column to trust, e.g. histo."
    ),
    features: Path | None = typer.Option(
        None, "--features", help="Your own embeddings keyed by id (.npz with arrays ids and "
        "features, .npy with --ids, parquet or CSV with an id column): every step trains and "
        "ranks on them instead of the built-in encoder's.",
    ),
    features_ids: Path | None = typer.Option(
        None, "--ids", help="The id of each row of a --features / --pred-probs .npy (one per "
        "line, or a CSV "
        "with the id column)."
    ),
    encoder_file: Path | None = typer.Option(
        None, "--encoder", help="Your own TorchScript (.pt/.ts) or ONNX image encoder (input "
        "size and normalisation in FILE.yaml next to it, as for labelrefine find): every step "
        "embeds with it (cached under the file's sha256).",
    ),
    pred_probs: Path | None = typer.Option(
        None, "--pred-probs", help="Your own model's out-of-sample probabilities (CSV with an "
        "id column and one column per class, or .npy with --ids): every step queues by them "
        "(find strategy, cleanlab self-confidence) and trains nothing.",
    ),
) -> None:
    """Create a campaign: validate every image and label first; nothing is written on error.

    DICOM files (.dcm, one frame each; use --suffix .dcm for ids without it) are shown with
    their own window (or VOI LUT) unless --intensity window sets one.
    """
    from labelrefine.campaign.create import init_campaign, read_class_names

    with friendly_errors():
        setting = _intensity_option(intensity, percentiles, window)
        shown = read_class_names(class_names) if class_names is not None else None
        check_range("--seed", seed, 0, MAX_SEED)
        check_range("--val-fraction", val_fraction, 0, 0.99)
        with console.status("checking images and labels"):
            ledger = init_campaign(
                images,
                labels,
                out,
                id_column=id_column,
                label_column=label_column,
                classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
                suffix=suffix,
                split_column=split_column,
                val_fraction=val_fraction,
                seed=seed,
                intensity=setting,
                keep_tags=[t.strip() for t in keep_tags.split(",") if t.strip()]
                if keep_tags else (),
                display_names=shown,
                trusted_column=trusted_column,
                trusted_values=[v.strip() for v in (trusted_values or "").split(",")
                                if v.strip()],
                features=features,
                features_ids=features_ids,
                encoder_file=encoder_file,
                pred_probs=pred_probs,
            )
    items = ledger.items()
    roles = items["role"].value_counts().to_dict()
    console.print(
        f"[green]created[/] {lit(out)}: {len(items)} items, {ledger.num_classes} classes "
        f"({lit(', '.join(ledger.class_names))}); "
        + ", ".join(f"{k} {v}" for k, v in sorted(roles.items())),
        highlight=False,
    )
    console.print(f"next: labelrefine campaign step {lit(out)}", highlight=False)


def _pair(text: str, option: str) -> tuple[float, float]:
    from labelrefine.config import ConfigError

    parts = [p.strip() for p in text.split(",")]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{option}: expected two numbers A,B, got {text!r}") from None
    return a, b


def _intensity_option(mode: str, percentiles: str, window: str | None) -> IntensityConfig:
    """The :class:`~labelrefine.config.IntensityConfig` of ``campaign init``'s options."""
    from pydantic import ValidationError

    from labelrefine.config import ConfigError, IntensityConfig

    low, high = _pair(percentiles, "--percentiles")
    data: dict[str, Any] = {"mode": mode, "low": low, "high": high}
    if window is not None:
        if mode != "window":
            raise ConfigError(f"--window applies to --intensity window, not {mode!r}")
        data["center"], data["width"] = _pair(window, "--window")
    elif mode == "window":
        raise ConfigError("--intensity window needs --window CENTER,WIDTH")
    try:
        return IntensityConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise ConfigError(f"--intensity {where + ': ' if where else ''}{first['msg']}") from None


@campaign_app.command("step")
def step(
    campaign: Path = CAMPAIGN_ARG,
    budget: int | None = typer.Option(
        None, help="Items to queue this round (default: 2.2% of the train items)."
    ),
    sampler: Sampler = typer.Option(
        Sampler(DEFAULT_SAMPLERS["campaign"]),
        help="How to rank the pool under --strategy paper / plus (find ranks with its own "
        "finder)."),
    seed: int = typer.Option(0, help="Seed for training and ranking (fixed at the first step)."),
    views: int | None = typer.Option(
        None, help="Augmented views per image for the embedding cache (first step only)."
    ),
    epochs: int | None = typer.Option(
        None, help="Phase-1 epochs (first step) / fine-tune epochs per later round."
    ),
    noise_rate: float = typer.Option(
        CAMPAIGN_NOISE_RATE,
        help="Expected share of wrong labels; the phase-1 forget rate (first step only).",
    ),
    config: Path | None = typer.Option(
        None,
        help="Experiment YAML whose encoder / lnl / active sections set the training settings "
        "(first step only).",
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    force: bool = typer.Option(
        False, help="Step even though the current round's queue is not fully answered."
    ),
    strategy: Strategy | None = typer.Option(
        None,
        help="find (default): queue from every unanswered training item (phase 1's clean set "
        "included) by out-of-sample label quality and neighbour agreement on the features, plus "
        "a random audit share from which status estimates the wrong labels left; fine-tune as "
        "plus. paper: queue phase 1's suspects with --sampler, fine-tune on its clean set plus "
        "the answers. plus: queue from every unanswered training item with --sampler and keep, "
        "each round, the better-validating of two fine-tunes (clean set + answers, answers "
        "only). README, Results, compares them. Fixed at the first step.",
    ),
    audit_share: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="find: share of each round's budget drawn as a stratified random audit (default "
        "0.1; 0 = no whole-set estimate). First step only.",
    ),
    info_share: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="find: share of the rest spent on the most uncertain items, which teach the model "
        "more, instead of the likeliest wrong labels (default 0). First step only.",
    ),
    budget_minutes: float | None = typer.Option(
        None,
        "--budget-minutes",
        help="Budget in expert-minutes instead of items: turned into items at the mean seconds "
        "per answer recorded so far (needs timed answers from an earlier round).",
    ),
) -> None:
    """Train, rank the unanswered suspects and write the next round's queue (one round per call).

    The first call embeds the images and runs phase 1 (CT_VOG); later calls fine-tune the model on
    the trusted set plus the expert answers gathered so far. Items whose readers disagree are not
    trained on until adjudicated; items answered only "unsure" return to the pool.
    """
    from labelrefine.campaign.ledger import CampaignError, Ledger
    from labelrefine.campaign.status import items_for_minutes

    with friendly_errors():
        for flag, value, low, high in (
            ("--budget", budget, 1, MAX_BUDGET),
            ("--seed", seed, 0, MAX_SEED),
            ("--views", views, 1, 1000),
            ("--epochs", epochs, 1, 100_000),
            ("--noise-rate", noise_rate, 0, 0.99),
            ("--budget-minutes", budget_minutes, 0.001, 1e7),
        ):
            check_range(flag, value, low, high)
        check_device(device)
        ledger = Ledger(campaign)
        if budget_minutes is not None:
            if budget is not None:
                raise CampaignError("give --budget or --budget-minutes, not both")
            budget = items_for_minutes(ledger, budget_minutes)
            console.print(
                f"{budget_minutes:g} expert-minutes at this campaign's pace: {budget} items"
            )
        elif budget is None:
            budget = campaign_budget(ledger)
        ledger.check_images()
    from labelrefine.campaign.step import StepOptions, run_step

    with friendly_errors():
        result = run_step(
            campaign,
            StepOptions(
                budget=budget,
                sampler=sampler.value,
                strategy=None if strategy is None else strategy.value,
                audit_share=audit_share,
                info_share=info_share,
                seed=seed,
                views=views,
                epochs=epochs,
                noise_rate=noise_rate,
                config=config,
                device=device,
                force=force,
            ),
            progress=True,
        )
    m = result.metrics
    if m.get("retrained") is False:  # campaign init --pred-probs: nothing is trained
        console.print(
            f"[green]round {result.round}[/]: queued {result.queued} items, ranked by your "
            f"probabilities; no retraining (the campaign was made with --pred-probs); pool "
            f"left {m.get('n_pool')}"
        )
        console.print(f"answer it in the browser: labelrefine serve {lit(campaign)}",
                      highlight=False)
        return
    console.print(
        f"[green]round {result.round}[/] ({result.kind}): queued {result.queued} items; "
        f"val F1 {m.get('val_f1', float('nan')):.3f}"
        + (f", test F1 {m['test_f1']:.3f}" if m.get("test_f1") is not None else "")
        + f"; trained on {m.get('n_clean')}"
        + (f" ({m['trained_on']})" if m.get("trained_on") else "")
        + f" / pool left {m.get('n_pool')}"
    )
    if m.get("guard") not in (None, "ok"):
        console.print(f"[bold yellow]warning:[/] {lit(m.get('guard_message'))}")
        if m.get("queue_ranking"):
            console.print(f"[yellow]the queue uses a {lit(m['queue_ranking'])} ranking instead[/]")
    console.print(f"answer it in the browser: labelrefine serve {lit(campaign)}", highlight=False)


def campaign_budget(ledger: Any) -> int | None:
    """The budget the campaign's latest round was stepped with (None before the first step):
    a step without --budget keeps it, rather than falling back to the default share."""
    rounds = ledger.rounds()
    if not len(rounds):
        return None
    budget = int(rounds["budget"].iloc[-1])
    console.print(f"budget {budget} items, as in round {int(rounds['round'].iloc[-1])} "
                  "(--budget changes it)")
    return budget


@campaign_app.command("status")
def status(
    campaign: Path = CAMPAIGN_ARG,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    stop_below: float = typer.Option(
        0.05,
        help="Advise stopping when the last 2 rounds each found a smaller share of wrong labels.",
    ),
) -> None:
    """Labels bought, readers and their agreement (Cohen's / Fleiss' kappa), open conflicts,
    expert minutes, the share of queried labels that were wrong per round (95% interval), the
    estimated wrong labels left -- observed (the last round's wrong share) next to the model's
    (its calibrated probabilities) -- and whether another round is worth it."""
    from labelrefine.campaign.ledger import Ledger
    from labelrefine.campaign.status import campaign_status, estimate_line
    from labelrefine.io import to_jsonable

    with friendly_errors():
        check_range("--stop-below", stop_below, 0, 1)
        ledger = Ledger(campaign)
        st = campaign_status(ledger, stop_below=stop_below)
        d = ledger.decisions()
        reopened = int((d["reopened"] & (d["status"] == "conflict")).sum())
    if as_json:
        typer.echo(json.dumps(to_jsonable(st.as_dict()), indent=1))
        return
    print_status(campaign, st, reopened, estimate_line(st))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _cell(v: Any, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


_ROUND_COLUMNS = {
    "given_wrong": "wrong",
    "model_wrong": "model expected",
    "query_precision": "QP",
    "wrong_low": "QP low",
    "wrong_high": "QP high",
    "val_f1": "val F1",
    "test_f1": "test F1",
    "labels_bought_before": "bought before",
}


def print_status(campaign: Path, st: Any, reopened: int, estimates: str) -> None:
    """The campaign status on stdout: every name printed literally, tables wrapped to fit."""
    say = results.print
    say(
        f"[bold]{lit(campaign)}[/]: {st.n_items} items ({st.n_train} relabelable), "
        f"{st.rounds} round(s)" + (f", strategy {lit(st.strategy)}" if st.strategy != "paper"
                                   else "")
        + f"; current round {st.current_round if st.rounds else '–'}: "
        f"{st.queue_answered}/{st.queue_size} answered", highlight=False,
    )
    say(
        f"labels bought {st.labels_bought} (changed {st.labels_changed}), unsure {st.unsure}; "
        f"query precision {_pct(st.query_precision)}; flip rate {_pct(st.flip_rate)}; "
        f"suspects left {st.suspects_left if st.suspects_left is not None else '–'}",
        highlight=False,
    )
    from labelrefine.campaign.status import headline

    if st.n_trusted:
        say(f"trusted labels (never queued, counted as correct): {st.n_trusted}",
            highlight=False)
    say(f"[bold]{lit(headline(st))}[/]", highlight=False)
    for part, w in st.wrong_left_parts.items():
        say(f"  {lit(part)}: ≈ {w['estimate']:.0f} ({w['low']:.0f}–{w['high']:.0f}) of "
            f"{w['n_left']} unanswered", highlight=False)
    cols = list(st.per_class.columns)
    t = table("per class (relabelable items)", cols, left=("class",))
    for row in st.per_class.itertuples(index=False):
        add_row(t, [_cell(v, 1) for v in row])
    say(t)
    if len(st.per_round):
        r = table("per round (QP: share of answered queue items whose given label was wrong)",
                  [_ROUND_COLUMNS.get(c, c) for c in st.per_round.columns])
        for row in st.per_round.itertuples(index=False):
            add_row(r, [_cell(v, 3) for v in row])
        say(r)
    if st.readers:
        t = table("readers (live answers; minutes over every answer given)",
                  ["reader", "answers", "labels", "unsure", "minutes"], left=("reader",))
        for name, rd in st.readers.items():
            add_row(t, [name, rd["answers"], rd["labels"], rd["unsure"], f"{rd['minutes']:.1f}"])
        say(t)
    ag = st.agreement
    if ag.get("items"):
        kappa = "–" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        say(
            f"agreement over {ag['items']} double-read items: {100 * ag['observed']:.0f}% "
            f"identical, {lit(ag['kappa_kind'])} kappa {kappa}", highlight=False,
        )
    say(
        f"open conflicts {st.open_conflicts}"
        + (f" ({reopened} reopened: answers changed after adjudication)" if reopened else "")
        + f" (adjudicated {st.adjudicated}); expert time {st.expert_minutes:.1f} min"
        + (f", {st.seconds_per_answer:.1f} s per answer" if st.seconds_per_answer else ""),
        highlight=False,
    )
    if st.minutes_per_class:
        say("minutes per answer class: "
            + lit(", ".join(f"{k} {v:.1f}" for k, v in st.minutes_per_class.items())),
            highlight=False)
    if st.current_round is not None:
        say(lit(estimates), highlight=False)
        temperature = (st.model_remaining_wrong or {}).get("temperature")
        tt = "" if temperature is None else f"temperature {temperature:.2f}; "
        say(f"model: {tt}{lit(st.model_note)}", highlight=False)
    say(f"[bold]advice:[/] {lit(st.advice)}", highlight=False)
    if st.model_check:
        say(f"[bold yellow]model check:[/] {lit(st.model_check)}", highlight=False)


@campaign_app.command("export")
def export(
    campaign: Path = CAMPAIGN_ARG,
    fmt: ExportFormat = typer.Option(ExportFormat.csv, "--format", help="csv or labelstudio."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="CSV file (csv) or folder (labelstudio). Default: next to the campaign file.",
    ),
    scope: Scope = typer.Option(
        Scope.queue, help="labelstudio: the current queue, all answered items, or all items."
    ),
    image_url_prefix: str | None = typer.Option(
        None,
        help="labelstudio: prefix put before each image path (relative to the image folder). "
        "Default: Label Studio's Local Files URL '/data/local-files/?d=<image folder name>/'; "
        "the command prints the two settings it needs.",
    ),
) -> None:
    """Export cleaned labels with provenance (CSV) or Label Studio tasks with pre-annotations."""
    from labelrefine.campaign.exchange import export_csv
    from labelrefine.campaign.labelstudio import export_labelstudio
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        ledger = Ledger(campaign)
        if fmt is ExportFormat.csv:
            target = out or campaign.with_name(campaign.stem + "-labels.csv")
            n = export_csv(ledger, target)
            console.print(f"[green]wrote[/] {lit(target)}: {n} items with provenance",
                          highlight=False)
        else:
            target = out or campaign.with_name(campaign.stem + "-labelstudio")
            res = export_labelstudio(
                ledger, target, image_url_prefix=image_url_prefix, scope=scope.value
            )
            console.print(
                f"[green]wrote[/] {lit(target)}/tasks.json ({res.tasks} tasks, {res.answers} "
                f"answers) and {lit(target)}/labeling_config.xml", highlight=False,
            )
            if res.not_viewable:
                console.print(
                    f"[bold yellow]note:[/] {res.not_viewable} of the {res.tasks} images are "
                    "DICOM, 16-bit or other files a browser cannot show, so Label Studio shows "
                    "them broken; read those with 'labelrefine serve', which renders them",
                    highlight=False, soft_wrap=True,
                )
            if res.blind:
                console.print("blind mode: the tasks carry no given label, model suggestion, "
                              "queue reason or reader's answer")
            if res.layout is not None:
                console.print("images load in Label Studio once you:", highlight=False)
                for line in res.layout.instructions():
                    console.print(f"  - {lit(line)}", highlight=False, soft_wrap=True)


@campaign_app.command("import")
def import_(
    campaign: Path = CAMPAIGN_ARG,
    file: Path = typer.Argument(
        ...,
        help="Label Studio export (JSON, JSON-MIN or CSV; detected from the content), or a CSV "
        "of expert answers (e.g. the campaign's CSV export).",
    ),
    annotator: str = typer.Option(
        "import", help="Annotator recorded when the file does not name one."
    ),
    users: Path | None = typer.Option(
        None,
        "--users",
        help="Label Studio: its user listing (GET /api/users saved as JSON) to turn user ids "
        "into names; saved in the campaign for later imports.",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Label Studio: refuse the whole file when any answer would be skipped (held-out "
        "item, no choice, undone in the campaign) instead of skipping and reporting it.",
    ),
    item_column: str = typer.Option("item", help="CSV: column with the item id."),
    answer_column: str = typer.Option(
        "expert_answer", help="CSV: column with the answer (class name or 'unsure')."
    ),
) -> None:
    """Import expert answers; nothing is written on an error (unknown items or classes are named).

    Re-importing a file adds nothing; readers' different answers become conflicts for
    adjudication. Label Studio imports print "N new, M already present, K conflicts, J skipped
    (reasons)": answers on held-out items are skipped and reported (refused with --strict).
    """
    from labelrefine.campaign.exchange import import_csv
    from labelrefine.campaign.labelstudio import detect_format, import_labelstudio
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        ledger = Ledger(campaign)
        if detect_format(file) != "campaign-csv":
            report = import_labelstudio(
                ledger, file, users=users, strict=strict, annotator=annotator
            )
            console.print(f"[green]imported[/] {lit(file.name)} ({report.format}): "
                          f"{lit(report.summary())}", highlight=False)
            return
        else:
            done, skipped = import_csv(
                ledger,
                file,
                item_column=item_column,
                answer_column=answer_column,
                annotator=annotator,
            )
    console.print(f"[green]imported[/] {done} answers ({skipped} already present)")


def serve(
    campaign: Path = CAMPAIGN_ARG,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    token: str | None = typer.Option(
        None,
        help=f"Admin access token, at least {MIN_TOKEN_LENGTH} characters (default: a random "
        "one, printed at start). Prefer the LABELREFINE_TOKEN environment variable: a token on "
        "the command line is visible to every user of the machine (ps).",
        envvar="LABELREFINE_TOKEN",
        show_envvar=True,
    ),
    annotator: str = typer.Option(
        "expert", help="Name recorded for answers given with the admin token (no reader may "
        "have it)."
    ),
) -> None:
    """Serve the relabeling page for a campaign; prints the admin URL with its token.

    Readers use their own links (``campaign reader add NAME`` prints one, with this server's
    address); the admin token answers as --annotator, adjudicates and may create readers.
    """
    import uvicorn

    from labelrefine.campaign.ledger import Ledger
    from labelrefine.web.app import create_app

    with friendly_errors():
        check_range("--port", port, 1, 65535)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise _error(
                f"--token must have at least {MIN_TOKEN_LENGTH} characters (got {len(token)}); "
                "omit it for a random one"
            )
        tok = token or secrets.token_urlsafe(18)
        app = create_app(campaign, token=tok, annotator=annotator)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{port}"
        ledger = Ledger(campaign)
        if ledger.meta().get(SERVED_URL_KEY) != base:
            ledger.set_meta(SERVED_URL_KEY, base)
    typer.echo(f"labelrefine: relabel {campaign} at {base}/?token={tok}", err=True)
    typer.echo(
        f"  (this admin link answers as {annotator!r}; give each reader their own link: "
        f"labelrefine campaign reader add {campaign} NAME)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


# ----------------------------------------------------------------------------------------------
# readers, settings, safe operations
# ----------------------------------------------------------------------------------------------

reader_app = typer.Typer(
    help="Reader accounts: each reader gets a token; answers are recorded under its name.",
    no_args_is_help=True,
)
campaign_app.add_typer(reader_app, name="reader")

URL_OPTION = typer.Option(
    None, help="Server address used in the printed link (default: the address 'serve' last "
    f"used for this campaign, else {DEFAULT_URL})."
)
PORT_OPTION = typer.Option(None, help="Port in the printed link (on 127.0.0.1).")


def reader_link(ledger: Any, token: str, url: str | None, port: int | None) -> str:
    """A reader's sign-in link on the server that serves the campaign."""
    if url is None and port is not None:
        url = f"http://127.0.0.1:{port}"
    base = url or ledger.meta().get(SERVED_URL_KEY) or DEFAULT_URL
    return f"{base.rstrip('/')}/?token={token}"


@reader_app.command("add")
def reader_add(
    campaign: Path = CAMPAIGN_ARG,
    name: str = typer.Argument(..., help="Reader name (recorded with every answer)."),
    adjudicator: bool = typer.Option(
        False, "--adjudicator", help="May also decide items where readers disagree."
    ),
    url: str | None = URL_OPTION,
    port: int | None = PORT_OPTION,
) -> None:
    """Create a reader account and print its token and link (shown once)."""
    from labelrefine.campaign.ledger import Ledger

    role = "adjudicator" if adjudicator else "reader"
    with friendly_errors():
        ledger = Ledger(campaign)
        if port is not None:
            check_range("--port", port, 1, 65535)
        tok = ledger.add_reader(name, role=role)
        link = reader_link(ledger, tok, url, port)
    console.print(f"[green]reader[/] {lit(name.strip())} ({role})", highlight=False)
    typer.echo(link)


@reader_app.command("list")
def reader_list(campaign: Path = CAMPAIGN_ARG) -> None:
    """List reader accounts (tokens are never shown again)."""
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        df = Ledger(campaign).readers()
    t = table("readers", list(df.columns), left=tuple(df.columns))
    for row in df.itertuples(index=False):
        add_row(t, list(row))
    results.print(t)


@reader_app.command("token")
def reader_token(
    campaign: Path = CAMPAIGN_ARG,
    name: str = typer.Argument(..., help="Reader whose token is replaced."),
    reactivate: bool = typer.Option(
        False, "--reactivate", help="Also restore a removed reader's account."
    ),
    url: str | None = URL_OPTION,
    port: int | None = PORT_OPTION,
) -> None:
    """Give a reader a new token (the old one stops working); a removed reader stays removed
    unless --reactivate is given."""
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        ledger = Ledger(campaign)
        if port is not None:
            check_range("--port", port, 1, 65535)
        link = reader_link(ledger, ledger.new_token(name, reactivate=reactivate), url, port)
    if reactivate:
        console.print(f"reader {lit(name)} is active", highlight=False)
    typer.echo(link)


@reader_app.command("remove")
def reader_remove(
    campaign: Path = CAMPAIGN_ARG,
    name: str = typer.Argument(..., help="Reader to deactivate (their answers stay)."),
) -> None:
    """Deactivate a reader: their token stops working; their answers stay."""
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        Ledger(campaign).remove_reader(name)
    console.print(f"removed reader {lit(name)}", highlight=False)


@campaign_app.command("configure")
def configure(
    campaign: Path = CAMPAIGN_ARG,
    double_read: float | None = typer.Option(
        None,
        "--double-read",
        help="Share of queued items (0-1, chosen by a stable hash of their id) read by a second "
        "reader. Items answered 'unsure' go to a second reader whenever there are 2+ readers.",
    ),
    blind: bool | None = typer.Option(
        None,
        "--blind/--no-blind",
        help="Blind mode: hide the given label and the model's top-3 on the page.",
    ),
    class_names: Path | None = typer.Option(
        None, "--class-names", help="YAML mapping of class codes to display names (as for "
        "init); an empty mapping ({}) removes them.",
    ),
) -> None:
    """Change how items are read (double reading, blind mode, class display names); effective
    at the next page."""
    from labelrefine.campaign.create import campaign_class_names, read_class_names, set_class_names
    from labelrefine.campaign.ledger import Ledger
    from labelrefine.data.loaders import check_display_names

    with friendly_errors():
        ledger = Ledger(campaign)
        shown = None
        if class_names is not None:  # checked before anything changes
            shown = check_display_names(read_class_names(class_names), ledger.class_names,
                                        "class display names")
        ledger.configure(double_read_share=double_read, blind=blind)
        if shown is not None:
            set_class_names(ledger, shown)
    console.print(
        f"double reading {100 * ledger.double_read_share:.0f}% of queued items; "
        f"blind mode {'on' if ledger.blind else 'off'}"
    )
    named = campaign_class_names(ledger)
    if named:
        console.print("class names: " + "; ".join(f"{k} = {v}" for k, v in named.items()),
                      highlight=False)


@campaign_app.command("backup")
def backup(
    campaign: Path = CAMPAIGN_ARG,
    out: Path = typer.Argument(..., help="Backup file to write (must not exist)."),
) -> None:
    """Copy the campaign into one consistent file, safe while 'serve' is running.

    Uses SQLite's online backup: answers still in the write-ahead log are included. A plain file
    copy of the .db is NOT safe while the campaign is in use.
    """
    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        path = Ledger(campaign).backup(out)
    console.print(f"[green]backed up[/] {lit(campaign)} to {lit(path)}", soft_wrap=True,
                  highlight=False)


@campaign_app.command("relocate")
def relocate(
    campaign: Path = CAMPAIGN_ARG,
    images: Path = typer.Option(..., "--images", help="The image folder's new location."),
) -> None:
    """Point the campaign at a moved image folder after checking every file's content hash.

    Nothing changes unless every image is found with the same content.
    """
    from rich.progress import Progress

    from labelrefine.campaign.ledger import Ledger

    with friendly_errors():
        ledger = Ledger(campaign)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("checking images", total=None)
            n = ledger.relocate(
                images, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    console.print(
        f"[green]relocated[/] {lit(campaign)}: {n} images checked, now read from {lit(images)}",
        soft_wrap=True, highlight=False,
    )
