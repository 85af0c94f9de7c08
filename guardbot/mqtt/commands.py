"""MQTT control commands: the gate every command passes and the replies it gets (docs/contracts.md
§3).

Pure and synchronous (no I/O, no clock): :class:`CommandGate` turns one raw ``.../cmd`` payload
into :class:`Accepted` (a command the daemon may apply) or :class:`Rejected` (a reply with a code,
nothing changes). The checks run in this order, and the first failure decides the code:

=====================  ==========================================================================
code                   when
=====================  ==========================================================================
``bad_encoding``       the payload is not UTF-8
``bad_json``           not JSON, duplicate keys, NaN/Infinity, larger than ``MAX_PAYLOAD_BYTES``,
                       or not a JSON object
``bad_request_id``     ``requestId`` missing or not ``[A-Za-z0-9_.:-]{1,64}`` (it becomes a topic
                       level, so ``/``, ``+`` and ``#`` are refused)
``unauthorized``       ``token`` missing, not a string, or not the configured token
``forbidden_command``  a valid input type that is not allowed over MQTT (``tick``, ``deposit``,
                       ``withdraw``, ``funding``, ``set_trading_state``, ``config``)
``bad_command``        an unknown type, a field the command parser refuses (the reason names the
                       field), or a ``ts`` field (the daemon stamps commands with its own clock)
``unknown_account``    ``account`` is not one of the daemon's accounts (or not a valid name)
``unknown_symbol``     ``symbol`` is not one of the daemon's symbols
=====================  ==========================================================================

Lower-case codes are the gate's; upper-case codes (``MARGIN_INSUFFICIENT``, ...) in a reply come
from the engine's ``order_rejected`` event (:class:`guardbot.core.codes.Code`).

Replies are published (QoS 1, not retained) on ``<base>/reply/<requestId>``; a rejection whose
``requestId`` is unusable goes to ``<base>/reply/invalid`` (:data:`INVALID_REPLY_LEVEL`) with
``"requestId": null``. The token never appears in a reply, a reason or a log line.
"""

from __future__ import annotations

import hmac
import json
import re
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from guardbot.core.commands import Command, parse_command
from guardbot.core.events import Event, to_jsonable
from guardbot.core.num import shown
from guardbot.errors import ConfigError, InputError
from guardbot.formats.jsonio import loads_exact

__all__ = [
    "ALLOWED_TYPES",
    "BAD_COMMAND",
    "BAD_ENCODING",
    "BAD_JSON",
    "BAD_REQUEST_ID",
    "FORBIDDEN_COMMAND",
    "FORBIDDEN_TYPES",
    "INVALID_REPLY_LEVEL",
    "MAX_PAYLOAD_BYTES",
    "UNAUTHORIZED",
    "UNKNOWN_ACCOUNT",
    "UNKNOWN_SYMBOL",
    "Accepted",
    "CommandGate",
    "RecentReplies",
    "Rejected",
    "reply_ok",
    "reply_rejected",
    "reply_topic",
    "valid_request_id",
]

#: The payload is not UTF-8.
BAD_ENCODING = "bad_encoding"
#: Not a JSON object (syntax, duplicate keys, NaN/Infinity, too large, not an object).
BAD_JSON = "bad_json"
#: ``requestId`` missing or unusable as a topic level.
BAD_REQUEST_ID = "bad_request_id"
#: ``token`` missing or wrong.
UNAUTHORIZED = "unauthorized"
#: An input type that exists but may not be sent over MQTT.
FORBIDDEN_COMMAND = "forbidden_command"
#: An unknown type or a field the command parser refuses.
BAD_COMMAND = "bad_command"
#: ``account`` is not one of the daemon's accounts.
UNKNOWN_ACCOUNT = "unknown_account"
#: ``symbol`` is not one of the daemon's symbols.
UNKNOWN_SYMBOL = "unknown_symbol"

