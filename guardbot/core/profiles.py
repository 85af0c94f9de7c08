"""Exchange profiles: what differs between the venues' margin rules (docs/rules.md §10, §14).

A profile is data, not code: the margin functions read these switches. Unknown names are refused
with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal, get_args

from guardbot.core.keys import unknown_key
from guardbot.core.num import ZERO, parse_decimal
from guardbot.errors import InputError

__all__ = ["PROFILES", "Profile", "get_profile", "profile_for_exchange"]

MmFormula = Literal["cum_deduction", "flat_tier"]
TierBasis = Literal["notional", "contracts"]
LpMmPrice = Literal["at_liquidation", "at_entry"]
Settlement = Literal["clearance_fee", "bankruptcy"]
ReduceOnlyExcess = Literal["trim", "reject"]
IsolatedLeverageChange = Literal["reject_decrease", "rebalance"]
MaxRemovableRule = Literal["binance_current", "binance_older", "im_plus_close_fee"]
OrderCostModel = Literal["im_plus_open_loss", "im_plus_two_way_fee", "im"]
FundingSource = Literal["isolated_wallet", "available_first"]
LiquidationSteps = Literal["full", "tiered"]
HedgeTierBasis = Literal["side", "combined"]
LiquidationStepTiers = Literal[1, 2]
PartialFromTier = Literal[2, 3]
MarginModeSwitch = Literal["flat", "with_position"]


@dataclass(frozen=True, slots=True)
class Profile:
    """The switches of one exchange's margin rules."""

    name: str
    #: ``cum_deduction``: MM = n*mmr - cum (continuous); ``flat_tier``: MM = n*mmr of the tier.
    mm_formula: MmFormula
    #: What selects the tier: the notional at mark, or the position size in contracts (OKX).
    tier_basis: TierBasis
    #: OKX adds the taker rate to the MMR in the liquidation requirement (docs/rules.md §4.2).
    taker_fee_in_requirement: bool
    #: Bybit values isolated IM and MM at entry (its closed-form liquidation price, §5.4).
    isolated_mm_price: LpMmPrice
    liquidation_settlement: Settlement
    #: Clearance fee rate charged on the liquidated notional (clearance_fee settlement).
    liquidation_fee_rate: Decimal
    reduce_only_excess: ReduceOnlyExcess
    isolated_leverage_change: IsolatedLeverageChange
    max_removable_rule: MaxRemovableRule
    order_cost_model: OrderCostModel
    upnl_profit_counts_for_available: bool
    isolated_funding_source: FundingSource
    #: ``full``: a due position goes whole; ``tiered``: a position above its lowest tier is first
    #: reduced into the tier below, step by step while still due (docs/rules.md §7.1).
    liquidation_steps: LiquidationSteps = "tiered"
    #: The size that picks the tier of each cross side of a hedged symbol: ``side`` its own size;
    #: ``combined`` the long and the short together, the maintenance margin of the tier shared
    #: between the two sides by size (docs/rules.md §8.6). Isolated sides always go by their own.
    hedge_tier_basis: HedgeTierBasis = "side"
    #: Tiers a ``tiered`` liquidation step goes down at a time (OKX and Bitget: two).
    liquidation_step_tiers: LiquidationStepTiers = 1
    #: The lowest tier (numbered from 1) a ``tiered`` liquidation reduces in steps; a position
    #: below it goes whole (OKX: partial liquidation from tier 3, tiers 1-2 whole).
    liquidation_partial_from_tier: PartialFromTier = 2
    #: ``flat``: a margin-mode switch needs no position and no open order in the symbol
    #: (Binance -4047/-4048); ``with_position``: only open orders block it, an open position
    #: is converted in place (docs/rules.md §8.1.1; Bitunix, CoinEx).
    margin_mode_switch: MarginModeSwitch = "flat"

    def with_options(
        self, options: Mapping[str, object], field: str = "profile_options"
    ) -> Profile:
        """This profile with some switches changed; every value is validated."""
        changes: dict[str, object] = {}
        for key, value in options.items():
            where = f"{field}.{key}"
            if key not in _OPTION_CHOICES:
                raise InputError(where, unknown_key(key, _OPTION_CHOICES))
            choices = _OPTION_CHOICES[key]
            if choices is bool:
                if not isinstance(value, bool):
                    raise InputError(where, f"must be true or false, got {value!r}")
                changes[key] = value
            elif isinstance(choices, tuple) and all(isinstance(c, int) for c in choices):
                # bool is an int to Python: true must not pass for 1
                if isinstance(value, bool) or value not in choices:
                    allowed = ", ".join(str(c) for c in choices)
                    raise InputError(where, f"must be one of {allowed}, got {value!r}")
                changes[key] = value
            elif choices is Decimal:
                rate = parse_decimal(value, where)
                if not ZERO <= rate < 1:
                    raise InputError(where, f"must be >= 0 and < 1, got {value}")
                changes[key] = rate
            else:
                assert isinstance(choices, tuple)
                if value not in choices:
                    raise InputError(where, f"must be one of {', '.join(choices)}, got {value!r}")
                changes[key] = value
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def deducts_cum(self) -> bool:
        return self.mm_formula == "cum_deduction"


