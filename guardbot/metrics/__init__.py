"""Prometheus metrics: the collectors fed from engine events and the ``/metrics`` listener.

An adapter: may import other adapters' public types, ``guardbot.formats``, ``guardbot.runtime``,
``guardbot.core``.
"""
