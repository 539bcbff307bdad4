"""What a sweep asks for (`SweepSettings`, validated where it is built) and the order of its trials.

A sweep runs, per seed, a supervised-only baseline and a default-UDA baseline — so every
searched trial has a partner on the same labeled subset, seed and step budget — then the
searched trials, round-robin over the methods (one per space file), seeds cycling; or, for
`udatune confirm`, a fixed ``plan`` of trial configs instead.

A method whose first trial — the default recipe in its own terms — is exactly the default-UDA
baseline's run (RandAugment's, as shipped) is ``shared``: that trial is not trained twice; the
baseline's run counts as the method's first trial (sample.shared_methods decides which).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune.results import DEFAULT_UDA, SUPERVISED
from udatune.tune.space import SearchSpace, check_comparable
from udatune.tune.trainable import TrialResources

SCHEDULERS = ("asha", "fifo")


@dataclass(frozen=True)
class SweepSettings:
    spaces: tuple[SearchSpace, ...]
    name: str
    storage: str  # a local folder or a URI pyarrow understands (s3://, gs://)
    trials: int = 4  # searched trials in total, shared by the methods (baselines come on top)
    seeds: tuple[int, ...] = (0,)
    max_steps: int = field(default_factory=lambda: TrialConfig().train.steps)  # the config's budget (one default)
    max_concurrent: int = 0  # 0: as many trials as the cluster's CPUs/GPUs fit
    scheduler: str = "asha"
    grace_period: int = 0  # ASHA's first rung, in steps; 0: half of max_steps
    reduction_factor: float = 3.0
    resources: TrialResources = field(default_factory=TrialResources)
    baselines: bool = True
    seed: int = 0  # searcher seed
    max_failures: int = 2  # restarts of a trial (and of its Train run) after a lost worker or node
    # A fixed list of trial configs (``udatune confirm``'s re-runs), run instead of baselines
    # and searched trials; ``evaluate_test``: each trial also scores the test split at its end.
    plan: tuple[dict, ...] = ()
    evaluate_test: bool = False
    # Methods whose first trial is the default-UDA baseline's run of the first seed (see the
    # module docstring): one searched trial each that is not run again.
    shared: tuple[str, ...] = ()
    # `udatune search --confirm K --confirm-seeds ...`: the confirmation asked for after the
    # search, kept so that `udatune resume` of an interrupted search still runs it (0: none).
    confirm: int = 0
    confirm_seeds: tuple[int, ...] = ()

    def check(self) -> None:
        problems = [
            (self.trials < 0, f"--trials must be ≥ 0, got {self.trials}"),
            (not self.seeds, "--seeds needs at least one seed"),
            (self.max_steps <= 0, f"--max-steps must be > 0, got {self.max_steps}"),
            (self.max_concurrent < 0, f"--max-concurrent must be ≥ 0, got {self.max_concurrent}"),
            (self.scheduler not in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}"),
            (self.grace_period < 0 or self.grace_period > self.max_steps, f"--grace-period must be in [0, max steps = {self.max_steps}], got {self.grace_period}"),
            (self.reduction_factor <= 1, f"--reduction-factor must be > 1, got {self.reduction_factor}"),
            (self.resources.workers < 1, f"--workers-per-trial must be ≥ 1, got {self.resources.workers}"),
            (self.resources.cpus <= 0, f"--cpus-per-trial must be > 0, got {self.resources.cpus}"),
            (self.resources.gpus < 0, f"--gpus-per-trial must be ≥ 0, got {self.resources.gpus}"),
            # DDP ranks sharing one GPU: NCCL aborts ("Duplicate GPU detected") at the first collective.
            (self.resources.workers > 1 and not float(self.resources.gpus).is_integer(),
             f"--workers-per-trial {self.resources.workers} with --gpus-per-trial {self.resources.gpus:g}: "
             "data-parallel workers need whole GPUs each (NCCL cannot run two ranks on one GPU); "
             "use --gpus-per-trial 1 (or more), or --workers-per-trial 1 to pack several trials per GPU"),
            (self.max_failures < 0, f"--max-failures must be ≥ 0, got {self.max_failures}"),
            (self.trials > 0 and not self.spaces, "searched trials need at least one --space"),
            (self.trials == 0 and not self.baselines and not self.plan, "nothing to run: no searched trials and no baselines"),
            (bool(self.plan) and (self.trials > 0 or self.baselines), "a fixed plan runs alone: no searched trials, no baselines"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(f"Invalid sweep setting: {message}.")
        methods = [s.method for s in self.spaces]
        clash = sorted({m for m in methods if methods.count(m) > 1 or m in (SUPERVISED, DEFAULT_UDA)})
        if clash:
            raise ConfigError(f"Two spaces (or a space and a baseline) share the method name {clash[0]!r}; give each space file its own `method:`.")
        check_comparable(self.spaces)
        self.check_shared()
        self.check_confirm()

    def check_confirm(self) -> None:
        """The confirmation asked for: ≥ 0 recipes, and fresh seeds when there is one;
        `udatune resume` checks this too, since sweep.json can be edited."""
        if self.confirm < 0:
            raise ConfigError(f"Invalid sweep setting: --confirm must be ≥ 0 (0: no confirmation), got {self.confirm}.")
        if self.confirm:
            check_confirm_seeds(self.confirm, self.confirm_seeds, set(self.seeds), "--confirm", "--confirm-seeds")

    def check_shared(self) -> None:
        """The shared methods must be searched methods with a trial of their own (and baselines
        to share with); `udatune resume` checks this too, since sweep.json can be edited."""
        shares = method_shares(self)
        unknown = [m for m in self.shared if m not in shares]
        if unknown:
            raise ConfigError(f"Invalid sweep setting: shared method {unknown[0]!r} is not a searched method of this sweep ({', '.join(shares) or 'none'}).")
        unshareable = [m for m in self.shared if not self.baselines or shares[m] < 1]
        if unshareable:
            raise ConfigError(f"Invalid sweep setting: method {unshareable[0]!r} cannot share the default-UDA baseline's run "
                              "(it needs baselines and at least one searched trial of its own).")

    @property
    def path(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def total_trials(self) -> int:
        if self.plan:
            return len(self.plan)
        return self.trials - len(self.shared) + (2 * len(self.seeds) if self.baselines else 0)


def check_confirm_seeds(top: int, seeds: tuple[int, ...], searched: set[int], top_name: str, seeds_name: str) -> None:
    """A confirmation re-runs ``top`` ≥ 1 recipes on distinct seeds the search (``searched``)
    never used; the options are named as the command calls them."""
    used = sorted(searched & set(seeds))
    problems = [
        (top < 1, f"{top_name} must be ≥ 1, got {top}"),
        (not seeds, f"{seeds_name} needs at least one seed"),
        (len(set(seeds)) != len(seeds), f"{seeds_name} repeats a seed: {','.join(map(str, seeds))}"),
        (bool(used), f"{seeds_name}: seed {','.join(map(str, used))} was used by the search; confirmation needs fresh seeds"),
    ]
    for bad, message in problems:
        if bad:
            raise ConfigError(f"Invalid confirm setting: {message}.")


def baseline_configs(settings: SweepSettings) -> list[dict]:
    if not settings.baselines:
        return []
    configs = []
    for seed in settings.seeds:
        configs.append({"method": SUPERVISED, "seed": seed, "overrides": {"uda.mode": "supervised"}})
        configs.append({"method": DEFAULT_UDA, "seed": seed, "overrides": {"uda.mode": "uda"}})
    return configs


def method_order(settings: SweepSettings) -> list[tuple[str, int]]:
    """(method, seed) for each searched trial: methods round-robin, each cycling the seeds."""
    order, used = [], {s.method: 0 for s in settings.spaces}
    for i in range(settings.trials):
        method = settings.spaces[i % len(settings.spaces)].method
        order.append((method, settings.seeds[used[method] % len(settings.seeds)]))
        used[method] += 1
    return order


def searched_configs(settings: SweepSettings) -> list[dict]:
    """The searched trials that run: `method_order` less each shared method's first trial (the
    default-UDA baseline's run stands for it)."""
    configs, skipped = [], set()
    for method, seed in method_order(settings):
        if method in settings.shared and method not in skipped:
            skipped.add(method)
            continue
        configs.append({"method": method, "seed": seed})
    return configs


