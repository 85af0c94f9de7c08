"""A paper exchange with ccxt's unified async API, backed by guardbot's shadow margin engine.

A strategy written against ``ccxt.pro`` (``create_order``, ``fetch_positions``, ``watch_ticker``
...) runs unchanged on :class:`PaperExchange`: same method names and parameters, same unified
structures (numbers as floats like ccxt's, the exact Decimal strings under ``info``), and guard
refusals raised as the ccxt exceptions a real exchange's error would map to.

The exchange does not own the engine. It *executes* through an injected ``apply`` coroutine
(a command object shaped like the input lines of docs/contracts.md §2 in, the engine's events
out; see :mod:`guardbot.paper.apply`) and only *reads* the engine. This module holds the thin
ccxt methods; :mod:`guardbot.paper.translate` turns ccxt arguments into engine commands and
refusals into ccxt exceptions, and :mod:`guardbot.paper.history` rebuilds orders' history
(closed orders, trades) from the events the exchange sees: the events ``apply`` returns and
those the host passes to :meth:`PaperExchange.ingest` (tick-driven fills, stops, liquidations).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from types import MappingProxyType
from typing import Any

import ccxt

from guardbot.core.account import Account
from guardbot.core.commands import parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import Event, to_jsonable
from guardbot.core.market import Market
from guardbot.core.num import ONE, ZERO, fmt
from guardbot.errors import InputError
from guardbot.paper import structures as st
from guardbot.paper.apply import ApplyFn
from guardbot.paper.history import OrderHistory, OrderRecord
from guardbot.paper.translate import (
    Number,
    _dec,
    exception_for,
    order_params,
    order_side,
    order_type,
)

__all__ = ["PaperExchange"]

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


class PaperExchange:
    """ccxt-compatible paper trading on the engine for one account (see the module docstring).

    ``engine`` is read, never mutated; ``apply`` executes commands. ``symbols`` restricts the
    markets (default: every symbol with a tier table). ``markets`` replaces the generated market
    structures (e.g. the real exchange's, for its precision and limits).
    """

    id = "guardbot"
    name = "guardbot paper exchange"
    version = "v1"
    pro = True
    has: Mapping[str, bool | str] = MappingProxyType(
        {
            name: True
            for name in (
                "swap",
                "future",
                "fetchMarkets",
                "fetchTicker",
                "fetchTickers",
                "fetchMarkPrice",
                "fetchMarkPrices",
                "fetchBalance",
                "fetchPositions",
                "fetchPosition",
                "createOrder",
                "createMarketOrder",
                "createLimitOrder",
                "createMarketBuyOrder",
                "createMarketSellOrder",
                "createLimitBuyOrder",
                "createLimitSellOrder",
                "createPostOnlyOrder",
                "createReduceOnlyOrder",
                "createStopLossOrder",
                "createTakeProfitOrder",
                "createTriggerOrder",
                "createStopOrder",
                "createStopMarketOrder",
                "createStopLimitOrder",
                "createTrailingPercentOrder",
                "createOrderWithTakeProfitAndStopLoss",
                "cancelOrder",
                "cancelAllOrders",
                "fetchOrder",
                "fetchOpenOrders",
                "fetchClosedOrders",
                "fetchMyTrades",
                "setLeverage",
                "setMarginMode",
                "addMargin",
                "reduceMargin",
                "fetchLeverage",
                "fetchLeverages",
                "fetchMarginMode",
                "fetchLeverageTiers",
                "fetchFundingRate",
                "watchTicker",
                "watchTickers",
                "watchMarkPrice",
                "watchMarkPrices",
            )
        }
    )

    def __init__(
        self,
        engine: Engine,
        apply: ApplyFn,
        *,
        account: str | None = None,
        symbols: Sequence[str] | None = None,
        markets: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._engine = engine
        self._apply = apply
        self.account = self._resolve_account(engine, account)
        self.options: dict[str, Any] = {"defaultType": "swap"}
        names = list(symbols) if symbols is not None else sorted(engine.config.tiers)
        self.markets: dict[str, dict[str, Any]] = {}
        for symbol in names:
            if markets is not None and symbol in markets:
                self.markets[symbol] = dict(markets[symbol])
            else:
                self.markets[symbol] = self._market_structure(symbol)
        self.symbols = sorted(self.markets)
        self.markets_by_id = {m["id"]: [m] for m in self.markets.values()}
        self._ids = itertools.count(1)
        self._history = OrderHistory(engine, self.account, self._ids)
        self._now = 0
        self._pending: list[Event] = []
        self._watchers: dict[str, list[asyncio.Future[str]]] = {}
        self._closed_by_user = False

    @staticmethod
    def _resolve_account(engine: Engine, account: str | None) -> str:
        if account is not None:
            return account
        if len(engine.accounts) == 1:
            return next(iter(engine.accounts))
        if not engine.accounts:
            return "default"  # the account the engine creates on first use
        known = ", ".join(sorted(engine.accounts))
        raise ValueError(f"account is required: the engine has several accounts ({known})")

    # -- host side -----------------------------------------------------------------------------

    def ingest(self, events: Iterable[Event]) -> None:
        """Update order history and trades from engine ``events`` the exchange did not cause
        itself (ticks: fills of resting orders, stops, liquidations). Call it once per event."""
        for event in events:
            self._observe(event)

    def _observe(self, event: Event) -> None:
        ts = event.get("ts")
        if isinstance(ts, int) and ts > self._now:
            self._now = ts
        self._history.record(event)

    def drain_events(self) -> list[Event]:
        """Events caused by this exchange's own commands since the last call (for ``on_event``)."""
        pending, self._pending = self._pending, []
        return pending

    def has_pending_events(self) -> bool:
        """Whether :meth:`drain_events` would return anything (the host's per-tick check)."""
        return bool(self._pending)

    def publish_tick(self, symbol: str, ts: int | None = None) -> int:
        """Wake the ``watch_*`` calls waiting for ``symbol`` (the engine has its new prices);
        return how many were woken."""
        if ts is not None and ts > self._now:
            self._now = ts
        if not self._watchers:  # the common case: nobody waits in watch_*
            return 0
        woken = 0
        for future in self._watchers.pop(symbol, ()):
            if not future.done():
                future.set_result(symbol)
                woken += 1
        return woken

    def milliseconds(self) -> int:
        """The exchange's clock: the time of the latest tick or event (never the wall clock)."""
        return self._now

    @staticmethod
    def iso8601(timestamp: int | None) -> str | None:
        return st.iso8601(timestamp)

    # -- markets -------------------------------------------------------------------------------

    def _market_structure(self, symbol: str) -> dict[str, Any]:
        config = self._engine.config
        account = self._engine.accounts.get(self.account)
        fees = account.fees if account is not None else config.fees
        return st.market_structure(
            symbol,
            contract_size=config.contract_sizes.get(symbol, ONE),
            table=config.tiers.get(symbol),
            maker=fees.maker,
            taker=fees.taker,
        )

    def market(self, symbol: str) -> dict[str, Any]:
        market = self.markets.get(symbol)
        if market is None:
            raise ccxt.BadSymbol(f"guardbot does not have market symbol {symbol}")
        return market

    async def load_markets(
        self, reload: bool = False, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        return self.markets

    async def fetch_markets(self, params: Mapping[str, Any] = _NO_PARAMS) -> list[dict[str, Any]]:
        return [self.markets[s] for s in self.symbols]

    def amount_to_precision(self, symbol: str, amount: Number | str | Decimal) -> str:
        """``amount`` truncated to the market's amount step (unchanged without one)."""
        step = self.market(symbol)["precision"].get("amount")
        value = _dec(amount, "amount")
        if step:
            quantum = _dec(step, "precision.amount")
            value = (value / quantum).to_integral_value(rounding="ROUND_DOWN") * quantum
        return fmt(value)

    def price_to_precision(self, symbol: str, price: Number | str | Decimal) -> str:
        """``price`` rounded to the market's tick (unchanged without one)."""
        step = self.market(symbol)["precision"].get("price")
        value = _dec(price, "price")
        if step:
            quantum = _dec(step, "precision.price")
            value = (value / quantum).to_integral_value(rounding="ROUND_HALF_EVEN") * quantum
        else:
            # no tick size known: keep 12 significant digits, which drops float artefacts
            # (3101.1240000000003 -> 3101.124) and changes no real price
            with localcontext() as ctx:
                ctx.prec = 12
                value = +value
        return fmt(value)

    # -- market data ---------------------------------------------------------------------------

    def _engine_market(self, symbol: str) -> Market:
        self.market(symbol)
        market = self._engine.markets.get(symbol)
        if market is None:  # no tick yet: a ticker of Nones
            config = self._engine.config
            market = Market(
                symbol, config.tiers.get(symbol), config.contract_sizes.get(symbol, ONE)
            )
        return market

    def ticker(self, symbol: str) -> dict[str, Any]:
        """``fetch_ticker`` without the coroutine: the host's per-tick hand-off to ``on_tick``."""
        market = self._engine.markets.get(symbol)
        if market is None or symbol not in self.markets:
            market = self._engine_market(symbol)  # BadSymbol, or a ticker of Nones
        return st.ticker_structure(market)

    _ticker = ticker

    def _symbols(self, symbols: Sequence[str] | None) -> list[str]:
        if symbols is None:
            return list(self.symbols)
        for symbol in symbols:
            self.market(symbol)
        return list(symbols)

    async def fetch_ticker(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return self._ticker(symbol)

    async def fetch_tickers(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        return {s: self._ticker(s) for s in self._symbols(symbols)}

    async def fetch_mark_price(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return self._ticker(symbol)

    async def fetch_mark_prices(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        return {s: self._ticker(s) for s in self._symbols(symbols)}

    async def fetch_funding_rate(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return st.funding_rate_structure(self._engine_market(symbol))

    async def fetch_leverage_tiers(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, list[dict[str, Any]]]:
        tiers = self._engine.config.tiers
        return {
            s: st.leverage_tiers_structure(tiers[s]) for s in self._symbols(symbols) if s in tiers
        }

    # -- watching (fed by the host's feed through publish_tick) ----------------------------------

    async def _next_tick(self, symbols: Sequence[str]) -> str:
        if self._closed_by_user:
            raise ccxt.ExchangeClosedByUser("guardbot: the paper exchange is closed")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        for symbol in symbols:
            self._watchers.setdefault(symbol, []).append(future)
        return await future

    async def watch_ticker(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        self.market(symbol)
        return self._ticker(await self._next_tick([symbol]))

    async def watch_tickers(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        updated = await self._next_tick(self._symbols(symbols))
        return {updated: self._ticker(updated)}

    async def watch_mark_price(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self.watch_ticker(symbol, params)

    async def watch_mark_prices(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        return await self.watch_tickers(symbols, params)

    async def close(self, clean_instance_data: bool = False) -> None:
        """Reject pending ``watch_*`` calls (as ccxt does) and refuse new ones."""
        self._closed_by_user = True
        watchers, self._watchers = self._watchers, {}
        for futures in watchers.values():
            for future in futures:
                if not future.done():
                    future.set_exception(
                        ccxt.ExchangeClosedByUser("guardbot: the paper exchange was closed")
                    )

    # -- account -------------------------------------------------------------------------------

    def _account(self) -> Account | None:
        return self._engine.accounts.get(self.account)

    async def fetch_balance(self, params: Mapping[str, Any] = _NO_PARAMS) -> dict[str, Any]:
        account = self._account()
        if account is None:  # created with the default wallet by its first command
            wallet = self._engine.config.default_account.wallet
            balance = {st.SETTLE: {"free": wallet, "used": ZERO, "total": wallet}}
            info: dict[str, Any] = {
                "wallet": wallet,
                "balance": balance,
                "availableBalance": wallet,
            }
        else:
            state = self._engine.state(account)
            balance = state["balance"]  # type: ignore[assignment]
            info = {k: state[k] for k in ("wallet", "balance", "marginRatio", "tradingState")}
            # what the engine lets orders use (it may count unrealized profit; free does not)
            info["availableBalance"] = self._engine.views(account)[1].available_balance
        return st.balance_structure(balance, timestamp=self._now or None, info=info)

    def _protection(
        self, account: Account, symbol: str, side: str | None = None
    ) -> tuple[Decimal | None, Decimal | None]:
        stop_loss = take_profit = None
        for order in account.orders.values():
            if order.symbol == symbol and order.close_position and order.position_side == side:
                if order.kind == "stop_loss":
                    stop_loss = order.trigger_price
                elif order.kind == "take_profit":
                    take_profit = order.trigger_price
        return stop_loss, take_profit

    async def fetch_positions(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> list[dict[str, Any]]:
        wanted = set(self._symbols(symbols)) if symbols is not None else None
        account = self._account()
        if account is None:
            return []
        views, _ = self._engine.views(account)
        out = []
        for view in views:
            if wanted is not None and view.symbol not in wanted:
                continue
            market = self._engine.markets[view.symbol]
            side = view.side if view.hedged else None
            stop_loss, take_profit = self._protection(account, view.symbol, side)
            out.append(
                st.position_structure(
                    view, timestamp=market.ts, stop_loss=stop_loss, take_profit=take_profit
                )
            )
        return out

    async def fetch_position(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        """The position in ``symbol``; when flat, one with no side and zero contracts (as
        Binance's position risk reports a symbol without a position)."""
        positions = await self.fetch_positions([symbol], params)
        if positions:
            return positions[0]
        mode, leverage = self._settings(symbol)
        market = self._engine.markets.get(symbol)
        flat = st.flat_position_structure(
            symbol,
            timestamp=market.ts if market is not None else None,
            margin_mode=mode,
            leverage=leverage,
        )
        flat["contractSize"] = self.markets[symbol]["contractSize"]
        if market is not None:
            flat["markPrice"] = st.num(market.mark)
        return flat

    # -- commands ------------------------------------------------------------------------------

    async def _run(self, command: dict[str, Any]) -> list[Event]:
        if self._closed_by_user:
            raise ccxt.ExchangeClosedByUser("guardbot: the paper exchange is closed")
        command["account"] = self.account
        try:
            events = await self._apply(command)
        except InputError as exc:
            raise ccxt.BadRequest(f"guardbot: {exc}") from None
        for event in events:
            self._observe(event)
        self._pending.extend(events)
        return events

    @staticmethod
    def _refusal(events: Sequence[Event], order_id: str | None) -> Event | None:
        for event in events:
            if event.get("type") == "order_rejected" and event.get("id") == order_id:
                return event
        return None

    def _raise_refusal(self, events: Sequence[Event], order_id: str | None) -> None:
        refusal = self._refusal(events, order_id)
        if refusal is not None:
            raise exception_for(str(refusal.get("code")), str(refusal.get("reason")))

    def _settings(self, symbol: str) -> tuple[str, Decimal]:
        """(margin mode, leverage) in force for ``symbol`` (the account defaults before use)."""
        account = self._account()
        settings = account.settings.get(symbol) if account is not None else None
        if settings is None:
            config = account.config if account is not None else self._engine.config.default_account
            settings = self._engine.default_settings(config, symbol)
        return settings.margin_mode, settings.leverage

    async def set_leverage(
        self, leverage: Number, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        if symbol is None:
            raise ccxt.ArgumentsRequired("guardbot setLeverage() requires a symbol argument")
        self.market(symbol)
        value = _dec(leverage, "leverage")
        events = await self._run({"type": "set_leverage", "symbol": symbol, "leverage": fmt(value)})
        self._raise_refusal(events, None)
        return {"info": to_jsonable(events), "symbol": symbol, "leverage": float(value)}

    async def set_margin_mode(
        self, marginMode: str, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        if symbol is None:
            raise ccxt.ArgumentsRequired("guardbot setMarginMode() requires a symbol argument")
        self.market(symbol)
        mode = str(marginMode).lower()
        if mode == "crossed":  # Binance's spelling, accepted by ccxt
            mode = "cross"
        if mode not in ("cross", "isolated"):
            raise ccxt.BadRequest(
                f"guardbot setMarginMode() marginMode must be cross or isolated, got {marginMode!r}"
            )
        events = await self._run({"type": "set_margin_mode", "symbol": symbol, "marginMode": mode})
        self._raise_refusal(events, None)
        return {"info": to_jsonable(events), "symbol": symbol, "marginMode": mode}

    async def set_position_mode(
        self, hedged: bool, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        """One-way or hedge mode for the whole account, as ccxt's ``set_position_mode``
        (``symbol`` is ignored: the mode is account-wide, as on Binance)."""
        if not isinstance(hedged, bool):
            raise ccxt.BadRequest(
                f"guardbot setPositionMode() hedged must be a bool, got {hedged!r}"
            )
        mode = "hedged" if hedged else "oneway"
        events = await self._run({"type": "set_position_mode", "positionMode": mode})
        self._raise_refusal(events, None)
        return {"info": to_jsonable(events), "hedged": hedged}

    async def fetch_position_mode(
        self, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        account = self._account()
        mode = account.position_mode if account is not None else "oneway"
        return {"info": {"positionMode": mode}, "hedged": mode == "hedged"}

    async def _margin(
        self, symbol: str, amount: Number, add: bool, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.market(symbol)
        value = _dec(amount, "amount")
        command = {"type": "add_margin" if add else "reduce_margin", "symbol": symbol}
        command["amount"] = fmt(value)
        if params.get("positionSide") is not None:  # the side of a hedged account
            command["positionSide"] = params["positionSide"]
        events = await self._run(command)
        self._raise_refusal(events, None)
        changed = next((e for e in events if e.get("type") == "margin_changed"), None)
        return {
            "info": to_jsonable(changed),
            "symbol": symbol,
            "type": "add" if add else "reduce",
            "marginMode": "isolated",
            "amount": float(value),
            "total": st.num(changed["isolatedWallet"]) if changed else None,
            "code": st.SETTLE,
            "status": "ok",
            "timestamp": changed["ts"] if changed else None,
            "datetime": st.iso8601(changed["ts"]) if changed else None,
        }

    async def add_margin(
        self, symbol: str, amount: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self._margin(symbol, amount, True, params)

    async def reduce_margin(
        self, symbol: str, amount: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self._margin(symbol, amount, False, params)

    def _leverage(self, symbol: str) -> dict[str, Any]:
        mode, leverage = self._settings(symbol)
        return {
            "info": {"symbol": symbol, "marginMode": mode, "leverage": fmt(leverage)},
            "symbol": symbol,
            "marginMode": mode,
            # one-way mode: one leverage for both sides, as Binance's positionSide BOTH
            "longLeverage": float(leverage),
            "shortLeverage": float(leverage),
        }

    async def fetch_leverage(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        """The leverage in force for ``symbol`` (the account's default before it is set)."""
        self.market(symbol)
        return self._leverage(symbol)

    async def fetch_leverages(
        self, symbols: Sequence[str] | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, dict[str, Any]]:
        return {s: self._leverage(s) for s in self._symbols(symbols)}

    async def fetch_margin_mode(
        self, symbol: str, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        self.market(symbol)
        mode, _ = self._settings(symbol)
        return {
            "info": {"symbol": symbol, "marginMode": mode},
            "symbol": symbol,
            "marginMode": mode,
        }

    # -- orders --------------------------------------------------------------------------------

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        self.market(symbol)
        type, side = order_type(type), order_side(side)
        engine_params, mode, leverage = order_params(
            side, params, close_only_stops=self._engine.config.guards.close_only_stops
        )
        if type == "limit" and price is None:
            raise ccxt.ArgumentsRequired("guardbot createOrder() requires a price for a limit")
        order_id = self._next_order_id()
        client_id = params.get("clientOrderId")
        command: dict[str, Any] = {
            "type": "order",
            "id": order_id,
            "symbol": symbol,
            "orderType": type,
            "side": side,
            "amount": fmt(_dec(amount, "amount")),
        }
        if type == "limit":  # a market order's price is ignored, as by ccxt's exchanges
            command["price"] = fmt(_dec(price, "price"))
        if engine_params:
            command["params"] = engine_params
        try:
            parse_command(command)  # a malformed order changes no setting below
        except InputError as exc:
            raise ccxt.BadRequest(f"guardbot: {exc}") from None
        current_mode, current_leverage = self._settings(symbol)
        if mode is not None and mode != current_mode:
            await self.set_margin_mode(mode, symbol)
        if leverage is not None and leverage != current_leverage:
            await self.set_leverage(leverage, symbol)
        self._history.expect(order_id, None if client_id is None else str(client_id))
        events = await self._run(command)
        self._raise_refusal(events, order_id)
        record = self._history.get(order_id)
        if record is None:  # pragma: no cover - the engine answers every order
            raise ccxt.ExchangeError(f"guardbot: order {order_id} produced no event")
        return self._history.structure(record)

    async def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "market", side, amount, price, params)

    async def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: Number,
        price: Number,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "limit", side, amount, price, params)

    async def create_market_buy_order(
        self, symbol: str, amount: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "market", "buy", amount, None, params)

    async def create_market_sell_order(
        self, symbol: str, amount: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "market", "sell", amount, None, params)

    async def create_limit_buy_order(
        self, symbol: str, amount: Number, price: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "limit", "buy", amount, price, params)

    async def create_limit_sell_order(
        self, symbol: str, amount: Number, price: Number, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return await self.create_order(symbol, "limit", "sell", amount, price, params)

    async def create_post_only_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        return await self.create_order(
            symbol, type, side, amount, price, {**params, "postOnly": True}
        )

    async def create_reduce_only_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        return await self.create_order(
            symbol, type, side, amount, price, {**params, "reduceOnly": True}
        )

    async def create_stop_loss_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        stopLossPrice: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        if stopLossPrice is None:
            raise ccxt.ArgumentsRequired("guardbot createStopLossOrder() requires a stopLossPrice")
        merged = {**params, "stopLossPrice": stopLossPrice}
        return await self.create_order(symbol, type, side, amount, price, merged)

    async def create_take_profit_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        takeProfitPrice: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        if takeProfitPrice is None:
            raise ccxt.ArgumentsRequired(
                "guardbot createTakeProfitOrder() requires a takeProfitPrice"
            )
        merged = {**params, "takeProfitPrice": takeProfitPrice}
        return await self.create_order(symbol, type, side, amount, price, merged)

    async def create_trigger_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        triggerPrice: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        if triggerPrice is None:
            raise ccxt.ArgumentsRequired("guardbot createTriggerOrder() requires a triggerPrice")
        merged = {**params, "triggerPrice": triggerPrice}
        return await self.create_order(symbol, type, side, amount, price, merged)

    async def create_stop_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        triggerPrice: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        if triggerPrice is None:
            raise ccxt.ArgumentsRequired("guardbot createStopOrder() requires a triggerPrice")
        merged = {**params, "stopPrice": triggerPrice}
        return await self.create_order(symbol, type, side, amount, price, merged)

    async def create_stop_market_order(
        self,
        symbol: str,
        side: str,
        amount: Number,
        triggerPrice: Number,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        merged = {**params, "stopPrice": triggerPrice}
        return await self.create_order(symbol, "market", side, amount, None, merged)

    async def create_stop_limit_order(
        self,
        symbol: str,
        side: str,
        amount: Number,
        price: Number,
        triggerPrice: Number,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        merged = {**params, "stopPrice": triggerPrice}
        return await self.create_order(symbol, "limit", side, amount, price, merged)

    async def create_trailing_percent_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        trailingPercent: Number | None = None,
        trailingTriggerPrice: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        if trailingPercent is None:
            raise ccxt.ArgumentsRequired(
                "guardbot createTrailingPercentOrder() requires a trailingPercent"
            )
        merged: dict[str, Any] = {**params, "trailingPercent": trailingPercent}
        if trailingTriggerPrice is not None:
            merged["trailingTriggerPrice"] = trailingTriggerPrice
        return await self.create_order(symbol, type, side, amount, price, merged)

    async def create_order_with_take_profit_and_stop_loss(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        takeProfit: Number | None = None,
        stopLoss: Number | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> dict[str, Any]:
        merged = dict(params)
        if takeProfit is not None:
            merged["takeProfit"] = {"triggerPrice": takeProfit}
        if stopLoss is not None:
            merged["stopLoss"] = {"triggerPrice": stopLoss}
        return await self.create_order(symbol, type, side, amount, price, merged)

    def _next_order_id(self) -> str:
        """Sequential ids, skipping any the engine still holds open (after a daemon restart the
        counter starts again while recovered orders keep their ids)."""
        account = self._account()
        while True:
            order_id = str(next(self._ids))
            if account is None or order_id not in account.orders:
                return order_id

    def _find(self, id: str, symbol: str | None, params: Mapping[str, Any]) -> OrderRecord:
        record = self._history.get(id) if id else None
        account = self._account()
        if record is None and account is not None and id in account.orders:
            record = self._history.adopt(account.orders[id])
        client_id = params.get("clientOrderId")
        if record is None and client_id is not None:
            record = self._history.by_client_id(str(client_id))
        if record is None or (symbol is not None and record.symbol != symbol):
            raise ccxt.OrderNotFound(f"guardbot: order {id or client_id} not found")
        return record

    async def cancel_order(
        self, id: str, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        record = self._find(str(id), symbol, params)
        account = self._account()
        if account is None or record.id not in account.orders:
            raise ccxt.OrderNotFound(
                f"guardbot: order {record.id} is {record.status}, not open: nothing to cancel"
            )
        events = await self._run({"type": "cancel", "id": record.id})
        refusal = self._refusal(events, record.id)
        if refusal is not None:
            raise ccxt.OrderNotFound(f"guardbot {refusal.get('code')}: {refusal.get('reason')}")
        return self._history.structure(record)

    async def cancel_all_orders(
        self, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> list[dict[str, Any]]:
        if symbol is not None:
            self.market(symbol)
        account = self._account()
        if account is None:
            return []
        wanted = sorted(
            (o for o in account.orders.values() if symbol is None or o.symbol == symbol),
            key=lambda o: o.seq,
        )
        cancelled = []
        for order in wanted:
            await self._run({"type": "cancel", "id": order.id})
            record = self._history.get(order.id)
            if record is not None:
                cancelled.append(self._history.structure(record))
        return cancelled

    async def fetch_order(
        self, id: str, symbol: str | None = None, params: Mapping[str, Any] = _NO_PARAMS
    ) -> dict[str, Any]:
        return self._history.structure(self._find(str(id), symbol, params))

    def _select(
        self,
        records: Iterable[OrderRecord],
        symbol: str | None,
        since: int | None,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        if symbol is not None:
            self.market(symbol)
        rows = [
            self._history.structure(r)
            for r in records
            if (symbol is None or r.symbol == symbol) and (since is None or r.timestamp >= since)
        ]
        return rows[-limit:] if limit else rows

    async def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> list[dict[str, Any]]:
        account = self._account()
        if account is None:
            return []
        # the engine's book is the truth for what is open (commands may bypass this exchange)
        records = [
            self._history.get(o.id) or self._history.adopt(o)
            for o in sorted(account.orders.values(), key=lambda o: o.seq)
        ]
        return self._select(records, symbol, since, limit)

    async def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> list[dict[str, Any]]:
        return self._select(self._history.closed(), symbol, since, limit)

    async def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: Mapping[str, Any] = _NO_PARAMS,
    ) -> list[dict[str, Any]]:
        if symbol is not None:
            self.market(symbol)
        rows = [
            dict(t)
            for t in self._history.trades()
            if (symbol is None or t["symbol"] == symbol)
            and (since is None or t["timestamp"] >= since)
        ]
        return rows[-limit:] if limit else rows

    # -- anything else ccxt has ----------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """A ccxt method the paper exchange lacks raises ``ccxt.NotSupported`` when called, as an
        exchange without the feature does; other unknown attributes stay AttributeErrors."""
        if not name.startswith("_") and _ccxt_method(name):

            async def not_supported(*args: Any, **kwargs: Any) -> Any:
                raise ccxt.NotSupported(f"guardbot paper exchange: {name}() is not supported")

            return not_supported
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _ccxt_method(name: str) -> bool:
    """Whether ccxt's async exchange has a method ``name``. Its module (with aiohttp) is
    imported here, on first need: importing it up front was the largest part of a replay's
    start-up, and most strategies never call a method the paper exchange lacks."""
    from ccxt.async_support.base.exchange import Exchange

    return callable(getattr(Exchange, name, None))
