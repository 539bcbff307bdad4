"""One frozen configuration tree that travels unchanged from the CLI to the trainer.

`TrialConfig` is everything one trial needs. It round-trips through plain dicts (JSON/YAML),
so it can be saved next to every result, shipped to a Ray Train worker, and overridden with
dotted keys (``uda.tau=0.9``) by a search space.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from udatune.errors import ConfigError

if TYPE_CHECKING:
    from udatune.augment.policy import Policy


@dataclass(frozen=True)
class DataConfig:
    """Which frames to train on."""

    dataset: str = "synthetic"
    root: str | None = None  # folder of a real dataset; synthetic ignores it
    labeled: str = "16"  # a count, a fraction in (0, 1), or "all" (the oracle)
    split_seed: int = 0  # draws the labeled subset; same seed -> same labels
    image_size: tuple[int, int] | None = None  # (height, width); None keeps the native size
    unlabeled_root: str | None = None  # an extra folder of unlabeled images (any dataset)

    def __post_init__(self) -> None:
        from udatune.data.registry import dataset_names

        names = dataset_names()
        _check("data", [
            (self.dataset not in names, f"--dataset {self.dataset!r} is not known; choose one of: {', '.join(names)}"),
            (not _is_labeled_spec(self.labeled),
             f"--labeled must be a count (16), a fraction in (0, 1) (0.0625) or 'all'; got {self.labeled!r}"),
            (self.split_seed < 0, f"data.split_seed must be ≥ 0, got {self.split_seed}"),
            (self.image_size is not None and max(self.image_size) > MAX_SIDE,
             f"--image-size {_size(self.image_size)}: each side must be at most {MAX_SIDE} pixels "
             "(a larger frame does not fit a GPU's memory), e.g. 90x120"),
        ])


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet"
    width: int = 16  # U-Net base channels; ignored by DeepLabV3
    # U-Net levels below the first (each halves the frame). At small frames the deepest level
    # is a few pixels wide yet costs as much as any other: depth 3 is about 45% cheaper a step
    # than 4 at 32x48. Ignored by the other models.
    depth: int = 4
    weights: str | None = None  # optional local weights file for the whole model
    # smp models only (`udatune.models.smp_models`); udatune's U-Net and torchvision's DeepLabV3 ignore them.
    encoder: str = "resnet18"  # any smp encoder name, timm's included as tu-<name>
    # "imagenet" (smp fetches them once into its cache), "none" (random), or a local encoder state dict
    encoder_weights: str = "imagenet"
    # sha256 of the encoder weights file; set by the driver so every trial uses (and records) the same file
    encoder_weights_sha256: str | None = None

    def __post_init__(self) -> None:
        from udatune.models.registry import model_names

        names = model_names()
        _check("model", [
            (self.name not in names, f"--model {self.name!r} is not known; choose one of: {', '.join(names)}"),
            (not 1 <= self.width <= 1024, f"model.width={self.width} (--width) must be between 1 and 1024"),
            # 2**5 = 32 pixels, the smallest frame side any model accepts (MIN_SIDE).
            (not 1 <= self.depth <= 5, f"model.depth={self.depth} must be between 1 and 5 (U-Net levels; 4 is the default)"),
            (self.weights is not None and not str(self.weights).strip(), "--weights is empty; pass a weights file or leave it out"),
            (not self.encoder.strip(), "--encoder is empty; pass an smp encoder such as resnet18"),
            (not self.encoder_weights.strip(), "--encoder-weights is empty; pass imagenet, none or a local file"),
        ])


@dataclass(frozen=True)
class UDAConfig:
    """The semi-supervised knobs, named as in the UDA paper (λ, τ, T)."""

    mode: str = "uda"  # "uda" or "supervised"
    lambda_u: float = 1.0  # λ: weight of the consistency loss
    tau: float = 0.8  # τ: teacher confidence threshold
    temperature: float = 0.4  # T: teacher sharpening temperature
    loss: str = "kl"  # "kl" (soft, sharpened targets) or "ce" (hard pseudo-labels)
    rampup_steps: int = 200  # λ ramps from 0 with a sigmoid schedule over these steps
    tsa: str = "none"  # training signal annealing: none | linear | log | exp
    ema_decay: float = 0.0  # > 0: mean teacher with this EMA decay; 0: the model is its own teacher
    class_adaptive: bool = False  # FlexMatch-style per-class thresholds
    class_balance: bool = False  # weight consistency pixels by 1/sqrt(frequency of their teacher class)
    align: bool = False  # distribution alignment: teacher's class frequencies pulled to the labeled ones
    paste: float = 0.0  # probability that a strong view gets a labeled frame's rare-class objects (train/paste.py)
    # Strong augmentation: a compact policy string or a policy .json file (`parsed_policy` is the
    # policy object). Magnitude 4, not the paper's 9: at 9 the colour ops (Color, Solarize,
    # Posterize, ...) erase the colour that tells a sign from its pole, and consistency then
    # teaches the model to ignore it (docs/benchmarks.md, quality section).
    policy: str = "randaugment:2,4"

    def __post_init__(self) -> None:
        _check("uda", [
            (self.mode not in MODES, f"uda.mode (--mode) must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.loss not in LOSSES, f"uda.loss (--loss) must be one of {', '.join(LOSSES)}, got {self.loss!r}"),
            (self.tsa not in TSA_SCHEDULES, f"uda.tsa (--tsa) must be one of {', '.join(TSA_SCHEDULES)}, got {self.tsa!r}"),
            (not 0.0 <= self.tau <= 1.0, f"uda.tau (τ, --tau) must be in [0, 1], got {self.tau}"),
            (not (math.isfinite(self.temperature) and self.temperature > 0),
             f"uda.temperature (T, --temperature) must be a finite number > 0, got {self.temperature}"),
            (not (math.isfinite(self.lambda_u) and self.lambda_u >= 0),
             f"uda.lambda_u (λ, --lambda) must be a finite number ≥ 0, got {self.lambda_u}"),
            (not 0.0 <= self.ema_decay < 1.0, f"uda.ema_decay (--ema-decay) must be in [0, 1), got {self.ema_decay}"),
            (self.rampup_steps < 0, f"uda.rampup_steps must be ≥ 0, got {self.rampup_steps}"),
            (not 0.0 <= self.paste <= 1.0, f"uda.paste must be a probability in [0, 1], got {self.paste}"),
            (not self.policy.strip(), "uda.policy (--policy) is empty; pass e.g. randaugment:2,4"),
        ])
        try:
            self.parsed_policy  # parsed once, here: a bad policy is refused where the config is built
        except ConfigError as err:
            raise ConfigError(f"Invalid uda setting: uda.policy (--policy): {err}") from None

    @cached_property
    def parsed_policy(self) -> "Policy":
        """`policy` as the object the trainer applies. The string stays the field, the form that
        YAML, JSON and the sweep's tables keep; callers use this instead of parsing it again."""
        from udatune.augment.policy import parse_policy

        return parse_policy(self.policy)


