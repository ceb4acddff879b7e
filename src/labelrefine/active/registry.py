"""The sampler registry: name -> a sampler object that ranks a pool view and explains its picks.

Everything that lists samplers derives from :data:`REGISTRY`: the config's allowed values
(``pipelines[].sampler``, ``plus.sampler``; :func:`sampler_names`, :func:`score_sampler_names`),
the ``campaign step --sampler`` choices, the campaign's checks,
:func:`labelrefine.active.ranking.ranked` / ``explain`` and the model outputs a round computes
(:func:`labelrefine.active.round.propose` asks for :attr:`Sampler.needs` only).

A sampler sees one :class:`PoolView` (the pool's items in ascending order with the model
outputs it needs, the seed and the device) and holds its own options as attributes
(e.g. :class:`Coreset`'s large-pool approximation, :class:`Neighbours`' ``k``). Adding a
sampler (docs/design.md, "Where to add") is one class and one line in :data:`REGISTRY`
here -- a :class:`ScoreSampler` needs ``score(view)`` (higher = query first) and
``reason(...)`` -- plus its test; config validation and the command-line choices follow.

This module is light (numpy only; scipy, cleanlab, scikit-learn and torch are imported when a
sampler runs), so the config and the command line can list names without loading them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labelrefine import extensions
from labelrefine.active.reasons import against_given, class_name, given_suffix, percent, top_classes

#: The model outputs a sampler may need, aligned with the pool: predicted probabilities, the
#: current labels, penultimate-layer embeddings of the pool and of the trusted set.
INPUTS = ("probs", "given_labels", "pool_features", "center_features")
#: What a sampler sees of the pool beyond the items: the outputs it needs are set, others None.
_VIEW_FIELD = {"probs": "probs", "given_labels": "given_labels",
               "pool_features": "features", "center_features": "centres"}

__all__ = ["INPUTS", "REGISTRY", "SAMPLER_NAMES", "SCORE_SAMPLER_NAMES", "Coreset", "Picks",
           "PoolView", "Sampler", "ScoreSampler", "get_sampler", "register",
           "sampler_names", "sampler_needs", "score_sampler_names"]


@dataclass(frozen=True)
class PoolView:
    """What a sampler receives: ``n`` pool rows in ascending item order, excluded items dropped.

    ``probs`` ``(n, C)``, ``given_labels`` ``(n,)``, ``features`` ``(n, D)`` (penultimate-layer
    embeddings of the pool) and ``centres`` ``(m, D)`` (of the trusted set, ``m`` may be 0);
    each None unless the caller passed it. ``seed`` seeds any randomness, ``device`` is where
    a sampler may compute (``cpu``, ``cuda``).
    """

    items: np.ndarray
    probs: np.ndarray | None = None
    given_labels: np.ndarray | None = None
    features: np.ndarray | None = None
    centres: np.ndarray | None = None
    seed: int = 0
    device: Any = "cpu"

    @property
    def n(self) -> int:
        return int(np.asarray(self.items).shape[0])

    def require(self, sampler: str, needs: Sequence[str]) -> None:
        """``ValueError`` naming the first needed input that is missing."""
        for need in needs:
            if getattr(self, _VIEW_FIELD[need]) is None:
                raise ValueError(f"sampler {sampler!r} needs {need}")


@dataclass(frozen=True)
class Picks:
    """A sampler's answer: ``positions`` into the view (query first), the score of each and,
    for a set sampler such as coreset, each view row's distance to the nearest centre;
    ``evidence``: per-pick rows a sampler computed while ranking and its reasons read
    (``neighbours``: the label shares of each pick's nearest items), so explaining does not
    redo the work."""

    positions: np.ndarray
    scores: np.ndarray
    distances: np.ndarray | None = None
    evidence: np.ndarray | None = None


class Sampler(ABC):
    """One registered sampler: how it ranks a :class:`PoolView` and why it picked an item."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]
    summary: ClassVar[str]

    @property
    def explain_needs(self) -> tuple[str, ...]:
        """What :meth:`explain` reads from the view (default: everything ranking needs)."""
        return self.needs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(getattr(cls, "needs", ())) - set(INPUTS)
        if unknown:
            raise ValueError(f"sampler {cls.__name__}: unknown inputs {sorted(unknown)}")

    @abstractmethod
    def rank(self, view: PoolView, k: int) -> Picks:
        """The ``k`` positions of ``view`` to query first."""

    @abstractmethod
    def explain(self, view: PoolView, picks: Picks,
                class_names: Sequence[str] | None) -> list[str]:
        """One short plain-word reason per pick."""


def _row(view: PoolView, i: int) -> np.ndarray | None:
    return None if view.probs is None else view.probs[i]


def _given(view: PoolView, i: int) -> int | None:
    return None if view.given_labels is None else int(view.given_labels[i])


class ScoreSampler(Sampler):
    """A sampler that ranks by one score per item (higher = query first; ties: lower item)."""

    @abstractmethod
    def score(self, view: PoolView) -> np.ndarray:
        """``(view.n,)`` query-first scores."""

    @abstractmethod
    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        """Why row ``i`` of ``view`` ranks high."""

    def rank(self, view: PoolView, k: int) -> Picks:
        scores = np.asarray(self.score(view))
        local = np.argsort(-scores, kind="stable")[:k]
        return Picks(positions=local, scores=scores[local])

    def explain(self, view: PoolView, picks: Picks,
                class_names: Sequence[str] | None) -> list[str]:
        return [self.reason(view, int(i), class_names) for i in picks.positions]


def _scores() -> Any:
    from labelrefine.active import scores  # scipy: imported when a sampler runs

    return scores


def _label_quality() -> Any:
    from labelrefine.active import label_quality  # cleanlab: imported when a sampler runs

    return label_quality


def _unsure(row: np.ndarray) -> bool:
    """Whether no class stands out: normalised entropy above the joint ranker's threshold."""
    from scipy.special import entr

    return float(entr(row).sum()) / math.log(row.shape[0]) > _scores().JOINT_THRESHOLD


def _unsure_words(row: np.ndarray, names: Sequence[str] | None) -> str:
    return f"the model is unsure: {top_classes(row, names)}; no class stands out"


class Random(ScoreSampler):
    name, needs, summary = "random", (), "seeded random order"

    def score(self, view: PoolView) -> np.ndarray:
        return _scores().random_scores(view.n, view.seed)

    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        row, given = _row(view, i), _given(view, i)
        if row is None:
            return "random pick (seeded)"
        if given is None:
            pred = int(np.argmax(row))
            return (f"random pick (seeded); the model finds {class_name(names, pred)} most "
                    f"likely ({percent(row[pred])})")
        return f"random pick (seeded); {against_given(row, given, names)}"


class Entropy(ScoreSampler):
    name, needs, summary = "entropy", ("probs",), "highest predictive entropy first"

    def score(self, view: PoolView) -> np.ndarray:
        return _scores().entropy_scores(view.probs)

    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        row = _row(view, i)
        assert row is not None
        # Entropy ranks the pool; call the model unsure only when it is, else say this is the
        # least certain item left (a confident pick is ranked first in a confident pool).
        if _unsure(row):
            msg = _unsure_words(row, names)
        else:
            favoured = top_classes(row, names, 1)
            msg = f"the least certain item left, though the model favours {favoured}"
        return msg + given_suffix(_given(view, i), names)


class Margin(ScoreSampler):
    name, needs, summary = ("margin", ("probs",),
                            "smallest gap between the top two classes first")

    def score(self, view: PoolView) -> np.ndarray:
        return _scores().margin_scores(view.probs)

    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        row = _row(view, i)
        assert row is not None
        top = np.argsort(-row, kind="stable")[:2]
        a, b = (f"{class_name(names, int(c))} ({percent(row[c])})" for c in top)
        return f"the model hesitates between {a} and {b}" + given_suffix(_given(view, i), names)


class _LabelSampler(ScoreSampler):
    """Score samplers that compare the model with the given label (reasons start alike)."""

    needs: ClassVar[tuple[str, ...]] = ("probs", "given_labels")
    #: added when no class stands out (None: say nothing about the spread)
    unsure_note: ClassVar[str | None] = None
    #: added to every reason
    note: ClassVar[str] = ""

    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        row, given = _row(view, i), _given(view, i)
        assert row is not None and given is not None
        if int(np.argmax(row)) == given:
            msg = (f"the model agrees with the given {class_name(names, given)}, but only at "
                   f"{percent(row[given])}")
        else:
            msg = against_given(row, given, names)
        if self.unsure_note is not None and _unsure(row):
            msg += f"; {self.unsure_note}: {top_classes(row, names)}"
        return msg + self.note


class Joint(_LabelSampler):
    name = "joint"
    summary = "confident disagreement with the given label, ambiguous items demoted"
    unsure_note = "but no class stands out"

    def score(self, view: PoolView) -> np.ndarray:
        return _scores().joint_scores(view.probs, view.given_labels)


class Confidence(_LabelSampler):
    name = "confidence"
    summary = "least probability on the given label first (confident learning)"

    def score(self, view: PoolView) -> np.ndarray:
        return _scores().confidence_scores(view.probs, view.given_labels)


class CleanlabQuality(_LabelSampler):
    name = "cl"
    summary = "lowest cleanlab label quality first (normalized margin)"
    note = "; cleanlab rates this label's quality low"

    def score(self, view: PoolView) -> np.ndarray:
        return _label_quality().cl_scores(view.probs, view.given_labels)


class Combined(_LabelSampler):
    name = "combined"
    summary = "label-quality rank mixed with the entropy rank (weight 0.25 on entropy)"
    unsure_note = "and the model is unsure"

    def score(self, view: PoolView) -> np.ndarray:
        return _label_quality().combined_scores(view.probs, view.given_labels)


#: Neighbours the ``neighbours`` sampler looks at.
NEIGHBOURS_K = 10


@dataclass(frozen=True)
class Neighbours(ScoreSampler):
    """Neighbour label disagreement: the share of an item's ``k`` nearest pool items (cosine
    distance between pool features) whose given label differs from the item's own. Needs no
    probabilities, so it ranks the same whatever the model's calibration."""

    k: int = NEIGHBOURS_K
    name: ClassVar[str] = "neighbours"
    needs: ClassVar[tuple[str, ...]] = ("given_labels", "pool_features")
    summary: ClassVar[str] = ("most of the nearest pool items (by features) carry another "
                              "label first")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"neighbours: k must be >= 1, got {self.k}")

    def distribution(self, view: PoolView) -> np.ndarray:
        """``(n, C)``: the share of each row's nearest pool items carrying each label."""
        from labelrefine.active.finding import neighbour_label_distribution

        assert view.given_labels is not None and view.features is not None
        y = np.asarray(view.given_labels, dtype=np.int64)
        c = view.probs.shape[1] if view.probs is not None else int(y.max(initial=0)) + 1
        if y.size < 2:
            out = np.zeros((y.size, c))
            out[np.arange(y.size), y] = 1.0  # no neighbours: nothing disagrees
            return out
        return neighbour_label_distribution(view.features, y, c, k=self.k)

    def score(self, view: PoolView) -> np.ndarray:
        return self._disagreement(view, self.distribution(view))

    def _disagreement(self, view: PoolView, dist: np.ndarray) -> np.ndarray:
        from labelrefine.active.scores import _as_features

        _as_features(view.features, "pool_features", n=view.n)
        assert view.given_labels is not None
        y = np.asarray(view.given_labels, dtype=np.int64)
        return 1.0 - dist[np.arange(y.size), y]

    def rank(self, view: PoolView, k: int) -> Picks:
        dist = self.distribution(view)  # one neighbour search for the ranking and its reasons
        scores = self._disagreement(view, dist)
        local = np.argsort(-scores, kind="stable")[:k]
        return Picks(positions=local, scores=scores[local], evidence=dist[local])

    def explain(self, view: PoolView, picks: Picks,
                class_names: Sequence[str] | None) -> list[str]:
        if view.n < 2:
            return ["no other pool item to compare with" for _ in picks.positions]
        rows = (picks.evidence if picks.evidence is not None
                else self.distribution(view)[np.asarray(picks.positions, dtype=np.int64)])
        k = min(self.k, view.n - 1)
        return [self._reason(row, _given(view, int(i)), k, class_names)
                for row, i in zip(rows, picks.positions, strict=True)]

    def reason(self, view: PoolView, i: int, names: Sequence[str] | None) -> str:
        return self.explain(view, Picks(np.array([i]), np.zeros(1)), names)[0]

    @staticmethod
    def _reason(shares: np.ndarray, given: int | None, k: int,
                names: Sequence[str] | None) -> str:
        assert given is not None
        counts = np.rint(shares * k).astype(np.int64)
        g = class_name(names, given)
        msg = f"{int(counts[given])} of the {k} most similar images carry the given {g}"
        others = counts.copy()
        others[given] = -1
        top = int(np.argmax(others))
        if others[top] > 0:
            msg += f"; {int(others[top])} carry {class_name(names, top)}"
        return msg


