"""kill -9 at random moments over a long run loses and doubles nothing (issue 16).

``guardbot run`` (a real process, simulated feed, checkpoints every second, a few hundred resting
orders so that a checkpoint takes a while) is killed with SIGKILL 20 times: at random moments,
and every fourth time right after it logs that a checkpoint is starting (so during the
checkpoint). After the last kill it starts once more and stops cleanly. Then:

* the state it rebuilt (checkpoint + later inputs) equals the state rebuilt from the whole
  journal, field by field (nothing lost, nothing applied twice);
* the ``[[seed]]`` was applied once, no funding was settled twice, input seqs and alert ids are
  unique;
* every checkpoint stored is readable and its digest matches (a kill mid-checkpoint leaves the
  previous ones intact).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot.config import load_config
from guardbot.core import checkpoint
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.recovery import recover
from guardbot.daemon.sdnotify import Notifier
from guardbot.daemon.tier_tables import TierTables
from guardbot.metrics.prometheus import Metrics
from guardbot.store.journal import Journal

REPO = Path(__file__).resolve().parents[2]
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
KILLS = 20
RESTING = 150  # resting limit orders per symbol: a checkpoint of some size


def _config(tmp_path: Path) -> Path:
    seeds = [
        '[[seed]]\ntype = "order"\naccount = "a"\nid = "long"\nsymbol = "BTC/USDT:USDT"\n'
        'orderType = "market"\nside = "buy"\namount = "0.2"\n'
        'params = { stopLossPrice = "50000", trailingPercent = "3" }\n'
    ]
    for symbol, price, short in ((BTC, 40000, "b"), (ETH, 2000, "e")):
        for i in range(RESTING):
            seeds.append(
                f'[[seed]]\ntype = "order"\naccount = "a"\nid = "{short}{i}"\nsymbol = "{symbol}"\n'
                f'orderType = "limit"\nside = "buy"\namount = "0.001"\nprice = "{price - i}"\n'
            )
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "k9"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "info"

[exchange]
id = "binanceusdm"
symbols = ["{BTC}", "{ETH}"]

[feed]
mode = "sim"
speed = 40
sim_seed = 3

[accounts.a]
wallet = 100000
default_leverage = 10

[mqtt]
url = "mqtt://127.0.0.1:9"
embedded_broker = "never"

[metrics]
enabled = false

[store]
checkpoint_interval_s = 1

"""
        + "\n".join(seeds),
        encoding="utf-8",
    )
    return path


class Run:
    """One ``guardbot run`` process whose log is read line by line."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardbot", "run", "-c", str(config)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(config.parent),
        )
        self._offset = log.stat().st_size

    def wait_line(self, text: str, timeout: float) -> bool:
        """Poll the log for a line containing ``text`` (a log file has no event to await)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            if text.encode() in chunk:
                return True
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"guardbot run exited {self.proc.returncode}:\n{chunk[-3000:]!r}"
                )
            time.sleep(0.005)
        return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._out.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._out.close()
        return code


async def _replayed_state(config_path: Path, use_checkpoints: bool) -> tuple[Any, int]:
    """The state a start rebuilds (with or without checkpoints) and the checkpoint it used."""
    config = load_config(config_path, {})
    tiers = TierTables(config)
    pipeline = StepPipeline(
        tiers.initial_engine(),
        instance="k9",
        prefix="guardbot",
        symbols=config.exchange.symbols,
        metrics=Metrics(symbols=config.exchange.symbols),
        clock=time.time,
        wake=lambda: None,
    )
    async with Journal.in_data_dir(config.guardbot.data_dir, instance="k9") as journal:
        pipeline.attach(journal)
        pipeline.engine, _warnings = await tiers.resolve_at_start(journal, int(time.time() * 1000))
        done = await recover(journal, pipeline, Notifier(None), use_checkpoints=use_checkpoints)
    st = pipeline.engine.state_root
    st.out = []
    return _numbers(checkpoint.encode(st)), done.checkpoint_seq


def _numbers(tree: Any) -> Any:
    """Decimals compared by value: a live tick's bid may be ``2985.0`` where the journal's
    normalised copy says ``2985`` (equal numbers; the journal writes numbers without trailing
    zeros)."""
    if isinstance(tree, dict):
        if set(tree) == {"d"}:
            return {"d": Decimal(tree["d"])}
        return {k: _numbers(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_numbers(v) for v in tree]
    return tree


def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = tmp_path / "guardbot.log"
    log.touch()
    rng = random.Random(16)
    during_checkpoint = 0
    for n in range(KILLS):
        run = Run(config, log)
        assert run.wait_line("guardbot daemon started", 30), "not started"
        if n % 4 == 3:
            # Right after a checkpoint starts: the kill lands while it is encoded or written.
            assert run.wait_line('"checkpoint starting"', 10)
            time.sleep(rng.uniform(0, 0.01))
            during_checkpoint += 1
        else:
            time.sleep(rng.uniform(0.02, 0.8))
        run.kill()
    final = Run(config, log)
    assert final.wait_line("guardbot daemon started", 30)
    # runs on after the last kill until its first checkpoint (one a second), not a blind pause
    assert final.wait_line('"checkpoint written"', 10)
    assert final.stop() == 0
    assert during_checkpoint == KILLS // 4

    db = tmp_path / "data" / "guardbot.db"
    with sqlite3.connect(db) as conn:
        kinds = Counter(k for (k,) in conn.execute("SELECT kind FROM inputs"))
        seeds = [
            json.loads(b) for (b,) in conn.execute("SELECT body FROM inputs WHERE kind='seed'")
        ]
        fundings = list(conn.execute("SELECT body, ts FROM inputs WHERE kind = 'funding'"))
        alert_ids = [a for (a,) in conn.execute("SELECT alert_id FROM outbox")]
        cps = list(conn.execute("SELECT body, sha256 FROM checkpoints"))
    assert kinds["tick"] > 0
    # The seed once and whole (one input), however the kills fell.
    assert len(seeds) == 1
    ids = Counter(o["id"] for o in seeds[0]["commands"])
    assert ids["long"] == 1 and max(ids.values()) == 1 and len(ids) == 1 + 2 * RESTING
    assert len(fundings) == len(set(fundings))
    assert len(alert_ids) == len(set(alert_ids))
    assert cps, "no checkpoint survived"
    for body, sha in cps:
        assert checkpoint.digest(body) == sha
        checkpoint.loads(body)

    from_checkpoint, used = asyncio.run(_replayed_state(config, use_checkpoints=True))
    from_journal, none = asyncio.run(_replayed_state(config, use_checkpoints=False))
    assert used > 0 and none == 0
    assert from_checkpoint == from_journal
