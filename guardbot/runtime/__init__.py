"""Process-level helpers shared by the adapters and the front ends: logging set-up.

May import ``guardbot.core`` and ``guardbot.errors`` only.
"""
