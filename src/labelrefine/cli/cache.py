"""``labelrefine cache info|clear``: inspect or empty the embedding cache folder."""

from __future__ import annotations

from pathlib import Path

import typer

from labelrefine.cli._common import console, friendly_errors, lit, results

cache_app = typer.Typer(
    help="Inspect or empty the feature cache (default: $LABELREFINE_CACHE_DIR or the user's "
    "cache folder, e.g. ~/.cache/labelrefine/features on Linux).",
    no_args_is_help=True,
)

_DIR_HELP = "Cache folder (default: $LABELREFINE_CACHE_DIR or the user's cache folder)."


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _folder(cache_dir: Path | None) -> Path:
    from labelrefine.models.cache import default_cache_dir

    return cache_dir if cache_dir is not None else default_cache_dir()


@cache_app.command("info")
def info_command(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_DIR_HELP),
) -> None:
    """List the cached feature files (encoder, size, views, items) and the total disk use."""
    with friendly_errors():
        from labelrefine.models.cache import list_cache

        root = _folder(cache_dir)
        entries = list_cache(root)
        results.print(f"cache folder: {lit(root)}", soft_wrap=True, highlight=False)
        if not entries:
            results.print("empty (nothing cached yet)")
            return
        for e in entries:
            m = e.meta
            if e.kind != "features":
                what = e.kind
            elif "error" in m:
                what = f"unreadable ({m['error']})"
            else:
                what = (f"{m.get('dataset')}: {m.get('items')} images, {m.get('encoder')} "
                        f"{m.get('image_size')} px, {m.get('views')} views + plain, "
                        f"runtime {m.get('runtime', 'torch')}")
            results.print(f"{_size(e.bytes):>9}  {e.path.relative_to(root)}  {what}",
                          markup=False, highlight=False)
        results.print(f"{len(entries)} files, {_size(sum(e.bytes for e in entries))}")


@cache_app.command("clear")
def clear_command(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_DIR_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete every cached feature file and exported encoder (they are recomputed on demand)."""
    with friendly_errors():
        from labelrefine.models.cache import clear_cache, list_cache

        root = _folder(cache_dir)
        entries = list_cache(root)
        if not entries:
            console.print(f"cache folder {lit(root)} is already empty", highlight=False)
            return
        total = _size(sum(e.bytes for e in entries))
        if not yes and not typer.confirm(f"delete {len(entries)} files ({total}) in {root}?"):
            console.print("nothing deleted")
            raise typer.Exit(code=1)
        files, freed = clear_cache(root)
        console.print(f"deleted {files} files ({_size(freed)}) from {lit(root)}",
                      highlight=False)
