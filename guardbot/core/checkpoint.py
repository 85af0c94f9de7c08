"""Checkpoints: the engine's state as versioned JSON, and back. Pure.

The codec walks the state generically instead of listing its fields, so that the engine's classes
can change without a second place to update: every object of a ``guardbot.core`` class is written
as its class name and its attributes (``__slots__`` of every class in its MRO, or ``__dict__``);
dicts, lists, tuples and sets element by element; ``Decimal`` as its exact string (``Infinity``
too); enums by value. An object, list, dict or set met twice is written once and referred to
after that, so the object graph keeps its sharing (an ``Order`` in an account's book and in its
market's trigger heap is one object after a load, as it was before).

What a load accepts:

* the same ``FORMAT`` (the layout of this encoding; a change to it bumps the number);
* classes of ``guardbot.core`` only (nothing else is ever imported by name);
* attributes the class still has. An attribute the class gained since is filled from its dataclass
  default; one without a default, or one the class no longer has, makes the checkpoint unusable
  (:class:`CheckpointError`), and the caller falls back to an older checkpoint or to the journal:
  never a state silently missing a field.

The digest (SHA-256 of the body) lets the caller tell a damaged checkpoint from a good one.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib
import json
import types
from collections.abc import Iterable, Iterator
from decimal import Decimal
from types import MappingProxyType
from typing import Any

__all__ = [
    "FORMAT",
    "CheckpointError",
    "DaemonState",
    "config_fingerprint",
    "decode",
    "digest",
    "dumps",
    "encode",
    "loads",
    "text_of",
    "text_pieces",
]

#: Layout version of the encoding below.
FORMAT = 1

_PACKAGE = "guardbot.core."


class CheckpointError(ValueError):
    """A checkpoint that cannot be read back into this code's state (damaged or of another
    layout); the message says what."""


def _attributes(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for name in slots:
            if name not in ("__weakref__", "__dict__") and name not in names:
                names.append(name)
    return names


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


#: Types written as they are, and the one written as its exact string: the bulk of a state's
#: values, handled by an exact type lookup before the general ``isinstance`` chain (an enum
#: member's type is its enum class, never one of these, so str and int enums still go there).
_SCALARS = frozenset({type(None), bool, int, str})
_FUNCTIONS = frozenset(
    {types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType}
)


_LAYOUTS: dict[type, tuple[str, tuple[str, ...]]] = {}


def _layout(cls: type) -> tuple[str, tuple[str, ...]]:
    """A class's checkpoint name and slot attributes, checked once per class per process."""
    known = _LAYOUTS.get(cls)
    if known is None:
        if not cls.__module__.startswith(_PACKAGE):
            raise CheckpointError(f"cannot checkpoint a {_class_name(cls)} (not engine state)")
        known = _LAYOUTS[cls] = (_class_name(cls), tuple(_attributes(cls)))
    return known


class _Encoder:
    """The walk, written for speed (the daemon runs it holding the step lock): scalars and
    Decimals are handled inline where values are met (attributes, list items, dict entries),
    a class's layout is computed once; the output is the same tree as the plain recursion."""

    def __init__(self) -> None:
        self._ids: dict[int, int] = {}
        #: Keeps every object seen alive, so that id() values stay unique during the walk.
        self._keep: list[object] = []

    def _ref(self, value: object) -> tuple[bool, int]:
        key = id(value)
        known = self._ids.get(key)
        if known is not None:
            return True, known
        new = len(self._ids)
        self._ids[key] = new
        self._keep.append(value)
        return False, new

    @staticmethod
    def _check_class(cls: type) -> None:
        if not cls.__module__.startswith(_PACKAGE):
            raise CheckpointError(f"cannot checkpoint a {_class_name(cls)} (not engine state)")

    def walk(self, value: object) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is Decimal:
            return {"d": str(value)}
        return self._walk(value)

    def _items(self, values: Iterable[object]) -> list[Any]:
        walk = self._walk
        out: list[Any] = []
        append = out.append
        for v in values:
            kind = type(v)
            if kind in _SCALARS:
                append(v)
            elif kind is Decimal:
                append({"d": str(v)})
            else:
                append(walk(v))
        return out

    def _walk(self, value: object) -> Any:
        layout = _LAYOUTS.get(type(value))
        if layout is not None:  # an engine object whose class was met before: most nodes
            return self._object(value, layout)
        if isinstance(value, enum.Enum):  # before str and int: str and int enums are both
            self._check_class(type(value))
            return {"e": _class_name(type(value)), "v": self.walk(value.value)}
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, Decimal):
            return {"d": str(value)}
        if isinstance(value, float):
            return {"f": repr(value)}
        if isinstance(value, tuple):
            if hasattr(value, "_fields"):  # a NamedTuple: its class and its values
                self._check_class(type(value))
                return {"nt": _class_name(type(value)), "t": self._items(value)}
            return {"t": self._items(value)}
        if isinstance(value, frozenset):
            return {"fs": self._items(value)}
        if not isinstance(value, list | dict | MappingProxyType | set):
            return self._object(value, _layout(type(value)))
        key = id(value)
        ref = self._ids.get(key)
        if ref is not None:
            return {"r": ref}
        ref = self._ids[key] = len(self._ids)
        self._keep.append(value)
        if isinstance(value, list):
            return {"o": ref, "l": self._items(value)}
        if isinstance(value, dict | MappingProxyType):
            # A read-only view is written as the dict it shows (read back as a dict: the engine
            # never writes its configuration's mappings).
            walk = self.walk
            return {"o": ref, "m": [[walk(k), walk(v)] for k, v in value.items()]}
        return {"o": ref, "s": self._items(value)}

    def _object(self, value: object, layout: tuple[str, tuple[str, ...]]) -> Any:
        key = id(value)
        ref = self._ids.get(key)
        if ref is not None:
            return {"r": ref}
        ref = self._ids[key] = len(self._ids)
        self._keep.append(value)
        name_of_class, slots = layout
        names: Iterable[str] = slots
        if hasattr(value, "__dict__"):
            names = [*slots, *(n for n in vars(value) if n not in slots)]
        attrs: dict[str, Any] = {}
        get = object.__getattribute__
        for name in names:
            try:
                attr = get(value, name)
            except AttributeError:
                continue  # an unset slot
            kind = type(attr)
            if kind in _SCALARS:
                attrs[name] = attr
            elif kind is Decimal:
                attrs[name] = {"d": str(attr)}
            elif kind in _FUNCTIONS:
                raise CheckpointError(f"{name_of_class}.{name}: a function is not state")
            else:
                attrs[name] = self._walk(attr)
        return {"o": ref, "c": name_of_class, "a": attrs}


