"""The service: ``guardbot run``'s lifecycle and its step pipeline.

Start-up, the task group and shutdown (``service``), with the systemd notify protocol
(``sdnotify``). The rule "saved before published" lives here: every input is journaled with its
events and outbox rows before anything is published.

May import: the adapters (feeds, store, mqtt, metrics, paper, tiers, report), ``guardbot.formats``,
``guardbot.runtime``, ``guardbot.core``. Never ``guardbot.cli``.
"""