@dataclass(frozen=True)
class TrainConfig:
    # 1200 steps: at 600, models that see many frames (UDA, the oracle) have not yet learned the
    # thin classes that the 16-frame baseline memorises, and UDA's gain is hidden (docs/benchmarks.md).
    steps: int = 1200
    batch_size: int = 8  # labeled frames per step
    unlabeled_batch_size: int = 8  # unlabeled frames per step
    lr: float = 2e-3
    weight_decay: float = 1e-4
    eval_every: int = 100
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 1  # loader processes; 0 loads in the main process
    amp: bool = True  # mixed precision, used only on CUDA
    crop: tuple[int, int] | None = None  # random crop (height, width) as weak augmentation
    log_every: int = 10  # steps between progress/metric records
    evaluate_test: bool = False  # also score the test split at the end
    # A pretrained encoder learns at lr × this (0.1 is usual); 1.0 = one learning rate for all.
    encoder_lr_mult: float = 1.0
    freeze_encoder_steps: int = 0  # keep the encoder (weights and BatchNorm statistics) frozen this long
    # CPU threads for torch's kernels; 0: torch's default (the machine's cores, or what Ray gives
    # a worker). A seeded run repeats bit for bit on the same torch build, device and thread count
    # — loader workers do not matter — but another thread count sums floats in another order,
    # and training amplifies that like a different seed (docs/benchmarks.md, reproducibility).
    threads: int = 0

    def __post_init__(self) -> None:
        _check("train", [
            (self.steps <= 0, f"train.steps (--steps) must be > 0, got {self.steps}"),
            (self.batch_size <= 0, f"train.batch_size (--batch-size) must be > 0, got {self.batch_size}"),
            (self.unlabeled_batch_size <= 0,
             f"train.unlabeled_batch_size (--unlabeled-batch-size) must be > 0, got {self.unlabeled_batch_size}"),
            (not (math.isfinite(self.lr) and self.lr > 0), f"train.lr (--lr) must be a finite number > 0, got {self.lr}"),
            (not (math.isfinite(self.weight_decay) and self.weight_decay >= 0),
             f"train.weight_decay must be a finite number ≥ 0, got {self.weight_decay}"),
            (self.eval_every <= 0, f"train.eval_every (--eval-every) must be > 0, got {self.eval_every}"),
            (self.log_every <= 0, f"train.log_every must be > 0, got {self.log_every}"),
            (not _is_device(self.device), f"train.device (--device) must be auto, cpu, cuda or cuda:N, got {self.device!r}"),
            (not 0 <= self.num_workers <= MAX_LOADER_WORKERS,
             f"train.num_workers (--workers) must be between 0 and {MAX_LOADER_WORKERS}, got {self.num_workers}"),
            (self.crop is not None and not _fits_side(self.crop),
             f"train.crop {_size(self.crop)}: each side must be between {MIN_SIDE} and {MAX_SIDE} pixels"),
            (not (math.isfinite(self.encoder_lr_mult) and self.encoder_lr_mult >= 0),
             f"train.encoder_lr_mult (--encoder-lr-mult) must be a finite number ≥ 0 (0.1 is usual for a pretrained encoder), got {self.encoder_lr_mult}"),
            (self.freeze_encoder_steps < 0, f"train.freeze_encoder_steps (--freeze-encoder-steps) must be ≥ 0, got {self.freeze_encoder_steps}"),
            (self.threads < 0, f"train.threads must be ≥ 0 (0: torch's default), got {self.threads}"),
        ])


