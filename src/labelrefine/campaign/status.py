"""Campaign progress: labels bought, readers and their agreement, open conflicts, expert time,
the share of queried labels that were wrong per round, and whether another round is worth it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.active.strategies import campaign_strategy
from labelrefine.campaign.create import campaign_trusted
from labelrefine.campaign.estimates import interval, summary, wrong_probabilities
from labelrefine.campaign.ledger import UNSURE, CampaignError, Ledger

STOP_BELOW = 0.05
"""Default advice threshold: stop when the last 2 rounds each found fewer wrong labels."""


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion ``k / n`` (None when ``n == 0``)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of an ``(items, categories)`` count table (same number of ratings per item).

    None when undefined (fewer than 2 ratings per item, or every rating in one category).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or len(counts) == 0:
        return None
    n = counts.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    m = n[0]
    p_j = counts.sum(axis=0) / (len(counts) * m)
    p_i = (np.sum(counts * counts, axis=1) - m) / (m * (m - 1))
    p_e = float(np.sum(p_j * p_j))
    if p_e >= 1:
        return None
    return float((p_i.mean() - p_e) / (1 - p_e))


@dataclass(frozen=True)
class CampaignStatus:
    """A snapshot of a campaign (all counts are over ``train`` items unless said otherwise).

    - ``labels_bought``: items with a final expert label (one reader's, agreeing readers', or
      adjudicated); ``unsure`` answers and open conflicts not counted.
    - ``query_precision``: share of expert-labeled queued items whose given label was wrong.
    - ``flip_rate``: share of all expert-labeled items whose given label was wrong.
    - ``suspects_left``: the pool the next round draws from, as ``campaign step`` computes it
      (:meth:`labelrefine.active.strategies.Strategy.pool_of`): phase 1's suspects
      (``paper``) or every training item (``plus``, ``find``) that no expert has decided yet
      and the team does not trust.
    - ``estimated_noise``: the estimated share of wrong labels left in the whole training set,
      ``wrong_left`` / ``n_train`` (None without an audit estimate: the pool alone says
      nothing about the clean set's wrong labels).
    - ``wrong_left``: the audit estimate of the wrong given labels left among the training
      items without a sure answer -- the whole training set, design-unbiased, with a 95 %
      interval (:func:`labelrefine.active.audit.remaining_wrong`; ``find`` campaigns draw the
      audit share every round) -- and ``wrong_left_parts`` the same for phase 1's clean set
      and its suspects. None before any audit item is answered.
    - ``finder_estimate``: the finder's model-based count over the unanswered training items
      (cleanlab's confident-learning estimate; ``find`` campaigns), labelled model-based.
    - ``readers``: per reader: answers (live), labels, unsure, minutes (all answers they gave).
    - ``agreement``: items read by two or more readers with a label, the share where they agree,
      and kappa (Cohen's with exactly two readers, Fleiss' -- over each item's first two labels --
      with more).
    - ``per_round``: per round its queue, the answered labels, how many given labels were wrong
      (``wrong_share`` with a 95 % Wilson interval) and the expert minutes spent on it.
    - ``remaining_wrong``: estimated wrong labels left in the pool, ``suspects_left`` times the
      last round's wrong share (and its interval). The sampler queues the most suspicious items
      first, so this tends to overestimate; it ignores errors in the trusted set.
    - ``next_round_wrong``: expected wrong labels in a next round of the same size.
    - ``model_remaining_wrong``: the model's estimate of the same, from the latest round's
      calibrated probabilities: the sum over the suspects left of ``1 - p(given label)`` with a
      Poisson-binomial 95 % interval (:mod:`labelrefine.campaign.estimates`), and the
      ``temperature`` used. None when the round recorded no estimate (older ledgers).
    - ``model_next_round_wrong``: the model's expected wrong labels in a next round of the same
      size: its expected wrong share on the items the experts labeled in the round the observed
      estimate uses (the current queue when none has an estimate yet).
    - ``model_estimate``: ``ok``; ``disagrees`` (on that round's labeled items the experts'
      Wilson interval and the model's interval do not overlap: its calibration is in doubt);
      ``unreliable`` (the model failed its sanity check, or its probabilities are not
      calibrated); ``none`` (no estimate). ``model_note`` says why in words. Only an ``ok``
      estimate enters the advice as support; otherwise the advice relies on the observed one.
    - per_class ``model_wrong_left``: the model's expected wrong labels among the suspects
      left, by given label (None without an estimate).
    - ``advice``: continue, stop (the last 2 rounds each found < ``stop_below`` wrong), or the
      pool is exhausted; followed by what the model estimates, when it has an estimate.
    """

    n_items: int
    n_train: int
    rounds: int
    current_round: int | None
    queue_answered: int
    queue_size: int
    labels_bought: int
    unsure: int
    labels_changed: int
    query_precision: float | None
    flip_rate: float | None
    suspects_left: int | None
    estimated_noise: float | None
    per_class: pd.DataFrame
    per_round: pd.DataFrame
    annotators: dict[str, int] = field(default_factory=dict)
    readers: dict[str, dict[str, Any]] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)
    open_conflicts: int = 0
    adjudicated: int = 0
    expert_minutes: float = 0.0
    seconds_per_answer: float | None = None
    minutes_per_class: dict[str, float] = field(default_factory=dict)
    remaining_wrong: dict[str, float] | None = None
    next_round_wrong: dict[str, float] | None = None
    pool_exhausted: bool = False
    advice: str = ""
    model_check: str = ""  # the latest round's sanity-guard warning ("" when the model passed)
    model_remaining_wrong: dict[str, float] | None = None
    model_next_round_wrong: dict[str, float] | None = None
    model_estimate: str = "none"
    model_note: str = ""
    strategy: str = "paper"  # campaign step's strategy, fixed at the first step
    n_trusted: int = 0  # training items whose labels the team trusts (never queued)
    wrong_left: dict[str, Any] | None = None
    wrong_left_parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    finder_estimate: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, pd.DataFrame)}
        out["per_class"] = self.per_class.to_dict("records")
        out["per_round"] = self.per_round.to_dict("records")
        return out


def campaign_status(ledger: Ledger, *, stop_below: float = STOP_BELOW) -> CampaignStatus:
    """Compute the :class:`CampaignStatus` of ``ledger``."""
    names = ledger.class_names
    c = len(names)
    items = ledger.items()
    train = items["role"].to_numpy() == "train"
    given = items["given_label"].to_numpy()
    current_label = items["current_label"].to_numpy()
    decisions = ledger.decisions()
    labeled = decisions[decisions["label"].notna()]
    lab_items = labeled["item"].to_numpy(dtype=np.int64)
    lab_labels = labeled["label"].to_numpy(dtype=np.int64)
    changed = lab_labels != given[lab_items]
    final = dict(zip(lab_items.tolist(), lab_labels.tolist(), strict=True))
    rounds = ledger.rounds()
    strategy = _strategy(rounds)
    current = ledger.current_round()
    answered_q, size_q = ledger.progress(current)
    history = ledger.answers(include_retracted=True)
    adjudications = ledger.adjudications()

    estimates = {
        int(r): e for r, e in zip(rounds["round"], rounds["model_estimate"], strict=True) if e
    }
    w_cache: dict[int, np.ndarray] = {}

    def wrong_w(r: int) -> np.ndarray:
        """Round ``r``'s chance per item that its given label is wrong (NaN: not scored)."""
        if r not in w_cache:
            sc = ledger.scores(r)
            w = np.full(len(items), np.nan)
            if len(sc):
                idx = sc["item"].to_numpy(dtype=np.int64)
                w[idx] = wrong_probabilities(np.stack(sc["probs"].to_numpy()), given[idx])
            w_cache[r] = w
        return w_cache[r]

    labeled_in: dict[int, np.ndarray] = {}
    queued_ever: set[int] = set()
    per_round_rows = []
    for r in rounds["round"]:
        q = ledger.queue(int(r))
        q_items = q["item"].to_numpy(dtype=np.int64)
        queued_ever.update(int(i) for i in q_items)
        a_items = np.array([i for i in q_items if int(i) in final], dtype=np.int64)
        a_labels = np.array([final[int(i)] for i in a_items], dtype=np.int64)
        wrong = int(np.sum(a_labels != given[a_items])) if len(a_items) else 0
        labeled_in[int(r)] = a_items
        model_wrong = float(wrong_w(int(r))[a_items].sum()) if int(r) in estimates else None
        ci = wilson_interval(wrong, len(a_items))
        secs = (
            history.loc[history["round"] == r, "seconds"].sum()
            + adjudications.loc[adjudications["round"] == r, "seconds"].sum()
        )
        metrics = rounds.loc[rounds["round"] == r, "metrics"].iloc[0]
        per_round_rows.append(
            {
                "round": int(r),
                "queued": len(q_items),
                "answered": int(q["answer_kind"].notna().sum()),
                "labeled": len(a_items),
                "given_wrong": wrong,
                "model_wrong": model_wrong,
                "query_precision": wrong / len(a_items) if len(a_items) else None,
                "wrong_low": None if ci is None else ci[0],
                "wrong_high": None if ci is None else ci[1],
                "minutes": float(secs) / 60,
                "val_f1": metrics.get("val_f1"),
                "test_f1": metrics.get("test_f1"),
                "labels_bought_before": metrics.get("labels_bought"),
            }
        )
    per_round = pd.DataFrame(
        per_round_rows,
        columns=[
            "round",
            "queued",
            "answered",
            "labeled",
            "given_wrong",
            "model_wrong",
            "query_precision",
            "wrong_low",
            "wrong_high",
            "minutes",
            "val_f1",
            "test_f1",
            "labels_bought_before",
        ],
    )
    in_queue = np.isin(lab_items, np.fromiter(queued_ever, dtype=np.int64, count=len(queued_ever)))
    qp = float(np.mean(changed[in_queue])) if in_queue.any() else None
    flip = float(np.mean(changed)) if len(changed) else None

    suspects_left: int | None = None
    trusted = np.intersect1d(campaign_trusted(ledger), np.flatnonzero(train))
    left = np.zeros(0, dtype=np.int64)
    est: float | None = None
    if current is not None:
        s0 = ledger.scores(0)
        phase1_clean = s0["item"].to_numpy(dtype=np.int64)[s0["clean"].to_numpy(dtype=bool)]
        settled = np.union1d(ledger.final_answers()["item"].to_numpy(dtype=np.int64), trusted)
        # the pool the next step draws from, as campaign step computes it
        left = campaign_strategy(strategy).pool_of(np.flatnonzero(train), phase1_clean,
                                                   settled=settled)
        suspects_left = int(left.size)
    whole, parts = _audit_estimate(ledger, rounds, given, train, trusted,
                                   None if current is None else wrong_w(current))
    if whole is not None and train.sum():
        est = whole["estimate"] / int(train.sum())
    finder = None
    if current is not None and current in estimates:
        finder = estimates[current].get("finder")

    w_left = wrong_w(current)[left] if current in estimates else None
    per_class = pd.DataFrame(
        {
            "class": names,
            "given": np.bincount(given[train], minlength=c),
            "current": np.bincount(current_label[train], minlength=c),
            "expert_labels": np.bincount(lab_labels, minlength=c),
            "given_as": np.bincount(given[lab_items], minlength=c),
            "changed_from": np.bincount(given[lab_items][changed], minlength=c),
            "model_wrong_left": [None] * c if w_left is None else
            np.bincount(given[left], weights=w_left, minlength=c).tolist(),
        }
    )
    live = ledger.answers()
    remaining, next_wrong, exhausted, advice = _advice(
        per_round, suspects_left, stop_below=stop_below
    )
    check = _model_check(rounds)
    model = _model_estimates(
        per_round, rounds, estimates, wrong_w, labeled_in, w_left, next_wrong, check
    )
    advice += _model_advice(model)
    timed = history["seconds"].dropna()
    by_class = history.assign(
        answer=[
            UNSURE if k == UNSURE else names[int(lab)]
            for k, lab in zip(history["kind"], history["label"], strict=True)
        ]
    )
    return CampaignStatus(
        strategy=strategy,
        n_items=len(items),
        n_train=int(train.sum()),
        rounds=len(rounds),
        current_round=current,
        queue_answered=answered_q,
        queue_size=size_q,
        labels_bought=len(lab_items),
        unsure=int(np.sum(decisions["status"] == "unsure")),
        labels_changed=int(changed.sum()),
        query_precision=qp,
        flip_rate=flip,
        suspects_left=suspects_left,
        estimated_noise=est,
        per_class=per_class,
        per_round=per_round,
        annotators={str(k): int(v) for k, v in live["annotator"].value_counts().items()},
        readers=_readers(ledger, live, history),
        agreement=agreement(live),
        open_conflicts=int(np.sum(decisions["status"] == "conflict")),
        adjudicated=int(np.sum(decisions["status"] == "adjudicated")),
        expert_minutes=float(timed.sum() + adjudications["seconds"].dropna().sum()) / 60,
        seconds_per_answer=float(timed.mean()) if len(timed) else None,
        minutes_per_class={
            str(k): float(v) / 60 for k, v in by_class.groupby("answer")["seconds"].sum().items()
        },
        remaining_wrong=remaining,
        next_round_wrong=next_wrong,
        pool_exhausted=exhausted,
        advice=advice,
        model_check=check,
        model_remaining_wrong=model.remaining,
        model_next_round_wrong=model.next_round,
        model_estimate=model.state,
        model_note=model.note,
        n_trusted=int(trusted.size),
        wrong_left=whole,
        wrong_left_parts=parts,
        finder_estimate=finder,
    )


def _audit_estimate(ledger: Ledger, rounds: pd.DataFrame, given: np.ndarray,
                    train: np.ndarray, trusted: np.ndarray, w_now: np.ndarray | None
                    ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The audit estimate of the wrong labels left (whole training set, and phase 1's clean
    set and suspects), from the audit designs the rounds stored and the experts' sure
    answers (:func:`labelrefine.active.audit.remaining_wrong`)."""
    from labelrefine.active.audit import AuditRound, remaining_wrong

    designs = [m.get("audit") for m in rounds["metrics"]] if len(rounds) else []
    audits = [AuditRound(population=np.asarray(d["population"], dtype=np.int64),
                         strata=np.asarray(d["strata"], dtype=np.int64),
                         audit=np.asarray(d["audit"], dtype=np.int64),
                         m=np.asarray(d["m"], dtype=np.float64))
              for d in designs if d and d.get("audit")]
    if not audits:
        return None, {}
    answer = np.full(given.size, -1, dtype=np.int64)
    final = ledger.final_answers()
    lab = final[final["kind"] == "label"]
    answer[lab["item"].to_numpy(dtype=np.int64)] = lab["label"].to_numpy(dtype=np.int64)
    m_now = np.zeros(given.size) if w_now is None else np.nan_to_num(w_now, nan=0.0)
    # trusted labels are known correct: the estimate covers the other training items
    items = np.setdiff1d(np.flatnonzero(train), trusted)
    whole = remaining_wrong(audits, given=given, answer=answer, m_now=m_now, items=items)
    if whole is None:
        return None, {}
    s0 = ledger.scores(0)
    clean = np.zeros(given.size, dtype=bool)
    clean[s0["item"].to_numpy(dtype=np.int64)[s0["clean"].to_numpy(dtype=bool)]] = True
    parts = {}
    for name, dom in (("phase-1 clean set", clean), ("phase-1 suspects", ~clean)):
        got = remaining_wrong(audits, given=given, answer=answer, m_now=m_now, items=items,
                              domain=dom)
        if got is not None:
            parts[name] = got.as_dict()
    return whole.as_dict(), parts


def _readers(
    ledger: Ledger, live: pd.DataFrame, history: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    accounts = ledger.readers()
    names = sorted(set(accounts["name"]) | set(live["annotator"]) | set(history["annotator"]))
    for name in names:
        mine = live[live["annotator"] == name]
        secs = history.loc[history["annotator"] == name, "seconds"].dropna()
        out[str(name)] = {
            "answers": len(mine),
            "labels": int((mine["kind"] == "label").sum()),
            "unsure": int((mine["kind"] == UNSURE).sum()),
            "minutes": float(secs.sum()) / 60,
        }
    return out


def agreement(live: pd.DataFrame) -> dict[str, Any]:
    """Inter-reader agreement over items that two or more readers labeled (unsure left out).

    Returns ``items`` (how many), ``readers`` (who took part), ``observed`` (share of those items
    where the first two labels agree), ``kappa`` and ``kappa_kind`` (``cohen`` for exactly two
    readers, ``fleiss`` for more; None when undefined).
    """
    lab = live[live["kind"] == "label"].sort_values("id")
    groups = [g for _, g in lab.groupby("item") if len(g) >= 2]
    out: dict[str, Any] = {
        "items": len(groups),
        "readers": [],
        "observed": None,
        "kappa": None,
        "kappa_kind": None,
    }
    if not groups:
        return out
    readers = sorted({str(a) for g in groups for a in g["annotator"]})
    first = np.array([int(g["label"].iloc[0]) for g in groups])
    second = np.array([int(g["label"].iloc[1]) for g in groups])
    out["readers"] = readers
    out["observed"] = float(np.mean(first == second))
    if len(readers) == 2:
        from sklearn.metrics import cohen_kappa_score

        a, b = readers
        x = [int(g.loc[g["annotator"] == a, "label"].iloc[0]) for g in groups]
        y = [int(g.loc[g["annotator"] == b, "label"].iloc[0]) for g in groups]
        if len(set(x) | set(y)) > 1:
            k = float(cohen_kappa_score(x, y))
            out["kappa"] = k if math.isfinite(k) else None
        out["kappa_kind"] = "cohen"
    else:
        cats = np.union1d(first, second)
        counts = np.zeros((len(groups), len(cats)))
        for row, (p, q) in enumerate(zip(first, second, strict=True)):
            counts[row, np.searchsorted(cats, p)] += 1
            counts[row, np.searchsorted(cats, q)] += 1
        out["kappa"] = fleiss_kappa(counts)
        out["kappa_kind"] = "fleiss"
    return out


def _model_check(rounds: pd.DataFrame) -> str:
    """The latest round's sanity-guard message when its model did not pass, else ""."""
    if rounds.empty:
        return ""
    metrics = rounds.sort_values("round")["metrics"].iloc[-1] or {}
    if metrics.get("guard") in (None, "ok"):
        return ""
    msg = str(metrics.get("guard_message", ""))
    if metrics.get("queue_ranking"):
        msg += f"; the queue uses a {metrics['queue_ranking']} ranking"
    return msg


@dataclass(frozen=True)
class _Model:
    """The model's estimates for :class:`CampaignStatus` (see its docstring)."""

    remaining: dict[str, float] | None = None
    next_round: dict[str, float] | None = None
    state: str = "none"
    note: str = "no model estimate: no round yet"


def _model_estimates(
    per_round: pd.DataFrame,
    rounds: pd.DataFrame,
    estimates: dict[int, dict[str, Any]],
    wrong_w: Any,
    labeled_in: dict[int, np.ndarray],
    w_left: np.ndarray | None,
    next_wrong: dict[str, float] | None,
    check: str,
) -> _Model:
    """The calibrated model's remaining / next-round estimates, and whether to trust them."""
    if rounds.empty:
        return _Model()
    current = int(rounds["round"].iloc[-1])
    est = estimates.get(current)
    if est is None or w_left is None:
        return _Model(
            note=f"no model estimate: round {current} was recorded without one "
            "(by an older labelrefine); the next step records one"
        )
    temperature = rounds["temperature"].iloc[-1]
    if est.get("temperature_at_bound"):
        return _Model(
            state="withheld",
            note=f"no model estimate: the calibration failed (temperature {temperature:.3g} at "
            "its search bound; the validation split cannot pin it down), so the model's "
            "probabilities are not used for counts",
        )
    remaining = interval(summary(w_left)) | {
        "n": int(w_left.size),
        "temperature": None if temperature is None else float(temperature),
    }
    done = per_round[per_round["labeled"] > 0]
    basis = int(done.iloc[-1]["round"]) if len(done) else None
    if basis in estimates:
        s = summary(wrong_w(basis)[labeled_in[basis]])
    else:  # the observed estimate's round has none: the current queue's expectation
        basis, s = None, est["queue"]
    if next_wrong is not None:
        size = int(next_wrong["queue"])
    else:
        size = min(int(per_round.iloc[-1]["queued"]), int(w_left.size))
    next_round = None
    if s["n"] > 0:
        next_round = interval(s, scale=size / s["n"]) | {"queue": size}
    compared = ""
    disagree = False
    if basis is not None:
        row = done.iloc[-1]
        n, k = int(row["labeled"]), int(row["given_wrong"])
        lo, hi = float(row["wrong_low"]) * n, float(row["wrong_high"]) * n
        m = interval(s)
        disagree = hi < m["low"] or m["high"] < lo
        compared = (
            f"round {basis}: the experts found {k} of {n} given labels wrong (95% interval "
            f"{lo:.1f}-{hi:.1f}), the model expected {m['estimate']:.1f} "
            f"({m['low']:.1f}-{m['high']:.1f})"
        )
    if check:
        state = "unreliable"
        note = "the model failed its sanity check (see model check); its estimate is not used"
    elif not est.get("calibrated", True):
        state = "unreliable"
        note = (
            "the model's probabilities are not calibrated (lnl.calibrate is off); "
            "its estimate is not used"
        )
    elif disagree:
        state = "disagrees"
        note = f"{compared}: the intervals do not overlap, so the model's calibration is in doubt"
    else:
        state = "ok"
        note = compared or "no labeled round to compare the model with yet"
    return _Model(remaining=remaining, next_round=next_round, state=state, note=note)


def _model_advice(model: _Model) -> str:
    """What the advice adds about the model's estimate ("" without one)."""
    rem = model.remaining
    if rem is None:
        return ""
    left = f"about {rem['estimate']:.0f} ({rem['low']:.0f}-{rem['high']:.0f})"
    if model.state == "ok":
        nxt = model.next_round
        more = (
            ""
            if nxt is None
            else f" and about {nxt['estimate']:.0f} in a next round of {nxt['queue']} items"
        )
        return f"; the calibrated model expects {left} wrong labels left in the pool{more}"
    if model.state == "disagrees":
        return (
            f"; the model expects {left} wrong labels left, but it disagrees with what the "
            "experts found, so its calibration is in doubt: rely on the observed share"
        )
    return (
        f"; the model's estimate ({left} left) is unreliable, so the advice relies on the "
        "observed share"
    )


#: Audited answers below which the headline gives the interval only, not a point estimate.
FEW_AUDITED = 10


def headline(st: CampaignStatus) -> str:
    """The status headline: wrong labels left in the whole training set (the audit estimate
    with its 95 % interval), or why there is none."""
    w = st.wrong_left
    if w is None:
        why = ("no audit answers yet" if st.strategy == "find" else
               f"strategy {st.strategy} draws no audit share")
        return f"wrong labels left in the training set: not estimated yet ({why})"
    basis = (f"audit estimate from {w['audited']} random answers over {w['rounds']} round(s), "
             f"{w['n_left']} items unanswered")
    if w["audited"] < FEW_AUDITED:  # a point estimate from a handful of answers misleads
        return (f"wrong labels left in the training set: between {w['low']:.0f} and "
                f"{w['high']:.0f} (95% interval; {basis}; too few random answers for a point "
                "estimate yet, each round narrows it)")
    share = "" if not st.n_train else f", {100 * w['estimate'] / st.n_train:.1f}% of the labels"
    return (f"wrong labels left in the training set: ≈ {w['estimate']:.0f} (95% interval "
            f"{w['low']:.0f}–{w['high']:.0f}{share}; {basis})")


def estimate_line(st: CampaignStatus) -> str:
    """One line with both estimates of the wrong labels left in the pool (CLI and web page)."""

    def fmt(d: dict[str, float] | None) -> str:
        if d is None:
            return "–"
        return f"≈ {d['estimate']:.0f} ({d['low']:.0f}–{d['high']:.0f})"

    flag = {"unreliable": ", unreliable", "disagrees": ", calibration in doubt"}
    model = (
        "model estimate withheld (calibration failed)"
        if st.model_estimate == "withheld"
        else "no model estimate"
        if st.model_remaining_wrong is None
        else f"model {fmt(st.model_remaining_wrong)}{flag.get(st.model_estimate, '')}"
    )
    line = (
        f"wrong labels left in the pool (95% interval): observed {fmt(st.remaining_wrong)} · "
        f"{model}"
    )
    f = st.finder_estimate
    if f is not None and f.get("estimate") is not None and np.isfinite(f["estimate"]):
        line += (f" · finder, model-based (cleanlab): ≈ {f['estimate']:.0f} among the "
                 f"{f['n']} unanswered training items")
    return line


def _advice(
    per_round: pd.DataFrame, suspects_left: int | None, *, stop_below: float
) -> tuple[dict[str, float] | None, dict[str, float] | None, bool, str]:
    """Remaining / next-round wrong-label estimates and the stopping advice."""
    if suspects_left is None:
        return None, None, False, "no round yet: run 'labelrefine campaign step'"
    done = per_round[per_round["labeled"] > 0]
    remaining = next_wrong = None
    if len(done):
        last = done.iloc[-1]
        p, lo, hi = (float(last[k]) for k in ("query_precision", "wrong_low", "wrong_high"))
        remaining = {
            "estimate": suspects_left * p,
            "low": suspects_left * lo,
            "high": suspects_left * hi,
        }
        size = min(int(per_round.iloc[-1]["queued"]), suspects_left)
        next_wrong = {"estimate": size * p, "low": size * lo, "high": size * hi, "queue": size}
    if suspects_left == 0:
        return (
            remaining,
            next_wrong,
            True,
            ("the pool is exhausted: every item the model did not trust has been read; stop"),
        )
    if len(done) >= 2:
        shares = [float(x) for x in done["query_precision"].iloc[-2:]]
        if all(s < stop_below for s in shares):
            found = " and ".join(f"{100 * s:.1f}%" for s in shares)
            return (
                remaining,
                next_wrong,
                False,
                (
                    f"the last 2 rounds found {found} wrong labels (< {100 * stop_below:.0f}%): "
                    "another round is unlikely to be worth it; stop, or switch sampler"
                ),
            )
    if next_wrong is None:
        return remaining, next_wrong, False, "answer the queue to get an observed estimate"
    return (
        remaining,
        next_wrong,
        False,
        (
            f"continue: a next round of {next_wrong['queue']} items should find about "
            f"{next_wrong['estimate']:.0f} wrong labels (95% interval {next_wrong['low']:.0f}-"
            f"{next_wrong['high']:.0f}); about {remaining['estimate']:.0f} "  # type: ignore[index]
            f"({remaining['low']:.0f}-{remaining['high']:.0f}) may remain in the pool"  # type: ignore[index]
        ),
    )


def items_for_minutes(ledger: Ledger, minutes: float) -> int:
    """How many items fit in ``minutes`` of expert time, at this campaign's mean seconds per
    answer so far. CampaignError when no answer has been timed yet."""
    if not (math.isfinite(minutes) and minutes > 0):
        raise CampaignError(f"--budget-minutes must be a positive number, got {minutes}")
    secs = ledger.answers(include_retracted=True)["seconds"].dropna()
    secs = secs[secs > 0]
    if secs.empty:
        raise CampaignError(
            "no timed answers yet, so minutes cannot be turned into items; give --budget ITEMS "
            "for the first round"
        )
    n = int(minutes * 60 // float(secs.mean()))
    if n < 1:
        raise CampaignError(
            f"{minutes:g} expert-minutes buy no item at {float(secs.mean()):.0f} s per answer"
        )
    return n


def _strategy(rounds: pd.DataFrame) -> str:
    """The campaign's strategy, stored with round 0's settings (``paper`` for older ledgers)."""
    if rounds.empty:
        return "paper"
    return str(rounds["settings"].iloc[0].get("strategy", "paper"))
