"""Where tier tables come from: the exchange, the SQLite cache, the bundled snapshots.

``source`` resolves a profile's bundled tables and user-supplied files; ``fetch`` asks the
exchange through ccxt and keeps a cache in the journal's database. The tables themselves and the
lookups are pure and live in ``guardbot.core.tiers``.

An adapter: may import ``guardbot.store``, ``guardbot.formats``, ``guardbot.runtime``,
``guardbot.core``.
"""
