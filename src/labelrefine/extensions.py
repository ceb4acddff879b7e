"""Extension points: where the configuration finds what the registries hold.

The registries -- samplers (:mod:`labelrefine.active.registry`), LNL methods
(:mod:`labelrefine.lnl.methods`), pipelines (:mod:`labelrefine.pipelines`), dataset formats
(:mod:`labelrefine.data.formats`) and noise models (:mod:`labelrefine.data.noise`) -- each
:func:`offer` their lookups here when their module is imported, and ``labelrefine/__init__.py``
imports them all (light modules: numpy at most), so they are offered before any configuration
is validated. :mod:`labelrefine.config` validates a name with :func:`use`, and so imports no
module above it: registries -> extensions <- config. A new sampler or format is still one entry
in its registry; nothing here changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_OFFERED: dict[str, Callable[..., Any]] = {}


def offer(**lookups: Callable[..., Any]) -> None:
    """Make each of ``lookups`` (name -> function) available to :func:`use`; a name offered
    again is replaced (a module re-imported offers the same functions again)."""
    _OFFERED.update(lookups)


def use(name: str) -> Callable[..., Any]:
    """The lookup offered as ``name``; ``LookupError`` naming what is offered otherwise."""
    try:
        return _OFFERED[name]
    except KeyError:
        raise LookupError(f"no registry offers {name!r} (offered: "
                          f"{', '.join(sorted(_OFFERED)) or 'nothing'}); import labelrefine "
                          "before validating a configuration") from None


__all__ = ["offer", "use"]
