"""Search spaces: declarative YAML files, validated into frozen values before anything starts.

A space file names one *method* — a policy family to search, the UDA knobs searched with it,
and the searcher that samples them::

    method: autoaugment          # the name shown in tables (default: the file's stem)
    searcher: optuna             # optuna (TPE) | random
    policy:
      family: autoaugment        # autoaugment | randaugment | trivialaugment | fixed
      subpolicies: 3             # K sub-policies ...
      ops_per_subpolicy: 2       # ... of 2 (op, probability, magnitude) steps
      ops: [Rotate, Color, ...]  # the ops a step may use (default: all)
      probability: {low: 0.0, high: 1.0}
      magnitude: {low: 0, high: 10}
    lambda_u: {low: 0.3, high: 3.0, log: true}
    tau: [0.0, 0.5, 0.7, 0.8, 0.9]   # 0: no threshold
    temperature: {low: 0.3, high: 1.0}
    tsa: [none, log]
    ema_decay: [0.0, 0.9, 0.99]      # the anti-collapse options: mean teacher ...
    class_adaptive: [false, true]    # ... class-adaptive τ, class-balanced consistency,
    class_balance: [false, true]
    align: [false, true]             # ... distribution alignment
    paste: [0.0, 0.5]                # ... labelled rare-class objects pasted into the strong view
    encoder_lr_mult: {low: 0.01, high: 1.0, log: true}  # models with an encoder only
    trial: {uda.loss: kl}        # fixed overrides for every trial of this method (model.* too)

A parameter is a range ``{low, high, log?}``, a list of choices, or one fixed value. Every
mistake — an unknown op or key, an empty choice, ``low > high`` — is a `ConfigError` that names
the file and the key.

Everything but the policy — searcher, knobs, fixed overrides — is a space's `knobs`. Methods
compared in one sweep must have the same knobs (`check_comparable`), so that a difference
between two methods is their policy family's and not an unlucky draw of λ or TSA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from udatune.config import TrialConfig, yaml_problem
from udatune.errors import ConfigError

SEARCHERS = ("optuna", "random")
FAMILIES = ("autoaugment", "randaugment", "trivialaugment", "fixed")
TSA_SCHEDULES = ("none", "linear", "log", "exp")
MAX_MAGNITUDE = 10  # AutoAugment's integer magnitude bins 0..10 (as in udatune.augment.ops)

# The UDA knobs a space may search, with the bounds each must stay inside.
UDA_PARAMS: dict[str, tuple[float, float]] = {
    "lambda_u": (0.0, math.inf),
    "tau": (0.0, 1.0),
    "temperature": (1e-6, math.inf),
    "ema_decay": (0.0, 0.9999),
    "paste": (0.0, 1.0),
}
# On/off UDA options a space may search: the remedies against thin classes collapsing.
FLAG_PARAMS = ("class_adaptive", "class_balance", "align")
# Training knobs a space may search (``train.<name>``): the encoder's learning-rate multiplier,
# for models with a pretrained encoder.
TRAIN_PARAMS: dict[str, tuple[float, float]] = {
    "encoder_lr_mult": (0.0, math.inf),
}


def param_key(name: str) -> str:
    """The dotted config key a searched parameter sets."""
    return f"train.{name}" if name in TRAIN_PARAMS else f"uda.{name}"


@dataclass(frozen=True)
class Param:
    """One searched value: a range (``low``..``high``, maybe log-uniform), choices, or a constant."""

    kind: str  # "float" | "int" | "choice" | "fixed"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple = ()
    value: Any = None

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.value}"
        if self.kind == "choice":
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        return f"{'log-' if self.log else ''}[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class PolicySpace:
    family: str
    # autoaugment
    subpolicies: int = 0
    ops_per_subpolicy: int = 2
    probability: Param = Param("float", 0.0, 1.0)
    magnitude: Param = Param("int", 0, MAX_MAGNITUDE)
    ops: tuple[str, ...] = ()
    # randaugment
    n: Param = Param("int", 1, 3)
    m: Param = Param("int", 1, MAX_MAGNITUDE)
    op_set: str = "all"  # randaugment/trivialaugment op set: all | photometric
    # fixed
    policy: str = ""

    def describe(self) -> str:
        if self.family == "autoaugment":
            return f"AA K={self.subpolicies}×{self.ops_per_subpolicy} over {len(self.ops)} ops"
        if self.family == "randaugment":
            return f"RA N∈{self.n.describe()} M∈{self.m.describe()} ({self.op_set})"
        if self.family == "trivialaugment":
            return f"TA ({self.op_set})"
        return self.policy


@dataclass(frozen=True)
class SearchSpace:
    """A validated space file: what one method searches and how."""

    method: str
    searcher: str
    policy: PolicySpace
    params: dict[str, Param] = field(default_factory=dict)  # "lambda_u", "tau", "temperature", "tsa"
    trial: dict[str, Any] = field(default_factory=dict)  # fixed dotted overrides
    source: str = ""
    seed: int = 0  # sampler seed

    def describe(self) -> str:
        knobs = ", ".join(f"{k}∈{p.describe()}" for k, p in self.params.items())
        return f"{self.method} ({self.searcher}): {self.policy.describe()}; {knobs or 'UDA knobs at the default'}"

    @property
    def knobs(self) -> tuple:
        """Everything the space sets besides its policy family: what must match across the
        methods of a sweep for their comparison to be about the policy family alone."""
        return (self.searcher, tuple(sorted(self.params.items())), tuple(sorted((k, repr(v)) for k, v in self.trial.items())))

    def policy_only(self) -> "SearchSpace":
        """The same space with the UDA knobs held at the sweep's default recipe (``--knobs
        default``): only the policy (and training knobs such as the encoder's rate) is searched."""
        return SearchSpace(self.method, self.searcher, self.policy, {k: p for k, p in self.params.items() if k in TRAIN_PARAMS},
                           self.trial, self.source, self.seed)


def check_comparable(spaces: tuple[SearchSpace, ...] | list[SearchSpace]) -> None:
    """Methods in one sweep differ in their policy family only: the same searcher, the same
    knob ranges and the same fixed overrides. Otherwise a method could win by drawing a better
    λ or TSA schedule, and the ranking would name the wrong cause."""
    if len(spaces) < 2:
        return
    first = spaces[0]
    for other in spaces[1:]:
        if other.knobs == first.knobs:
            continue
        what = []
        if other.searcher != first.searcher:
            what.append(f"searcher {first.searcher} vs {other.searcher}")
        for name in sorted(set(first.params) | set(other.params)):
            a, b = first.params.get(name), other.params.get(name)
            if a != b:
                what.append(f"{name} {a.describe() if a else 'not searched'} vs {b.describe() if b else 'not searched'}")
        if first.trial != other.trial:
            what.append(f"trial: {first.trial} vs {other.trial}")
        raise ConfigError(
            f"Spaces {first.method} ({first.source}) and {other.method} ({other.source}) search different knobs "
            f"({'; '.join(what)}), so their comparison would not isolate the policy family. Give every space file of a "
            "sweep the same searcher, knob ranges and trial: section (copy them from a built-in space), "
            "or hold the knobs at the default with --knobs default."
        )


# --- finding space files -----------------------------------------------------------------------


def builtin_spaces() -> list[str]:
    """Names of the space files shipped in ``udatune.search_spaces``."""
    folder = resources.files("udatune.search_spaces")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_space(spec: str) -> Path:
    """``--space`` takes a built-in name (``autoaugment``) or a path to a YAML file."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in spec:
        if not path.is_file():
            raise ConfigError(f"--space {spec}: no such file; pass a YAML space file or one of: {', '.join(builtin_spaces())}.")
        return path
    candidate = resources.files("udatune.search_spaces") / f"{spec}.yaml"
    if not candidate.is_file():
        raise ConfigError(f"--space {spec!r} is not a built-in space ({', '.join(builtin_spaces())}) nor a file.")
    return Path(str(candidate))


def load_space(spec: str | Path) -> SearchSpace:
    path = resolve_space(str(spec))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"Space file {path} is not valid YAML: {yaml_problem(err)}; fix it or copy a built-in space ({', '.join(builtin_spaces())}).") from None
    return parse_space(raw, source=str(path), default_method=path.stem)


# --- validation --------------------------------------------------------------------------------

TOP_KEYS = ("method", "searcher", "seed", "policy", "lambda_u", "tau", "temperature", "ema_decay", "paste", "tsa",
            *FLAG_PARAMS, "encoder_lr_mult", "trial")
POLICY_KEYS = {
    "autoaugment": ("family", "subpolicies", "ops_per_subpolicy", "ops", "probability", "magnitude"),
    "randaugment": ("family", "n", "m", "ops"),
    "trivialaugment": ("family", "ops"),
    "fixed": ("family", "policy"),
}


class _Checker:
    """Raises ConfigErrors that start with the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> None:
        raise ConfigError(f"Space file {self.source}: {key}: {message}")

    def mapping(self, raw: Any, key: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(raw, dict):
            self.fail(key, f"must be a mapping, got {_show(raw)}.")
        for name in raw:
            if name not in allowed:
                where = f"{key}.{name}" if key != "(top level)" else str(name)
                self.fail(where, f"unknown key; allowed here: {', '.join(allowed)}.")
        return raw

    def number(self, raw: Any, key: str, integer: bool = False) -> float:
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        if not ok or (integer and not float(raw).is_integer()) or not math.isfinite(raw):
            self.fail(key, f"must be {'a whole number' if integer else 'a number'}, got {_show(raw)}.")
        return int(raw) if integer else float(raw)

    def param(self, raw: Any, key: str, integer: bool = False, bounds: tuple[float, float] | None = None) -> Param:
        lo_ok, hi_ok = bounds or (-math.inf, math.inf)

        def inside(value: float, where: str) -> float:
            if not lo_ok <= value <= hi_ok:
                self.fail(where, f"{value:g} is outside the allowed range [{lo_ok:g}, {hi_ok:g}].")
            return value

        if isinstance(raw, dict):
            self.mapping(raw, key, ("low", "high", "log"))
            if "low" not in raw or "high" not in raw:
                self.fail(key, "a range needs both low and high, e.g. {low: 0.5, high: 0.95}.")
            low = inside(self.number(raw["low"], f"{key}.low", integer), f"{key}.low")
            high = inside(self.number(raw["high"], f"{key}.high", integer), f"{key}.high")
            log = raw.get("log", False)
            if not isinstance(log, bool):
                self.fail(f"{key}.log", f"must be true or false, got {_show(log)}.")
            if low > high:
                self.fail(key, f"low ({low:g}) > high ({high:g}).")
            if log and low <= 0:
                self.fail(key, f"a log-uniform range needs low > 0, got low={low:g}.")
            return Param("int" if integer else "float", low, high, log)
        if isinstance(raw, list):
            if not raw:
                self.fail(key, "empty choice; list at least one value.")
            values = tuple(inside(self.number(v, f"{key}[{i}]", integer), f"{key}[{i}]") for i, v in enumerate(raw))
            return Param("choice", choices=values)
        return Param("fixed", value=inside(self.number(raw, key, integer), key))

    def choice(self, raw: Any, key: str, allowed: tuple[str, ...]) -> Param:
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            self.fail(key, f"empty choice; list at least one of: {', '.join(allowed)}.")
        for v in values:
            if v not in allowed:
                self.fail(key, f"{_show(v)} is not one of: {', '.join(allowed)}.")
        return Param("choice", choices=tuple(values)) if isinstance(raw, list) else Param("fixed", value=raw)

    def flag(self, raw: Any, key: str) -> Param:
        values = raw if isinstance(raw, list) else [raw]
        if not values or any(not isinstance(v, bool) for v in values):
            self.fail(key, f"must be true, false or [false, true], got {_show(raw)}.")
        return Param("choice", choices=tuple(dict.fromkeys(values))) if isinstance(raw, list) else Param("fixed", value=raw)


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


def parse_space(raw: Any, source: str = "space", default_method: str = "space") -> SearchSpace:
    check = _Checker(source)
    if raw is None:
        check.fail("(top level)", "the file is empty; see search_spaces/autoaugment.yaml for an example.")
    raw = check.mapping(raw, "(top level)", TOP_KEYS)
    if "policy" not in raw:
        check.fail("policy", f"missing; every space names a policy family ({', '.join(FAMILIES)}).")

    method = raw.get("method", default_method)
    if not isinstance(method, str) or not method.strip() or not method.replace("-", "").replace("_", "").isalnum():
        check.fail("method", f"must be a short name of letters, digits, '-' or '_', got {_show(method)}.")
    searcher = raw.get("searcher", "optuna")
    if searcher not in SEARCHERS:
        check.fail("searcher", f"{_show(searcher)} is not one of: {', '.join(SEARCHERS)}.")
    seed = int(check.number(raw.get("seed", 0), "seed", integer=True))

    policy = _policy(check, raw["policy"])
    params = {}
    for name, bounds in {**UDA_PARAMS, **TRAIN_PARAMS}.items():
        if name in raw:
            params[name] = check.param(raw[name], name, bounds=bounds)
    if "tsa" in raw:
        params["tsa"] = check.choice(raw["tsa"], "tsa", TSA_SCHEDULES)
    for name in FLAG_PARAMS:
        if name in raw:
            params[name] = check.flag(raw[name], name)
    trial = _trial_overrides(check, raw.get("trial", {}))
    return SearchSpace(method.strip(), searcher, policy, params, trial, source, seed)


def _ops(check: _Checker, raw: Any, key: str) -> tuple[str, ...]:
    from udatune.augment.ops import OPS

    if raw is None or raw == "all":
        return tuple(OPS)
    if not isinstance(raw, list):
        check.fail(key, f"must be a list of op names or 'all', got {_show(raw)}.")
    if not raw:
        check.fail(key, "empty choice; list at least one op.")
    for name in raw:
        if name not in OPS:
            check.fail(key, f"unknown op {_show(name)}; known ops: {', '.join(OPS)}.")
    return tuple(dict.fromkeys(raw))


def _op_set(check: _Checker, raw: Any, key: str) -> str:
    from udatune.augment.ops import SPACES

    value = "all" if raw is None else raw
    if value not in SPACES:
        check.fail(key, f"{_show(value)} is not an op set; use one of: {', '.join(SPACES)}.")
    return value


def _policy(check: _Checker, raw: Any) -> PolicySpace:
    if not isinstance(raw, dict):
        check.fail("policy", f"must be a mapping with a family ({', '.join(FAMILIES)}), got {_show(raw)}.")
    family = raw.get("family")
    if family not in FAMILIES:
        check.fail("policy.family", f"{_show(family)} is not one of: {', '.join(FAMILIES)}.")
    check.mapping(raw, "policy", POLICY_KEYS[family])
    magnitude_bounds = (0, MAX_MAGNITUDE)
    if family == "autoaugment":
        k = int(check.number(raw.get("subpolicies", 3), "policy.subpolicies", integer=True))
        per = int(check.number(raw.get("ops_per_subpolicy", 2), "policy.ops_per_subpolicy", integer=True))
        if k < 1:
            check.fail("policy.subpolicies", f"must be ≥ 1, got {k}.")
        if per < 1:
            check.fail("policy.ops_per_subpolicy", f"must be ≥ 1, got {per}.")
        return PolicySpace(
            family,
            subpolicies=k,
            ops_per_subpolicy=per,
            ops=_ops(check, raw.get("ops"), "policy.ops"),
            probability=check.param(raw.get("probability", {"low": 0.0, "high": 1.0}), "policy.probability", bounds=(0.0, 1.0)),
            magnitude=check.param(raw.get("magnitude", {"low": 0, "high": 10}), "policy.magnitude", True, magnitude_bounds),
        )
    if family == "randaugment":
        return PolicySpace(
            family,
            n=check.param(raw.get("n", {"low": 1, "high": 3}), "policy.n", True, (0, 16)),
            m=check.param(raw.get("m", {"low": 1, "high": 10}), "policy.m", True, magnitude_bounds),
            op_set=_op_set(check, raw.get("ops"), "policy.ops"),
        )
    if family == "trivialaugment":
        return PolicySpace(family, op_set=_op_set(check, raw.get("ops"), "policy.ops"))
    from udatune.augment.policy import parse_policy

    text = raw.get("policy")
    if not isinstance(text, str) or not text:
        check.fail("policy.policy", "a fixed family needs a policy string, e.g. randaugment:2,9.")
    try:
        parse_policy(text)
    except ConfigError as err:
        check.fail("policy.policy", str(err))
    return PolicySpace(family, policy=text)


def _trial_overrides(check: _Checker, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        check.fail("trial", f"must be a mapping of settings such as uda.loss: kl, got {_show(raw)}.")
    try:
        TrialConfig().override(raw, source=f"Space file {check.source}: trial")
    except ConfigError as err:
        raise ConfigError(str(err)) from None
    return dict(raw)
