"""The command line starts fast: importing it loads neither torch nor pandas (they are imported
inside the commands that need them), so every ``--help`` answers at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

HEAVY = ("torch", "torchvision", "pandas", "sklearn", "scipy", "onnxruntime", "matplotlib")


def test_importing_the_cli_loads_no_heavy_library():
    code = (
        "import sys, labelrefine.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing labelrefine.cli imported: {out}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["data", "info"],
        ["campaign"],
        ["campaign", "init"],
        ["campaign", "step"],
        ["campaign", "status"],
        ["campaign", "reader"],
        ["campaign", "backup"],
        ["campaign", "relocate"],
        ["serve"],
        ["lnl"],
        ["embed"],
        ["run"],
        ["report"],
        ["find"],
    ],
)
def test_every_help_works_without_heavy_imports(args):
    code = (
        "import sys; from typer.main import get_command; from labelrefine.cli import app; "
        f"get_command(app).main({args + ['--help']!r}, standalone_mode=False); "
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout
    assert res.stdout.strip().endswith("HEAVY:"), res.stdout[-300:]


def test_help_lists_the_campaign_commands():
    from labelrefine.cli import app

    res = CliRunner().invoke(app, ["campaign", "--help"])
    for cmd in ("reader", "backup", "relocate", "configure"):
        assert cmd in res.output
