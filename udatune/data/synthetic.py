"""Procedural road scenes: the embedded default dataset, deterministic from a seed.

Why procedural: a semi-supervised method only helps when a few labeled frames do not cover
the variation of the unlabeled ones. Every frame here draws its own camera (height, pitch,
yaw), street layout, palette (cars of any colour, buildings of any hue, so colour alone does
not name a class), illumination, shadows, haze, colour cast, blur and sensor noise.

How: a tiny ray caster. The camera stands on a flat ground plane and looks down a street that
is bounded on each side by two vertical walls -- a *near* wall (fences, hedges) at the outer
edge of the sidewalk and a *far* wall (building facades, tree rows) behind it -- each cut into
segments along depth. A pixel's ray hits the nearest of ground, walls, a distant skyline, or
sky; the hit gives its class and its coordinates in metres on that surface, so window grids,
tiles and lane markings come out in correct perspective from a few vectorised numpy ops.
Objects (cars, pedestrians, poles, signs) are flat billboards drawn far to near with
``cv2.fillPoly`` into the image, the mask and a depth buffer at once, so labels align with the
pixels by construction. Photometric effects come last and never touch the mask.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from udatune.config import DataConfig
from udatune.data.base import ArrayFrames, SegmentationData, select_labeled
from udatune.data.registry import register_dataset
from udatune.errors import ConfigError

CLASSES: tuple[str, ...] = (
    "sky", "building", "road", "sidewalk", "vegetation", "car", "pedestrian", "pole", "sign", "fence",
)
SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PEDESTRIAN, POLE, SIGN, FENCE = range(len(CLASSES))
GAP = -1  # a wall segment that is not there: the ray passes through

# Bump whenever a change alters the pixels of any frame: it is part of the cache key.
GENERATOR_VERSION = 1

# CamVid-like colours for *showing* masks (previews, reports); rendering never uses them.
MASK_COLOURS = np.array(
    [
        (128, 128, 128), (128, 0, 0), (128, 64, 128), (0, 0, 192), (128, 128, 0),
        (64, 0, 128), (64, 64, 0), (192, 192, 128), (192, 128, 128), (64, 64, 128),
    ],
    dtype=np.uint8,
)

WALL_DEPTH = 120.0  # metres: walls end here; beyond lies the skyline
SKYLINE_DEPTH = 250.0


@dataclass(frozen=True)
class SyntheticSpec:
    """Generator parameters. Ranges are ``(low, high)``, drawn uniformly per frame.

    The appearance knobs (``palette_jitter`` .. ``blur``) set how hard the task is: with them
    at zero and ``brightness=(1, 1)`` every frame has canonical colours and a clean, evenly lit
    image. The photometric ones (all but ``palette_jitter``) consume the same random draws
    whatever their value, so tuning them changes the pixels of a frame but never its labels.
    """

    height: int = 64
    width: int = 96
    train: int = 516
    val: int = 100
    test: int = 100
    seed: int = 0
    # camera
    camera_height: tuple[float, float] = (1.1, 2.6)  # metres above the road
    pitch: tuple[float, float] = (-0.05, 0.15)  # radians; looking down moves the horizon up
    yaw: tuple[float, float] = (-0.15, 0.15)  # radians; moves the vanishing point sideways
    focal: float = 0.9  # focal length as a fraction of the image width
    # content
    cars: tuple[int, int] = (0, 6)
    pedestrians: tuple[int, int] = (1, 5)
    poles: tuple[int, int] = (1, 4)
    signs: tuple[int, int] = (1, 3)
    fence_prob: float = 0.85  # chance that a fence is forced into view
    object_scale: tuple[float, float] = (0.85, 1.2)
    # appearance (difficulty)
    palette_jitter: float = 1.0  # 0: canonical class colours; 1: varied hues per frame
    brightness: tuple[float, float] = (0.55, 1.3)
    shading: float = 0.35  # max amplitude of a linear illumination gradient
    shadows: float = 0.6  # max darkening inside cast shadows
    colour_cast: float = 0.18  # max deviation of per-channel gains from 1
    haze: float = 0.6  # max blend toward the haze colour at infinite distance
    noise: float = 8.0  # max sensor noise std, in uint8 levels
    blur: float = 0.8  # max Gaussian blur sigma, in pixels

    def __post_init__(self) -> None:
        if self.height < 32 or self.width < 32:
            raise ConfigError(
                f"Synthetic frames must be at least 32x32; got {self.height}x{self.width}. "
                "Pass a larger --image-size."
            )
        if min(self.train, self.val, self.test) < 0:
            raise ConfigError("Synthetic split sizes (train, val, test) must not be negative.")


# --- scene parameters drawn per frame ------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    f: float  # focal length, pixels
    vx: float  # vanishing point (pixels)
    vy: float  # horizon row (pixels)
    height: float  # metres above ground
    x: float  # lateral position, metres from the road centre (+ right)


@dataclass(frozen=True)
class Street:
    """Lateral layout; each pair is (left, right) distance from the road centre, metres."""

    road: float  # half width of the carriageway
    near: tuple[float, float]  # outer edge of the sidewalk, where the near wall stands
    far: tuple[float, float]  # where the far wall (facades) stands
    verge: int  # class of the ground between near and far walls


@dataclass(frozen=True, eq=False)
class Wall:
    """A vertical plane at lateral position ``x``, cut into segments along depth."""

    x: float  # signed lateral position, metres
    edges: np.ndarray  # segment start depths, ascending, edges[0] == 0
    kind: np.ndarray  # class per segment, or GAP
    top: np.ndarray  # height per segment, metres
    colour: np.ndarray  # base colour per segment, (n, 3)


@dataclass(frozen=True, eq=False)
class Skyline:
    """Distant silhouettes along the horizon, per image column."""

    elevation: np.ndarray  # (W,) top of the silhouette as a ray slope above the horizon
    kind: np.ndarray  # (W,) class per column, or GAP
    segment: np.ndarray  # (W,) segment id per column
    colour: np.ndarray  # (W, 3)


@dataclass(frozen=True, eq=False)
class Look:
    """Frame-wide appearance: palette and photometric draws."""

    salt: int  # decorrelates the procedural noise between frames
    palette: dict[int, np.ndarray]  # base colour of surfaces that have one colour per frame
    marking: np.ndarray  # lane paint
    glass: np.ndarray  # window glass
    haze_colour: np.ndarray
    clouds: float  # sky cover, 0 clear .. 1 overcast
    tile: float  # paving tile size, metres
    road: float  # carriageway half width (for markings)
    dash: float  # lane dash period, metres
    zebra: float  # depth of a zebra crossing, or inf
    sun: int  # side the sun shines from (-1 left, +1 right), 0 when overcast
    shadow: float  # darkening inside shadows
    sun_slope: float  # shadow length per metre of wall height


@dataclass(frozen=True, eq=False)
class Surface:
    """The pixels of one class, in the coordinates of the surface they hit."""

    u: np.ndarray  # metres along the surface (depth on walls, lateral on ground)
    v: np.ndarray  # metres across it (height on walls, depth on ground)
    fpu: np.ndarray  # pixel footprint along u, metres (for fading sub-pixel detail)
    fpv: np.ndarray  # pixel footprint along v, metres
    seg: np.ndarray  # segment id: per-building style comes from hashing it
    tint: np.ndarray  # (n, 3) base colour


# --- colours ---------------------------------------------------------------------------------

# Several anchors per class so that hue varies across frames; the first is the canonical one.
ANCHORS: dict[int, list[tuple[float, float, float]]] = {
    SKY: [(0.45, 0.65, 0.9), (0.72, 0.76, 0.82), (0.85, 0.7, 0.55), (0.55, 0.6, 0.7), (0.3, 0.5, 0.85)],
    BUILDING: [
        (0.7, 0.6, 0.5), (0.6, 0.35, 0.28), (0.55, 0.55, 0.55), (0.82, 0.78, 0.7),
        (0.45, 0.5, 0.62), (0.78, 0.66, 0.42), (0.35, 0.3, 0.3), (0.6, 0.72, 0.76), (0.7, 0.5, 0.55),
    ],
    ROAD: [(0.34, 0.34, 0.36), (0.46, 0.45, 0.43), (0.25, 0.25, 0.27), (0.42, 0.37, 0.33)],
    SIDEWALK: [(0.62, 0.6, 0.56), (0.7, 0.58, 0.52), (0.5, 0.5, 0.53), (0.66, 0.56, 0.44)],
    VEGETATION: [(0.25, 0.45, 0.15), (0.36, 0.5, 0.2), (0.2, 0.34, 0.18), (0.52, 0.47, 0.2), (0.58, 0.36, 0.15)],
    FENCE: [(0.5, 0.4, 0.3), (0.62, 0.62, 0.62), (0.28, 0.28, 0.3), (0.2, 0.42, 0.26), (0.78, 0.76, 0.7)],
    POLE: [(0.45, 0.45, 0.47), (0.22, 0.22, 0.24), (0.2, 0.36, 0.26), (0.5, 0.4, 0.3), (0.7, 0.7, 0.68)],
    CAR: [(0.8, 0.1, 0.1), (0.9, 0.9, 0.9), (0.1, 0.1, 0.12), (0.2, 0.3, 0.6), (0.6, 0.6, 0.62), (0.9, 0.75, 0.1)],
    PEDESTRIAN: [(0.15, 0.15, 0.2), (0.6, 0.2, 0.2), (0.2, 0.3, 0.5), (0.85, 0.85, 0.8), (0.4, 0.35, 0.25)],
}
SKIN = [(0.95, 0.8, 0.65), (0.75, 0.55, 0.4), (0.45, 0.3, 0.2), (0.9, 0.7, 0.55)]
GLASS_TINTS = [(0.25, 0.3, 0.38), (0.15, 0.15, 0.18), (0.5, 0.6, 0.7)]
SIGN_COLOURS = [(0.85, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1), (0.95, 0.95, 0.95), (0.1, 0.5, 0.25)]


def _colours(rng: np.random.Generator, cls: int, count: int, jitter: float) -> np.ndarray:
    """``count`` base colours for ``cls``: random anchors, scaled and shifted by up to ``jitter``."""
    anchors = np.array(ANCHORS[cls], np.float32)
    if jitter <= 0:
        return np.repeat(anchors[:1], count, 0)
    base = anchors[rng.integers(len(anchors), size=count)]
    if cls in (CAR, PEDESTRIAN):  # cars and clothes come in any colour
        wild = rng.random(count) < 0.4 * jitter
        base[wild] = rng.uniform(0.05, 0.95, (int(wild.sum()), 3))
    draws = rng.standard_normal((count, 4), dtype=np.float32)  # brightness, then per-channel shift
    colour = base * (1 + 0.15 * jitter * draws[:, :1]) + 0.05 * jitter * draws[:, 1:]
    return np.clip(colour, 0.02, 1.0)


def _colour(rng: np.random.Generator, cls: int, jitter: float) -> np.ndarray:
    return _colours(rng, cls, 1, jitter)[0]


def _pick(rng: np.random.Generator, table: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array(table[rng.integers(len(table))], np.float32)


# --- procedural noise ------------------------------------------------------------------------


def _lattice(x: np.ndarray | float) -> np.ndarray:
    """Integer lattice coordinates as wrapping uint32 (negative cells stay distinct)."""
    return np.floor(x).astype(np.int32).view(np.uint32)


def _finalise(h: np.ndarray, salt: int) -> np.ndarray:
    """Scramble uint32s into floats in [0, 1)."""
    h = h ^ np.uint32(salt & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1 / (1 << 24))


def _hash(x: np.ndarray, y: np.ndarray | float, salt: int) -> np.ndarray:
    """A float in [0, 1) per lattice cell ``(floor(x), floor(y))``: stateless and deterministic."""
    return _finalise(_lattice(x) * np.uint32(0x27D4EB2D) ^ _lattice(y) * np.uint32(0x165667B1), salt)


def _value_noise(x: np.ndarray, y: np.ndarray | float, salt: int) -> np.ndarray:
    """Smooth noise in [0, 1): hashed lattice values, interpolated with a smoothstep."""
    fx, fy = x - np.floor(x), y - np.floor(y)
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    hx0 = _lattice(x) * np.uint32(0x27D4EB2D)
    hy0 = _lattice(y) * np.uint32(0x165667B1)
    hx1, hy1 = hx0 + np.uint32(0x27D4EB2D), hy0 + np.uint32(0x165667B1)
    a, b = _finalise(hx0 ^ hy0, salt), _finalise(hx1 ^ hy0, salt)
    c, d = _finalise(hx0 ^ hy1, salt), _finalise(hx1 ^ hy1, salt)
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy


def _fbm(x: np.ndarray, y: np.ndarray, salt: int, octaves: int = 3) -> np.ndarray:
    """Fractal noise in [0, 1): octaves of value noise, each twice as fine and half as strong."""
    total, norm = np.zeros_like(x, dtype=np.float32), 0.0
    for k in range(octaves):
        total += _value_noise(x * 2**k, y * 2**k, salt + 101 * k) / 2**k
        norm += 1 / 2**k
    return total / norm


def _fade(period: float | np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """1 where a pattern of this period spans >= 3 pixels, 0 below 1.5: hides moire."""
    return np.clip(period / np.maximum(footprint, 1e-6) / 1.5 - 1, 0, 1)


def _line(d: np.ndarray, width: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage of a pixel of ``footprint`` metres by a stripe ``width`` wide at offset ``d``."""
    fp = np.maximum(footprint, 1e-6)
    overlap = np.minimum(d + fp / 2, width / 2) - np.maximum(d - fp / 2, -width / 2)
    return np.clip(overlap / fp, 0, 1)


