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

    The appearance knobs (``palette_jitter`` .. ``blur``) set how hard the task is: at zero
    every frame has canonical colours and a clean, evenly lit image.
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
SIGN_COLOURS = [(0.85, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1), (0.95, 0.95, 0.95), (0.1, 0.5, 0.25)]


def _colour(rng: np.random.Generator, cls: int, jitter: float) -> np.ndarray:
    """A base colour for ``cls``: a random anchor, scaled and shifted by up to ``jitter``."""
    anchors = ANCHORS[cls]
    if jitter <= 0:
        return np.array(anchors[0], np.float32)
    base = np.array(anchors[rng.integers(len(anchors))], np.float32)
    if cls in (CAR, PEDESTRIAN) and rng.random() < 0.4 * jitter:
        base = rng.uniform(0.05, 0.95, 3).astype(np.float32)  # cars and clothes come in any colour
    colour = base * rng.uniform(1 - 0.25 * jitter, 1 + 0.25 * jitter) + rng.normal(0, 0.05 * jitter, 3)
    return np.clip(colour, 0.02, 1.0).astype(np.float32)


def _pick(rng: np.random.Generator, table: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array(table[rng.integers(len(table))], np.float32)


# --- procedural noise ------------------------------------------------------------------------


def _hash(ix: np.ndarray, iy: np.ndarray | int, salt: int) -> np.ndarray:
    """A float in [0, 1) per integer lattice point: cheap, stateless, deterministic."""
    h = np.asarray(ix).astype(np.int64).astype(np.uint32) * np.uint32(0x27D4EB2D)
    h ^= np.asarray(iy).astype(np.int64).astype(np.uint32) * np.uint32(0x165667B1)
    h ^= np.uint32(salt & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h & np.uint32(0xFFFFFF)).astype(np.float32) / np.float32(1 << 24)


def _value_noise(x: np.ndarray, y: np.ndarray, salt: int) -> np.ndarray:
    """Smooth noise in [0, 1): hashed lattice values, interpolated with a smoothstep."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy, salt), _hash(ix + 1, iy, salt)
    c, d = _hash(ix, iy + 1, salt), _hash(ix + 1, iy + 1, salt)
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
    cover = (look.salt % 1000) / 1000.0  # how cloudy: drawn per frame through the salt
    clouds = _fbm(s.u * 4 / (elevation + 0.15), elevation * 14, look.salt + 5)
    amount = np.clip((clouds - 0.75 + 0.4 * cover) * 4, 0, 1) * 0.85
    return _mix(colour, np.full_like(colour, 0.92), amount)


def _paint_facade(s: Surface, look: Look) -> np.ndarray:
    """Wall noise plus a window grid whose floor height and bay width vary per building."""
    floor = 2.8 + 1.0 * _hash(s.seg, 1, look.salt)
    bay = 1.8 + 2.5 * _hash(s.seg, 2, look.salt)
    lobby = 2.0 + 2.5 * _hash(s.seg, 3, look.salt)
    wu, wv = np.mod(s.u / bay, 1.0), np.mod((s.v - lobby) / floor, 1.0)
    window = (wu > 0.22) & (wu < 0.78) & (wv > 0.28) & (wv < 0.78) & (s.v > lobby)
    detail = np.minimum(_fade(bay, s.fpu), _fade(floor, s.fpv))
    grime = 0.8 + 0.35 * _fbm(s.u * 0.3, s.v * 0.3, look.salt + 11)
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
    size = 0.4 + 0.4 * (look.salt % 7) / 6
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
        glass=np.clip(_pick(rng, [(0.25, 0.3, 0.38), (0.15, 0.15, 0.18), (0.5, 0.6, 0.7)]) * rng.uniform(0.7, 1.3), 0, 1),
        haze_colour=np.clip(rng.uniform(0.7, 0.95) + rng.normal(0, 0.04, 3), 0, 1).astype(np.float32),
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
    n = len(edges)
    choice = rng.choice(len(kinds), size=n, p=[k[1] for k in kinds])
    kind = np.array([kinds[i][0] for i in choice], np.int16)
    top = np.array([rng.uniform(*kinds[i][2]) for i in choice], np.float32)
    colour = np.stack([_colour(rng, int(k), jitter) if k != GAP else np.zeros(3, np.float32) for k in kind])
    return Wall(x, edges, kind, top, colour)


def _force_fence(rng: np.random.Generator, walls: list[Wall], cam: Camera, width: int) -> None:
    """Turn a near-wall segment just inside the field of view into a fence."""
    side = int(rng.integers(2))
    wall = walls[side]  # walls[0], walls[1] are the near walls (left, right)
    edge_slope = (cam.vx if side == 0 else width - cam.vx) / cam.f  # |dx| at the image border
    visible = abs(wall.x - cam.x) / max(edge_slope, 0.05)
    i = int(np.searchsorted(wall.edges, min(visible * 1.1 + rng.uniform(0, 8), WALL_DEPTH - 1))) - 1
    wall.kind[i] = FENCE
    wall.top[i] = rng.uniform(*WALL_KINDS["near"][0][2])
    wall.colour[i] = _colour(rng, FENCE, 1.0)


def _sample_skyline(rng: np.random.Generator, width: int, f: float, jitter: float) -> Skyline:
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


def _cast(cam: Camera, street: Street, walls: list[Wall], skyline: Skyline, look: Look, shape: tuple[int, int]) -> Canvas:
    """Shoot one ray per pixel; paint what each hits and light it."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx, dy = (xs - cam.vx) / cam.f, (ys - cam.vy) / cam.f  # ray slopes: rightward, downward
    cls = np.full(shape, SKY, np.int16)
    depth = np.full(shape, np.inf, np.float32)
    u, v = dx.copy(), -dy  # sky: ray direction
    fpu = fpv = np.full(shape, 1 / cam.f, np.float32)
    seg = np.zeros(shape, np.int32)
    tint = np.broadcast_to(look.palette[SKY], (h, w, 3)).copy()
    light = np.ones(shape, np.float32)

    def take(hit: np.ndarray, c, z, uu, vv, fu, fv, s, t, lit) -> None:
        nonlocal fpu, fpv
        cls[hit], depth[hit], u[hit], v[hit], seg[hit] = c[hit], z[hit], uu[hit], vv[hit], s[hit]
        fpu, fpv = np.where(hit, fu, fpu), np.where(hit, fv, fpv)
        tint[hit], light[hit] = t[hit], lit

    with np.errstate(divide="ignore", invalid="ignore"):
        for k, wall in enumerate(walls):
            t = (wall.x - cam.x) / dx  # depth where the ray crosses the wall's plane
            i = np.clip(np.searchsorted(wall.edges, np.nan_to_num(t, nan=0, posinf=0, neginf=0)) - 1, 0, len(wall.edges) - 1)
            kind, top = wall.kind[i], wall.top[i]
            bumps = 0.7 + 0.6 * _value_noise(t / 3.0, np.full_like(t, k), look.salt + 61)
            top = np.where(kind == VEGETATION, top * bumps, top)
            height = cam.height - dy * t
            hit = (t > 0.3) & (t < WALL_DEPTH) & (t < depth) & (height >= 0) & (height < top) & (kind != GAP)
            facing_sun = np.sign(wall.x) != look.sun  # a wall on the sun's side faces away from it
            lit = 1.0 if (look.sun == 0 or facing_sun) else 1 - 0.5 * look.shadow
            offset = abs(wall.x - cam.x)
            take(hit, kind, t, t, height, t * t / (cam.f * offset), t / cam.f, i + 100 * k, wall.colour[i], lit)

        zg = np.where(dy > 1e-6, cam.height / dy, np.inf)
        x = cam.x + dx * zg
        side = (x > 0).astype(np.intp)
        near, far = np.array(street.near)[side], np.array(street.far)[side]
        bands = np.stack([np.full(shape, street.road), near, far])
        ground_cls = np.array([ROAD, SIDEWALK, street.verge, VEGETATION], np.int16)[(np.abs(x)[None] >= bands).sum(0)]
        hit = (dy > 1e-6) & (zg < depth)
        ground_tint = np.stack([look.palette[int(c)] for c in range(len(CLASSES)) if c in look.palette] + [np.zeros(3, np.float32)])
        lookup = {c: j for j, c in enumerate(k for k in look.palette)}
        tint_index = np.vectorize(lambda c: lookup.get(int(c), len(lookup)))(ground_cls) if False else None
        del ground_tint, tint_index
        gtint = np.zeros((h, w, 3), np.float32)
        for c in (ROAD, SIDEWALK, VEGETATION):
            gtint[ground_cls == c] = look.palette[c]
        take(hit, ground_cls, zg, x, zg, zg / cam.f, zg * zg / (cam.f * cam.height), seg, gtint, 1.0)
        light[hit] *= _ground_shadow(x[hit], zg[hit], walls, look)

        elevation = -dy
        hit = (depth == np.inf) & (elevation >= 0) & (elevation < skyline.elevation[None, :]) & (skyline.kind[None, :] != GAP)
        far_z = np.full(shape, SKYLINE_DEPTH, np.float32)
        cols = np.broadcast_to(np.arange(w), shape)
        take(hit, np.broadcast_to(skyline.kind, shape), far_z, dx * SKYLINE_DEPTH, elevation * SKYLINE_DEPTH,
             far_z / cam.f, far_z / cam.f, np.broadcast_to(skyline.segment, shape), skyline.colour[cols], 1.0)

    albedo = np.zeros((h, w, 3), np.float32)
    for c, paint in PAINTERS.items():
        sel = cls == c
        if sel.any():
            albedo[sel] = paint(Surface(u[sel], v[sel], fpu[sel], fpv[sel], seg[sel], tint[sel]), look)
    return Canvas(albedo, cls.astype(np.uint8), depth, light)