@dataclass(frozen=True)
class Coreset(Sampler):
    """Greedy k-center on the pool features, the trusted set as the initial centres.

    Options: ``metric`` (``euclidean`` or ``cosine``) and the large-pool approximation. With
    ``n`` pool items, ``D`` feature dimensions and ``m`` centres, greedy k-center is exact
    while ``n * D * (m + k) <= exact_work`` (times 100 on a non-CPU device; None = always
    exact); above it features are randomly projected to ``project_dim`` dimensions (None
    keeps them all) and, when ``max_pool`` is given, the greedy runs on a seeded subsample of
    that many items (:func:`labelrefine.active.coreset.coreset_select`).
    """

    metric: str = "euclidean"
    exact_work: float | None = 1e11  # = coreset.CORESET_EXACT_WORK (torch-free here)
    project_dim: int | None = 64  # = coreset.CORESET_PROJECT_DIM
    max_pool: int | None = None
    name: ClassVar[str] = "coreset"
    needs: ClassVar[tuple[str, ...]] = ("pool_features", "center_features")
    summary: ClassVar[str] = ("farthest from the clean set and from earlier picks "
                              "(greedy k-center)")

    def rank(self, view: PoolView, k: int) -> Picks:
        from labelrefine.active.coreset import pick_for_ranking  # torch: imported when used

        view.require(self.name, self.needs)
        assert view.features is not None and view.centres is not None
        local, scores, distances = pick_for_ranking(
            view.features, view.centres, k, view.seed, metric=self.metric,  # type: ignore[arg-type]
            exact_work=self.exact_work, project_dim=self.project_dim, max_pool=self.max_pool,
            device=view.device)
        return Picks(positions=local, scores=scores, distances=distances)

    @property
    def explain_needs(self) -> tuple[str, ...]:
        return ()  # the distances travel in the picks

    def explain(self, view: PoolView, picks: Picks,
                class_names: Sequence[str] | None) -> list[str]:
        return coreset_reasons(picks.positions, picks.distances, picks.scores)