def _mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a + (b - a) * w[:, None]


# --- painters: one per surface class, pixels in, colours out ------------------------------


def _paint_sky(s: Surface, look: Look) -> np.ndarray:
    """Gradient from a hazy horizon to the zenith colour, with fbm clouds."""
    elevation = np.clip(s.v, 0, None)
    t = 1 - np.exp(-elevation * 5)
    horizon = 0.5 * s.tint + 0.5 * look.haze_colour
    colour = _mix(np.broadcast_to(horizon, s.tint.shape), s.tint, t)
    clouds = _fbm(s.u * 4 / (elevation + 0.15), elevation * 14, look.salt + 5, octaves=2)
    amount = np.clip((clouds - 0.75 + 0.4 * look.clouds) * 4, 0, 1) * 0.85
    return _mix(colour, np.full_like(colour, 0.92), amount)


def _paint_facade(s: Surface, look: Look) -> np.ndarray:
    """Wall noise plus a window grid whose floor height and bay width vary per building."""
    floor = 2.8 + 1.0 * _hash(s.seg, 1, look.salt)
    bay = 1.8 + 2.5 * _hash(s.seg, 2, look.salt)
    lobby = 2.0 + 2.5 * _hash(s.seg, 3, look.salt)
    wu, wv = np.mod(s.u / bay, 1.0), np.mod((s.v - lobby) / floor, 1.0)
    window = (wu > 0.22) & (wu < 0.78) & (wv > 0.28) & (wv < 0.78) & (s.v > lobby)
    detail = np.minimum(_fade(bay, s.fpu), _fade(floor, s.fpv))
    grime = 0.8 + 0.35 * _fbm(s.u * 0.3, s.v * 0.3, look.salt + 11, octaves=2)
    brick = 0.92 + 0.16 * _hash(np.floor(s.u * 4), np.floor(s.v * 12), look.salt + 12)
    wall = s.tint * (grime * brick)[:, None]
    cell = _hash(np.floor(s.u / bay), np.floor((s.v - lobby) / floor), look.salt + 13)
    glass = look.glass[None, :] * (0.5 + 0.9 * cell)[:, None]
    average = _mix(wall, glass, np.full(len(wall), 0.3, np.float32))  # what a far facade looks like
    near = _mix(wall, glass, window.astype(np.float32))
    return _mix(average, near, detail)


