"""How guardbot's data is written as text: exact JSON, and numbers for people.

Leaf helpers shared by the adapters and the front ends. May import ``guardbot.core`` and
``guardbot.errors`` only.
"""
