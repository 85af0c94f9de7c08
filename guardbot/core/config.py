"""The engine's configuration: profile, tiers, fees, accounts, guards and alert levels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core.alerts import AlertConfig
from guardbot.core.guards import GuardConfig
from guardbot.core.num import ONE, ZERO
from guardbot.core.profiles import PROFILES, Profile
from guardbot.core.tiers import TierTable
from guardbot.errors import InputError

__all__ = ["POSITION_MODES", "AccountConfig", "EngineConfig", "Fees", "SymbolDefaults"]

#: Account position modes: one position per symbol, or a long and a short side per symbol.
POSITION_MODES = ("oneway", "hedged")


@dataclass(frozen=True, slots=True)
class Fees:
    maker: Decimal = ZERO
    taker: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("maker", "taker"):
            value = getattr(self, name)
            if not ZERO <= value < ONE:
                raise InputError(name, f"must be >= 0 and < 1, got {value}")


@dataclass(frozen=True, slots=True)
class SymbolDefaults:
    """An account's own margin mode and/or leverage for new positions in one symbol
    (``None``: the account's default)."""

    margin_mode: str | None = None
    leverage: Decimal | None = None

    def __post_init__(self) -> None:
        if self.margin_mode is not None and self.margin_mode not in ("cross", "isolated"):
            raise InputError("margin_mode", f"must be cross or isolated, got {self.margin_mode!r}")
        if self.leverage is not None and self.leverage < 1:
            raise InputError("leverage", f"must be >= 1, got {self.leverage}")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    wallet: Decimal = Decimal(10000)
    default_margin_mode: str = "cross"
    default_leverage: Decimal = Decimal(10)
    fees: Fees | None = None  # None: the engine's fees
    #: ``oneway`` (one position per symbol) or ``hedged`` (a long and a short side per symbol).
    position_mode: str = "oneway"
    #: A mirror of a real exchange account: the exchange's reports replace its state
    #: (guardbot.core.mirror); the engine never trades, fills or liquidates it.
    mirror: bool = False
    #: Liquidation price difference (guardbot's vs the exchange's) that raises mirror_drift,
    #: as a share of the mark price.
    mirror_tolerance: Decimal = Decimal("0.005")
    #: Seconds of input time a drift beyond ``mirror_tolerance`` must last before mirror_drift
    #: is raised (0: at once); see guardbot.core.mirroring.
    mirror_drift_confirm_s: Decimal = Decimal(5)
    #: Per-symbol margin mode and leverage ("cross for the hedged pairs, isolated for the rest").
    symbols: Mapping[str, SymbolDefaults] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.wallet < 0:
            raise InputError("wallet", f"must be >= 0, got {self.wallet}")
        if self.default_margin_mode not in ("cross", "isolated"):
            raise InputError(
                "default_margin_mode",
                f"must be cross or isolated, got {self.default_margin_mode!r}",
            )
        if self.default_leverage < 1:
            raise InputError("default_leverage", f"must be >= 1, got {self.default_leverage}")
        if self.position_mode not in POSITION_MODES:
            raise InputError(
                "position_mode", f"must be oneway or hedged, got {self.position_mode!r}"
            )
        if not ZERO < self.mirror_tolerance < ONE:
            raise InputError(
                "mirror_tolerance", f"must be > 0 and < 1, got {self.mirror_tolerance}"
            )
        if self.mirror_drift_confirm_s < 0:
            raise InputError(
                "mirror_drift_confirm_s", f"must be >= 0, got {self.mirror_drift_confirm_s}"
            )


@dataclass(frozen=True, slots=True)
class EngineConfig:
    profile: Profile = PROFILES["binance"]
    tiers: Mapping[str, TierTable] = field(default_factory=dict)
    contract_sizes: Mapping[str, Decimal] = field(default_factory=dict)
    fees: Fees = field(default_factory=Fees)
    accounts: Mapping[str, AccountConfig] = field(default_factory=dict)
    #: Accounts not listed are created with ``default_account`` on first use when True.
    auto_create_accounts: bool = True
    default_account: AccountConfig = field(default_factory=AccountConfig)
    guards: GuardConfig = field(default_factory=GuardConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    #: Price that stops and trigger orders watch: ``mark`` (guardbot's default) or ``last``.
    trigger_price: str = "mark"
    #: Slippage applied against the taker on market and stop-market fills, in basis points.
    slippage_bps: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.trigger_price not in ("mark", "last"):
            raise InputError("trigger_price", f"must be mark or last, got {self.trigger_price!r}")
        if self.slippage_bps < 0:
            raise InputError("slippage_bps", f"must be >= 0, got {self.slippage_bps}")
