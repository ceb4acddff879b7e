"""One registry per extension point: an entry added in one place is accepted by config
validation and listed in the command-line choices, with no second list to edit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from labelrefine.active import registry
from labelrefine.active.ranking import ranked
from labelrefine.config import ConfigError, DatasetConfig, PlusConfig, parse_config
from labelrefine.data import formats

BASE = {"dataset": {"format": "medmnist", "npz": "x.npz"}}


class _Last(registry.ScoreSampler):
    """A dummy score sampler: the last pool item first."""

    name = "last_first"
    needs = ("probs",)
    summary = "the highest item index first"

    def score(self, view: registry.PoolView) -> np.ndarray:
        return np.asarray(view.items, dtype=np.float64)

    def reason(self, view: registry.PoolView, i: int, names: Sequence[str] | None) -> str:
        return f"item {int(view.items[i])} comes last"


@pytest.fixture
def dummy_sampler(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    registry.register(_Last())
    yield _Last.name


def test_a_registered_sampler_is_accepted_everywhere(dummy_sampler: str) -> None:
    cfg = parse_config({**BASE, "pipelines": [{"name": "ours", "sampler": dummy_sampler}]})
    assert cfg.pipelines[0].sampler == dummy_sampler
    assert PlusConfig(sampler=dummy_sampler).sampler == dummy_sampler
    assert dummy_sampler in registry.sampler_names()  # what the CLI choices are made of
    probs = np.full((4, 2), 0.5)
    r = ranked(dummy_sampler, 2, pool=np.array([3, 9, 5, 1]), probs=probs)
    assert r.items.tolist() == [9, 5] and r.reasons == ("item 9 comes last", "item 5 comes last")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_Last())


def test_an_unregistered_sampler_is_refused_with_the_choices() -> None:
    assert "last_first" not in registry.sampler_names()
    with pytest.raises(ConfigError, match="unknown sampler 'last_first'; choose one of random"):
        parse_config({**BASE, "pipelines": [{"name": "ours", "sampler": "last_first"}]})


def test_sampler_names_are_the_cli_choices() -> None:
    from labelrefine.cli.campaign import Sampler

    assert [s.value for s in Sampler] == list(registry.sampler_names())


@pytest.fixture
def dummy_format(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats.formats()))

    def load(cfg, check_images, progress):  # noqa: ANN001, ANN202
        raise AssertionError("not loaded in this test")

    formats.register(formats.DatasetFormat("zarr_store", "a dummy layout", needs=("npz",),
                                           load=load, own_split=lambda cfg: "its groups"))
    yield "zarr_store"


def test_a_registered_format_is_accepted_everywhere(dummy_format: str) -> None:
    from labelrefine.cli.data import format_choices, split_source

    cfg = DatasetConfig(format=dummy_format, npz="x.zarr")
    assert cfg.format == dummy_format
    with pytest.raises(ValueError, match="format 'zarr_store' needs 'npz'"):
        DatasetConfig(format=dummy_format)
    assert format_choices()["zarr-store"] == dummy_format
    assert split_source(cfg) == "its groups"
    parsed = parse_config({"dataset": {"format": dummy_format, "npz": "x"},
                           "split": {"keep_dataset": True}})  # it carries its own split
    assert parsed.dataset.format == dummy_format


def test_an_unregistered_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown dataset format 'zarr_store'; choose one of "
                                          "csv, isic2019, medmnist, nct_crc, split_folders"):
        parse_config({"dataset": {"format": "zarr_store", "npz": "x"}})


def test_format_registry_is_every_module_of_the_package() -> None:
    import pkgutil

    modules = [m.name for m in pkgutil.iter_modules(formats.__path__)]
    assert len(modules) == len(formats.format_names()) == 5
    from labelrefine.cli.data import Format

    assert {f.value for f in Format} == {"csv", "isic2019", "medmnist", "nct-crc",
                                         "split-folders"}


def test_pipeline_registry_is_the_config_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from labelrefine import pipelines

    with pytest.raises(ConfigError, match="unknown pipeline 'mine'; choose one of ours, "):
        parse_config({**BASE, "pipelines": [{"name": "mine"}]})
    monkeypatch.setattr(pipelines, "PIPELINES", dict(pipelines.PIPELINES))
    pipelines.PIPELINES["mine"] = pipelines.PipelineEntry("mine", "a dummy")
    cfg = parse_config({**BASE, "pipelines": [{"name": "mine"}]})
    assert cfg.pipelines[0].name == "mine"
    # every entry names a module with its run_<name> function
    for name, entry in pipelines.PIPELINES.items():
        if name != "mine":
            assert entry.load() is getattr(importlib.import_module(
                f"labelrefine.pipelines.{name}"), f"run_{name}")


def test_config_checks_names_without_importing_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from labelrefine.config import parse_config; "
            "parse_config({'dataset': {'format': 'split_folders', 'images': 'x'}, "
            "'lnl': {'method': 'coteaching'}, "
            "'pipelines': [{'name': 'ours_plus', 'sampler': 'neighbours'}]}); "
            "print(sorted(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_registered_noise_model_is_accepted_and_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    from labelrefine.config import NoiseConfig
    from labelrefine.data import noise

    with pytest.raises(ValueError, match="unknown noise kind 'all_zero'; use one of none, "):
        NoiseConfig(kind="all_zero")
    monkeypatch.setattr(noise, "NOISE_MODELS", dict(noise.NOISE_MODELS))

    def zero(y, num_classes, rate, rng, t):  # noqa: ANN001, ANN202
        return np.zeros_like(y)

    noise.NOISE_MODELS["all_zero"] = noise.NoiseModel("all_zero", "every label 0", zero,
                                                      needs_transition=True)
    with pytest.raises(ValueError, match="kind 'all_zero' needs 'transition'"):
        NoiseConfig(kind="all_zero")
    assert NoiseConfig(kind="all_zero", transition=[[1.0]]).kind == "all_zero"
    y = np.array([1, 2, 1])
    assert noise.inject_noise(y, 3, "all_zero", 0.5, 0).tolist() == [0, 0, 0]
    assert y.tolist() == [1, 2, 1]
