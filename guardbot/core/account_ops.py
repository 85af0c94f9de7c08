"""Account commands: leverage, margin mode, isolated margin, deposits, funding, trading state."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.admission import Admission
from guardbot.core.codes import Code
from guardbot.core.commands import (
    BalanceCmd,
    FundingCmd,
    MarginCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    SetPositionModeCmd,
)
from guardbot.core.evaluation import after_change
from guardbot.core.guards import Decision, TradingState
from guardbot.core.num import ZERO, fmt, fmt_brief, money
from guardbot.core.orders import Order
from guardbot.core.position import Position, position_key
from guardbot.core.state import EngineState
from guardbot.core.trading import check_daily_loss, roll_day

__all__ = ["AccountOps"]


class AccountOps:
    """Leverage, margin mode, isolated margin transfers, deposits and withdrawals, funding."""

    __slots__ = ("_admission", "_st")

    def __init__(self, st: EngineState, admission: Admission) -> None:
        self._st = st
        self._admission = admission

    def set_leverage(self, cmd: SetLeverageCmd) -> None:
        account = self._st.account(cmd.account)
        roll_day(self._st, account)
        decision, transfers, reserves = self._leverage_decision(account, cmd)
        if not decision.ok:
            self._st.reject(account, None, decision, symbol=cmd.symbol)
            return
        settings = self._st.settings(account, cmd.symbol)
        settings.leverage = cmd.leverage
        for order, reserve in reserves:
            account.order_margin += reserve - order.reserved
            order.reserved = reserve
        # the leverage of a symbol applies to both sides of a hedged account
        for pos, transfer in transfers:
            pos.leverage = cmd.leverage
            pos.isolated_wallet += transfer
            account.wallet -= transfer
        self._st.emit("leverage_changed", account, symbol=cmd.symbol, leverage=cmd.leverage)
        for pos, _transfer in transfers:
            if pos.is_open:
                after_change(self._st, account, pos)

    def _leverage_decision(
        self, account: Account, cmd: SetLeverageCmd
    ) -> tuple[Decision, list[tuple[Position, Decimal]], list[tuple[Order, Decimal]]]:
        """Whether ``cmd`` may set the leverage (docs/rules.md §8.3); with it, the positions of
        the symbol with the margin moved into each one's isolated wallet, and the resting orders'
        new reserves."""
        symbol, leverage = cmd.symbol, cmd.leverage
        nothing: list[tuple[Order, Decimal]] = []
        table = self._st.config.tiers.get(symbol)
        if table is None:
            return Decision(Code.UNKNOWN_SYMBOL, f"no tier table for {symbol}"), [], nothing
        if account.state == TradingState.HALTED:
            return Decision(Code.TRADING_HALTED, "trading is halted: cancels only"), [], nothing
        cap = self._st.config.guards.leverage_cap(symbol)
        if cap is not None and leverage > cap:
            reason = f"leverage {fmt(leverage)} is above the policy cap {fmt(cap)}"
            return Decision(Code.LEVERAGE_EXCEEDS_MAX, reason), [], nothing
        market = self._st.market(symbol)
        mark = market.mark
        exposure = (
            self._admission.exposure(account, symbol, symbol, 0, ZERO, mark)
            if mark is not None
            else ZERO
        )
        tier_max = table.max_leverage_for(exposure)
        if leverage > tier_max:
            reason = (
                f"leverage {fmt(leverage)} is above the tier maximum {fmt(tier_max)}"
                f" for the current exposure {fmt(exposure)}"
            )
            if exposure > table.max_value:
                reason = (
                    f"the current exposure {fmt(exposure)} of {symbol} is beyond its tier "
                    f"table, whose last tier ends at {fmt(table.max_value)}"
                )
            return Decision(Code.LEVERAGE_EXCEEDS_MAX, reason), [], nothing
        settings = self._st.settings(account, symbol)
        old = settings.leverage
        # resting orders reserve their initial margin at the leverage in force (Binance -2028)
        reserves = []
        extra = ZERO
        for order in account.orders.values():
            if order.symbol == symbol and order.reserved:
                settings.leverage = leverage
                reserve = self._admission.order_reserve(account, order)
                settings.leverage = old
                reserves.append((order, reserve))
                extra += reserve - order.reserved
        transfers: list[tuple[Position, Decimal]] = []
        for pos in account.symbol_positions(symbol):
            transfer = ZERO
            if leverage == old:
                transfers.append((pos, transfer))
                continue
            assert mark is not None
            if not pos.isolated:
                extra += pos.qty * mark * (1 / leverage - 1 / old)
            elif self._st.profile.isolated_leverage_change == "reject_decrease":
                if leverage < old:
                    reason = (
                        "leverage reduction is not supported in isolated mode with an open"
                        " position (Binance -4161)"
                    )
                    return Decision(Code.INVALID_ORDER, reason), [], nothing
            else:
                transfer = money(pos.qty * pos.entry_price * (1 / leverage - 1 / old))
                extra += max(transfer, ZERO)
                if transfer < 0:
                    req, _mm, _tier = margin.requirement(
                        self._st.profile, pos, mark, account.fees.taker
                    )
                    if pos.isolated_wallet + transfer + margin.unrealized_pnl(pos, mark) <= req:
                        reason = "releasing margin at that leverage would liquidate the position"
                        return Decision(Code.MARGIN_INSUFFICIENT, reason), [], nothing
            transfers.append((pos, transfer))
        if extra > 0:
            available = self._admission.available(account)
            if extra > available:
                reason = (
                    f"leverage {fmt(leverage)} needs {fmt_brief(extra)} more margin than the"
                    f" available balance {fmt_brief(available)} (Binance -2028)"
                )
                return Decision(Code.MARGIN_INSUFFICIENT, reason), [], nothing
        return Decision(), transfers, reserves

    def set_margin_mode(self, cmd: SetMarginModeCmd) -> None:
        account = self._st.account(cmd.account)
        decision, transfers = self._margin_mode_decision(account, cmd)
        if not decision.ok:
            self._st.reject(account, None, decision, symbol=cmd.symbol)
            return
        settings = self._st.settings(account, cmd.symbol)
        if settings.margin_mode == cmd.margin_mode:
            return  # Binance -4046 "No need to change margin type": a no-op
        settings.margin_mode = cmd.margin_mode
        # open positions of the symbol switch with it (profile margin_mode_switch =
        # "with_position", docs/rules.md §8.1.1): the margin moves between the cross wallet and
        # each position's isolated wallet
        for pos, transfer in transfers:
            pos.margin_mode = cmd.margin_mode
            pos.isolated_wallet += transfer
            account.wallet -= transfer
            pos.alert.reset(self._st.config.alerts)  # its alerts start over in the new scope
            self._st.register(account, pos)  # the symbol's ticks visit it as the new mode
        self._st.emit("margin_mode_changed", account, symbol=cmd.symbol, marginMode=cmd.margin_mode)
        for pos, _transfer in transfers:
            after_change(self._st, account, pos)

    def _margin_mode_decision(
        self, account: Account, cmd: SetMarginModeCmd
    ) -> tuple[Decision, list[tuple[Position, Decimal]]]:
        """Whether ``cmd`` may switch the margin mode (docs/rules.md §8.1); with it, the open
        positions of the symbol and the margin each one's isolated wallet gains (negative: the
        wallet it gives back to the cross wallet)."""
        symbol = cmd.symbol
        if symbol not in self._st.config.tiers:
            return Decision(Code.UNKNOWN_SYMBOL, f"no tier table for {symbol}"), []
        if account.state == TradingState.HALTED:
            return Decision(Code.TRADING_HALTED, "trading is halted: cancels only"), []
        if self._st.settings(account, symbol).margin_mode == cmd.margin_mode:
            return Decision(), []
        positions = [p for p in account.symbol_positions(symbol) if p.is_open]
        with_position = self._st.profile.margin_mode_switch == "with_position"
        if positions and not with_position:
            reason = f"{symbol} has an open position (Binance -4048)"
            return Decision(Code.MARGIN_MODE_CHANGE_WITH_OPEN_POSITION, reason), []
        if any(o.symbol == symbol for o in account.orders.values()):
            reason = f"{symbol} has open orders (Binance -4047)"
            return Decision(Code.MARGIN_MODE_CHANGE_WITH_OPEN_POSITION, reason), []
        if not positions:
            return Decision(), []
        if cmd.margin_mode == "cross":
            # the isolated wallets go back to the cross wallet: the cross account gains each
            # position's margin balance (above its requirement while it is open) and requirement
            return Decision(), [(p, -p.isolated_wallet) for p in positions]
        return self._to_isolated(account, positions)

    def _to_isolated(
        self, account: Account, positions: list[Position]
    ) -> tuple[Decision, list[tuple[Position, Decimal]]]:
        """Cross positions becoming isolated: each takes its initial margin at entry from the
        cross wallet, as an isolated opening at the entry price would (docs/rules.md §8.1.1).
        Refused when the cross account could not give it (available balance after the switch
        below 0) or when a position would be due for liquidation with that wallet."""
        profile = self._st.profile
        symbol = positions[0].symbol
        mark = self._st.market(symbol).mark
        assert mark is not None  # a position was opened at a mark
        counts_profit = profile.upnl_profit_counts_for_available
        available = self._admission.available(account)
        transfers: list[tuple[Position, Decimal]] = []
        for pos in positions:
            transfer = money(pos.qty * pos.entry_price / pos.leverage)
            upnl = margin.unrealized_pnl(pos, mark)
            # the position leaves the cross sums: its uPnL and IM no longer count there
            counted = upnl if counts_profit else min(upnl, ZERO)
            available -= counted - margin.initial_margin(profile, pos, mark) + transfer
            alone = replace(pos, margin_mode="isolated", isolated_wallet=transfer, tier_peer=ZERO)
            req, _mm, _tier = margin.requirement(profile, alone, mark, account.fees.taker)
            if transfer + upnl <= req:
                reason = (
                    f"as an isolated position with {fmt_brief(transfer)} of margin,"
                    f" {pos.key} would be liquidated at mark {fmt(mark)}"
                )
                return Decision(Code.MARGIN_INSUFFICIENT, reason), []
            transfers.append((pos, transfer))
        if available < 0:
            needed = sum((t for _p, t in transfers), ZERO)
            reason = (
                f"isolating {symbol} needs {fmt_brief(needed)} of margin; the cross account"
                f" would be {fmt_brief(-available)} short"
            )
            return Decision(Code.MARGIN_INSUFFICIENT, reason), []
        return Decision(), transfers

    def set_position_mode(self, cmd: SetPositionModeCmd) -> None:
        """One-way or hedge mode, account-wide (Binance -4067/-4068: only with nothing open)."""
        account = self._st.account(cmd.account)
        if account.position_mode == cmd.position_mode:
            return  # Binance -4059 "No need to change position side": a no-op
        if account.state == TradingState.HALTED:
            decision = Decision(Code.TRADING_HALTED, "trading is halted: cancels only")
        elif account.positions:
            held = ", ".join(sorted({p.symbol for p in account.positions.values()}))
            decision = Decision(
                Code.POSITION_MODE_CHANGE_WITH_OPEN_POSITION,
                f"the account has open positions ({held}) (Binance -4068)",
            )
        elif account.orders:
            decision = Decision(
                Code.POSITION_MODE_CHANGE_WITH_OPEN_POSITION,
                f"the account has {len(account.orders)} open orders (Binance -4067)",
            )
        else:
            account.position_mode = cmd.position_mode
            self._st.emit("position_mode_changed", account, positionMode=cmd.position_mode)
            return
        self._st.reject(account, None, decision, positionMode=cmd.position_mode)

    def adjust_margin(self, cmd: MarginCmd) -> None:
        account = self._st.account(cmd.account)
        decision = self._margin_transfer_decision(account, cmd)
        if not decision.ok:
            self._st.reject(account, None, decision, symbol=cmd.symbol)
            return
        pos = account.positions[position_key(cmd.symbol, cmd.position_side)]
        delta = cmd.amount if cmd.add else -cmd.amount
        pos.isolated_wallet += delta
        account.wallet -= delta
        self._st.emit(
            "margin_changed",
            account,
            symbol=cmd.symbol,
            amount=delta,
            isolatedWallet=pos.isolated_wallet,
            **({"positionSide": pos.position_side} if pos.position_side else {}),
        )
        after_change(self._st, account, pos)

    def _margin_transfer_decision(self, account: Account, cmd: MarginCmd) -> Decision:
        """Adding and removing isolated margin (docs/rules.md §8.4)."""
        if account.hedged and cmd.position_side is None:
            reason = "the account is in hedge mode: positionSide must be long or short"
            return Decision(Code.POSITION_SIDE_REQUIRED, reason)
        if not account.hedged and cmd.position_side is not None:
            reason = f"positionSide {cmd.position_side!r} needs hedge mode; the account is one-way"
            return Decision(Code.INVALID_ORDER, reason)
        pos = account.positions.get(position_key(cmd.symbol, cmd.position_side))
        if pos is None or not pos.isolated:
            what = "no open position" if pos is None else "a cross position"
            reason = (
                f"{cmd.symbol} has {what}: margin can be moved only for an isolated"
                " position (Binance -4049/-4054)"
            )
            return Decision(Code.INVALID_ORDER, reason)
        if cmd.add:
            limit = self._admission.max_addable(account)
            verb = "added"
        else:
            if account.state == TradingState.HALTED:
                return Decision(Code.TRADING_HALTED, "trading is halted: cancels only")
            mark = self._st.mark_of(cmd.symbol)
            limit = margin.max_removable(self._st.profile, pos, mark, account.fees.taker)
            verb = "removed"
        if cmd.amount > limit:
            return Decision(Code.MARGIN_INSUFFICIENT, f"at most {fmt(limit)} can be {verb}")
        return Decision()

    def balance(self, cmd: BalanceCmd) -> None:
        account = self._st.account(cmd.account)
        if cmd.deposit:
            delta = cmd.amount
            account.ledger.deposits += delta
        else:
            # the most that may leave the cross wallet: Binance's max-withdraw rule, the same
            # bound as moving funds into an isolated position (docs/rules.md §3.3)
            limit = self._admission.max_addable(account)
            if cmd.amount > limit:
                self._st.reject(
                    account,
                    None,
                    Decision(Code.MARGIN_INSUFFICIENT, f"at most {fmt(limit)} can be withdrawn"),
                )
                return
            delta = -cmd.amount
            account.ledger.withdrawals += cmd.amount
        account.wallet += delta
        self._st.emit("balance_changed", account, amount=delta, wallet=account.wallet)
        after_change(self._st, account)

    def funding(self, cmd: FundingCmd) -> None:
        market = self._st.market(cmd.symbol)
        market.funding_rate = cmd.rate
        mark = market.mark
        holders = [(a, p) for p, a in market.cross.items()] + [
            (a, p) for p, a in market.isolated.items()
        ]
        holders.sort(key=lambda ap: ap[0].id)
        for account, pos in holders:
            # a mirror's wallet is the exchange's, funding included (its next report has it)
            if not pos.is_open or account.mirror is not None:
                continue
            assert mark is not None
            amount = -pos.signed_qty * mark * cmd.rate
            if pos.isolated:
                pay_from_cross = self._st.profile.isolated_funding_source == "available_first" and (
                    amount >= 0 or self._admission.available(account) >= -amount
                )
                if pay_from_cross:
                    account.wallet += amount
                else:
                    pos.isolated_wallet += amount
            else:
                account.wallet += amount
            account.ledger.funding += amount
            account.daily.add(self._st.ts, amount)
            self._st.emit(
                "funding",
                account,
                symbol=cmd.symbol,
                rate=cmd.rate,
                markPrice=mark,
                amount=amount,
                **({"positionSide": pos.position_side} if pos.position_side else {}),
            )
            after_change(self._st, account, pos)
            check_daily_loss(self._st, account)
