"""Shared fixtures: the bundled data and small generated image folders / files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
HAM10000 = REPO_ROOT / "data" / "ham10000"

ImageWriter = Callable[..., Path]


def write_image(path: Path, seed: int = 0, size: int = 8, fmt: str | None = None) -> Path:
    """Write a small random RGB image (format from the suffix unless ``fmt``); return its path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@dataclass
class CsvFolder:
    """A generated image folder + label CSV."""

    images: Path
    csv: Path
    ids: list[str]
    labels: list[str]


@dataclass
class ClassFolders:
    """A generated NCT-CRC style root with one subfolder per class."""

    root: Path
    counts: dict[str, int]


# Tiny pipeline worlds: imbalanced 3-class features that cluster by true class (3 noisy views),
# shared by the pipeline and peer tests.
TINY_N, TINY_D, TINY_C = 360, 12, 3
TINY_BUDGET, TINY_ROUNDS = 12, 2


def tiny_pipeline_config(**active):
    """A two-round config for the tiny world; ``active`` overrides active-phase settings."""
    from labelrefine.config import parse_config

    return parse_config({
        "name": "tiny",
        "dataset": {"format": "medmnist", "npz": "unused.npz"},
        "noise": [{"kind": "symmetric", "rate": 0.4}],
        "lnl": {"epochs": 6, "warmup": 3, "batch_size": 64, "hidden": 32, "lr": 0.05,
                "mix": 0.5, "vog": {"window": 2}},
        "active": {"rounds": TINY_ROUNDS, "budget_per_round": TINY_BUDGET,
                   "epochs_per_round": 3, "lr": 0.05, **active},
        "seeds": [0],
    })


def tiny_pipeline_world(spread: float):
    """``(dataset, FeatureSource)``; ``spread``: standard deviation of the class centres."""
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.lnl.sources import FeatureSource

    n, d, c = TINY_N, TINY_D, TINY_C
    rng = np.random.default_rng(0)
    labels = rng.choice(c, size=n, p=[0.6, 0.25, 0.15]).astype(np.int64)
    centers = rng.normal(0.0, spread, size=(c, d))
    plain = centers[labels] + rng.normal(0.0, 1.0, size=(n, d))
    views = plain[None] + rng.normal(0.0, 0.3, size=(3, n, d))
    ds = ImageDataset(ids=tuple(f"i{i}" for i in range(n)), labels=labels,
                      class_names=("a", "b", "c"), images=np.zeros((n, 2, 2, 3), np.uint8))
    return ds, FeatureSource(views.astype(np.float16), plain.astype(np.float16))


def tiny_pipeline_context(world, seed: int = 0, **active):
    """The pipeline context of ``world`` under :func:`tiny_pipeline_config`."""
    from labelrefine.data.prepare import prepare_data
    from labelrefine.pipelines import PipelineContext

    ds, source = world
    cfg = tiny_pipeline_config(**active)
    noise = cfg.noise[0]
    data = prepare_data(ds, cfg.split, noise, None, seed)
    return PipelineContext(cfg=cfg, data=data, source=source, noise=noise, seed=seed)


@pytest.fixture(scope="module")
def tiny_images():
    """24 small RGB images of 3 classes with a class cue in the red channel (fine-tune mode)."""
    from labelrefine.data.dataset import ImageDataset

    rng = np.random.default_rng(0)
    n = 24
    labels = np.arange(n) % 3
    imgs = rng.integers(0, 60, size=(n, 24, 24, 3), dtype=np.uint8)
    imgs[..., 0] += (labels * 80).astype(np.uint8)[:, None, None]  # class cue in red
    return ImageDataset(ids=tuple(f"im{i}" for i in range(n)), labels=labels,
                        class_names=("a", "b", "c"), images=imgs)


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one intra-op thread is faster, above all on a shared machine. Modules of
    such tests use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def _feature_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never write to the user's feature cache: the default cache folder is a tmp dir."""
    os.environ["LABELREFINE_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def ham10000_dir() -> Path:
    """The bundled HAM10000 subset (``images/`` + ``labels.csv``)."""
    assert (HAM10000 / "labels.csv").is_file(), "bundled data/ham10000 is missing"
    return HAM10000


@pytest.fixture
def image_writer() -> ImageWriter:
    """``image_writer(path, seed=0, size=8, fmt=None)`` writes a tiny random RGB image."""
    return write_image


@pytest.fixture
def csv_folder(tmp_path: Path) -> CsvFolder:
    """12 tiny JPEGs in ``images/`` and ``labels.csv`` (image_id,dx): 6 'b', 4 'a', 2 'c'."""
    images = tmp_path / "images"
    labels = ["b"] * 6 + ["a"] * 4 + ["c"] * 2
    ids = [f"img_{i:02d}" for i in range(len(labels))]
    # CSV order differs from sorted order so tests can check the order is kept.
    order = [3, 0, 7, 1, 11, 5, 2, 9, 4, 10, 6, 8]
    ids = [ids[i] for i in order]
    labels = [labels[i] for i in order]
    for i, item in enumerate(ids):
        write_image(images / f"{item}.jpg", seed=i)
    csv = tmp_path / "labels.csv"
    lines = ["image_id,dx,extra"] + [f"{i},{y},x" for i, y in zip(ids, labels, strict=True)]
    csv.write_text("\n".join(lines) + "\n")
    return CsvFolder(images=images, csv=csv, ids=ids, labels=labels)


@pytest.fixture
def class_folders(tmp_path: Path) -> ClassFolders:
    """NCT-CRC layout with mixed image formats: ADI (3 .tif), MUC (2: .png, .JPG), TUM (4 .jpeg)."""
    root = tmp_path / "nct"
    for i in range(3):
        write_image(root / "ADI" / f"ADI-{i}.tif", seed=i)
    write_image(root / "MUC" / "MUC-0.png", seed=10)
    write_image(root / "MUC" / "MUC-1.JPG", seed=11, fmt="JPEG")
    for i in range(4):
        write_image(root / "TUM" / f"TUM-{i}.jpeg", seed=20 + i)
    (root / "TUM" / "notes.txt").write_text("not an image\n")
    (root / ".hidden").mkdir()
    return ClassFolders(root=root, counts={"ADI": 3, "MUC": 2, "TUM": 4})


@pytest.fixture
def medmnist_npz(tmp_path: Path) -> Path:
    """A MedMNIST-style .npz: grayscale 8x8 images, labels (N, 1), 3 classes; 10/4/6 per split."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 10), ("val", 4), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1).astype(np.uint8)
    path = tmp_path / "tinymnist.npz"
    np.savez(path, **arrays)
    return path
