"""Shared by the browser tests (imported by them; not a test module): Debian's Chromium
through Playwright (nothing is downloaded), and a campaign served by uvicorn in a child
process on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium's flags for a headless run with nothing fetched from the network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "e2e-admin-token"
_SERVE = (
    "import sys, uvicorn; from labelrefine.web.app import create_app; "
    "uvicorn.run(create_app(sys.argv[1], token=sys.argv[2]), host='127.0.0.1', "
    "port=int(sys.argv[3]), log_level='warning')"
)


@contextmanager
def served(ledger_path: Path) -> Iterator[str]:
    """The campaign's web app on a free local port (its URL), stopped on exit; skips the test
    when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip("headless browser test needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(ledger_path), TOKEN, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/static/app.js", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the web app did not start on {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