PROFILES: dict[str, Profile] = {
    "binance": Profile(
        name="binance",
        mm_formula="cum_deduction",
        tier_basis="notional",
        taker_fee_in_requirement=False,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="clearance_fee",
        liquidation_fee_rate=Decimal("0.005"),
        reduce_only_excess="trim",
        isolated_leverage_change="reject_decrease",
        max_removable_rule="binance_current",
        order_cost_model="im_plus_open_loss",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
        liquidation_steps="tiered",
        hedge_tier_basis="side",
        liquidation_step_tiers=1,
        liquidation_partial_from_tier=2,
    ),
    "bybit": Profile(
        name="bybit",
        mm_formula="cum_deduction",
        tier_basis="notional",
        taker_fee_in_requirement=False,
        isolated_mm_price="at_entry",
        liquidation_settlement="bankruptcy",
        liquidation_fee_rate=Decimal(0),
        reduce_only_excess="reject",
        isolated_leverage_change="rebalance",
        max_removable_rule="im_plus_close_fee",
        order_cost_model="im_plus_two_way_fee",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="available_first",
        liquidation_steps="tiered",
        hedge_tier_basis="side",
        liquidation_step_tiers=1,
        liquidation_partial_from_tier=2,
    ),
    "okx": Profile(
        name="okx",
        mm_formula="flat_tier",
        tier_basis="contracts",
        taker_fee_in_requirement=True,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="clearance_fee",
        liquidation_fee_rate=Decimal("0.0005"),
        reduce_only_excess="trim",
        isolated_leverage_change="rebalance",
        max_removable_rule="binance_current",
        order_cost_model="im",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
        liquidation_steps="tiered",
        hedge_tier_basis="combined",
        liquidation_step_tiers=2,
        liquidation_partial_from_tier=3,
    ),
    # MEXC USDT-M futures (docs/rules.md §14.1): risk tiers in contracts (ccxt steps them by
    # riskIncrVol), the tier's MMR on the whole position value at the fair price, liquidation
    # when margin + uPnL <= MM + liquidation fees (the close fee, modelled as the taker rate),
    # the positions taken over at the bankruptcy price.
    "mexc": Profile(
        name="mexc",
        mm_formula="flat_tier",
        tier_basis="contracts",
        taker_fee_in_requirement=True,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="bankruptcy",
        liquidation_fee_rate=Decimal(0),
        reduce_only_excess="trim",
        isolated_leverage_change="rebalance",
        max_removable_rule="im_plus_close_fee",
        order_cost_model="im_plus_two_way_fee",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
    ),
    # Bitget USDT-M futures (§14.2): MM = position value x the MMR of its tier (by value, no
    # deduction); the close fee counts in the liquidation check.
    "bitget": Profile(
        name="bitget",
        mm_formula="flat_tier",
        tier_basis="notional",
        taker_fee_in_requirement=True,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="bankruptcy",
        liquidation_fee_rate=Decimal(0),
        reduce_only_excess="trim",
        isolated_leverage_change="rebalance",
        max_removable_rule="im_plus_close_fee",
        order_cost_model="im_plus_two_way_fee",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
        # cross: long and short combined to pick the tier (docs/rules.md §14.2)
        hedge_tier_basis="combined",
        # partial liquidation two tiers at a time (docs/rules.md §14.2)
        liquidation_step_tiers=2,
    ),
    # Gate USDT futures (§14.3): since the 2025 risk-limit upgrade the MM is graduated by
    # position value (each slice at its tier's MMR), i.e. Binance's deduction form.
    "gate": Profile(
        name="gate",
        mm_formula="cum_deduction",
        tier_basis="notional",
        taker_fee_in_requirement=False,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="bankruptcy",
        liquidation_fee_rate=Decimal(0),
        reduce_only_excess="trim",
        isolated_leverage_change="rebalance",
        max_removable_rule="binance_current",
        order_cost_model="im_plus_open_loss",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
    ),
    # KuCoin Futures USDT-margined (§14.6): risk-limit levels by position value, MM = position
    # value x the level's MMR, valued at the liquidation price with the liquidation fee (taker
    # rate) beside it; the margin is lost on liquidation (bankruptcy); a position above level 1
    # is reduced to the level below first.
    "kucoinfutures": Profile(
        name="kucoinfutures",
        mm_formula="flat_tier",
        tier_basis="notional",
        taker_fee_in_requirement=True,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="bankruptcy",
        liquidation_fee_rate=Decimal(0),
        reduce_only_excess="trim",
        isolated_leverage_change="rebalance",
        max_removable_rule="im_plus_close_fee",
        order_cost_model="im_plus_two_way_fee",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
    ),
    # Venues outside ccxt (CoinEx, Bitunix, ...): Binance's switches as a starting point; the
    # user states the venue's rules in [exchange] profile_options and supplies tier tables
    # (§14.4). Never chosen automatically.
    "generic": Profile(
        name="generic",
        mm_formula="cum_deduction",
        tier_basis="notional",
        taker_fee_in_requirement=False,
        isolated_mm_price="at_liquidation",
        liquidation_settlement="clearance_fee",
        liquidation_fee_rate=Decimal("0.005"),
        reduce_only_excess="trim",
        isolated_leverage_change="reject_decrease",
        max_removable_rule="binance_current",
        order_cost_model="im_plus_open_loss",
        upnl_profit_counts_for_available=True,
        isolated_funding_source="isolated_wallet",
    ),
}

