"""Persistence adapter: the SQLite journal of engine inputs, events, outbox and state."""

from guardbot.store.journal import Journal, OutboxEntry, OutboxRow, StoreError

__all__ = ["Journal", "OutboxEntry", "OutboxRow", "StoreError"]
