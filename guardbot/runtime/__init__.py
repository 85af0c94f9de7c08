"""Process-level helpers shared by the adapters and the front ends: logging set-up, the one
reconnect backoff (``backoff``) and address checks (``net``).

May import ``guardbot.core`` and ``guardbot.errors`` only.
"""
