"""The daemon's configuration: a TOML file validated into frozen typed objects
(docs/architecture.md §7).

:func:`load_config` reads the file (or the embedded offline defaults), applies ``GUARDBOT_*``
environment overrides, checks every key and raises one :class:`~guardbot.errors.ConfigError`
listing every problem, one per line, as ``<key path>: <what is wrong>``.

Each key is declared once, as a field of its section's dataclass (:mod:`.sections`, with
:func:`guardbot.core.settings.setting`): default, type, rules and documentation. The schema
(:mod:`.schema`), the reader (:mod:`.reader`), the environment overrides (:mod:`.env`), the
cross-key checks (:mod:`.build`), ``guardbot init`` / ``config check`` and config/README.md's key
table (:mod:`.render`) derive from those fields. :mod:`.discover` finds the file without ``-c``.

Secrets never come from the file: exchange credentials, the MQTT password and the control token
are read from environment variables into :class:`Secret`, whose ``repr`` hides the value.

May import ``guardbot.core``, ``guardbot.formats``, ``guardbot.runtime`` and ``guardbot.mqtt``'s
command vocabulary.
"""

from guardbot.config.env import ENV_PREFIX
from guardbot.config.load import DEFAULT_TOML, load_config
from guardbot.config.secret import EXCHANGE_SECRET_ENV, Secret
from guardbot.config.sections import (
    AccountSection,
    Config,
    ControlSection,
    ExchangeSection,
    FeedSection,
    GuardbotSection,
    MetricsSection,
    MqttSection,
    StoreSection,
    StrategySection,
)

__all__ = [
    "DEFAULT_TOML",
    "ENV_PREFIX",
    "EXCHANGE_SECRET_ENV",
    "AccountSection",
    "Config",
    "ControlSection",
    "ExchangeSection",
    "FeedSection",
    "GuardbotSection",
    "MetricsSection",
    "MqttSection",
    "Secret",
    "StoreSection",
    "StrategySection",
    "load_config",
]
