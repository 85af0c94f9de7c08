"""Mirror a real exchange account, read-only (``[accounts.<name>] mirror = true``).

- :mod:`guardbot.mirror.venues`: what differs per venue (one small class each); which venues
  are supported, refused at configuration load otherwise.
- :mod:`guardbot.mirror.book`: the account as the exchange reports it, REST and stream merged,
  handed on as an immutable :class:`~guardbot.core.mirror.MirrorCmd`.
- :mod:`guardbot.mirror.follower`: the task that reads the exchange (streams, reconciliation,
  backoff, refused keys).
"""

from guardbot.runtime.ccxt_lazy import install as _install_ccxt_lazy

# Before any module of this package imports ccxt: only the exchange modules used are loaded
# (guardbot.runtime.ccxt_lazy).
_install_ccxt_lazy()