class _Decoder:
    def __init__(self) -> None:
        self._objects: dict[int, Any] = {}
        self._classes: dict[str, type] = {}

    def _class(self, name: str) -> type:
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        module_name, _, qualname = name.partition(":")
        if not module_name.startswith(_PACKAGE) or not qualname:
            raise CheckpointError(f"class {name!r} is not engine state")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            raise CheckpointError(f"class {name!r} no longer exists") from None
        if not isinstance(target, type):
            raise CheckpointError(f"{name!r} is not a class")
        self._classes[name] = target
        return target

    def walk(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | str):
            return node
        if not isinstance(node, dict):
            raise CheckpointError(f"unexpected node {type(node).__name__}")
        if "d" in node:
            return Decimal(node["d"])
        if "r" in node:
            try:
                return self._objects[node["r"]]
            except KeyError:
                raise CheckpointError(f"reference {node['r']} before its object") from None
        if "nt" in node:
            return self._class(node["nt"])(*(self.walk(v) for v in node["t"]))
        if "t" in node:
            return tuple(self.walk(v) for v in node["t"])
        if "fs" in node:
            return frozenset(self.walk(v) for v in node["fs"])
        if "f" in node:
            return float(node["f"])
        if "e" in node:
            cls = self._class(node["e"])
            try:
                return cls(self.walk(node["v"]))
            except ValueError:
                raise CheckpointError(f"{node['e']}: unknown value {node['v']!r}") from None
        ref = node.get("o")
        if not isinstance(ref, int):
            raise CheckpointError(f"unexpected node keys {sorted(node)}")
        if "l" in node:
            items: list[Any] = []
            self._objects[ref] = items
            items.extend(self.walk(v) for v in node["l"])
            return items
        if "m" in node:
            mapping: dict[Any, Any] = {}
            self._objects[ref] = mapping
            for key, value in node["m"]:
                k = self.walk(key)
                mapping[k] = self.walk(value)
            return mapping
        if "s" in node:
            members: set[Any] = set()
            self._objects[ref] = members
            members.update(self.walk(v) for v in node["s"])
            return members
        return self._object(ref, node)

    def _object(self, ref: int, node: dict[str, Any]) -> Any:
        cls = self._class(str(node.get("c")))
        obj: Any = object.__new__(cls)
        self._objects[ref] = obj
        attrs: dict[str, Any] = node.get("a", {})
        known = set(_attributes(cls))
        has_dict = hasattr(obj, "__dict__")
        for name, raw in attrs.items():
            if name not in known and not has_dict:
                raise CheckpointError(f"{node['c']}.{name}: the class has no such attribute now")
            object.__setattr__(obj, name, self.walk(raw))
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                if f.name in attrs:
                    continue
                if f.default is not dataclasses.MISSING:
                    object.__setattr__(obj, f.name, f.default)
                elif f.default_factory is not dataclasses.MISSING:
                    object.__setattr__(obj, f.name, f.default_factory())
                else:
                    raise CheckpointError(
                        f"{node['c']}.{f.name}: missing, and the class gives no default"
                    )
        return obj


