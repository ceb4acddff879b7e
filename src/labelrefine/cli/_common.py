"""Shared CLI helpers: one console, and turning known errors into clean exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console(stderr=True)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print known user errors (bad data, bad config) as one red line and exit with code 2."""
    from labelrefine.config import ConfigError
    from labelrefine.data.dataset import DataError

    try:
        yield
    except (ConfigError, DataError, FileNotFoundError) as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(code=2) from None