_OPTION_CHOICES: dict[str, object] = {
    "mm_formula": get_args(MmFormula),
    "tier_basis": get_args(TierBasis),
    "taker_fee_in_requirement": bool,
    "isolated_mm_price": get_args(LpMmPrice),
    "liquidation_settlement": get_args(Settlement),
    "liquidation_fee_rate": Decimal,
    "reduce_only_excess": get_args(ReduceOnlyExcess),
    "isolated_leverage_change": get_args(IsolatedLeverageChange),
    "max_removable_rule": get_args(MaxRemovableRule),
    "order_cost_model": get_args(OrderCostModel),
    "upnl_profit_counts_for_available": bool,
    "isolated_funding_source": get_args(FundingSource),
    "liquidation_steps": get_args(LiquidationSteps),
    "hedge_tier_basis": get_args(HedgeTierBasis),
    "liquidation_step_tiers": get_args(LiquidationStepTiers),
    "liquidation_partial_from_tier": get_args(PartialFromTier),
    "margin_mode_switch": get_args(MarginModeSwitch),
}

#: ccxt exchange ids whose rules each profile reproduces.
_EXCHANGE_PROFILES = {
    "binance": "binance",
    "binanceusdm": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "okex": "okx",
    "okex5": "okx",
    "mexc": "mexc",
    "bitget": "bitget",
    "gate": "gate",
    "gateio": "gate",
    "kucoinfutures": "kucoinfutures",
}


def get_profile(name: object, field: str = "profile") -> Profile:
    if not isinstance(name, str) or name not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise InputError(field, f"must be one of {known}, got {name!r}")
    return PROFILES[name]


def profile_for_exchange(exchange_id: str) -> Profile | None:
    """The profile that follows a ccxt exchange id, or None for an exchange guardbot lacks."""
    name = _EXCHANGE_PROFILES.get(exchange_id.lower())
    return PROFILES[name] if name else None
