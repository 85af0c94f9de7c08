"""Local stand-ins for exchange APIs, so tests exercise the real ccxt code path offline."""
