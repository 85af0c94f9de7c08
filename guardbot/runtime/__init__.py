"""Process-level helpers shared by the adapters and the front ends: logging set-up, the one
reconnect backoff (``backoff``), the one ``host:port`` parser and loopback check (``net``) and
the optional extras' checks (``extras``).

May import ``guardbot.core`` and ``guardbot.errors`` only.
"""
