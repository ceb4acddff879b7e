"""labelrefine: find and fix wrong labels in imbalanced medical image classification data.

This module is where the extension points are wired: importing the registries (light modules,
no torch) has each offer its lookups to :mod:`labelrefine.extensions`, where the
configuration's validation finds them, so :mod:`labelrefine.config` imports nothing above it.
"""

__version__ = "0.1.0"

from labelrefine import pipelines as _pipelines  # noqa: E402, F401
from labelrefine.active import registry as _samplers  # noqa: E402, F401
from labelrefine.data import formats as _formats  # noqa: E402, F401
from labelrefine.data import noise as _noise  # noqa: E402, F401
from labelrefine.lnl import methods as _methods  # noqa: E402, F401
