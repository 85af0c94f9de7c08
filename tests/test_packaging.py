"""pip install guardbot: the metadata, the extras, and a base install that runs.

The wheel test builds the wheel from a copy of the source (the build needs setuptools from the
package index), installs it into a new virtual environment with the base dependencies only and
runs ``guardbot --version`` there. It takes about a minute, so it runs when
``GUARDBOT_REQUIRE_PACKAGING=1`` (set by ``.ci/run``), where it must pass, and is skipped
otherwise (``GUARDBOT_REQUIRE_PACKAGING=1 make test`` runs it locally).
"""

from __future__ import annotations

import ast
import email
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import guardbot
from guardbot.runtime.extras import EXTRAS, MissingExtraError, require_extra

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _name(requirement: str) -> str:
    """``"aiomqtt>=2.5,<3"`` -> ``"aiomqtt"``, normalised as in PEP 503."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imports() -> set[str]:
    """Top-level names of the third-party modules guardbot's code imports (lazily too)."""
    found: set[str] = set()
    for path in Path(guardbot.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "guardbot"}


def test_every_import_is_declared() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    for extra in EXTRAS:
        declared |= {_name(r) for r in extras[extra]}
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_imports()):
        names = {_name(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(names)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_extras_are_the_ones_the_code_names() -> None:
    extras = PROJECT["optional-dependencies"]
    distributions = packages_distributions()
    for extra, modules in EXTRAS.items():
        declared = {_name(r) for r in extras[extra]}
        for module in modules:
            assert {_name(d) for d in distributions.get(module, [module])} & declared, (
                extra,
                module,
            )
    # The base install carries none of the optional weight (issue 15).
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert not base & {"matplotlib", "numpy", "amqtt", "apprise"}


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(MissingExtraError) as info:
        require_extra("report", "guardbot report")
    assert str(info.value) == (
        "guardbot report needs the optional dependency 'matplotlib', which is not installed: "
        "pip install 'guardbot[report]'"
    )


def test_one_source_for_the_version() -> None:
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "guardbot.__version__"}


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _fail(what: str, result: subprocess.CompletedProcess[str]) -> None:
    pytest.fail(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


@pytest.mark.packaging
@pytest.mark.skipif(
    os.environ.get("GUARDBOT_REQUIRE_PACKAGING") != "1",
    reason="about a minute with the package index: set GUARDBOT_REQUIRE_PACKAGING=1 (CI does)",
)
def test_wheel_metadata_and_a_base_install_that_runs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "guardbot", source / "guardbot", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source)
    if built.returncode != 0:
        _fail("building the wheel", built)
    (wheel,) = dist.glob("guardbot-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"guardbot-{guardbot.__version__}.dist-info"
        meta = email.message_from_string(archive.read(f"{info}/METADATA").decode("utf-8"))
    assert f"{info}/licenses/LICENSE" in names
    assert "guardbot/py.typed" in names
    assert any(n.startswith("guardbot/data/") and n.endswith(".json") for n in names)
    assert meta["Name"] == "guardbot"
    assert meta["Version"] == guardbot.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "guardbot" in (meta.get_payload() or "")  # the README is the long description
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert {"report", "broker", "notify"} <= set(meta.get_all("Provides-Extra") or [])
    base = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert not {_name(r) for r in base} & {"matplotlib", "amqtt", "apprise", "pytest"}

    venv = tmp_path / "venv"
    created = _run(sys.executable, "-m", "venv", venv)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "-q", wheel)
    if installed.returncode != 0:
        _fail("installing the wheel", installed)
    guardbot_bin = venv / "bin" / "guardbot"
    for flag in ("--version", "-V"):
        shown = _run(guardbot_bin, flag, cwd=tmp_path)
        assert (shown.returncode, shown.stdout) == (0, f"guardbot {guardbot.__version__}\n")
    # simulate runs on the base install; report names the extra it needs.
    simulate = _run(
        guardbot_bin, "simulate", ROOT / "examples" / "scenarios" / "demo.jsonl", cwd=tmp_path
    )
    assert simulate.returncode == 0, simulate.stderr
    report = _run(guardbot_bin, "report", tmp_path / "no-run", cwd=tmp_path)
    assert report.returncode == 2
    assert "pip install 'guardbot[report]'" in report.stderr
