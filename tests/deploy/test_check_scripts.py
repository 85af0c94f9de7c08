"""deploy/checks/*.sh, the end-to-end deployment checks, at least parse, and pass shellcheck.

Running them needs root, a Docker engine or systemd-nspawn and network (deploy/checks/README.md);
these tests only run ``bash -n`` on them, and shellcheck when it is installed; without it they
skip, unless ``GUARDBOT_REQUIRE_SHELLCHECK=1`` (CI, which installs it) turns the skip into a
failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHECKS = Path(__file__).resolve().parents[2] / "deploy" / "checks"
SCRIPTS = sorted(CHECKS.glob("*.sh"))


def test_the_check_scripts_exist() -> None:
    assert {p.name for p in SCRIPTS} >= {"docker.sh", "systemd.sh"}
    assert (CHECKS / "README.md").is_file()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_it(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_is_clean(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        reason = "shellcheck is not installed (Debian package shellcheck)"
        if os.environ.get("GUARDBOT_REQUIRE_SHELLCHECK") == "1":
            pytest.fail(reason + " and GUARDBOT_REQUIRE_SHELLCHECK=1")
        pytest.skip(reason)
    result = subprocess.run(
        [shellcheck, "--shell=bash", str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
