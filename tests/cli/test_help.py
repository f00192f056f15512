"""Every command answers --help, through the installed `linkage` console script."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli

COMMANDS = [
    [],
    ["keygen"],
    ["schema"],
    ["schema", "show"],
    ["schema", "check"],
    ["encode"],
    ["link"],
    ["demo"],
    ["bench"],
    ["bench", "match"],
    ["bench", "encode"],
    ["bench", "accuracy"],
    ["bench", "population"],
    ["bench", "service"],
    ["serve"],
    ["submit"],
    ["alerts"],
    ["alerts", "watch"],
    ["alerts", "list"],
    ["certs"],
    ["certs", "init"],
    ["certs", "issue"],
    ["audit"],
    ["audit", "verify"],
    ["audit", "export"],
]


def _linkage() -> str:
    found = shutil.which("linkage", path=str(Path(sys.executable).parent))
    assert found, "the linkage console script is not installed next to this Python"
    return found


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "linkage")
def test_help(command):
    result = subprocess.run(
        [_linkage(), *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_secret_is_not_an_option():
    result = subprocess.run(
        [_linkage(), "encode", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--secret-file" in result.stdout
    assert "--secret " not in result.stdout and "--key " not in result.stdout
