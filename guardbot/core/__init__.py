"""The pure core of guardbot: margin math, accounts, orders, guards and the engine.

Nothing in this package performs I/O, uses asyncio or reads the clock: time comes in with the
inputs. That keeps the engine deterministic, replayable and fast to test.
"""
