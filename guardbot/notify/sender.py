"""Sending one message to every configured apprise URL (the ``notify`` extra).

The URLs carry tokens: they are never logged. A URL is named in logs by its scheme only
(``tgram://…``), and apprise's own logger, which may print more, is kept quiet.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

from guardbot.errors import ConfigError

__all__ = ["AppriseSender", "Sender", "describe_url", "split_urls"]

EXTRA_HINT = "notifications need the optional extra 'notify': pip install 'guardbot[notify]'"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class Sender(Protocol):
    """Delivers one message; returns the indexes of the URLs that failed (empty: all took it)."""

    @property
    def targets(self) -> Sequence[str]:
        """One redacted name per URL, for logs."""
        ...

    async def send(self, title: str, body: str, severity: str, only: Sequence[int]) -> list[int]:
        """Send to the URLs at indexes ``only``; return those that failed."""
        ...


def split_urls(text: str) -> list[str]:
    """The URLs of ``[notify] urls_env``'s value: separated by spaces, commas or new lines."""
    return [part for part in re.split(r"[\s,]+", text.strip()) if part]


def describe_url(url: str) -> str:
    """``tgram://…``: the scheme only; the rest of an apprise URL is a token."""
    match = _SCHEME.match(url)
    return f"{match.group(1)}://…" if match else "(not a URL)"


def _notify_type(severity: str) -> str:
    if severity in ("critical", "margin_call"):
        return "failure"
    return "warning" if severity == "warning" else "info"


class AppriseSender:
    """One apprise object per URL, so that a retry goes only to the URLs that failed."""

    def __init__(self, urls: Sequence[str], *, timeout: float = 10.0) -> None:
        with warnings.catch_warnings():
            # Some of apprise's plugins import modules Python deprecates (imghdr): not ours
            # to fix, and no reason to fail a start under -W error.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import apprise
            except ImportError:
                raise ConfigError(f"notify.urls_env: {EXTRA_HINT}") from None
        logging.getLogger("apprise").setLevel(logging.CRITICAL)  # it may print URLs
        self._timeout = timeout
        self._services: list[Any] = []
        for n, url in enumerate(urls):
            service = apprise.Apprise()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                added = service.add(url)
            if not added:
                raise ConfigError(
                    f"notify.urls_env: URL {n + 1} ({describe_url(url)}) is not a URL apprise "
                    "knows (see its list of services)"
                )
            self._services.append(service)
        if not self._services:
            raise ConfigError("notify.urls_env: the variable holds no URL")
        self.targets = [describe_url(url) for url in urls]

    async def send(self, title: str, body: str, severity: str, only: Sequence[int]) -> list[int]:
        failed: list[int] = []
        for index in only:
            service = self._services[index]
            try:
                async with asyncio.timeout(self._timeout * 2):
                    ok = await asyncio.to_thread(
                        service.notify, body=body, title=title, notify_type=_notify_type(severity)
                    )
            except Exception:  # a plugin's own error: count it as a failed delivery
                ok = False
            if not ok:
                failed.append(index)
        return failed