@dataclass(frozen=True)
class TrialConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    uda: UDAConfig = field(default_factory=UDAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        # The models' smallest input (see udatune/models/registry.py); datasets alone take any size.
        size = self.data.image_size
        _check("data", [(size is not None and min(size) < MIN_SIDE,
                         f"--image-size {_size(size)}: the models need at least {MIN_SIDE} pixels a side, e.g. 90x120")])

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "TrialConfig":
        return _build(cls, raw, source, prefix="")

    def override(self, updates: dict[str, Any], source: str = "override") -> "TrialConfig":
        """Return a copy with dotted keys replaced: ``{"uda.tau": 0.9}``."""
        raw = self.to_dict()
        for key, value in updates.items():
            section, _, name = key.partition(".")
            if section not in raw or not name or name not in raw[section]:
                raise ConfigError(f"{source}: unknown setting {key!r}; known settings: {', '.join(known_keys())}.")
            raw[section][name] = value
        return TrialConfig.from_dict(raw, source)


MODES = ("uda", "supervised")
LOSSES = ("kl", "ce")
TSA_SCHEDULES = ("none", "linear", "log", "exp")
MIN_SIDE, MAX_SIDE = 32, 8192  # pixels: the models' smallest input; beyond any GPU's memory per frame
MAX_LOADER_WORKERS = 256


def _check(section: str, problems: list[tuple[bool, str]]) -> None:
    """Raise one `ConfigError` listing every problem of a section, so a user fixes them in one go."""
    found = [message for bad, message in problems if bad]
    if found:
        raise ConfigError(f"Invalid {section} setting: {'; '.join(found)}.")


def _is_labeled_spec(labeled: str) -> bool:
    if labeled == "all":
        return True
    try:
        value = float(labeled)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0 and (value < 1 or value.is_integer())


def _fits_side(size: tuple[int, int]) -> bool:
    return all(MIN_SIDE <= side <= MAX_SIDE for side in size)


def _size(size: tuple[int, int] | None) -> str:
    return "x".join(map(str, size)) if size else "none"


def _is_device(name: str) -> bool:
    kind, colon, index = name.partition(":")
    if kind in ("auto", "cpu"):
        return not colon
    return kind == "cuda" and (not colon or index.isdigit())


def known_keys() -> list[str]:
    return [f"{section}.{f.name}" for section, kind in _SECTIONS.items() for f in fields(kind)]


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "uda": UDAConfig, "train": TrainConfig}


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix or 'the top level'} must be a mapping, got {type(raw).__name__}.")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{source}: unknown key {where}{unknown[0]}; allowed here: {', '.join(sorted(names))}."
        )
    values = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        kind = hints[name]
        if is_dataclass(kind):
            values[name] = _build(kind, value, source, key)
        else:
            values[name] = _coerce(value, kind, source, key)
    return cls(**values)


