"""Shared CLI helpers: one console for messages, one for tables, turning known errors into clean
exits, and printing user-provided text literally."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)
"""Progress, notes and errors (stderr)."""

results = Console()
"""Results a user may redirect to a file: tables, status (stdout)."""


def lit(value: Any) -> str:
    """``value`` as text that rich prints literally: names such as ``[/]`` or ``nevus
    [atypical]`` are data, never markup."""
    return escape(str(value))


def table(title: str, columns: list[str], *, left: tuple[str, ...] = ()) -> Table:
    """A table that wraps its cells instead of cutting them off (fits 80 columns); columns
    named in ``left`` are left-aligned, the others right-aligned. Add rows through
    :func:`add_row` so every cell prints literally."""
    t = Table(title=lit(title))
    for col in columns:
        t.add_column(lit(col), justify="left" if col in left else "right", overflow="fold")
    return t


def add_row(t: Table, cells: list[Any]) -> None:
    t.add_row(*(lit(c) for c in cells))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print known user errors (bad data, bad config) as one red line and exit with code 2."""
    from pydantic import ValidationError

    from labelrefine.config import ConfigError
    from labelrefine.data.dataset import DataError
    from labelrefine.validation import NonFiniteError

    try:
        yield
    except (ConfigError, DataError, FileNotFoundError) as err:
        _error(err)
        raise typer.Exit(code=2) from None
    except sqlite3.DatabaseError as err:  # a damaged or foreign campaign file
        _error(f"the campaign file cannot be read: {err}")
        raise typer.Exit(code=2) from None
    except NonFiniteError as err:  # training diverged: one line naming the stage and the cause
        _error(err)
        raise typer.Exit(code=1) from None
    except ValidationError as err:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": str(err)}
        where = ".".join(str(x) for x in first.get("loc", ()))
        _error(f"{where + ': ' if where else ''}{first.get('msg', '')}")
        raise typer.Exit(code=2) from None


def _error(err: Any) -> None:
    console.print(f"[bold red]error:[/] {lit(err)}", highlight=False, soft_wrap=True)
