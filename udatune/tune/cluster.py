"""Where a sweep runs: connect to a Ray cluster, or start a private local one.

* ``address`` unset (and no ``RAY_ADDRESS``): a local Ray started for this run and stopped
  after it — token authentication on, no dashboard, every port bound to 127.0.0.1.
* ``auto``, ``host:port`` or ``ray://host:port`` (or ``RAY_ADDRESS``): an existing cluster.
  An address that does not answer is a `ConfigError` raised before anything is written.

`redirect_output` sends what Ray and Tune print (their console stream, C++ core warnings) to a
log file, so the terminal shows only udatune's own display.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from udatune.errors import ConfigError

# Ray binds to the loopback interface only when it runs "without clusters" (its mode on macOS
# and Windows); that is what a private local Ray should do everywhere.
_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

# Settings for every process of the sweep's Ray job:
# * a trial queued behind the running ones (see sweep.run_sweep) waits for its workers'
#   resources longer than Ray Train's default 60 s;
# * a Train controller polls its workers every 2 s by default, so a finished trial held its
#   slot for 2-4 s more (measured: a queued trial's worker started 4.5 s after the previous
#   trial's worker ended, 1.0 s with 0.2 s polls); 0.5 s costs one small RPC per worker per
#   half second.
JOB_ENV = {"RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "86400", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}
# ... and of a private local Ray only: one machine is never preempted, so no trial needs Ray
# Train's preemption watcher (an actor per trial, about 2 CPU-seconds each: bench/processes.py).
LOCAL_ENV = {**JOB_ENV, "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


@dataclass(frozen=True)
class Cluster:
    address: str  # what we connected to ("local" for a private Ray)
    local: bool
    cpus: float
    gpus: float
    logs: str  # Ray's own log folder on the head node (session logs)
    hosts: int = 1  # machines with an alive node when the sweep started (several nodes of one machine share its disk)


def check_shared_storage(storage: str, hosts: int) -> None:
    """Refuse a local ``--storage`` folder on a cluster that spans several machines: each trial's
    checkpoints would land on whichever machine wrote them, and a trial restarted elsewhere, the
    report and resume would not find them. Nodes of one machine share its disk: that is fine."""
    if hosts > 1 and "://" not in storage:
        raise ConfigError(
            f"--storage {storage} is a local folder, but the Ray cluster spans {hosts} machines: checkpoints and "
            "results would be scattered over the nodes' own disks. Pass storage every node reaches: a URI "
            "such as s3://bucket/sweeps or gs://bucket/sweeps, or, for a folder mounted at the same path on "
            "every node (NFS), that path as file:///path/to/sweeps."
        )


def driver_environment() -> None:
    """Settings the driver needs before Ray Train/Tune are imported."""
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")  # the default in Ray ≥ 2.5x; explicit here
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no console reporter of Tune's own
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "60")
    # Tune saves its experiment state (what `udatune resume` restores) at most this often; its
    # default ("auto": ≥ 10 s) would let a driver killed with SIGKILL forget up to 10 s of
    # trials. The state of a sweep is a few kilobytes, so saving it every 2 s costs nothing.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: the option, else ``RAY_ADDRESS``, else None (start a local Ray)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in ("local", ""):
        return None
    return address


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when ``host:port`` does not accept connections
    (``ray.init`` would otherwise retry for minutes)."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not auto, host:port or ray://host:port.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({err.strerror or err}). Start one with "
            "`ray start --head`, pass its address, or leave --address unset to run on a local Ray."
        ) from None


@contextlib.contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[Cluster]:
    """Connect (or start a local Ray), yield what the cluster offers, and disconnect after."""
    driver_environment()
    address = resolve_address(address)
    saved_env = {k: os.environ.get(k) for k in (_LOCAL_ONLY_ENV, *LOCAL_ENV)}
    if address is None:
        # Token authentication is Ray's default for a new local cluster (RAY_AUTH_MODE unset):
        # ray.init generates ~/.ray/auth_token and turns it on for the driver and every process.
        os.environ[_LOCAL_ONLY_ENV] = "0"
        os.environ.update(LOCAL_ENV)  # inherited by the local Ray's processes
    else:
        check_reachable(address)

    import ray

    from udatune.tune import ray_compat

    with ray_compat.local_only_ray() if address is None else contextlib.nullcontext():
        try:
            if address is None:
                context = ray.init(
                    num_cpus=num_cpus,
                    num_gpus=num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=True,
                    logging_level="WARNING",
                    **ray_compat.loopback_init_options(),
                )
            else:
                context = ray.init(address=address, log_to_driver=False, logging_level="WARNING", runtime_env={"env_vars": JOB_ENV})
        except (ConnectionError, ValueError, RuntimeError) as err:
            _restore(saved_env)
            raise ConfigError(f"--address {address or 'local'}: could not start or join Ray: {str(err).splitlines()[0]}") from None
        except BaseException:  # Ctrl-C while Ray starts: stop what it started, leave no agents behind
            ray.shutdown()
            _restore(saved_env)
            raise
        try:
            resources = ray.cluster_resources()
            logs = getattr(context, "address_info", {}).get("session_dir", "") or ""
            yield Cluster(
                address=address or "local",
                local=address is None,
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
                logs=str(Path(logs) / "logs") if logs else "",
                hosts=len({node.get("NodeManagerAddress") for node in ray.nodes() if node.get("Alive")}),
            )
        finally:
            ray.shutdown()
            _restore(saved_env)


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def redirect_output(log_file: Path) -> Iterator[TextIO]:
    """Send everything written to stdout/stderr — by Python, Ray's C++ core, Tune — to
    ``log_file``; yield a stream onto the original stdout for udatune's own display.

    Works at the file-descriptor level when stdout has one (a terminal, a pipe); otherwise
    (stdout replaced by a test harness) it swaps ``sys.stdout``/``sys.stderr`` only.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_file, "a", buffering=1)
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        out_fd = err_fd = -1
    if out_fd < 0 or err_fd < 0:
        original = sys.stdout
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                yield original
            finally:
                log.close()
        return

    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(out_fd), os.dup(err_fd)
    display = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding=getattr(sys.stdout, "encoding", None) or "utf-8")
    os.dup2(log.fileno(), out_fd)
    os.dup2(log.fileno(), err_fd)
    try:
        yield display
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        display.flush()
        os.dup2(saved_out, out_fd)
        os.dup2(saved_err, err_fd)
        os.close(saved_out)
        os.close(saved_err)
        display.close()
        log.close()
