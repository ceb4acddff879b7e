"""The ``labelrefine`` command line: one typer app, one sub-module per area."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="labelrefine",
    help=(
        "Find and fix wrong labels in imbalanced medical image classification data: "
        "Co-teaching regularised by Variance of Gradients, then active label cleaning "
        "with a simulated or real expert."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from labelrefine import __version__

        typer.echo(f"labelrefine {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """labelrefine: learning with noisy labels + active label cleaning."""


# Each area registers its commands below (one module per area under labelrefine.cli).

from labelrefine.cli.data import data_app  # noqa: E402

app.add_typer(data_app, name="data")
from labelrefine.cli.run import report_command, run_command  # noqa: E402

app.command("run")(run_command)
app.command("report")(report_command)
from labelrefine.cli.campaign import campaign_app, serve  # noqa: E402

app.add_typer(campaign_app, name="campaign")
app.command("serve")(serve)
from labelrefine.cli.lnl import lnl_command  # noqa: E402

app.command("lnl")(lnl_command)
from labelrefine.cli.embed import embed_command  # noqa: E402

app.command("embed")(embed_command)
from labelrefine.cli.cache import cache_app  # noqa: E402

app.add_typer(cache_app, name="cache")
from labelrefine.cli.find import find_command  # noqa: E402

app.command("find")(find_command)