def _paint_asphalt(s: Surface, look: Look) -> np.ndarray:
    """Asphalt noise and patches; dashed centre line, solid edge lines, sometimes a zebra."""
    x, z = s.u, s.v
    base = s.tint * (0.8 + 0.3 * _fbm(x * 0.8, z * 0.3, look.salt + 21))[:, None]
    base *= (0.94 + 0.12 * _hash(np.floor(x * 8), np.floor(z * 8), look.salt + 22))[:, None]
    dash = np.mod(z / look.dash, 1.0) < 0.5
    centre = _line(x, 0.15, s.fpu) * np.where(dash, 1.0, 0.0)
    centre = centre * _fade(look.dash, s.fpv) + _line(x, 0.15, s.fpu) * 0.5 * (1 - _fade(look.dash, s.fpv))
    edge = _line(np.abs(x) - (look.road - 0.35), 0.15, s.fpu)
    stripes = (np.abs(z - look.zebra) < 1.5) & (np.mod(x, 1.0) < 0.5) & (np.abs(x) < look.road - 0.5)
    paint = np.clip(centre + edge + stripes * _fade(1.0, s.fpu), 0, 1) * 0.85
    return _mix(base, np.broadcast_to(look.marking, base.shape), paint)


def _paint_tiles(s: Surface, look: Look) -> np.ndarray:
    """Paving tiles with darker joints, a lighter curb at the road edge."""
    size = look.tile
    tile = 0.9 + 0.2 * _hash(np.floor(s.u / size), np.floor(s.v / size), look.salt + 31)
    ju = _line(np.mod(s.u / size + 0.5, 1.0) - 0.5, 0.1, s.fpu / size)
    jv = _line(np.mod(s.v / size + 0.5, 1.0) - 0.5, 0.1, s.fpv / size)
    joints = np.clip(ju + jv, 0, 1) * np.minimum(_fade(size, s.fpu), _fade(size, s.fpv))
    colour = s.tint * (tile * (1 - 0.35 * joints))[:, None]
    curb = _line(np.abs(s.u) - look.road - 0.15, 0.3, s.fpu)
    return _mix(colour, np.clip(s.tint * 1.3, 0, 1), curb)


def _paint_foliage(s: Surface, look: Look) -> np.ndarray:
    """Leafy clumps: coarse fbm for light and shade, fine hash noise for leaves."""
    clumps = _fbm(s.u * 0.9, s.v * 0.9, look.salt + 41)
    leaves = _hash(np.floor(s.u * 6), np.floor(s.v * 6), look.salt + 42)
    light = 0.45 + 0.7 * clumps + 0.25 * (leaves - 0.5)
    warm = (clumps - 0.5)[:, None] * np.array([0.12, 0.05, -0.05], np.float32)
    return np.clip(s.tint * light[:, None] + warm, 0, 1)