def method_shares(settings: SweepSettings) -> dict[str, int]:
    """How many searched trials each method gets (`method_order` counted per method), a shared
    first trial included."""
    shares = {s.method: 0 for s in settings.spaces}
    for method, _ in method_order(settings):
        shares[method] += 1
    return shares


def trials_that_fit(resources: TrialResources, cpus: float, gpus: float) -> int:
    """How many trials' Train workers fit on the cluster at once."""
    fits = math.floor(cpus / (resources.workers * resources.cpus) + 1e-9)
    if resources.gpus:
        fits = min(fits, math.floor(gpus / (resources.workers * resources.gpus) + 1e-9))
    return fits


def default_name() -> str:
    return "sweep-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def summary_line(settings: SweepSettings) -> str:
    if settings.plan:
        return f"{settings.total_trials} trials (a fixed plan), {settings.max_steps} steps each, {settings.scheduler.upper()}"
    methods = ", ".join(s.method for s in settings.spaces) or "none"
    shared = f", {len(settings.shared)} of them the default-UDA baseline's run" if settings.shared else ""
    return (
        f"{settings.total_trials} trials ({settings.trials} searched over {methods}{shared}"
        f"{'' if not settings.baselines else f' + {2 * len(settings.seeds)} baselines'}), "
        f"{settings.max_steps} steps each, seeds {','.join(map(str, settings.seeds))}, {settings.scheduler.upper()}"
    )
