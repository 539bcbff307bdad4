"""A trial survives the loss of the node it trains on: a real two-node Ray cluster on this machine
(`ray start --head` and `ray start --address`), one of whose nodes is killed mid-trial."""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

STEPS = 30
TINY = [
    "--trials", "1", "--space", "randaugment", "--no-baselines", "--scheduler", "fifo", "--max-steps", str(STEPS),
    "--set", "train.eval_every=3", "--set", "train.log_every=1", "--set", "train.batch_size=2",
    "--set", "train.unlabeled_batch_size=2", "--set", "model.width=4", "--set", "uda.rampup_steps=2",
]

# On a busy 2-core machine a node's agents can take longer to start than Ray waits by default.
SLOW_MACHINE = {"RAY_agent_register_timeout_ms": "300000", "RAY_raylet_start_wait_time_s": "300"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def rows(sweep: Path) -> list[dict]:
    try:
        return json.loads((sweep / "trials.json").read_text())["rows"]
    except (OSError, ValueError):
        return []


@pytest.mark.slow
def test_a_trial_survives_the_loss_of_its_node(tmp_path, processes, wait_until, synthetic_cache):
    ray = str(Path(sys.executable).parent / "ray")
    # Token authentication on, with a token of this test's own (worker nodes and the driver
    # must present the head's token; ~/.ray/auth_token is left alone).
    env = processes.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16), UDATUNE_CACHE=str(synthetic_cache), **SLOW_MACHINE)
    port = free_port()
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]

    def node(name: str, *args: str):
        # A raylet gives its dashboard agent 15 s to come up; on a busy 2-core machine the
        # agent's imports can take longer, and the node dies at start. A second try finds the
        # imports in the page cache.
        for attempt in range(3):
            log = tmp_path / f"{name}-{attempt}.log"
            process = processes.start([ray, "start", *common, f"--dashboard-agent-listen-port={free_port()}", *args], log, env)
            deadline = time.time() + 180
            while process.poll() is None and time.time() < deadline and "Ray runtime started" not in log.read_text():
                time.sleep(0.5)
            if "Ray runtime started" in log.read_text():
                return process
            processes.kill_tree(process.pid)
        raise AssertionError(f"Ray node {name} did not start: {log.read_text()[-2000:]}")

    # The head takes no training (0 CPUs): the trial's Train worker must run on node A.
    node("head", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false")
    node_a = node("a", f"--address=127.0.0.1:{port}", "--num-cpus=1")

    storage = tmp_path / "sweeps"
    sweep = storage / "lost"
    driver = processes.start(
        [sys.executable, "-c", "from udatune.cli.app import run; run()", "search", "--address", f"127.0.0.1:{port}",
         "--storage", str(storage), "--name", "lost", *TINY],
        tmp_path / "driver.log", env,
    )
    mid_way = wait_until(
        lambda: next((r for r in rows(sweep) if 0 < r["step"] < STEPS), None), 600, "the trial's first checkpoint", process=driver
    )
    lost_at = time.time()
    processes.kill_tree(node_a.pid)  # the node, its raylet and the trial's worker, at once
    node("b", f"--address=127.0.0.1:{port}", "--num-cpus=1")  # the cluster gets a replacement

    assert driver.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    frame = pd.read_csv(sweep / "results.csv")
    assert len(frame) == 1 and frame.loc[0, "status"] == "done" and frame.loc[0, "step"] == STEPS

    reports = [json.loads(line) for line in next(sweep.glob("000-*")).joinpath("result.json").read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in reports]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS  # no step ran twice
    restarted = [r["step"] for r in reports if r["worker_started"] > lost_at]
    assert restarted and restarted[0] > mid_way["step"]  # from the checkpoint, not from step 0
    assert len({r["worker_started"] for r in reports}) == 2  # one worker before the loss, one after