#: The command types accepted on ``.../cmd`` (docs/contracts.md §3).
ALLOWED_TYPES = (
    "order",
    "cancel",
    "set_leverage",
    "set_margin_mode",
    "set_position_mode",
    "add_margin",
    "reduce_margin",
)
#: Input types of ``simulate`` that move money or market data: never from the command topic.
FORBIDDEN_TYPES = frozenset(
    {"tick", "deposit", "withdraw", "funding", "set_trading_state", "config", "mirror", "tiers"}
)
#: The reply topic level for rejections without a usable ``requestId``.
INVALID_REPLY_LEVEL = "invalid"
#: Larger payloads are refused before decoding (a command is a few hundred bytes).
MAX_PAYLOAD_BYTES = 64 * 1024

_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
# Account names go into topics (``.../accounts/<account>``): the rule of ``[accounts.<name>]``.
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# Fields removed from the command object before it is parsed, applied and journaled.
_ENVELOPE = ("requestId", "token")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A command that passed every check: apply ``command``, journal ``body``."""

    request_id: str
    #: The command object without ``requestId`` and ``token`` (numbers as exact Decimals).
    body: Mapping[str, Any]
    command: Command


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command refused by the gate; ``request_id`` is None when none was usable."""

    request_id: str | None
    code: str
    reason: str


def valid_request_id(value: object) -> bool:
    """Whether ``value`` can be a ``requestId`` (and so a reply topic level)."""
    return isinstance(value, str) and _REQUEST_ID.match(value) is not None


class CommandGate:
    """Checks raw command payloads against the token, the allowed types and the daemon's names.

    ``accounts``: the daemon's configured accounts; None (the engine creates accounts on demand)
    still requires a name that is valid in a topic.
    """

    def __init__(
        self, token: str, symbols: Iterable[str], *, accounts: Iterable[str] | None = None
    ) -> None:
        if not token:
            raise ConfigError(
                "control.token_env: the control token is empty; set the environment variable "
                "named by control.token_env to a long random string"
            )
        self._token = token.encode("utf-8")
        self._symbols = frozenset(symbols)
        self._accounts = frozenset(accounts) if accounts is not None else None

    def __repr__(self) -> str:  # never the token
        return f"CommandGate(symbols={sorted(self._symbols)!r})"

    def check(self, payload: bytes) -> Accepted | Rejected:
        """Accept or reject one ``.../cmd`` payload; see the module docstring for the order."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return Rejected(None, BAD_JSON, f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(None, BAD_ENCODING, f"payload is not UTF-8 (byte {exc.start})")
        try:
            obj = loads_exact(text, "payload")
        except InputError as exc:
            return Rejected(None, BAD_JSON, str(exc))
        if not isinstance(obj, dict):
            return Rejected(None, BAD_JSON, f"payload must be a JSON object, got {shown(obj)}")
        request_id = obj.get("requestId")
        if not valid_request_id(request_id):
            return Rejected(
                None,
                BAD_REQUEST_ID,
                f"requestId: must be 1 to 64 of A-Z a-z 0-9 _ . : -, got {shown(request_id)}",
            )
        assert isinstance(request_id, str)
        if not self._authorized(obj.get("token")):
            return Rejected(request_id, UNAUTHORIZED, "token: missing or wrong")
        body = {k: v for k, v in obj.items() if k not in _ENVELOPE}
        refused = self._refuse_body(body)
        if refused is not None:
            return Rejected(request_id, *refused)
        try:
            command = parse_command(body)
        except InputError as exc:
            return Rejected(request_id, BAD_COMMAND, str(exc))
        refused = self._refuse_names(command)
        if refused is not None:
            return Rejected(request_id, *refused)
        return Accepted(request_id, body, command)

    def _authorized(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        # Constant time in the token's content: a timing probe learns nothing but the length.
        return hmac.compare_digest(token.encode("utf-8"), self._token)

    def _refuse_body(self, body: Mapping[str, Any]) -> tuple[str, str] | None:
        """The type and envelope checks that come before the command parser."""
        kind = body.get("type")
        if kind in FORBIDDEN_TYPES:
            return FORBIDDEN_COMMAND, f"type: {kind} is not allowed over MQTT"
        if kind not in ALLOWED_TYPES:
            allowed = ", ".join(ALLOWED_TYPES)
            return BAD_COMMAND, f"type: must be one of {allowed}, got {shown(kind)}"
        if "ts" in body:
            return BAD_COMMAND, "ts: not accepted over MQTT (the daemon stamps commands)"
        bad = _non_finite(body)
        if bad is not None:
            return BAD_JSON, f"{bad}: must be a finite number"
        return None

    def _refuse_names(self, command: Command) -> tuple[str, str] | None:
        """Account and symbol must be the daemon's own (they reach topics and the engine)."""
        account = getattr(command, "account", None)
        if account is not None:
            if self._accounts is not None and account not in self._accounts:
                known = ", ".join(sorted(self._accounts)) or "none"
                return UNKNOWN_ACCOUNT, f"account: unknown account {shown(account)} ({known})"
            if not _ACCOUNT.match(account):
                return UNKNOWN_ACCOUNT, f"account: not a valid account name: {shown(account)}"
        symbol = getattr(command, "symbol", None)
        if symbol is not None and symbol not in self._symbols:
            known = ", ".join(sorted(self._symbols))
            return UNKNOWN_SYMBOL, f"symbol: {shown(symbol)} is not traded here ({known})"
        return None