def encode(value: object) -> Any:
    """``value`` as a JSON-able tree (see the module docstring)."""
    return _Encoder().walk(value)


def decode(tree: Any) -> Any:
    """The object graph :func:`encode` made ``tree`` from; :class:`CheckpointError` if it cannot
    be rebuilt in this code."""
    try:
        return _Decoder().walk(tree)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, ArithmeticError) as exc:
        raise CheckpointError(f"malformed checkpoint: {type(exc).__name__}: {exc}") from None


def dumps(value: object) -> str:
    """``{"format": FORMAT, "state": encode(value)}`` as compact JSON."""
    return text_of(encode(value))


def text_of(tree: Any) -> str:
    """The text :func:`dumps` writes for a value whose :func:`encode` is ``tree`` (the daemon
    walks the state holding its step lock and writes the text after releasing it)."""
    return json.dumps({"format": FORMAT, "state": tree}, separators=(",", ":"), allow_nan=False)


_dump = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def text_pieces(tree: Any) -> Iterator[str]:
    """:func:`text_of` ``tree`` in small pieces (``"".join`` of them is that text, byte for
    byte), so that a caller can make a large checkpoint's text a slice at a time: the daemon
    turns its event loop between slices. Every object, mapping, list, set and tuple node is
    split into its parts; the runs of plain values between them are written whole."""
    yield '{"format":' + _dump(FORMAT) + ',"state":'
    yield from _pieces(tree)
    yield "}"


def _pieces(node: Any) -> Iterator[str]:
    # compact JSON is compositional: an object is "{", its "key":value pairs joined by ",",
    # "}"; a list likewise; so the pieces of the parts, in order, are the whole's text
    if type(node) is not dict or len(node) < 2:  # a value, {"d"}, {"r"}, {"f"}: whole
        yield _dump(node)
        return
    if "a" in node:  # an object: {"o", "c", "a": {attribute: node}}
        yield '{"o":' + _dump(node["o"]) + ',"c":' + _dump(node["c"]) + ',"a":{'
        run: dict[str, Any] = {}
        sep = ""
        for name, value in node["a"].items():
            if type(value) is dict and len(value) >= 2:
                if run:
                    yield sep + _dump(run)[1:-1]
                    sep, run = ",", {}
                yield sep + _dump(name) + ":"
                sep = ","
                yield from _pieces(value)
            else:
                run[name] = value
        if run:
            yield sep + _dump(run)[1:-1]
        yield "}}"
        return
    head = ", ".join(k for k in node if k not in ("l", "m", "s", "t", "fs"))
    items_key = next((k for k in ("l", "m", "s", "t", "fs") if k in node), None)
    if items_key is None or (head and head not in ("o", "nt")):
        yield _dump(node)  # an enum ({"e", "v"}) or anything else: whole
        return
    yield "{" + "".join(_dump(k) + ":" + _dump(node[k]) + "," for k in node if k != items_key)
    yield _dump(items_key) + ":["
    for i, item in enumerate(node[items_key]):
        if i:
            yield ","
        if items_key == "m":  # [key node, value node]
            key, value = item
            yield "["
            yield from _pieces(key)
            yield ","
            yield from _pieces(value)
            yield "]"
        else:
            yield from _pieces(item)
    yield "]}"


def loads(text: str) -> Any:
    """The value :func:`dumps` wrote; :class:`CheckpointError` for another format or a damaged
    text."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or "format" not in doc or "state" not in doc:
        raise CheckpointError("not a checkpoint document")
    if doc["format"] != FORMAT:
        raise CheckpointError(f"unknown checkpoint format {doc['format']!r} (this code: {FORMAT})")
    return decode(doc["state"])


def digest(text: str) -> str:
    """SHA-256 of a checkpoint's text, stored beside it to tell a damaged one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass(slots=True)
class DaemonState:
    """What a daemon checkpoint holds besides the journal: the engine's whole state, the funding
    schedule, and each symbol's newest tick (its time and prices)."""

    engine: Any
    funding: Any
    last_ticks: dict[str, tuple[int, Any]]


def config_fingerprint(config: object) -> str:
    """A digest of an engine configuration (accounts, fees, guards, alert levels): a checkpoint
    made under another one is not the state a replay would rebuild. Tier tables and contract
    sizes are left out: they are inputs (``tiers``, guardbot.core.tier_inputs), journaled when
    they change, so a checkpoint's tables are the ones in force at its input, whatever a start
    resolves today."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        fields = {f.name for f in dataclasses.fields(config)}
        if {"tiers", "contract_sizes"} <= fields:
            config = dataclasses.replace(config, tiers={}, contract_sizes={})
    return digest(json.dumps(encode(config), separators=(",", ":"), sort_keys=True))
