"""Margin evaluation: alert crossings, and liquidation when a scope's ratio reaches 1."""

from __future__ import annotations

from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.alerts import Crossing
from guardbot.core.base import EngineBase
from guardbot.core.market import HUNDRED
from guardbot.core.num import ONE, ZERO
from guardbot.core.position import Position

__all__ = ["EvaluationMixin"]

_DISTANCE_QUANTUM = Decimal("0.0001")  # distance to liquidation in alerts, in percent


class EvaluationMixin(EngineBase):
    """Part of :class:`~guardbot.core.engine.Engine`."""

    def _evaluate_cross(self, account: Account) -> None:
        if account.n_cross == 0:
            crossings = account.alert.update(self.config.alerts, ZERO, ONE)
            self._emit_crossings(account, None, crossings, ZERO, ONE)
            self._set_cross_thresholds(account)
            return
        balance = account.wallet + account.c_upnl
        req = account.c_req
        crossings = account.alert.update(self.config.alerts, req, balance)
        self._emit_crossings(account, None, crossings, req, balance)
        if balance <= 0 or req >= balance:
            self._liquidate_cross(account)
        self._set_cross_thresholds(account)

    def _evaluate_isolated(self, account: Account, pos: Position) -> None:
        mark = self._mark_of(pos.symbol)
        req, _mm, _tier = margin.requirement(self.profile, pos, mark, account.fees.taker)
        balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
        crossings = pos.alert.update(self.config.alerts, req, balance)
        self._emit_crossings(account, pos, crossings, req, balance)
        if balance <= 0 or req >= balance:
            self._liquidate_isolated(account, pos)
            return
        self._set_band(account, pos)

    def _emit_crossings(
        self,
        account: Account,
        pos: Position | None,
        crossings: list[Crossing],
        req: Decimal,
        balance: Decimal,
    ) -> None:
        if not crossings:
            return
        ratio = req / balance if balance > 0 else None
        levels = self.config.alerts.levels
        if pos is not None:
            scope_fields: dict[str, object] = {"scope": "position", "symbol": pos.symbol}
            liq = self._isolated_liquidation_price(account, pos)
            liq_symbol: str | None = pos.symbol
        else:
            scope_fields = {"scope": "account", "symbol": None}
            liq, liq_symbol = self._nearest_cross_liquidation(account)
        mark = self.markets[liq_symbol].mark if liq_symbol else None
        distance = (
            (abs(mark - liq) / mark * HUNDRED).quantize(_DISTANCE_QUANTUM)
            if liq is not None and mark is not None
            else None
        )
        for crossing in crossings:
            if crossing.recovered:
                self._emit("margin_recovered", account, **scope_fields, marginRatio=ratio)
                continue
            self._emit(
                "margin_alert",
                account,
                **scope_fields,
                level=crossing.level,
                threshold=levels[crossing.level],
                severity=self.config.alerts.severity(crossing.level),
                marginRatio=ratio,
                liquidationPrice=liq,
                liquidationSymbol=liq_symbol,
                markPrice=mark,
                distancePercent=distance,
            )

    def _after_change(self, account: Account, changed: Position | None = None) -> None:
        """Re-evaluate ``account`` after its cross wallet or the position ``changed`` moved.

        An isolated position depends only on its own wallet and mark, so only ``changed`` needs
        an isolated evaluation; the cross sums are recomputed from the positions.
        """
        self._refresh_cross(account)
        if changed is not None and changed.isolated and changed.is_open:
            self._evaluate_isolated(account, changed)
        if account.positions or account.alert.alerted:
            self._evaluate_cross(account)
        else:
            self._set_cross_thresholds(account)