def _non_finite(value: object, path: str = "") -> str | None:
    """The path of the first NaN/Infinity in ``value`` (``loads_exact`` keeps them as Decimals
    so that the parser can name the field; a field the parser ignores must not reach the journal).
    """
    if isinstance(value, Decimal):
        return None if value.is_finite() else (path or "payload")
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


# --- replies ------------------------------------------------------------------------------------


def reply_topic(base: str, request_id: str | None) -> str:
    """``<base>/reply/<requestId>``, or ``<base>/reply/invalid`` for an unusable request id."""
    level = request_id if valid_request_id(request_id) else INVALID_REPLY_LEVEL
    assert isinstance(level, str)
    return f"{base}/reply/{level}"


def reply_ok(request_id: str, events: Sequence[Event]) -> dict[str, Any]:
    """The reply to an applied command: ``ok`` unless the engine emitted ``order_rejected``.

    A refusal by the engine (``MARGIN_INSUFFICIENT``, ...) changed nothing; its ``code`` and
    ``reason`` are copied from the first ``order_rejected`` event so that clients need not search.
    """
    reply: dict[str, Any] = {"requestId": request_id, "ok": True}
    rejection = next((e for e in events if e.get("type") == "order_rejected"), None)
    if rejection is not None:
        reply["ok"] = False
        reply["code"] = str(rejection.get("code"))
        reply["reason"] = str(rejection.get("reason"))
    reply["events"] = to_jsonable(list(events))
    return reply


def reply_rejected(rejected: Rejected) -> dict[str, Any]:
    """The reply to a command the gate refused (or the engine refused with an InputError)."""
    return {
        "requestId": rejected.request_id,
        "ok": False,
        "code": rejected.code,
        "reason": rejected.reason,
    }


class RecentReplies:
    """The replies to the last ``size`` applied commands, by ``requestId``.

    A ``requestId`` is an idempotency key: a command redelivered by MQTT (QoS 1 is at least once)
    or re-sent by a client that missed its reply gets the first reply again instead of being
    applied twice (twice ``add_margin`` would move the margin twice).

    Replies are kept as compact JSON text, deflated: a reply's events as Python objects take
    several times the memory, and a long-running daemon holds ``size`` of them. The cache fills
    for over an hour at the soak's command rate (issue 16), so its size at the plateau reads as
    RSS slope until then: a soak order reply is about 590 bytes of text (0.75 KiB held with its
    key), about 300 deflated (0.45 KiB held).
    """

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._size = size
        self._replies: OrderedDict[str, bytes] = OrderedDict()

    def get(self, request_id: str) -> dict[str, Any] | None:
        packed = self._replies.get(request_id)
        if packed is None:
            return None
        reply: dict[str, Any] = json.loads(zlib.decompress(packed))
        return reply

    def put(self, request_id: str, reply: dict[str, Any]) -> None:
        text = json.dumps(reply, separators=(",", ":"))
        self._replies[request_id] = zlib.compress(text.encode("utf-8"))
        self._replies.move_to_end(request_id)
        while len(self._replies) > self._size:
            self._replies.popitem(last=False)
