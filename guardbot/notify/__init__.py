"""Notifications: alerts to phones and chats through apprise, read from the journal's outbox.

``notifier`` holds the delivery loop (its own cursor over the outbox, coalescing, retries);
``sender`` the apprise side (an optional extra). May import ``guardbot.store`` (the outbox),
``guardbot.formats``, ``guardbot.runtime``, ``guardbot.core`` and ``guardbot.errors``.
"""
