"""load_strategy: files, entry points and the errors that say what to fix."""

from __future__ import annotations

from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path

import pytest

from guardbot.errors import GuardbotError
from guardbot.paper import Strategy, StrategyLoadError, load_strategy
from guardbot.paper.strategy import ENTRY_POINT_GROUP

SCRIPTED = Path(__file__).parent / "strategies" / "scripted.py"


def _write(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_a_class_from_a_file() -> None:
    cls = load_strategy(f"{SCRIPTED}:Scripted")
    assert issubclass(cls, Strategy) and cls.__name__ == "Scripted"
    assert cls({"a": 1}).params == {"a": 1}


def test_same_stem_in_two_directories_loads_both(tmp_path: Path) -> None:
    body = "from guardbot.paper import Strategy\nclass S(Strategy):\n    tag = {!r}\n"
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    one = load_strategy(f"{_write(tmp_path / 'x', body.format('x'), 's.py')}:S")
    two = load_strategy(f"{_write(tmp_path / 'y', body.format('y'), 's.py')}:S")
    assert (one.tag, two.tag) == ("x", "y")  # type: ignore[attr-defined]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError, match=r"file .*nope\.py not found"):
        load_strategy(f"{tmp_path / 'nope.py'}:S")


def test_missing_class_names_what_is_there() -> None:
    with pytest.raises(
        StrategyLoadError, match=r"has no class Nope \(strategies in the file: Scripted\)"
    ):
        load_strategy(f"{SCRIPTED}:Nope")


def test_not_a_strategy(tmp_path: Path) -> None:
    path = _write(tmp_path, "class S:\n    pass\nVALUE = 3\n")
    with pytest.raises(StrategyLoadError, match=r"is not a subclass of guardbot\.paper\.Strategy"):
        load_strategy(f"{path}:S")
    with pytest.raises(StrategyLoadError, match="is not a subclass"):
        load_strategy(f"{path}:VALUE")


def test_import_error_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "import no_such_module_here\n")
    with pytest.raises(StrategyLoadError, match=r"importing .* failed: ModuleNotFoundError"):
        load_strategy(f"{path}:S")


def test_file_without_class_name() -> None:
    with pytest.raises(StrategyLoadError, match=r"name the class too, as .*scripted\.py:ClassName"):
        load_strategy(str(SCRIPTED))


def test_bad_class_name() -> None:
    with pytest.raises(StrategyLoadError, match="is not a class name"):
        load_strategy(f"{SCRIPTED}:not-a-name")


def _entry_points(*entries: EntryPoint) -> object:
    def fake(*, group: str, name: str | None = None) -> EntryPoints:
        found = [e for e in entries if e.group == group and (name is None or e.name == name)]
        return EntryPoints(found)

    return fake


def test_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    good = EntryPoint("scripted", "tests.paper.strategies.scripted:Scripted", ENTRY_POINT_GROUP)
    wrong = EntryPoint("wrong", "guardbot.errors:GuardbotError", ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "no_such_module_here:X", ENTRY_POINT_GROUP)
    monkeypatch.setattr("guardbot.paper.strategy.entry_points", _entry_points(good, wrong, broken))
    assert load_strategy("scripted").__name__ == "Scripted"
    with pytest.raises(StrategyLoadError, match="is not a subclass"):
        load_strategy("wrong")
    with pytest.raises(StrategyLoadError, match="loading entry point no_such_module_here:X failed"):
        load_strategy("broken")
    with pytest.raises(StrategyLoadError, match=r"no entry point .* \(broken, scripted, wrong\)"):
        load_strategy("absent")


def test_no_entry_points_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("guardbot.paper.strategy.entry_points", _entry_points())
    with pytest.raises(StrategyLoadError, match="none installed") as info:
        load_strategy("momentum")
    assert isinstance(info.value, GuardbotError)  # the CLI reports it on one line, exit 2
