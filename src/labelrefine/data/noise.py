"""Label noise models: symmetric, asymmetric (class -> next class), transition-matrix noise and
a class-dependent "clinical" model (each class flipped to its diagnostic look-alikes).

The kinds are registered in :data:`NOISE_MODELS` (the config's ``noise.kind`` values); adding
one is a draw function and an entry there, plus its test. All functions are pure: the input
labels are never modified, and the random draws come from
``np.random.default_rng(seed)`` only, so the same seed gives the same noise and different seeds
give different noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from labelrefine import extensions
from labelrefine.validation import check_labels

#: Diagnostic look-alikes of dermoscopy classes (HAM10000 / ISIC codes, case-insensitive):
#: ``class -> {look-alike: share of that class's wrong labels}``. A wrong label of a rare,
#: often malignant class is mostly the common benign class it is mistaken for (melanoma,
#: dermatofibroma and vascular lesions read as naevi; basal cell carcinoma and actinic
#: keratosis read as benign keratosis), and the common classes are confused with each other
#: and with melanoma (naevus vs melanoma, benign keratosis vs naevus). Rows are normalised
#: over the classes present in a dataset (ISIC-2019's ``ak`` is HAM10000's ``akiec``).
CLINICAL_LOOKALIKES: dict[str, dict[str, float]] = {
    "mel": {"nv": 0.7, "bkl": 0.3},
    "nv": {"mel": 0.6, "bkl": 0.4},
    "bkl": {"nv": 0.6, "mel": 0.3, "akiec": 0.1, "ak": 0.1},
    "bcc": {"bkl": 0.6, "nv": 0.3, "akiec": 0.1, "ak": 0.1},
    "akiec": {"bkl": 0.7, "bcc": 0.3},
    "ak": {"bkl": 0.6, "scc": 0.2, "bcc": 0.2},
    "scc": {"ak": 0.5, "akiec": 0.5, "bcc": 0.3, "bkl": 0.2},
    "df": {"nv": 0.8, "bkl": 0.2},
    "vasc": {"nv": 0.7, "mel": 0.3},
}


def _validate(labels: np.ndarray | Sequence[int], num_classes: int,
              name: str = "labels") -> np.ndarray:
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
    return check_labels(labels, num_classes, name=name).copy()


def validate_transition(transition: np.ndarray | Sequence[Sequence[float]], num_classes: int
                        ) -> np.ndarray:
    """Return ``transition`` as a float64 ``(C, C)`` row-stochastic matrix or raise ValueError.

    Rows must be non-negative and sum to 1 (within 1e-6); they are renormalised exactly.
    """
    t = np.asarray(transition, dtype=np.float64)
    if t.shape != (num_classes, num_classes):
        raise ValueError(
            f"transition matrix has shape {t.shape}, expected ({num_classes}, {num_classes})"
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("transition matrix has non-finite entries")
    neg = np.argwhere(t < 0)
    if len(neg):
        r, c = map(int, neg[0])
        raise ValueError(f"transition matrix entry [{r}][{c}] = {t[r, c]} is negative")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if len(bad):
        r = int(bad[0])
        raise ValueError(f"transition matrix row {r} sums to {sums[r]:.6f}, expected 1")
    return t / sums[:, None]


def clinical_transition(
    class_names: Sequence[str],
    lookalikes: dict[str, dict[str, float]] | None = None,
) -> np.ndarray:
    """Row-stochastic ``(C, C)`` matrix of where a wrong label of each class goes.

    Row ``c`` holds ``lookalikes[name_c]`` (default :data:`CLINICAL_LOOKALIKES`) restricted to
    the classes present in ``class_names`` (names matched case-insensitively) and normalised to
    sum 1; the diagonal is 0. Raises ``ValueError`` naming a class without look-alikes.
    """
    table = {k.lower(): v for k, v in (lookalikes or CLINICAL_LOOKALIKES).items()}
    names = [str(n).lower() for n in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class names are not unique: {list(class_names)}")
    pos = {n: i for i, n in enumerate(names)}
    c = len(names)
    t = np.zeros((c, c), dtype=np.float64)
    for i, name in enumerate(names):
        if name not in table:
            raise ValueError(
                f"clinical noise: no look-alikes for class {class_names[i]!r} "
                f"(known: {', '.join(sorted(table))})"
            )
        for target, weight in table[name].items():
            j = pos.get(target.lower())
            if j is None or j == i:
                continue
            if weight < 0:
                raise ValueError(f"clinical noise: negative weight {name} -> {target}")
            t[i, j] += float(weight)
        if t[i].sum() <= 0:
            raise ValueError(
                f"clinical noise: none of the look-alikes of {class_names[i]!r} "
                f"({', '.join(table[name])}) is a class of this dataset"
            )
        t[i] /= t[i].sum()
    return t


# ----------------------------------------------------------------------------- models


#: ``prepare(num_classes, transition, class_names) -> matrix or None``: checks what the kind
#: needs before anything is drawn.
Prepare = Callable[[int, "np.ndarray | Sequence[Sequence[float]] | None", "Sequence[str] | None"],
                   "np.ndarray | None"]
#: ``draw(labels, num_classes, rate, rng, matrix) -> noisy labels`` (``labels`` is a copy the
#: function may change; at least one label).
Draw = Callable[[np.ndarray, int, float, np.random.Generator, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class NoiseModel:
    """One registered noise kind (``noise.kind`` in the config)."""

    name: str
    summary: str
    draw: Draw
    prepare: Prepare = lambda num_classes, transition, class_names: None  # noqa: E731
    #: the config must give ``noise.transition``
    needs_transition: bool = False


def _per_class(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
               target: Callable[[int, int], np.ndarray | int]) -> np.ndarray:
    """For each class ``c``, ``round(rate * n_c)`` of its members (chosen uniformly) get the
    labels ``target(c, k)``."""
    out = y.copy()
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        k = int(round(rate * len(members)))
        if k:
            chosen = rng.choice(members, size=k, replace=False)
            out[chosen] = target(c, k)
    return out


def _draw_none(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
               t: np.ndarray | None) -> np.ndarray:
    return y.copy()


def _draw_symmetric(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
                    t: np.ndarray | None) -> np.ndarray:
    out = y.copy()
    n = len(y)
    k = int(round(rate * n))
    chosen = rng.choice(n, size=k, replace=False)
    offsets = rng.integers(1, num_classes, size=k)
    out[chosen] = (y[chosen] + offsets) % num_classes
    return out


def _draw_asymmetric(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
                     t: np.ndarray | None) -> np.ndarray:
    return _per_class(y, num_classes, rate, rng, lambda c, k: (c + 1) % num_classes)


def _prepare_matrix(num_classes: int, transition: np.ndarray | Sequence[Sequence[float]] | None,
                    class_names: Sequence[str] | None) -> np.ndarray:
    if transition is None:
        raise ValueError("noise kind 'matrix' needs a transition matrix")
    return validate_transition(transition, num_classes)


def _draw_matrix(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
                 t: np.ndarray | None) -> np.ndarray:
    assert t is not None
    out = y.copy()
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        if len(members):
            out[members] = rng.choice(num_classes, size=len(members), p=t[c])
    return out


def _prepare_clinical(num_classes: int,
                      transition: np.ndarray | Sequence[Sequence[float]] | None,
                      class_names: Sequence[str] | None) -> np.ndarray:
    if transition is not None:
        t = validate_transition(transition, num_classes)
        if np.any(np.diag(t) > 0):
            raise ValueError("clinical noise: the transition's diagonal must be 0 "
                             "(it says where *wrong* labels go)")
        return t
    if class_names is None:
        raise ValueError("noise kind 'clinical' needs the class names")
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    return clinical_transition(class_names)


def _draw_clinical(y: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
                   t: np.ndarray | None) -> np.ndarray:
    assert t is not None
    return _per_class(y, num_classes, rate, rng,
                      lambda c, k: rng.choice(num_classes, size=k, p=t[c]))


#: name -> noise model; the config's ``noise.kind`` values and :func:`inject_noise`'s kinds.
NOISE_MODELS: dict[str, NoiseModel] = {
    m.name: m for m in (
        NoiseModel("none", "labels as given", _draw_none),
        NoiseModel("symmetric", "round(rate * N) labels flipped to a uniform other class",
                   _draw_symmetric),
        NoiseModel("asymmetric", "per class, round(rate * n_c) labels flipped to the next class",
                   _draw_asymmetric),
        NoiseModel("matrix", "each label redrawn from its row of noise.transition",
                   _draw_matrix, _prepare_matrix, needs_transition=True),
        NoiseModel("clinical", "per class, round(rate * n_c) labels flipped to look-alikes",
                   _draw_clinical, _prepare_clinical),
    )
}
def get_noise_model(kind: str) -> NoiseModel:
    """The noise model ``kind``; ``ValueError`` listing the choices otherwise."""
    try:
        return NOISE_MODELS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown noise kind {kind!r}; use one of "
                         f"{', '.join(NOISE_MODELS)}") from None


def inject_noise(
    labels: np.ndarray | Sequence[int],
    num_classes: int,
    kind: str,
    rate: float,
    seed: int | np.random.SeedSequence,
    transition: np.ndarray | Sequence[Sequence[float]] | None = None,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Return a noisy copy of ``labels`` (int64); the input is never modified.

    Kinds (:data:`NOISE_MODELS`):

    - ``none``: an unchanged copy.
    - ``symmetric``: exactly ``round(rate * N)`` samples, chosen uniformly without replacement, each
      get a label drawn uniformly from the other ``C - 1`` classes.
    - ``asymmetric``: the fixed map ``c -> (c + 1) mod C``; for each class ``c`` exactly
      ``round(rate * n_c)`` of its samples (chosen uniformly) are flipped to ``c + 1``.
    - ``matrix``: each label ``y`` is replaced by a draw from row ``y`` of the row-stochastic
      ``transition`` matrix (``C x C``); ``rate`` is not used.
    - ``clinical``: for each class ``c`` exactly ``round(rate * n_c)`` of its samples (chosen
      uniformly) get a wrong label drawn from row ``c`` of :func:`clinical_transition`
      (``class_names`` required; ``transition``, when given, replaces that matrix and must have
      a zero diagonal). Every class is wrong at the same rate, so the overall rate is ``rate``
      as for ``symmetric``; only *where* the wrong labels go depends on the class: rare
      classes' wrong labels are mostly the common look-alike (mel -> nv, bcc -> bkl, akiec ->
      bkl, df -> nv, vasc -> nv), so the common classes' given labels hide most of the rare
      classes' items.

    ``round`` is Python's (halves to even). Draws come from ``np.random.default_rng(seed)``.
    """
    y = _validate(labels, num_classes)
    model = get_noise_model(kind)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must be in [0, 1], got {rate}")
    t = model.prepare(num_classes, transition, class_names)
    rng = np.random.default_rng(seed)
    if len(y) == 0:
        return y.copy()
    return model.draw(y, num_classes, rate, rng, t)


def noise_transition_matrix(
    true: np.ndarray | Sequence[int], given: np.ndarray | Sequence[int], num_classes: int
) -> np.ndarray:
    """Empirical transition matrix ``T[i, j] = P(given = j | true = i)``, shape ``(C, C)``.

    Rows of classes absent from ``true`` are all zero.
    """
    t = _validate(true, num_classes, "true")
    g = _validate(given, num_classes, "given")
    if t.shape != g.shape:
        raise ValueError(f"true has shape {t.shape} but given has {g.shape}")
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(counts, (t, g), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def noise_rate(true: np.ndarray | Sequence[int], given: np.ndarray | Sequence[int]) -> float:
    """Fraction of samples whose given label differs from the true one (0 for no samples)."""
    t, g = np.asarray(true), np.asarray(given)
    if t.shape != g.shape:
        raise ValueError(f"true has shape {t.shape} but given has {g.shape}")
    return float(np.mean(t != g)) if t.size else 0.0


extensions.offer(get_noise_model=get_noise_model)
