"""One frozen configuration tree that travels unchanged from the CLI to the trainer.

`TrialConfig` is everything one trial needs. It round-trips through plain dicts (JSON/YAML),
so it can be saved next to every result, shipped to a Ray Train worker, and overridden with
dotted keys (``uda.tau=0.9``) by a search space.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from udatune.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Which frames to train on."""

    dataset: str = "synthetic"
    root: str | None = None  # folder of a real dataset; synthetic ignores it
    labeled: str = "16"  # a count, a fraction in (0, 1), or "all" (the oracle)
    split_seed: int = 0  # draws the labeled subset; same seed -> same labels
    image_size: tuple[int, int] | None = None  # (height, width); None keeps the native size
    unlabeled_root: str | None = None  # an extra folder of unlabeled images (any dataset)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet"
    width: int = 16  # U-Net base channels; ignored by DeepLabV3
    weights: str | None = None  # optional local weights file; nothing is downloaded


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
    # Strong augmentation, compact policy string. Magnitude 4, not the paper's 9: at 9 the colour
    # ops (Color, Solarize, Posterize, ...) erase the colour that tells a sign from its pole, and
    # consistency then teaches the model to ignore it (docs/benchmarks.md, quality section).
    policy: str = "randaugment:2,4"


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


@dataclass(frozen=True)
class TrialConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    uda: UDAConfig = field(default_factory=UDAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

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
    """Check a leaf value against its annotation; accept what YAML and JSON produce."""
    text = str(kind)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{source}: {key} may not be empty.")
    try:
        if "tuple" in text:
            if isinstance(value, str):
                value = [int(v) for v in value.lower().replace("x", ",").split(",")]
            value = tuple(int(v) for v in value)
            if len(value) != 2 or min(value) <= 0:
                raise ValueError
            return value
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in {"true", "1", "yes", "on"}:
                    return True
                if value.lower() in {"false", "0", "no", "off"}:
                    return False
                raise ValueError
            return bool(value)
        if kind is int or text.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key}={value!r} is not a valid {text.replace('typing.', '')}.") from None


def load_config(path: str | Path) -> TrialConfig:
    """Read a trial config from a YAML or JSON file (sections data/model/uda/train)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file {file} does not exist; pass a YAML or JSON file with sections data, model, uda, train.")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {file} is not valid YAML/JSON: {str(err).splitlines()[0]}.") from None
    return TrialConfig.from_dict(raw, source=str(file))
