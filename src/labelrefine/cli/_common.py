"""Shared CLI helpers: one console, and turning known errors into clean exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)


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
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except NonFiniteError as err:  # training diverged: one line naming the stage and the cause
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except ValidationError as err:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": str(err)}
        where = ".".join(str(x) for x in first.get("loc", ()))
        console.print(
            f"[bold red]error:[/] "
            f"{escape((where + ': ' if where else '') + str(first.get('msg', '')))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
