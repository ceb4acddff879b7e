"""Integration tests against real external programs (skipped when the program is missing)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "labelstudio: drives a real Label Studio server (needs LABELREFINE_LABEL_STUDIO)",
    )
