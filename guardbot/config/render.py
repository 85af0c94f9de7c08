"""Configuration as TOML text, from the schema: ``guardbot init``'s commented file for a venue and
``guardbot config check``'s effective configuration (secrets shown only as set / not set).
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot import __version__
from guardbot.config.schema import Field, Section, keys, sections
from guardbot.config.secret import EXCHANGE_SECRET_ENV, Secret
from guardbot.config.sections import Config
from guardbot.core.num import fmt
from guardbot.core.profiles import Profile, profile_for_exchange
from guardbot.core.settings import KEY

__all__ = ["VENUES", "commented_config", "effective_config", "toml_value"]

#: The ccxt exchange ids ``guardbot init`` writes a configuration for (each has a profile).
VENUES = ("binanceusdm", "bybit", "okx", "mexc", "bitget", "gate", "kucoinfutures")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_WIDTH = 99


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (numbers exact, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Profile):
        return json.dumps(value.name)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        shown = {f.name: getattr(value, f.attr) for f in keys(type(value))}
        return toml_value({k: v for k, v in shown.items() if v is not None})
    if value is None:
        return '""'
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, _WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# "
    )


# --- guardbot init -----------------------------------------------------------------------------


def commented_config(venue: str) -> str:
    """A commented configuration for ``venue`` (a ccxt exchange id): every key with its
    documentation and default; keys without a default commented out with an example."""
    profile = profile_for_exchange(venue)
    if profile is None:
        raise ValueError(f"no profile for exchange {venue!r}")
    out = [
        f"# guardbot {__version__} configuration for {venue} (written by `guardbot init`).",
        "#",
        "# Every key below shows its default. Any scalar key can also be set from the environment",
        "# as GUARDBOT_<SECTION>_<KEY> (e.g. GUARDBOT_MQTT_URL). Secrets never go in this file:",
        "# exchange credentials come from",
        "#   " + ", ".join(EXCHANGE_SECRET_ENV.values()) + ";",
        "# the MQTT password and the control token from the variables named below.",
        "# Check it with `guardbot config check -c <this file>`.",
    ]
    overrides: dict[tuple[str, str], Any] = {
        ("exchange", "id"): venue,
        ("exchange", "profile"): profile,
    }
    for sec in sections(Config):
        out.append("")
        if sec.cls is None:  # [[seed]]
            out += _comment(sec.info.doc)
            out += [
                "# [[seed]]",
                '# type = "order"',
                '# account = "main"',
                '# id = "seed-1"',
                '# symbol = "BTC/USDT:USDT"',
                '# orderType = "market"',
                '# side = "buy"',
                "# amount = 0.01",
                "# params = { stopLossPrice = 50000 }",
            ]
            continue
        header = f"[{sec.name}.main]" if sec.info.each is not None else f"[{sec.name}]"
        commented = sec.info.optional
        out += _comment(sec.info.doc)
        out.append(("# " if commented else "") + header)
        for f in keys(sec.cls):
            out += _comment(f.key.doc)
            value = overrides.get((sec.name, f.name), f.default)
            out.append(_example_line(f, value, commented))
    return "\n".join(out) + "\n"


def _example_line(f: Field, value: Any, commented: bool) -> str:
    empty = value is None or value is dataclasses.MISSING
    empty = empty or (isinstance(value, Mapping) and not value)
    if empty:
        example = f.key.example if f.key.example is not None else '""'
        return f"# {_key(f.name)} = {example}"
    return ("# " if commented else "") + f"{_key(f.name)} = {toml_value(value)}"


# --- guardbot config check ---------------------------------------------------------------------


def effective_config(config: Config, source: str, env: Mapping[str, str]) -> str:
    """The configuration in force as TOML; every secret as set / not set, never its value."""
    out = [f"# effective configuration of {source}", "# secrets: set or not set, never shown"]
    for sec in sections(Config):
        value = getattr(config, sec.name)
        if sec.cls is None:
            for command in value:
                out += ["", "[[seed]]"]
                out += [f"{_key(k)} = {toml_value(v)}" for k, v in command.items()]
            continue
        if sec.info.each is not None:
            if not value:
                out += ["", f"# [{sec.name}.<name>]: none (created on their first command)"]
            for name, item in value.items():
                out += ["", f"[{sec.name}.{_key(name)}]", *_section_lines(item, sec, name, env)]
            continue
        if value is None:
            out += ["", f"# [{sec.name}]: not set"]
            continue
        out += ["", f"[{sec.name}]", *_section_lines(value, sec, None, env)]
    return "\n".join(out) + "\n"


def _section_lines(
    obj: Any, sec: Section, name: str | None, env: Mapping[str, str]
) -> Iterable[str]:
    assert sec.cls is not None
    lines = []
    for f in keys(sec.cls):
        value = getattr(obj, f.attr)
        if value is None:
            lines.append(f"# {_key(f.name)}: not set")
        else:
            lines.append(f"{_key(f.name)} = {toml_value(value)}")
    for field in dataclasses.fields(sec.cls):
        if KEY in field.metadata:
            continue
        secret = getattr(obj, field.name)
        if secret is None or isinstance(secret, Secret):
            where = _secret_source(sec.name, field.name, obj)
            state = "set (hidden)" if secret is not None else "not set"
            lines.append(f"# {field.name}: {state}{where}")
    return lines


def _secret_source(section: str, attr: str, obj: Any) -> str:
    if section == "exchange":
        ccxt_name = {"api_key": "apiKey", "secret": "secret", "password": "password"}.get(attr)
        if ccxt_name is not None:
            return f", from {EXCHANGE_SECRET_ENV[ccxt_name]}"
    # The key that names the variable: password_env, token_env, api_key_env, ...
    named = getattr(obj, f"{attr}_env", None)
    return f", from {named}" if isinstance(named, str) and named else ""


# --- the key reference in config/README.md ------------------------------------------------------

BEGIN = "<!-- keys: generated from the section dataclasses by python -m guardbot.config.render -->"
END = "<!-- keys: end -->"


def key_reference() -> str:
    """A Markdown table of every key: default, environment variable, meaning."""
    from guardbot.config.env import env_name

    lines = ["| key | default | environment | meaning |", "| --- | --- | --- | --- |"]
    for sec in sections(Config):
        if sec.cls is None:
            lines.append(f"| `[[{sec.name}]]` | | | {sec.info.doc} |")
            continue
        prefix = f"{sec.name}.<name>" if sec.info.each is not None else sec.name
        env_prefix = (sec.name, "<NAME>") if sec.info.each is not None else (sec.name,)
        for f in keys(sec.cls):
            if f.required:
                default = "required"
            elif f.default is None or (isinstance(f.default, Mapping) and not f.default):
                default = "not set"
            else:
                default = f"`{toml_value(f.default)}`"
            env = f"`{env_name(*env_prefix, f.name)}`" if f.key.env else ""
            if f.kind in ("table", "num_table", "tables"):
                env = "file only"
            doc = f.key.doc.replace("|", "\\|")
            lines.append(f"| `{prefix}.{f.name}` | {default} | {env} | {doc} |")
    return "\n".join(lines) + "\n"


def update_reference(path: Path) -> bool:
    """Rewrite the generated part of ``path``; True when it changed."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{key_reference()}{END}{tail}"
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    import sys

    update_reference(Path(sys.argv[1] if len(sys.argv) > 1 else "config/README.md"))
