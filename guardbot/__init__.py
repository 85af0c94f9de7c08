"""guardbot: a shadow margin engine for USDT-margined perpetual futures.

guardbot is an asyncio daemon plus a command-line tool for crypto derivatives
traders. It keeps an independent ("shadow") model of an account's positions,
margin and liquidation prices on USDT-margined perpetuals, so that a trader can
compute margin figures offline (``guardbot calc``), replay recorded scenarios
against the engine (``guardbot simulate``) and, as a daemon, watch a live
account and raise alerts before the exchange's own margin calls do.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
