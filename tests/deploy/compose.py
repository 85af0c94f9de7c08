"""Check a compose file the way ``docker compose config`` does, without Docker.

``docker compose`` (compose-go) reads the YAML (anchors and ``<<`` merge keys resolved),
interpolates ``${VAR}`` expressions in every value from the environment and ``.env``, validates
the result against the Compose Specification's JSON schema (vendored in
tests/data/compose-spec/, see its README.md), then parses what the schema leaves as plain
strings: port and volume short syntax, durations, the project name, restart policies, and the
references between services, volumes and profiles. :func:`compose_problems` does the same steps
and returns what ``docker compose config`` would refuse, one line per problem; where the
compose plugin is installed, :func:`assert_compose_accepts` also runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["ComposeError", "assert_compose_accepts", "compose_problems", "env_file", "load"]

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "compose-spec" / "compose-spec.json"

#: ``$$``, ``$NAME`` or ``${...}`` (compose-go's template.DefaultPattern, without nesting).
_TEMPLATE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)|\{(?P<braced>[^}]*)\})"
)
_BRACED = re.compile(r"(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)
#: Go's time.ParseDuration syntax, which compose uses for every duration.
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
#: compose-go's project name rule.
_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]*")
_PORT = re.compile(
    r"(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?:(?P<host>[0-9]+(?:-[0-9]+)?)?:)?"
    r"(?P<container>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?"
)
_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:[0-9]+)?")


class ComposeError(Exception):
    """What ``docker compose`` refuses before validation (a required variable unset)."""


def env_file(path: Path) -> dict[str, str]:
    """A ``.env`` file's ``NAME=value`` lines (comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[_a-zA-Z][_a-zA-Z0-9]*", name):
            raise ComposeError(f"{path.name}: not NAME=value: {line}")
        found[name] = value
    return found


def _substitute(text: str, env: Mapping[str, str], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        if braced is None:
            raise ComposeError(f"{where}: invalid interpolation format {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        value = env.get(name)
        empty = value is None or (value == "" and (op or "").startswith(":"))
        if op is None:
            return value or ""
        if op.endswith("-"):
            return arg if empty else str(value)
        if op.endswith("?"):
            if empty:
                raise ComposeError(f"{where}: required variable {name} is missing a value: {arg}")
            return str(value)
        return "" if empty else arg  # "+": the argument when set

    return _TEMPLATE.sub(one, text)


def _interpolate(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return _substitute(node, env, where)
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def load(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file as ``docker compose`` sees it before validation: YAML, interpolated."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ComposeError(f"{path.name}: not a mapping at the top")
    loaded = _interpolate(raw, env, path.name)
    assert isinstance(loaded, dict)
    return loaded


def _schema_problems(document: Mapping[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def _volume_problems(name: str, volume: Any, declared: set[str], base: Path) -> list[str]:
    if not isinstance(volume, str):
        return []
    parts = volume.split(":")
    if len(parts) == 1:
        return []  # an anonymous volume
    source, target = parts[0], parts[1]
    problems = []
    if len(parts) > 3 or not target.startswith("/"):
        problems.append(f"services.{name}.volumes: {volume!r}: not SOURCE:/TARGET[:MODE]")
    if len(parts) == 3 and not set(parts[2].split(",")) <= {"ro", "rw", "z", "Z", "nocopy"}:
        problems.append(f"services.{name}.volumes: {volume!r}: unknown mode {parts[2]!r}")
    if source.startswith((".", "/", "~")):
        if source.startswith(".") and not (base / source).resolve().parent.is_dir():
            problems.append(f"services.{name}.volumes: {source}: no such folder beside the file")
    elif source not in declared:
        problems.append(f"services.{name}.volumes: named volume {source!r} is not declared")
    return problems


def compose_problems(
    path: Path, env: Mapping[str, str], project_dir: Path | None = None
) -> list[str]:
    """What ``docker compose -f path config`` would refuse with ``env`` as its environment;
    relative paths are relative to ``project_dir`` (default: the file's folder)."""
    base = path.parent if project_dir is None else project_dir
    try:
        document = load(path, env)
    except ComposeError as exc:
        return [str(exc)]
    problems = _schema_problems(document)
    if problems:
        return problems
    name = document.get("name")
    if name is not None and not _PROJECT.fullmatch(str(name)):
        problems.append(f"name: {name!r} is not a valid project name")
    services: dict[str, Any] = document.get("services") or {}
    declared = set(document.get("volumes") or {})
    for service_name, service in services.items():
        profiles = set(service.get("profiles") or [])
        for dependency in service.get("depends_on") or []:
            other = services.get(dependency)
            if other is None:
                problems.append(f"services.{service_name}: depends on undefined {dependency!r}")
            elif other.get("profiles") and not profiles & set(other["profiles"]):
                # compose starts the service without the profile, then finds no such service
                problems.append(
                    f"services.{service_name}: depends on {dependency!r}, which only the "
                    f"profiles {other['profiles']} start"
                )
        for port in service.get("ports") or []:
            if isinstance(port, str) and not _PORT.fullmatch(port):
                problems.append(f"services.{service_name}.ports: {port!r}: not [[IP:]HOST:]PORT")
        for volume in service.get("volumes") or []:
            problems += _volume_problems(service_name, volume, declared, base)
        grace = service.get("stop_grace_period")
        if grace is not None and not _DURATION.fullmatch(str(grace)):
            problems.append(f"services.{service_name}.stop_grace_period: {grace!r}: no duration")
        restart = service.get("restart")
        if restart is not None and not _RESTART.fullmatch(str(restart)):
            problems.append(f"services.{service_name}.restart: {restart!r}: unknown policy")
        build = service.get("build")
        if isinstance(build, dict):
            context = (base / build.get("context", ".")).resolve()
            if not context.is_dir():
                problems.append(f"services.{service_name}.build.context: no folder {context}")
            elif not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(f"services.{service_name}.build.dockerfile: not in its context")
    return problems


def filled_in_env(path: Path) -> dict[str, str]:
    """``env.example`` beside ``path`` filled in as its comments ask (every value set)."""
    return {key: f"example-{key.lower()}" for key in env_file(path.parent / "env.example")}


def assert_compose_accepts(path: Path) -> None:
    """The compose file is valid with deploy/env.example filled in as deploy/.env; and
    ``docker compose config`` accepts it too where the compose plugin is installed."""
    env = filled_in_env(path)
    assert compose_problems(path, env) == []
    docker = shutil.which("docker")
    if docker is None:
        return
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return
    done = subprocess.run(
        [docker, "compose", "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert done.returncode == 0, done.stderr
