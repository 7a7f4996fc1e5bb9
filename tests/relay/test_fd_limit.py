"""The soft open-file limit is raised to the hard one at start (fd_limit.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")

_PROBE = (
    "import resource; from desktop_relay.fd_limit import raise_open_files_limit; "
    "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))"
)


def test_soft_limit_is_raised_to_the_hard_one() -> None:
    out = subprocess.run(
        ["prlimit", "--nofile=300:700", sys.executable, "-c", _PROBE],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert out.strip() == "(300, 700) (700, 700)", out


def test_a_limit_already_at_the_hard_one_is_left_alone() -> None:
    out = subprocess.run(
        ["prlimit", "--nofile=500:500", sys.executable, "-c", _PROBE],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert out.strip() == "(500, 500) (500, 500)", out
