"""``guardbot completion bash|zsh`` (issue 15 ask 5), in the shells themselves.

Each test starts an interactive shell on a pseudo-terminal (tests/cli/shells.py), installs the
script the way the README says (zsh: the file ``_guardbot`` in ``$fpath`` before ``compinit``, or
sourced after it; bash: sourced, or dropped into bash-completion's per-user folder and loaded on
demand), types a partial command line and TAB, and reads back the candidates and the line.
A shell that is not installed skips its tests, unless ``GUARDBOT_REQUIRE_ZSH=1`` /
``GUARDBOT_REQUIRE_BASH_COMPLETION=1`` (CI, which installs them) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardbot.cli.completion import bash_script, zsh_script
from guardbot.config.render import VENUES
from tests.cli.shells import Shell, bash_rc, interactive, zsh_rc

BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
COMMANDS = {"calc", "simulate", "run", "alerts", "status", "init", "config", "completion", "health"}


def require(ok: bool, reason: str, switch: str) -> None:
    if not ok:
        if os.environ.get(switch) == "1":
            pytest.fail(f"{reason} and {switch}=1")
        pytest.skip(reason)


def shell_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "INPUTRC": "/dev/null",
    }


@pytest.fixture(params=["fpath", "source"])
def zsh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shell]:
    """zsh with the completion autoloaded from $fpath (the README's way) or sourced."""
    require(shutil.which("zsh") is not None, "zsh is not installed", "GUARDBOT_REQUIRE_ZSH")
    functions = tmp_path / "functions"
    functions.mkdir()
    report = tmp_path / "report"
    if request.param == "fpath":
        (functions / "_guardbot").write_text(zsh_script(), encoding="utf-8")
        load = ""
    else:
        (tmp_path / "guardbot.zsh").write_text(zsh_script(), encoding="utf-8")
        load = f"source {tmp_path / 'guardbot.zsh'}"
    (tmp_path / ".zshrc").write_text(zsh_rc(report, functions, load), encoding="utf-8")
    env = {**shell_env(tmp_path), "ZDOTDIR": str(tmp_path)}
    with interactive(["zsh", "-i"], env, report) as shell:
        yield shell


@pytest.fixture
def bash(tmp_path: Path) -> Iterator[Shell]:
    """bash with the completion sourced; its ``COMPREPLY`` reported."""
    require(shutil.which("bash") is not None, "bash is not installed", "GUARDBOT_REQUIRE_BASH")
    script = tmp_path / "guardbot.bash"
    script.write_text(bash_script(), encoding="utf-8")
    report = tmp_path / "report"
    rc = tmp_path / "bashrc"
    rc.write_text(bash_rc(report, f"source {script}", wrap=True), encoding="utf-8")
    argv = ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
    with interactive(argv, shell_env(tmp_path), report) as shell:
        yield shell


def check_completes(shell: Shell, tmp_path: Path) -> None:
    """What a user gets from TAB, the same in either shell."""
    got = shell.complete("guardbot sta")
    assert (got.candidates, got.line) == (["status"], "guardbot status ")
    assert set(shell.complete("guardbot ").candidates) >= COMMANDS
    assert shell.complete("guardbot init --venue ").candidates == sorted(VENUES)
    assert shell.complete("guardbot init --venue b").candidates == sorted(
        v for v in VENUES if v.startswith("b")
    )
    assert shell.complete("guardbot --log-level de").line == "guardbot --log-level debug "
    assert shell.complete("guardbot --log-level debug ru").line == "guardbot --log-level debug run "
    got = shell.complete("guardbot run --str")
    assert (got.candidates, got.line) == (["--strategy"], "guardbot run --strategy ")
    assert {"--config", "--json", "--timeout"} <= set(
        shell.complete("guardbot status --").candidates
    )
    assert shell.complete("guardbot config ch").line == "guardbot config check "
    assert shell.complete("guardbot completion ").candidates == ["bash", "zsh"]
    # Values without choices complete file names.
    (tmp_path / "scenario.jsonl").write_text("", encoding="utf-8")
    got = shell.complete(f"guardbot calc {tmp_path}/scen")
    assert got.line == f"guardbot calc {tmp_path}/scenario.jsonl "
    assert shell.complete(f"guardbot run -c {tmp_path}/scen").line.endswith("/scenario.jsonl ")


def test_zsh_completes_commands_options_and_choices(zsh: Shell, tmp_path: Path) -> None:
    check_completes(zsh, tmp_path)


def test_zsh_completes_on_the_first_tab(zsh: Shell) -> None:
    """compinit autoloads ``_guardbot`` on the first TAB: that TAB must complete too."""
    assert zsh.complete("guardbot config ch").line == "guardbot config check "


def test_bash_completes_commands_options_and_choices(bash: Shell, tmp_path: Path) -> None:
    check_completes(bash, tmp_path)


def test_bash_completion_loads_from_the_per_user_folder(tmp_path: Path) -> None:
    """The README's install: the file in ~/.local/share/bash-completion/completions, which
    bash-completion loads on the first TAB after ``guardbot``."""
    require(
        BASH_COMPLETION.exists(),
        "bash-completion is not installed",
        "GUARDBOT_REQUIRE_BASH_COMPLETION",
    )
    folder = tmp_path / ".local" / "share" / "bash-completion" / "completions"
    folder.mkdir(parents=True)
    (folder / "guardbot").write_text(bash_script(), encoding="utf-8")
    report = tmp_path / "report"
    rc = tmp_path / "bashrc"
    rc.write_text(bash_rc(report, f"source {BASH_COMPLETION}", wrap=False), encoding="utf-8")
    argv = ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
    with interactive(argv, shell_env(tmp_path), report) as shell:
        assert shell.complete("guardbot sta").line == "guardbot status "
        assert shell.complete("guardbot config ch").line == "guardbot config check "
        assert shell.complete("guardbot run --str").line == "guardbot run --strategy "


def test_the_scripts_parse_and_the_cli_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    from guardbot.cli.main import main

    assert main(["completion", "bash"]) == 0
    assert capsys.readouterr().out == bash_script()
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out == zsh_script()
    assert zsh_script().startswith("#compdef guardbot\n")
    checks = [(["bash", "-n"], bash_script()), (["zsh", "-n"], zsh_script())]
    for argv, script in checks:
        if shutil.which(argv[0]):
            done = subprocess.run(argv, input=script, text=True, capture_output=True, timeout=30)
            assert done.returncode == 0, done.stderr