def _coerce(value: Any, kind: Any, source: str, key: str) -> Any:
    """Check a leaf value against its annotation; accept what YAML and JSON produce.

    The annotation is read as a type, not as text: ``T``, ``T | None`` / ``Optional[T]`` with T
    one of bool, int, float, str or ``tuple[int, int]`` (a size).
    """
    members = get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)
    if value is None:
        if type(None) in members:
            return None
        raise ConfigError(f"{source}: {key} may not be empty.")
    (target,) = [t for t in members if t is not type(None)]
    if get_origin(target) is tuple:
        if get_args(target) != (int, int):
            raise TypeError(f"config field {key}: only tuple[int, int] (a size) is supported, not {_type_name(target)}")
        return _coerce_size(value, source, key)
    try:
        return _LEAF[target](value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{source}: {key}={value!r} is not a valid {_type_name(kind)}.") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() in {"true", "1", "yes", "on"}:
            return True
        if value.lower() in {"false", "0", "no", "off"}:
            return False
        raise ValueError(value)
    return bool(value)


def _to_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list, tuple, bool)):
        raise TypeError(type(value).__name__)
    return str(value)


_LEAF = {bool: _to_bool, int: _to_int, float: float, str: _to_str}


def _type_name(kind: Any) -> str:
    """``int``, ``str | None``, ``tuple[int, int]``: the annotation as written in the source."""
    return kind.__name__ if isinstance(kind, type) and not get_args(kind) else str(kind).replace("typing.", "").replace("NoneType", "None")


def _coerce_size(value: Any, source: str, key: str) -> tuple[int, int]:
    """HEIGHTxWIDTH as a string ("90x120", "90,120") or a two-item list."""
    try:
        items = [int(v) for v in value.lower().replace("x", ",").split(",")] if isinstance(value, str) else value
        size = tuple(int(v) for v in items)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError
        return size  # type: ignore[return-value]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {key}={value!r} is not a size; write HEIGHTxWIDTH with two positive integers, e.g. 90x120."
        ) from None


def load_config(path: str | Path) -> TrialConfig:
    """Read a trial config from a YAML or JSON file (sections data/model/uda/train)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file {file} does not exist; pass a YAML or JSON file with sections data, model, uda, train.")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {file} is not valid YAML/JSON: {yaml_problem(err)}.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Config file {file} could not be read ({getattr(err, 'strerror', None) or err}); pass a readable YAML or JSON text file.") from None
    return TrialConfig.from_dict(raw, source=str(file))


def yaml_problem(err: Exception) -> str:
    """A YAML error as "what, at line L, column C" (1-based, as editors count)."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem
