"""Dry-run strategies: a ccxt-compatible paper exchange on the engine, strategies and a runner.

Where the paper exchange differs from a venue (examples/strategies/README.md says the same for
strategy authors):

* Stop-loss and take-profit orders close only. ccxt's ``stopLossPrice`` / ``takeProfitPrice``
  orders (``create_stop_loss_order``, ``create_take_profit_order``) are reduce-only while the
  ``close_only_stops`` guard is on (the default): one that fires after its position closed is
  cancelled. On Binance such an order without ``reduceOnly`` is a plain stop that opens a
  position when it fires; ``close_only_stops = false`` gives that behaviour.
* Fills: a market order fills whole at the latest tick's ask or bid (last, then mark, when the
  feed has no quotes), moved by ``slippage_bps``; a resting limit fills whole at its price once
  the touch crosses it. There is no book depth, queue position or partial fill.
* Stops and triggers watch the mark price unless ``trigger_price = "last"`` or the order's
  ``triggerPriceType`` says otherwise (Binance's default ``workingType`` is the last price).
* ``fetch_balance``: ``total`` is the wallet (cross wallet plus isolated wallets), ``used`` the
  initial margin of cross positions and open orders, the isolated wallets and cross unrealized
  losses, ``free = total - used`` (so unrealized profit is in neither; the engine's available
  balance, which may count it, is ``info.availableBalance``). Binance's ``total`` is the margin
  balance, unrealized PnL included.
* Markets carry no tick or lot sizes unless the host passes the venue's; a liquidation appears
  as an ``autoclose-N`` market order with its trade, as Binance reports it; closed orders and
  trades are kept in memory, the last 10,000 of each; time is the ticks' time, never the wall
  clock; funding rates carry no schedule.
* Positions are one-way unless ``set_position_mode(True)`` switches the account to hedge mode
  (every order then names ``positionSide``); methods and params the engine does not model raise
  ``NotSupported``.
"""

from guardbot.runtime.ccxt_lazy import install as _install_ccxt_lazy

# Before any module of this package imports ccxt: only the exchange modules used are loaded
# (guardbot.runtime.ccxt_lazy).
_install_ccxt_lazy()

from guardbot.paper.apply import ApplyFn, engine_apply, journaled_apply  # noqa: E402
from guardbot.paper.exchange import PaperExchange  # noqa: E402
from guardbot.paper.runner import StrategyError, StrategyRunner  # noqa: E402
from guardbot.paper.strategy import Strategy, StrategyLoadError, load_strategy  # noqa: E402
from guardbot.paper.translate import exception_for  # noqa: E402

__all__ = [
    "ApplyFn",
    "PaperExchange",
    "Strategy",
    "StrategyError",
    "StrategyLoadError",
    "StrategyRunner",
    "engine_apply",
    "exception_for",
    "journaled_apply",
    "load_strategy",
]
