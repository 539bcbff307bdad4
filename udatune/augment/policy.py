"""Strong-augmentation policies: which ops, at which magnitudes, per image.

A policy is a small frozen value (`Identity`, `RandAugment`, `TrivialAugment`, `AutoAugment`)
with a compact string form that round-trips (``randaugment:2,9``), like timm's policy strings.

``policy.apply(image, rng)`` runs in the loader worker. It draws all of the image's randomness
from ``rng`` — which ops, their signs, CutOut's hole, the CutMix box — applies the photometric ops
to the uint8 image, and returns the geometry as data (`StrongView`): one composed affine matrix
and one box. The trainer replays that geometry identically on the student's input, the teacher's
prediction and the labels (`warp.py`); that replay is what keeps UDA's consistency loss aligned.

Photometric ops run before the (later) geometric warp regardless of their order in a policy;
pointwise colour ops commute with a warp, and for the few spatial ones (blur, sharpen, CutOut)
the order is immaterial as augmentation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple, Protocol, Sequence, runtime_checkable

import albumentations as A
import numpy as np

from udatune.augment import affine
from udatune.augment.ops import GEOMETRIC, MAX_MAGNITUDE, MIX, OPS, PHOTOMETRIC, SPACES, Op, cached_transform
from udatune.errors import ConfigError

@dataclass(frozen=True, eq=False)
class StrongView:
    """The strong view of one image: photometric result plus the geometry still to apply."""

    image: np.ndarray  # uint8 HxWx3 after photometric ops and CutOut (may share memory with the input)
    affine: np.ndarray  # float32 (2, 3) affine_grid theta (align_corners=False), output -> input
    box: np.ndarray  # float32 (4,) CutMix box (y0, x0, y1, x1) in [0, 1]; zeros = no CutMix
    ops: tuple[str, ...] = ()  # the ops drawn and applied, in order (for tests and previews)


Draw = tuple[str, int]  # (op name, magnitude) chosen for one image


@runtime_checkable
class Policy(Protocol):
    """What every policy offers; the concrete ones below share `_Base`."""

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> StrongView: ...
    def summary(self) -> str: ...
    def to_json(self) -> dict: ...
    def to_string(self) -> str: ...
    def photometric_pipeline(self) -> A.BaseCompose: ...
    @property
    def uses_geometry(self) -> bool: ...


# --- rendering the drawn ops ------------------------------------------------------------------


class _Canvas(NamedTuple):
    image: np.ndarray
    matrix: np.ndarray  # 3x3, output -> input
    box: np.ndarray


def _photometric(canvas: _Canvas, op: Op, magnitude: int, sign: int, rng: np.random.Generator) -> _Canvas:
    transform = cached_transform(op.name, magnitude, sign)
    if op.seeded:
        transform.set_random_seed(int(rng.integers(2**31)))
    return canvas._replace(image=transform(image=canvas.image)["image"])


def _geometric(canvas: _Canvas, op: Op, magnitude: int, sign: int, rng: np.random.Generator) -> _Canvas:
    height, width = canvas.image.shape[:2]
    return canvas._replace(matrix=canvas.matrix @ op.matrix(magnitude, sign, height, width))


def _mix(canvas: _Canvas, op: Op, magnitude: int, sign: int, rng: np.random.Generator) -> _Canvas:
    # Only one box per image: a later CutMix draw replaces an earlier one.
    return canvas._replace(box=op.box(magnitude, rng))


_RENDER: dict[str, Callable[..., _Canvas]] = {PHOTOMETRIC: _photometric, GEOMETRIC: _geometric, MIX: _mix}


def render(image: np.ndarray, draws: Sequence[Draw], rng: np.random.Generator) -> StrongView:
    """Apply drawn ``(op, magnitude)`` pairs: photometric now, geometry and box returned as data."""
    canvas = _Canvas(image, np.eye(3), np.zeros(4, dtype=np.float32))
    for name, magnitude in draws:
        op = OPS[name]
        sign = -1 if (op.signed and rng.random() < 0.5) else 1
        canvas = _RENDER[op.kind](canvas, op, magnitude, sign, rng)
    return StrongView(canvas.image, affine.as_theta(canvas.matrix), canvas.box, tuple(name for name, _ in draws))


# --- validation shared by constructors and the parser ------------------------------------------


def _check_op(name: Any) -> str:
    if not isinstance(name, str) or name not in OPS:
        raise ConfigError(f"Unknown augmentation op {name!r}; known ops: {', '.join(OPS)}.")
    return name


def _check_magnitude(value: Any, what: str) -> int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or not 0 <= value <= MAX_MAGNITUDE:
        raise ConfigError(f"{what}: magnitude {value!r} is not allowed; use an integer bin 0..{MAX_MAGNITUDE} (AutoAugment convention).")
    return int(value)


def _check_probability(value: Any, what: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{what}: probability {value!r} is not allowed; use a number in [0, 1].")
    return float(value)


def _check_space(space: Any, policy: str) -> str:
    if space not in SPACES:
        raise ConfigError(f"{policy}: op set {space!r} is unknown; use one of {', '.join(SPACES)}.")
    return space


def _variant(name: str, magnitude: int, probability: float = 1.0) -> A.BasicTransform:
    """Export of one (op, magnitude): geometric and mix ops become NoOp, signed ops a OneOf of ±."""
    op = OPS[name]
    if op.kind != PHOTOMETRIC:
        transform: A.BasicTransform = A.NoOp(p=1)
    elif op.signed and not op.is_identity(magnitude):
        transform = A.OneOf([op.transform(magnitude, 1), op.transform(magnitude, -1)], p=1)
    else:
        transform = op.transform(magnitude)
    return transform if probability == 1.0 else A.Sequential([transform], p=probability)


def _prob_text(p: float) -> str:
    return f"{p:g}".lstrip("0") if 0 < p < 1 else f"{p:g}"


# --- the policies ----------------------------------------------------------------------------


class _Base:
    """Shared behaviour: ``apply`` = ``draw`` + `render`; geometry flag from the possible ops."""

    type: ClassVar[str]

    def draw(self, rng: np.random.Generator) -> list[Draw]:
        raise NotImplementedError

    def possible_ops(self) -> set[str]:
        raise NotImplementedError

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> StrongView:
        return render(image, self.draw(rng), rng)

    @property
    def uses_geometry(self) -> bool:
        return any(OPS[name].kind in (GEOMETRIC, MIX) for name in self.possible_ops())

    def __str__(self) -> str:
        return self.summary()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Identity(_Base):
    """No strong augmentation: the student sees the weak view."""

    type: ClassVar[str] = "identity"

    def draw(self, rng: np.random.Generator) -> list[Draw]:
        return []

    def possible_ops(self) -> set[str]:
        return set()

    def summary(self) -> str:
        return "identity"

    def to_json(self) -> dict:
        return {"type": self.type}

    def to_string(self) -> str:
        return "identity"

    def photometric_pipeline(self) -> A.BaseCompose:
        return A.Compose([])


@dataclass(frozen=True)
class RandAugment(_Base):
    """RandAugment(n, m): n ops drawn uniformly with replacement per image, each at magnitude m."""

    n: int
    m: int
    space: str = "all"  # "all" or "photometric" (see ops.SPACES)
    type: ClassVar[str] = "randaugment"

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
            raise ConfigError(f"randaugment: n={self.n!r} is not allowed; use a whole number of ops per image >= 0.")
        object.__setattr__(self, "m", _check_magnitude(self.m, "randaugment"))
        _check_space(self.space, "randaugment")

    def draw(self, rng: np.random.Generator) -> list[Draw]:
        names = SPACES[self.space]
        return [(names[i], self.m) for i in rng.integers(len(names), size=self.n)]

    def possible_ops(self) -> set[str]:
        return set(SPACES[self.space]) if self.n else set()

    def summary(self) -> str:
        suffix = "" if self.space == "all" else f",{self.space}"
        return f"RA({self.n},{self.m}{suffix})"

    def to_json(self) -> dict:
        return {"type": self.type, "n": self.n, "m": self.m, "space": self.space}

    def to_string(self) -> str:
        suffix = "" if self.space == "all" else f":{self.space}"
        return f"randaugment:{self.n},{self.m}{suffix}"

    def photometric_pipeline(self) -> A.BaseCompose:
        # SomeOf applies its picks in list order rather than draw order; the distribution of
        # which ops run is the same.
        variants = [_variant(name, self.m) for name in SPACES[self.space]]
        return A.Compose([A.SomeOf(variants, n=self.n, replace=True, p=1)])


@dataclass(frozen=True)
class TrivialAugment(_Base):
    """TrivialAugment: one op per image at a magnitude drawn uniformly from 0..10."""

    space: str = "all"
    type: ClassVar[str] = "trivialaugment"

    def __post_init__(self) -> None:
        _check_space(self.space, "trivialaugment")

    def draw(self, rng: np.random.Generator) -> list[Draw]:
        names = SPACES[self.space]
        return [(names[int(rng.integers(len(names)))], int(rng.integers(MAX_MAGNITUDE + 1)))]

    def possible_ops(self) -> set[str]:
        return set(SPACES[self.space])

    def summary(self) -> str:
        return "TA" if self.space == "all" else f"TA({self.space})"

    def to_json(self) -> dict:
        return {"type": self.type, "space": self.space}

    def to_string(self) -> str:
        return self.type if self.space == "all" else f"{self.type}:{self.space}"

    def photometric_pipeline(self) -> A.BaseCompose:
        per_op = [A.OneOf([_variant(name, m) for m in range(MAX_MAGNITUDE + 1)], p=1) for name in SPACES[self.space]]
        return A.Compose([A.OneOf(per_op, p=1)])


Step = tuple[str, float, int]  # (op, probability, magnitude)


@dataclass(frozen=True)
class AutoAugment(_Base):
    """AutoAugment: one sub-policy drawn per image; each of its steps runs with its probability.

    A sub-policy is a tuple of ``(op, probability, magnitude)`` steps — two in AutoAugment.
    """

    subpolicies: tuple[tuple[Step, ...], ...]
    type: ClassVar[str] = "autoaugment"

    def __post_init__(self) -> None:
        object.__setattr__(self, "subpolicies", _normalise_subpolicies(self.subpolicies))

    def draw(self, rng: np.random.Generator) -> list[Draw]:
        steps = self.subpolicies[int(rng.integers(len(self.subpolicies)))]
        return [(name, magnitude) for name, probability, magnitude in steps if rng.random() < probability]

    def possible_ops(self) -> set[str]:
        return {name for sub in self.subpolicies for name, probability, _ in sub if probability > 0}

    def summary(self, max_subpolicies: int = 3) -> str:
        parts = ["+".join(f"{n}{_prob_text(p)}@{m}" for n, p, m in sub) for sub in self.subpolicies[:max_subpolicies]]
        rest = len(self.subpolicies) - max_subpolicies
        if rest > 0:
            parts.append(f"+{rest} more")
        return f"AA[{' | '.join(parts)}]"

    def to_json(self) -> dict:
        return {"type": self.type, "subpolicies": [[list(step) for step in sub] for sub in self.subpolicies]}

    def to_string(self) -> str:
        return f"{self.type}:{json.dumps(self.to_json()['subpolicies'], separators=(',', ':'))}"

    def photometric_pipeline(self) -> A.BaseCompose:
        subs = [A.Sequential([_variant(n, m, p) for n, p, m in sub], p=1) for sub in self.subpolicies]
        return A.Compose([A.OneOf(subs, p=1)])


def _normalise_subpolicies(raw: Any) -> tuple[tuple[Step, ...], ...]:
    """Validate and freeze sub-policies from tuples or JSON lists; ConfigError names what is wrong."""
    hint = 'a list of sub-policies, each a list of [op, probability, magnitude], e.g. [[["Rotate", 0.5, 3], ["Color", 0.2, 8]]]'
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(f"autoaugment: sub-policies must be {hint}; got {raw!r}.")
    subs = []
    for sub in raw:
        if not isinstance(sub, (list, tuple)) or not sub:
            raise ConfigError(f"autoaugment: sub-policy {sub!r} must be a non-empty list of [op, probability, magnitude].")
        steps = []
        for step in sub:
            if not isinstance(step, (list, tuple)) or len(step) != 3:
                raise ConfigError(f"autoaugment: step {step!r} must be [op, probability, magnitude].")
            name = _check_op(step[0])
            steps.append((name, _check_probability(step[1], f"op {name}"), _check_magnitude(step[2], f"op {name}")))
        subs.append(tuple(steps))
    return tuple(subs)


DEFAULT_AUTOAUGMENT = AutoAugment(
    (
        (("Rotate", 0.5, 3), ("Color", 0.6, 6)),
        (("Equalize", 0.6, 5), ("ShearX", 0.4, 4)),
        (("Posterize", 0.4, 6), ("AutoContrast", 0.6, 5)),
        (("TranslateX", 0.5, 4), ("Brightness", 0.6, 7)),
        (("Solarize", 0.4, 5), ("Contrast", 0.6, 6)),
        (("CutOut", 0.5, 5), ("Sharpness", 0.5, 6)),
    )
)
"""A small hand-written AutoAugment policy for examples and tests (not a searched one)."""


# --- parsing ---------------------------------------------------------------------------------

FORMS = (
    "identity, randaugment:N,M[:photometric], trivialaugment[:photometric], autoaugment (the default policy), "
    "autoaugment:<JSON list of sub-policies>, a JSON object with a 'type', or a path to a .json file"
)


def _parse_randaugment(arg: str) -> RandAugment:
    numbers, _, space = arg.partition(":")
    parts = numbers.split(",")
    try:
        n, m = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        n = m = None
    if n is None:
        raise ConfigError(f"randaugment needs two integers N,M (ops per image, magnitude 0..10), e.g. randaugment:2,9; got {arg!r}.")
    return RandAugment(n, m, space or "all")


def _parse_trivialaugment(arg: str) -> TrivialAugment:
    return TrivialAugment(arg or "all")


def _parse_autoaugment(arg: str) -> AutoAugment:
    if not arg:
        return DEFAULT_AUTOAUGMENT
    try:
        raw = json.loads(arg)
    except json.JSONDecodeError as err:
        raise ConfigError(f"autoaugment: sub-policies are not valid JSON ({err.msg}); expected e.g. "
                          'autoaugment:[[["Rotate",0.5,3],["Color",0.2,8]]].') from None
    return AutoAugment(raw)


def _parse_identity(arg: str) -> Identity:
    if arg:
        raise ConfigError(f"identity takes no arguments; got identity:{arg}.")
    return Identity()


_FROM_STRING: dict[str, Callable[[str], _Base]] = {
    "identity": _parse_identity,
    "randaugment": _parse_randaugment,
    "trivialaugment": _parse_trivialaugment,
    "autoaugment": _parse_autoaugment,
}


def _from_dict(raw: dict, where: str = "policy") -> _Base:
    kind = raw.get("type")
    fields_by_type: dict[str, tuple[type, tuple[str, ...]]] = {
        "identity": (Identity, ()),
        "randaugment": (RandAugment, ("n", "m", "space")),
        "trivialaugment": (TrivialAugment, ("space",)),
        "autoaugment": (AutoAugment, ("subpolicies",)),
    }
    if kind is None:
        raise ConfigError(
            f"{where}: the JSON object has no 'type' key; write e.g. "
            '{"type": "randaugment", "n": 2, "m": 4}, or a list of AutoAugment sub-policies '
            "(what `udatune export-policy` writes as best_policy.json)."
        )
    if kind not in fields_by_type:
        raise ConfigError(f"{where}: policy type {kind!r} is unknown; use one of {', '.join(fields_by_type)}.")
    cls, allowed = fields_by_type[kind]
    unknown = sorted(set(raw) - {"type", *allowed})
    if unknown:
        raise ConfigError(f"{where}: {kind} has an unknown key {unknown[0]!r}; allowed: {', '.join(allowed) or 'none'}.")
    try:
        return cls(**{k: v for k, v in raw.items() if k != "type"})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {kind} needs the keys {', '.join(allowed)} with valid values ({err}).") from None


def parse_policy(spec: "str | dict | Policy") -> Policy:
    """Build a policy from its compact string, its JSON dict, or a .json file holding either."""
    if isinstance(spec, _Base):
        return spec
    if isinstance(spec, dict):
        return _from_dict(spec)
    if not isinstance(spec, str):
        raise ConfigError(f"A policy must be a string or a mapping; got {type(spec).__name__}. Allowed: {FORMS}.")
    text = spec.strip()
    if text.endswith(".json") or (text and not text.startswith(("[", "{")) and _is_file(text)):
        return _parse_file(Path(text))
    if text.startswith("{"):
        return _from_dict(_json(text, "policy"))
    name, _, arg = text.partition(":")
    if name.lower() not in _FROM_STRING:
        raise ConfigError(f"Unknown augmentation policy {spec!r}; use {FORMS}.")
    return _FROM_STRING[name.lower()](arg.strip())


def _is_file(text: str) -> bool:
    """Whether a policy spec names an existing file. A long inline policy is no valid path
    (the OS refuses names over 255 bytes), which is an answer, not an error."""
    try:
        return Path(text).is_file()
    except OSError:
        return False


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where} is not valid JSON: {err.msg} (line {err.lineno}).") from None


def _parse_file(path: Path) -> _Base:
    if not path.is_file():
        raise ConfigError(f"Policy file {path} does not exist; pass a .json file or one of: {FORMS}.")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Policy file {path} could not be read ({getattr(err, 'strerror', None) or err}); pass a JSON text file.") from None
    raw = _json(text, f"Policy file {path}")
    if isinstance(raw, list):  # a bare list of sub-policies
        return AutoAugment(raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"Policy file {path} must hold a JSON object with a 'type' or a list of sub-policies.")
    return _from_dict(raw, f"Policy file {path}")
