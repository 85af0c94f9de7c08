"""Margin-ratio alert levels with hysteresis (docs/architecture.md §3, docs/contracts.md §2).

A level fires when the ratio rises to or above it and re-arms when the ratio falls below
``level - hysteresis``. Each scope (a cross account, an isolated position) says at most one
thing per evaluation: ``margin_alert`` for the highest level the ratio reached (the levels
under it count as fired too), or ``margin_recovered`` for the lowest level it fell back below
(it and every level above it are armed again). The last level is the margin call, the others
are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core.settings import setting
from guardbot.errors import InputError

__all__ = ["AlertConfig", "AlertState", "Crossing"]


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """The ``[alerts]`` section: the margin-ratio ladder."""

    levels: tuple[Decimal, ...] = setting(
        (Decimal("0.5"), Decimal("0.7"), Decimal("0.8")),
        toml="margin_ratio_levels",
        gt=0,
        what="ratios",
        doc="Margin ratios (maintenance requirement / margin balance) that raise alerts, "
        "increasing, in (0, 1]; the last is the margin call, the others warnings.",
    )
    hysteresis: Decimal = setting(
        Decimal("0.05"),
        ge=0,
        doc="A level re-arms, with a margin_recovered naming it, once the ratio falls below"
        " level - hysteresis.",
    )

    def __post_init__(self) -> None:
        if not self.levels:
            raise InputError("margin_ratio_levels", "must hold at least one level")
        for i, level in enumerate(self.levels):
            if not 0 < level <= 1:
                raise InputError(f"margin_ratio_levels[{i}]", f"must be > 0 and <= 1, got {level}")
            if i and level <= self.levels[i - 1]:
                raise InputError("margin_ratio_levels", "must be strictly increasing")
        if self.hysteresis < 0 or self.hysteresis >= self.levels[0]:
            raise InputError(
                "hysteresis",
                f"must be >= 0 and below the first level ({self.levels[0]}), got {self.hysteresis}",
            )

    def severity(self, index: int) -> str:
        return "margin_call" if index == len(self.levels) - 1 else "warning"


@dataclass(frozen=True, slots=True)
class Crossing:
    """The ratio reached ``level`` (``recovered`` False) or fell back below ``level`` minus the
    hysteresis (``recovered`` True)."""

    level: int
    recovered: bool = False


@dataclass(slots=True)
class AlertState:
    """Which levels of one scope (a cross account or an isolated position) have fired.

    The fired levels are always the lowest ones: a level fires only with every level under it,
    and re-arms only with every level above it.
    """

    fired: list[bool] = field(default_factory=list)

    @property
    def alerted(self) -> bool:
        """A level is fired: a ``margin_recovered`` is still due."""
        return any(self.fired)

    def reset(self, config: AlertConfig) -> None:
        self.fired = [False] * len(config.levels)

    def update(
        self, config: AlertConfig, requirement: Decimal, margin_balance: Decimal
    ) -> list[Crossing]:
        """Apply the current exact ``requirement`` and ``margin_balance``; return what changed:
        nothing or one crossing (a jump over two levels is one alert, at the higher level).

        Comparisons are made as products (``req >= level * MB``), so a ratio exactly on a level
        is decided exactly. A margin balance <= 0 is above every level.
        """
        if len(self.fired) != len(config.levels):
            self.reset(config)
        levels = config.levels
        broke = margin_balance <= 0
        reached = [
            i
            for i, level in enumerate(levels)
            if not self.fired[i] and (broke or requirement >= level * margin_balance)
        ]
        if reached:
            for i in range(reached[-1] + 1):
                self.fired[i] = True
            return [Crossing(reached[-1])]
        if broke:
            return []
        h = config.hysteresis
        rearmed = [
            i
            for i, level in enumerate(levels)
            if self.fired[i] and requirement < (level - h) * margin_balance
        ]
        if not rearmed:
            return []
        for i in range(rearmed[0], len(levels)):
            self.fired[i] = False
        return [Crossing(rearmed[0], recovered=True)]

    def thresholds(self, config: AlertConfig) -> tuple[Decimal | None, Decimal | None]:
        """(the next ratio that fires a level, the ratio under which something re-arms)."""
        if len(self.fired) != len(config.levels):
            self.reset(config)
        up = next((lv for lv, f in zip(config.levels, self.fired, strict=True) if not f), None)
        fired = [lv for lv, f in zip(config.levels, self.fired, strict=True) if f]
        down = fired[-1] - config.hysteresis if fired else None
        return up, down