def _paint_fence(s: Surface, look: Look) -> np.ndarray:
    """Posts and rails over a darker mesh (the whole fence is labeled, as in Cityscapes)."""
    post_gap = 1.5 + 1.5 * _hash(s.seg, 4, look.salt)
    post = _line(np.mod(s.u / post_gap + 0.5, 1.0) - 0.5, 0.08, s.fpu / post_gap)
    rail = _line(np.mod(s.v + 0.3, 0.6) - 0.3, 0.08, s.fpv)
    mesh = 0.55 + 0.2 * _hash(np.floor(s.u * 10), np.floor(s.v * 10), look.salt + 51)
    frame = np.clip(post + rail, 0, 1)
    return s.tint * (mesh + (1.05 - mesh) * frame)[:, None]


PAINTERS: dict[int, Callable[[Surface, Look], np.ndarray]] = {
    SKY: _paint_sky,
    BUILDING: _paint_facade,
    ROAD: _paint_asphalt,
    SIDEWALK: _paint_tiles,
    VEGETATION: _paint_foliage,
    FENCE: _paint_fence,
}

# --- drawing the scene per frame -------------------------------------------------------------

# Which segments each wall is made of: (class, probability, height range in metres).
WALL_KINDS = {
    "near": ((FENCE, 0.45, (0.8, 1.8)), (VEGETATION, 0.2, (0.6, 2.0)), (GAP, 0.35, (0.0, 0.0))),
    "far": ((BUILDING, 0.6, (5.0, 30.0)), (VEGETATION, 0.3, (4.0, 12.0)), (GAP, 0.1, (0.0, 0.0))),
}
SEGMENT_LENGTH = {"near": (3.0, 20.0), "far": (6.0, 28.0)}


def _sample_camera(rng: np.random.Generator, spec: SyntheticSpec, street: Street) -> Camera:
    f = spec.focal * spec.width
    pitch, yaw = rng.uniform(*spec.pitch), rng.uniform(*spec.yaw)
    return Camera(
        f=f,
        vx=spec.width / 2 + f * np.tan(yaw),
        vy=spec.height / 2 - f * np.tan(pitch),
        height=rng.uniform(*spec.camera_height),
        x=rng.uniform(-0.6, 0.6) * street.road,
    )


def _sample_street(rng: np.random.Generator) -> Street:
    road = rng.uniform(3.0, 7.5)
    near = road + rng.uniform(1.5, 4.5, 2)
    far = near + np.where(rng.random(2) < 0.4, 0.05, rng.uniform(0.5, 5.0, 2))
    verge = SIDEWALK if rng.random() < 0.5 else VEGETATION
    return Street(road, (float(near[0]), float(near[1])), (float(far[0]), float(far[1])), verge)


def _sample_look(rng: np.random.Generator, spec: SyntheticSpec, street: Street) -> Look:
    jitter = spec.palette_jitter
    sunny = rng.random() < 0.7
    return Look(
        salt=int(rng.integers(2**31)),
        palette={c: _colour(rng, c, jitter) for c in (SKY, ROAD, SIDEWALK, VEGETATION)},
        marking=_pick(rng, [(0.95, 0.95, 0.92), (0.95, 0.8, 0.2)]),
        glass=np.clip(_pick(rng, GLASS_TINTS) * rng.uniform(0.7, 1.3), 0, 1),
        haze_colour=np.clip(rng.uniform(0.7, 0.95) + rng.normal(0, 0.04, 3), 0, 1).astype(np.float32),
        clouds=rng.uniform(0.0, 1.0),
        tile=rng.uniform(0.4, 0.8),
        road=street.road,
        dash=rng.uniform(4.0, 12.0),
        zebra=rng.uniform(6.0, 30.0) if rng.random() < 0.25 else np.inf,
        sun=int(rng.choice([-1, 1])) if sunny else 0,
        shadow=rng.uniform(0.2, 1.0) * spec.shadows if sunny else 0.0,
        sun_slope=rng.uniform(0.1, 1.0),
    )


def _sample_wall(rng: np.random.Generator, which: str, x: float, jitter: float) -> Wall:
    kinds = WALL_KINDS[which]
    lengths = rng.uniform(*SEGMENT_LENGTH[which], 64)
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    edges = edges[: int(np.searchsorted(edges, WALL_DEPTH)) + 1]
    choice = rng.choice(len(kinds), size=len(edges), p=[k[1] for k in kinds])
    kind = np.array([k[0] for k in kinds], np.int16)[choice]
    low, high = np.array([k[2] for k in kinds], np.float32)[choice].T
    top = rng.uniform(low, high).astype(np.float32)
    colour = np.zeros((len(edges), 3), np.float32)
    for cls in sorted({k[0] for k in kinds} - {GAP}):
        colour[kind == cls] = _colours(rng, cls, int(np.sum(kind == cls)), jitter)
    return Wall(x, edges, kind, top, colour)


def _with_fence(rng: np.random.Generator, wall: Wall, cam: Camera, width: int, jitter: float) -> Wall:
    """``wall`` with the segment just inside the field of view turned into a fence.

    Fences are thin and low; left to chance they would be missing from many frames.
    """
    border = (cam.vx if wall.x < 0 else width - cam.vx) / cam.f  # ray slope at the image border
    visible = abs(wall.x - cam.x) / max(border, 0.05)  # nearest depth of the wall in view
    i = int(np.searchsorted(wall.edges, min(visible * 1.1 + rng.uniform(0, 8), WALL_DEPTH - 1))) - 1
    kind, top, colour = wall.kind.copy(), wall.top.copy(), wall.colour.copy()
    kind[i], top[i], colour[i] = FENCE, rng.uniform(*WALL_KINDS["near"][0][2]), _colour(rng, FENCE, jitter)
    return dataclasses.replace(wall, kind=kind, top=top, colour=colour)