def coreset_reasons(idx: np.ndarray, distances: np.ndarray | None,
                    scores: np.ndarray | None) -> list[str]:
    """Coreset's reasons: how far each pick lies from the clean set (against the pool's
    median distance), or, with no clean items, from the earlier picks."""
    median = math.nan
    if distances is not None:
        finite = np.asarray(distances, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            median = float(np.median(finite))
    out = []
    for t, i in enumerate(idx):
        d = math.nan if distances is None else float(distances[i])
        if math.isfinite(d):
            out.append(f"unlike every clean sample (distance {d:.3g}, pool median {median:.3g})")
        else:
            extra = ""
            if scores is not None and math.isfinite(float(scores[t])):
                extra = f"; distance {float(scores[t]):.3g} to earlier picks"
            out.append(f"spread-out pick, no clean samples to compare with{extra}")
    return out


#: name -> the sampler with its default options, in the order the choices are listed.
REGISTRY: dict[str, Sampler] = {
    s.name: s for s in (Random(), Entropy(), Margin(), Joint(), Confidence(), Coreset(),
                        CleanlabQuality(), Combined(), Neighbours())
}


def register(sampler: Sampler) -> Sampler:
    """Add ``sampler`` under its name (``ValueError`` if the name is taken); returns it."""
    if sampler.name in REGISTRY:
        raise ValueError(f"sampler {sampler.name!r} is already registered")
    REGISTRY[sampler.name] = sampler
    return sampler


def sampler_names() -> tuple[str, ...]:
    """Registered sampler names, in registry order (read now, so later entries count)."""
    return tuple(REGISTRY)


def score_sampler_names(inputs: Collection[str] = INPUTS) -> tuple[str, ...]:
    """Registered samplers that rank by a per-item score and need only ``inputs``."""
    return tuple(n for n, s in REGISTRY.items()
                 if isinstance(s, ScoreSampler) and set(s.needs) <= set(inputs))


#: The built-in sampler names (:func:`sampler_names` also sees later entries).
SAMPLER_NAMES: tuple[str, ...] = sampler_names()
#: The built-in samplers that rank by a per-item score.
SCORE_SAMPLER_NAMES: tuple[str, ...] = score_sampler_names()


def get_sampler(name: str | Sampler) -> Sampler:
    """The registered sampler ``name`` (a sampler object is returned as is); ``ValueError``
    listing the choices otherwise."""
    if isinstance(name, Sampler):
        return name
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown sampler {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None


def sampler_needs(name: str | Sampler) -> tuple[str, ...]:
    """The model outputs sampler ``name`` needs (a subset of :data:`INPUTS`)."""
    return get_sampler(name).needs


extensions.offer(sampler_names=sampler_names, score_sampler_names=score_sampler_names)