def _sample_skyline(rng: np.random.Generator, width: int, jitter: float) -> Skyline:
    """Piecewise silhouettes of far buildings and tree lines, or none."""
    elevation = np.zeros(width, np.float32)
    kind = np.full(width, GAP, np.int16)
    segment = np.zeros(width, np.int32)
    colour = np.zeros((width, 3), np.float32)
    if rng.random() < 0.3:
        return Skyline(elevation, kind, segment, colour)
    start, k = 0, 0
    while start < width:
        stop = start + int(rng.integers(max(2, width // 16), max(3, width // 4)))
        cls = int(rng.choice([BUILDING, VEGETATION, GAP], p=[0.5, 0.3, 0.2]))
        elevation[start:stop] = rng.uniform(8, 60) / SKYLINE_DEPTH
        kind[start:stop], segment[start:stop] = cls, 1000 + k
        colour[start:stop] = _colour(rng, cls, jitter) if cls != GAP else 0
        start, k = stop, k + 1
    return Skyline(elevation, kind, segment, colour)


@dataclass(eq=False)
class Canvas:
    """Per-pixel buffers the scene is drawn into; sprites overwrite all of them at once."""

    albedo: np.ndarray  # H x W x 3 float32
    mask: np.ndarray  # H x W uint8
    depth: np.ndarray  # H x W float32 (inf for sky)
    light: np.ndarray  # H x W float32 multiplier (shadows, facade orientation)


def _cast(
    cam: Camera, street: Street, walls: list[Wall], skyline: Skyline, look: Look, shape: tuple[int, int]
) -> Canvas:
    """Shoot one ray per pixel; paint and light whatever each ray hits first.

    Works on flat pixel arrays: each surface narrows them to the pixel indices it could own,
    and ``take`` hands a pixel to a surface only if it is nearer than what the pixel has.
    """
    h, w = shape
    rows, cols = np.divmod(np.arange(h * w), w)
    dx = (cols + np.float32(0.5) - cam.vx) / cam.f  # ray slope to the right
    dy = (rows + np.float32(0.5) - cam.vy) / cam.f  # ray slope downward
    cls = np.full(h * w, SKY, np.int16)
    depth = np.full(h * w, np.inf, np.float32)
    u, v = dx.astype(np.float32), -dy.astype(np.float32)  # sky: ray direction
    fpu, fpv = np.full(h * w, 1 / cam.f, np.float32), np.full(h * w, 1 / cam.f, np.float32)
    seg = np.zeros(h * w, np.int32)
    tint = np.repeat(look.palette[SKY][None], h * w, 0)
    light = np.ones(h * w, np.float32)

    def take(idx, c, z, uu, vv, fu, fv, s, t, lit) -> None:
        cls[idx], depth[idx], u[idx], v[idx], fpu[idx], fpv[idx] = c, z, uu, vv, fu, fv
        seg[idx], tint[idx], light[idx] = s, t, lit

    with np.errstate(divide="ignore", invalid="ignore"):
        for k, wall in enumerate(walls):
            t = (wall.x - cam.x) / dx  # depth where the ray crosses the wall's plane
            idx = np.flatnonzero((t > 0.3) & (t < WALL_DEPTH))
            t = t[idx]
            height = cam.height - dy[idx] * t
            i = np.searchsorted(wall.edges, t) - 1
            kind, top = wall.kind[i], wall.top[i]
            leafy = kind == VEGETATION  # tree rows and hedges get a bumpy top
            top[leafy] *= 0.7 + 0.6 * _value_noise(t[leafy] / 3.0, float(k), look.salt + 61)
            ok = (height >= 0) & (height < top) & (kind != GAP) & (t < depth[idx])
            idx, i, t, height = idx[ok], i[ok], t[ok], height[ok]
            facing_sun = np.sign(wall.x) != look.sun  # a wall on the sun's side faces away from it
            lit = 1.0 if (look.sun == 0 or facing_sun) else 1 - 0.5 * look.shadow
            offset = abs(wall.x - cam.x)
            take(idx, kind[ok], t, t, height, t * t / (cam.f * offset), t / cam.f, i + 100 * k, wall.colour[i], lit)

        idx = np.flatnonzero(dy > 1e-6)
        z = cam.height / dy[idx]
        idx, z = idx[z < depth[idx]], z[z < depth[idx]]
        x = cam.x + dx[idx] * z  # lateral position on the ground
        side = (x > 0).astype(np.intp)
        bands = np.stack([np.full(len(x), street.road), np.array(street.near)[side], np.array(street.far)[side]])
        ground = np.array([ROAD, SIDEWALK, street.verge, VEGETATION], np.int16)[(np.abs(x) >= bands).sum(0)]
        palette = np.zeros((len(CLASSES), 3), np.float32)
        for c, colour in look.palette.items():
            palette[c] = colour
        shade = _ground_shadow(x, z, walls, look)
        take(idx, ground, z, x, z, z / cam.f, z * z / (cam.f * cam.height), 0, palette[ground], shade)

        elevation = -dy
        idx = np.flatnonzero(
            (depth == np.inf) & (elevation >= 0) & (elevation < skyline.elevation[cols]) & (skyline.kind[cols] != GAP)
        )
        col, far = cols[idx], np.float32(SKYLINE_DEPTH)
        take(idx, skyline.kind[col], far, dx[idx] * far, elevation[idx] * far, far / cam.f, far / cam.f,
             skyline.segment[col], skyline.colour[col], 1.0)

    albedo = np.zeros((h * w, 3), np.float32)
    for c, paint in PAINTERS.items():
        sel = np.flatnonzero(cls == c)
        if len(sel):
            albedo[sel] = paint(Surface(u[sel], v[sel], fpu[sel], fpv[sel], seg[sel], tint[sel]), look)
    return Canvas(albedo.reshape(h, w, 3), cls.astype(np.uint8).reshape(h, w), depth.reshape(h, w), light.reshape(h, w))


def _ground_shadow(x: np.ndarray, z: np.ndarray, walls: list[Wall], look: Look) -> np.ndarray:
    """Darkening of ground points inside the shadow the sun-side walls cast across the street."""
    shade = np.ones_like(x)
    if look.sun == 0:
        return shade
    for wall in walls:
        if np.sign(wall.x) != look.sun:
            continue
        i = np.clip(np.searchsorted(wall.edges, z) - 1, 0, len(wall.edges) - 1)
        top = np.where(wall.kind[i] == GAP, 0.0, wall.top[i])
        inside = look.sun * x > abs(wall.x) - top * look.sun_slope
        shade = np.where(inside & (z < WALL_DEPTH), 1 - look.shadow, shade)
    return shade


# --- sprites: flat objects standing on the ground, described in metres ----------------------

Prim = tuple[np.ndarray, int, np.ndarray]  # polygon (n, 2) in metres (x right, y up), class, colour
TYRE = np.array((0.05, 0.05, 0.06), np.float32)
GLASS = np.array((0.12, 0.14, 0.18), np.float32)
UNLIT = np.array((0.15, 0.15, 0.15), np.float32)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, np.float32)


def _trapezoid(bottom: float, y0: float, top: float, y1: float) -> np.ndarray:
    """Symmetric about x = 0: half widths ``bottom`` at height ``y0`` and ``top`` at ``y1``."""
    return _poly((-bottom, y0), (bottom, y0), (top, y1), (-top, y1))


def _disc(cx: float, cy: float, r: float, n: int = 12) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1).astype(np.float32)


def _car_rear(rng: np.random.Generator, body: np.ndarray) -> list[Prim]:
    """A car seen from behind (or the front): the common view down a street."""
    w, top = rng.uniform(1.6, 2.0), rng.uniform(1.3, 2.2)
    belt, half = top * rng.uniform(0.5, 0.62), w / 2
    red = np.array((0.8, 0.1, 0.08), np.float32)
    return [
        (_rect(-half + 0.1, 0, -half + 0.4, 0.4), CAR, TYRE),
        (_rect(half - 0.4, 0, half - 0.1, 0.4), CAR, TYRE),
        (_rect(-half, 0.2, half, belt), CAR, body),
        (_trapezoid(half * 0.95, belt, half * 0.78, top), CAR, body * 0.85),
        (_trapezoid(half * 0.85, belt + 0.08, half * 0.7, top - 0.1), CAR, GLASS),
        (_rect(-half + 0.05, belt - 0.3, -half + 0.35, belt - 0.1), CAR, red),
        (_rect(half - 0.35, belt - 0.3, half - 0.05, belt - 0.1), CAR, red),
        (_rect(-0.25, 0.35, 0.25, 0.5), CAR, np.array((0.9, 0.9, 0.85), np.float32)),
    ]


def _car_side(rng: np.random.Generator, body: np.ndarray) -> list[Prim]:
    """A car crossing the street, seen from the side."""
    length, top = rng.uniform(3.8, 4.8), rng.uniform(1.35, 1.8)
    belt, half = top * 0.55, length / 2
    cabin = _poly((-half + 0.9, belt), (half - 0.7, belt), (half - 1.4, top), (-half + 1.3, top))
    low, high = belt + 0.05, top - 0.08
    glass = _poly((-half + 1.05, low), (half - 0.85, low), (half - 1.45, high), (-half + 1.38, high))
    return [
        (_rect(-half, 0.25, half, belt), CAR, body),
        (cabin, CAR, body * 0.9),
        (glass, CAR, GLASS),
        (_disc(-half + 0.8, 0.33, 0.33), CAR, TYRE),
        (_disc(half - 0.8, 0.33, 0.33), CAR, TYRE),
    ]


CAR_VIEWS: tuple[tuple[Callable[[np.random.Generator, np.ndarray], list[Prim]], float], ...] = (
    (_car_rear, 0.85),
    (_car_side, 0.15),
)


def _car(rng: np.random.Generator, mpp: float, toward: int, jitter: float) -> list[Prim]:
    build = CAR_VIEWS[rng.choice(len(CAR_VIEWS), p=[p for _, p in CAR_VIEWS])][0]
    return build(rng, _colour(rng, CAR, jitter))


def _pedestrian(rng: np.random.Generator, mpp: float, toward: int, jitter: float) -> list[Prim]:
    """Legs mid-stride, torso, arms and head; clothes of any colour."""
    shirt, trousers = _colour(rng, PEDESTRIAN, jitter), _colour(rng, PEDESTRIAN, jitter) * 0.7
    skin = _pick(rng, SKIN)
    stride = rng.uniform(-0.22, 0.22)
    legs = (
        _poly((-0.15, 0.9), (0.0, 0.9), (stride + 0.03, 0), (stride - 0.12, 0)),
        _poly((0.0, 0.9), (0.15, 0.9), (-stride + 0.12, 0), (-stride - 0.03, 0)),
    )
    torso = _trapezoid(0.2, 0.86, 0.23, 1.45)
    return [
        (legs[0], PEDESTRIAN, trousers),
        (legs[1], PEDESTRIAN, trousers * 0.9),
        (torso, PEDESTRIAN, shirt),
        (_rect(-0.3, 0.95, -0.2, 1.42), PEDESTRIAN, shirt * 0.85),
        (_rect(0.2, 0.95, 0.3, 1.42), PEDESTRIAN, shirt * 0.85),
        (_disc(0.0, 1.58, 0.12, 10), PEDESTRIAN, skin),
    ]


def _pole(rng: np.random.Generator, mpp: float, toward: int, jitter: float) -> list[Prim]:
    """A lamp post or utility pole, never thinner than one pixel; lamps reach over the road."""
    colour = _colour(rng, POLE, jitter)
    width, top = max(rng.uniform(0.12, 0.25), mpp), rng.uniform(4.0, 9.0)
    prims = [(_rect(-width / 2, 0, width / 2, top), POLE, colour)]
    if rng.random() < 0.5:
        reach, thick = toward * rng.uniform(1.0, 2.5), max(0.12, mpp)
        prims.append((_rect(0, top - thick, reach, top), POLE, colour))
        prims.append((_rect(reach - toward * 0.5, top - thick - 0.15, reach, top - thick), POLE, colour * 0.6 + 0.3))
    return prims


def _sign_panel(rng: np.random.Generator, height: float) -> list[Prim]:
    """One sign face at ``height``: a random shape with a border, or a traffic light."""
    outer, inner = _pick(rng, SIGN_COLOURS), _pick(rng, SIGN_COLOURS)
    r = rng.uniform(0.3, 0.5)
    cy = height + r
    shapes = {
        "disc": lambda s: _disc(0, cy, s * r),
        "triangle": lambda s: _poly((-s * r, cy - 0.8 * s * r), (s * r, cy - 0.8 * s * r), (0, cy + s * r)),
        "diamond": lambda s: _poly((0, cy - s * r), (s * r, cy), (0, cy + s * r), (-s * r, cy)),
        "octagon": lambda s: _disc(0, cy, s * r, 8),
        "board": lambda s: _rect(-2.2 * s * r, cy - s * r, 2.2 * s * r, cy + s * r),
    }
    kind = rng.choice([*shapes, "light"])
    if kind == "light":
        box = _rect(-0.18, height, 0.18, height + 0.9)
        lit, glow = int(rng.integers(3)), _pick(rng, [(0.9, 0.15, 0.1), (0.95, 0.7, 0.1), (0.2, 0.9, 0.4)])
        lamps = [(_disc(0, height + 0.15 + 0.3 * j, 0.1, 8), SIGN, glow if j == lit else UNLIT) for j in range(3)]
        return [(box, SIGN, np.array((0.12, 0.12, 0.1), np.float32)), *lamps]
    return [(shapes[kind](1.0), SIGN, outer), (shapes[kind](0.72), SIGN, inner)]


def _sign(rng: np.random.Generator, mpp: float, toward: int, jitter: float) -> list[Prim]:
    width, height = max(0.08, mpp), rng.uniform(2.0, 3.2)
    post = (_rect(-width / 2, 0, width / 2, height + 0.05), POLE, _colour(rng, POLE, jitter))
    return [post, *_sign_panel(rng, height)]


def _on_road(rng: np.random.Generator, street: Street) -> float:
    return rng.uniform(-street.road + 1.0, street.road - 1.0)


def _on_sidewalk(rng: np.random.Generator, street: Street) -> float:
    if rng.random() < 0.25:  # crossing the road
        return rng.uniform(-street.road, street.road)
    side = int(rng.integers(2))
    return (2 * side - 1) * rng.uniform(street.road + 0.3, street.near[side] - 0.2)


def _at_curb(rng: np.random.Generator, street: Street) -> float:
    side = int(rng.integers(2))
    spot = rng.uniform(0.25, 0.7) if rng.random() < 0.7 else street.near[side] - street.road - 0.3
    return (2 * side - 1) * (street.road + spot)


@dataclass(frozen=True)
class SpriteKind:
    count: str  # the SyntheticSpec field that holds the (low, high) count
    depth: tuple[float, float]  # metres; drawn log-uniformly so near objects are common
    place: Callable[[np.random.Generator, Street], float]  # lateral position
    build: Callable[[np.random.Generator, float, int, float], list[Prim]]  # (rng, m/pixel, toward road, jitter)
    contact_shadow: bool


SPRITES: dict[str, SpriteKind] = {
    "car": SpriteKind("cars", (4.0, 60.0), _on_road, _car, True),
    "pedestrian": SpriteKind("pedestrians", (3.0, 30.0), _on_sidewalk, _pedestrian, False),
    "pole": SpriteKind("poles", (3.0, 45.0), _at_curb, _pole, False),
    "sign": SpriteKind("signs", (4.0, 30.0), _at_curb, _sign, False),
}


@dataclass(frozen=True, eq=False)
class Sprite:
    x: float  # lateral, metres
    z: float  # depth, metres
    size: float  # object scale
    prims: list[Prim]
    contact_shadow: bool


def _sample_sprites(rng: np.random.Generator, spec: SyntheticSpec, cam: Camera, street: Street) -> list[Sprite]:
    """Objects whose feet project inside the frame, sorted far to near for painting."""
    sprites = []
    log_lo_hi = {name: np.log(kind.depth) for name, kind in SPRITES.items()}
    for name, kind in SPRITES.items():
        low, high = getattr(spec, kind.count)
        for _ in range(int(rng.integers(low, high + 1))):
            for _attempt in range(12):  # rejection: keep objects that stand inside the frame
                z = float(np.exp(rng.uniform(*log_lo_hi[name])))
                x = kind.place(rng, street)
                column = cam.vx + cam.f * (x - cam.x) / z
                if 0 <= column < spec.width and (name != "car" or abs(x - cam.x) > 1.5 or z > 9):
                    break
            else:
                continue
            size = rng.uniform(*spec.object_scale)
            toward = -1 if x > 0 else 1
            prims = kind.build(rng, z / cam.f / size, toward, spec.palette_jitter)
            sprites.append(Sprite(x, z, size, prims, kind.contact_shadow))
    return sorted(sprites, key=lambda s: -s.z)


def _to_pixels(points: np.ndarray) -> np.ndarray:
    """Continuous image coordinates (pixel centres at +0.5) to cv2's 4-bit fixed point."""
    return np.round((points - 0.5) * 16).astype(np.int32)


def _draw(canvas: Canvas, sprite: Sprite, cam: Camera) -> None:
    """Fill each polygon into image, mask, depth and light together, so they cannot disagree."""
    h, w = canvas.mask.shape
    scale = cam.f / sprite.z * sprite.size
    cx, gy = cam.vx + cam.f * (sprite.x - cam.x) / sprite.z, cam.vy + cam.f * cam.height / sprite.z
    foot = canvas.light[int(np.clip(gy - 1, 0, h - 1)), int(np.clip(cx, 0, w - 1))]
    if sprite.contact_shadow:
        _contact_shadow(canvas, sprite, cam)
    points = np.concatenate([poly for poly, _, _ in sprite.prims])
    pixels = _to_pixels(np.stack([cx + points[:, 0] * scale, gy - points[:, 1] * scale], 1))
    splits = np.cumsum([len(poly) for poly, _, _ in sprite.prims])[:-1]
    for pts, (_, cls, colour) in zip(np.split(pixels, splits), sprite.prims):
        cv2.fillPoly(canvas.albedo, [pts], colour.tolist(), cv2.LINE_8, 4)
        cv2.fillPoly(canvas.mask, [pts], int(cls), cv2.LINE_8, 4)
        cv2.fillPoly(canvas.depth, [pts], float(sprite.z), cv2.LINE_8, 4)
        cv2.fillPoly(canvas.light, [pts], float(foot), cv2.LINE_8, 4)


def _contact_shadow(canvas: Canvas, sprite: Sprite, cam: Camera) -> None:
    """Darken the ground under a car: a patch on the road plane, seen in perspective."""
    half = 1.1 * sprite.size
    x = np.array([-half, half, half, -half]) + sprite.x
    z = np.array([-1.2, -1.2, 2.2, 2.2]) + sprite.z
    pts = np.stack([cam.vx + cam.f * (x - cam.x) / z, cam.vy + cam.f * cam.height / z], 1)
    patch = np.zeros(canvas.mask.shape, np.uint8)
    cv2.fillPoly(patch, [_to_pixels(pts)], 1, cv2.LINE_8, 4)
    ground = (patch == 1) & np.isin(canvas.mask, (ROAD, SIDEWALK, VEGETATION))
    canvas.light[ground] *= 0.45


# --- camera effects and the frame ----------------------------------------------------------


def _finish(canvas: Canvas, look: Look, rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Light, haze, illumination gradient, colour cast, blur and sensor noise, in that order."""
    h, w = canvas.mask.shape
    image = canvas.albedo * canvas.light[..., None]
    haze, reach = rng.uniform(0, spec.haze), rng.uniform(30.0, 200.0)
    t = (haze * (1 - np.exp(-canvas.depth / reach)))[..., None]
    image = image * (1 - t) + look.haze_colour * t
    angle, amplitude = rng.uniform(0, 2 * np.pi), rng.uniform(0, spec.shading)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    gradient = 1 + amplitude * (np.cos(angle) * (xs / w - 0.5) + np.sin(angle) * (ys / h - 0.5)) * 2
    image = image * (rng.uniform(*spec.brightness) * gradient)[..., None]
    image = image * (1 + rng.uniform(-spec.colour_cast, spec.colour_cast, 3)).astype(np.float32)
    sigma = rng.uniform(0, spec.blur)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image * 255 + rng.uniform(0, spec.noise) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_frame(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image uint8 HxWx3, mask uint8 HxW)``; all randomness comes from ``rng``."""
    street = _sample_street(rng)
    cam = _sample_camera(rng, spec, street)
    look = _sample_look(rng, spec, street)
    xs = (-street.near[0], street.near[1], -street.far[0], street.far[1])
    walls = [_sample_wall(rng, which, x, spec.palette_jitter) for which, x in zip(("near", "near", "far", "far"), xs)]
    if rng.random() < spec.fence_prob:
        side = int(rng.integers(2))  # walls[0] and walls[1] are the near walls
        walls[side] = _with_fence(rng, walls[side], cam, spec.width, spec.palette_jitter)
    skyline = _sample_skyline(rng, spec.width, spec.palette_jitter)
    canvas = _cast(cam, street, walls, skyline, look, (spec.height, spec.width))
    for sprite in _sample_sprites(rng, spec, cam, street):
        _draw(canvas, sprite, cam)
    return _finish(canvas, look, rng, spec), canvas.mask


def colourise(mask: np.ndarray) -> np.ndarray:
    """Mask ids to RGB for viewing; ignored pixels are black."""
    out = np.zeros((*mask.shape, 3), np.uint8)
    known = mask < len(CLASSES)
    out[known] = MASK_COLOURS[mask[known]]
    return out


# --- splits and the cache ------------------------------------------------------------------

SPLITS = ("train", "val", "test")


def cache_file(spec: SyntheticSpec, cache_dir: str | Path | None = None) -> Path:
    """Where ``generate`` keeps ``spec``'s frames: keyed by the parameters and the version.

    The folder is ``cache_dir``, else ``$UDATUNE_CACHE/synthetic``, else
    ``~/.cache/udatune/synthetic``.
    """
    if cache_dir is None:
        root = os.environ.get("UDATUNE_CACHE")
        cache_dir = Path(root) / "synthetic" if root else Path("~/.cache/udatune/synthetic")
    text = json.dumps({"generator": GENERATOR_VERSION, **dataclasses.asdict(spec)}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / f"synthetic-v{GENERATOR_VERSION}-{key}.npz"


def _render_split(spec: SyntheticSpec, split: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` is seeded by ``(seed, split, i)`` alone, so splits never share scenes."""
    images = np.zeros((count, spec.height, spec.width, 3), np.uint8)
    masks = np.zeros((count, spec.height, spec.width), np.uint8)
    for i in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, split, i]))
        images[i], masks[i] = render_frame(spec, rng)
    return images, masks


def generate(spec: SyntheticSpec, cache_dir: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All splits of ``spec``: ``{"train": (images, masks), "val": ..., "test": ...}``.

    Rendered once, then loaded from a compressed ``.npz``; a corrupt cache file is re-rendered.
    """
    path = cache_file(spec, cache_dir)
    if path.is_file():
        try:
            with np.load(path) as data:
                return {name: (data[f"{name}_images"], data[f"{name}_masks"]) for name in SPLITS}
        except (OSError, KeyError, ValueError):
            pass
    splits = {name: _render_split(spec, k, getattr(spec, name)) for k, name in enumerate(SPLITS)}
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{name}_{part}": a for name, pair in splits.items() for part, a in zip(("images", "masks"), pair)}
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(temp, path)  # atomic: concurrent workers never read a half-written file
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return splits


@register_dataset("synthetic")
def build_synthetic(cfg: DataConfig) -> SegmentationData:
    """The default dataset: 516 train frames (16 labeled by default), 100 val, 100 test."""
    if cfg.unlabeled_root is not None:
        raise ConfigError(
            "--unlabeled-root cannot be used with --dataset synthetic: the synthetic dataset has its "
            "own unlabeled pool (the train frames that are not labeled). Drop --unlabeled-root."
        )
    height, width = cfg.image_size or (64, 96)
    spec = SyntheticSpec(height=height, width=width)
    splits = generate(spec)
    train = ArrayFrames(*splits["train"])
    labeled, unlabeled = select_labeled(len(train), cfg.labeled, cfg.split_seed)
    return SegmentationData(
        name="synthetic",
        classes=CLASSES,
        labeled=train.subset(labeled),
        unlabeled=train.subset(unlabeled, with_masks=False),
        val=ArrayFrames(*splits["val"]),
        test=ArrayFrames(*splits["test"]),
        identity={
            "generator": GENERATOR_VERSION,
            **dataclasses.asdict(spec),
            "labeled": cfg.labeled,
            "split_seed": cfg.split_seed,
        },
    )
