"""Where an smp model's encoder weights come from, checked before any data is loaded.

``model.encoder_weights`` is one of

* ``none`` — random initialisation; nothing is read or fetched;
* a pretrained-weights name smp knows for the encoder (``imagenet``; some encoders also have
  ``ssl``, ``swsl``, ...). For a ``tu-*`` (timm) encoder any name means timm's default pretrained
  tag; pick another tag in the encoder name (``tu-resnet18.a1_in1k``), as smp does. The file is
  fetched once into the Hugging Face / torch hub cache on the user's machine and read from
  there afterwards;
* a path to a local encoder state dict (torchvision, timm or smp key layout; see `load_encoder_state`).

`resolve_encoder_weights` finds the file (fetching it first only when ``fetch`` is true and
the network allows), hashes it, and raises one clear `ConfigError` when the weights are
neither cached nor fetchable. The CLI calls it before loading data, a sweep calls it once on
the driver and writes the hash into ``model.encoder_weights_sha256`` so every trial loads,
verifies and records the same file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from udatune.config import ModelConfig
from udatune.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Keys of an ImageNet classifier head, dropped when an encoder state dict comes from a full
# classification network (torchvision ``fc``/``classifier``, timm ``head``/``fc``, Cadene ``last_linear``).
CLASSIFIER_PREFIXES = ("fc.", "classifier.", "head.", "last_linear.", "head_drop.")
# Wrappers around the keys that a saved file may carry: DDP's ``module.``, a full smp model's ``encoder.``.
WRAPPER_PREFIXES = ("module.", "encoder.")


@dataclass(frozen=True)
class Preprocessing:
    """The input normalisation an encoder was pretrained with (smp's ``get_preprocessing_params``)."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_range: tuple[float, float] = (0.0, 1.0)
    input_space: str = "RGB"


@dataclass(frozen=True)
class EncoderWeights:
    """A resolved weights choice: what was asked for, the file that answers it, its hash."""

    name: str  # "none", a pretrained name such as "imagenet", or the path as given
    file: Path | None  # None for "none"
    sha256: str | None
    preprocessing: Preprocessing
    local_file: bool  # True: a user's file, loaded by `load_encoder_state`

    def describe(self) -> str:
        if self.file is None:
            return "none (random initialisation)"
        return f"{self.name} ({self.file}, sha256 {self.sha256[:12]})"


def is_path(value: str) -> bool:
    """A weights value is a path when it names a file or looks like one; else a pretrained name."""
    return os.sep in value or "/" in value or value.endswith((".pt", ".pth", ".bin", ".safetensors")) or Path(value).is_file()


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_encoder(name: str) -> None:
    """Reject an encoder name smp (or timm, for ``tu-*``) does not know, naming a few it does."""
    import segmentation_models_pytorch as smp
    import timm

    if name.startswith("tu-"):
        base = name[3:].split(".")[0]
        if not timm.is_model(base):
            close = timm.list_models(f"*{base[:6]}*")[:8]
            hint = f" Similar timm models: {', '.join('tu-' + c for c in close)}." if close else ""
            raise ConfigError(f"--encoder {name!r}: timm has no model {base!r}.{hint} `timm.list_models()` lists them all.")
        return
    if name not in smp.encoders.get_encoder_names():
        raise ConfigError(
            f"--encoder {name!r} is not an smp encoder. Light ones: resnet18, resnet34, mobilenet_v2, "
            "efficientnet-b0, tu-mobilenetv3_small_100; any timm model works as tu-<name>; "
            "`segmentation_models_pytorch.encoders.get_encoder_names()` lists smp's own."
        )


def resolve_encoder_weights(cfg: ModelConfig, fetch: bool) -> EncoderWeights:
    """Find (and with ``fetch``, download once) the encoder weights ``cfg`` asks for.

    Raises `ConfigError` for an unknown encoder or weights name, a missing local file, a file
    whose hash is not ``cfg.encoder_weights_sha256``, or pretrained weights that are neither in
    the cache nor downloadable here.
    """
    check_encoder(cfg.encoder)
    value = cfg.encoder_weights
    if value.lower() == "none":
        return EncoderWeights("none", None, None, _default_preprocessing(cfg.encoder), local_file=False)
    if is_path(value):
        file = Path(value).expanduser()
        if not file.is_file():
            raise ConfigError(
                f"--encoder-weights {value}: no such file. Pass a local encoder state dict "
                "(torch.save(encoder.state_dict(), path)), 'imagenet' or 'none'."
            )
        weights = EncoderWeights(value, file, sha256(file), _default_preprocessing(cfg.encoder), local_file=True)
    elif cfg.encoder.startswith("tu-"):
        weights = _timm_weights(cfg.encoder, value, fetch)
    else:
        weights = _smp_weights(cfg.encoder, value, fetch)
    if cfg.encoder_weights_sha256 and weights.sha256 != cfg.encoder_weights_sha256:
        raise ConfigError(
            f"Encoder weights {weights.file} have sha256 {weights.sha256}, but this trial was set up with "
            f"{cfg.encoder_weights_sha256} (model.encoder_weights_sha256): the file changed since the sweep "
            "started. Restore it, or start a new sweep."
        )
    return weights


def _offline_message(encoder: str, name: str, where: str, err: BaseException | None) -> ConfigError:
    why = ""
    if err is not None:
        first = str(err).splitlines()[0].split(". ")[0] if str(err) else ""
        why = f" ({type(err).__name__}{': ' + first[:160] if first else ''})"
    return ConfigError(
        f"The {name!r} weights of encoder {encoder} are not in the local cache ({where}) and could not be "
        f"downloaded here{why}. Fetch them once on a machine with network access — "
        f"`udatune fetch-weights --encoder {encoder} --encoder-weights {name}` — and copy or share the cache "
        "(HF_HOME / TORCH_HOME), or pass a local encoder state dict with --encoder-weights PATH, "
        "or train from scratch with --encoder-weights none. On a machine without network, HF_HUB_OFFLINE=1 "
        "makes this check fail at once instead of after retries."
    )


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _cached(repo_id: str, filename: str, revision: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _smp_weights(encoder: str, name: str, fetch: bool) -> EncoderWeights:
    import json

    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[encoder]["pretrained_settings"]
    if name not in settings:
        raise ConfigError(
            f"--encoder-weights {name!r}: encoder {encoder} has pretrained weights {', '.join(sorted(settings)) or 'none'}; "
            "or pass 'none' or a local file."
        )
    repo_id, revision = settings[name]["repo_id"], settings[name]["revision"]
    files = {f: _cached(repo_id, f, revision) for f in ("model.safetensors", "config.json")}
    if any(v is None for v in files.values()):
        if not fetch:
            raise _offline_message(encoder, name, _hf_cache_dir(), None)
        from huggingface_hub import hf_hub_download

        try:
            files = {f: Path(hf_hub_download(repo_id, filename=f, revision=revision)) for f in files}
        except Exception as err:  # offline mode, no route, proxy refusal, HTTP errors: all the same to the user
            raise _offline_message(encoder, name, _hf_cache_dir(), err) from None
    params = json.loads(files["config.json"].read_text())
    prep = Preprocessing(
        mean=tuple(params.get("mean", IMAGENET_MEAN)),
        std=tuple(params.get("std", IMAGENET_STD)),
        input_range=tuple(params.get("input_range", (0, 1))),
        input_space=params.get("input_space", "RGB"),
    )
    file = files["model.safetensors"]
    return EncoderWeights(name, file, sha256(file), prep, local_file=False)


def _timm_weights(encoder: str, name: str, fetch: bool) -> EncoderWeights:
    """A ``tu-*`` encoder's pretrained file, found where timm itself would load it from."""
    import timm

    model_name = encoder[3:]
    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ConfigError(f"--encoder {encoder}: timm has no pretrained weights for it; use --encoder-weights none or a local file.")
    file = _timm_cached(cfg)
    if file is None:
        if not fetch:
            raise _offline_message(encoder, name, f"{_hf_cache_dir()} or {torch.hub.get_dir()}", None)
        try:
            timm.create_model(model_name, pretrained=True)  # timm's own loader fills its cache
        except Exception as err:
            raise _offline_message(encoder, name, f"{_hf_cache_dir()} or {torch.hub.get_dir()}", err) from None
        file = _timm_cached(cfg)
        if file is None:
            raise ConfigError(f"timm loaded the weights of {encoder} but udatune could not find the cached file to record its hash.")
    prep = Preprocessing(mean=tuple(cfg.mean), std=tuple(cfg.std))
    return EncoderWeights(name, file, sha256(file), prep, local_file=False)


def _timm_cached(cfg: Any) -> Path | None:
    if cfg.hf_hub_id:
        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        for filename in (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin"):
            if filename and (found := _cached(repo_id, filename, revision or None)) is not None:
                return found
    if cfg.url:
        found = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url.split("?")[0])
        if found.is_file():
            return found
    return None


def _default_preprocessing(encoder: str) -> Preprocessing:
    """Normalisation when no smp pretrained name is given (``none`` or a local file).

    timm's pretrained config is part of the package, so ``tu-*`` encoders get their own. smp's
    own encoders publish theirs only next to the weights on the Hub; rather than depend on what
    happens to be cached, they get ImageNet's, which is what nearly all of them were trained with.
    """
    if encoder.startswith("tu-"):
        import timm

        cfg = timm.models.get_pretrained_cfg(encoder[3:])
        if cfg is not None and cfg.mean and cfg.std:
            return Preprocessing(mean=tuple(cfg.mean), std=tuple(cfg.std))
    return Preprocessing()


def load_encoder_state(encoder: nn.Module, file: Path) -> None:
    """Load a local encoder state dict into an smp ``encoder``; raise `ConfigError` if it does not fit.

    Accepted layouts: the encoder's own keys; a torchvision or timm classification network
    (its ``fc``/``classifier``/``head`` keys are dropped; timm's keys get the ``model.`` prefix
    smp's ``tu-*`` wrapper adds); a whole smp model or a DDP-wrapped one (``encoder.``/``module.``
    prefixes stripped); optionally under a ``state_dict`` or ``model`` key. Anything else
    missing, left over or of another shape is an error: a partly loaded encoder would
    silently train from a worse start.
    """
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(file), device="cpu")
        else:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"Encoder weights {file} could not be read ({type(err).__name__}); save them with "
            "torch.save(model.encoder.state_dict(), path)."
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ConfigError(f"Encoder weights {file} do not hold a state dict (names to tensors); save one with torch.save(encoder.state_dict(), path).")

    expected = encoder.state_dict()
    state = dict(loaded)
    for prefix in WRAPPER_PREFIXES:
        # A whole smp model: keep only its encoder. DDP: drop the wrapper.
        if any(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if all(k.startswith("model.") for k in expected) and not any(k.startswith("model.") for k in state):
        state = {f"model.{k}": v for k, v in state.items()}  # timm's keys inside smp's tu-* wrapper
    head = ("model." + p for p in CLASSIFIER_PREFIXES)
    dropped = tuple(CLASSIFIER_PREFIXES) + tuple(head)
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(dropped)}

    # Files saved before BatchNorm counted its batches lack num_batches_tracked; torch fills it in.
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        from udatune.models.registry import describe_key_mismatch

        problems = describe_key_mismatch(missing, unexpected, reshaped, state, expected)
        raise ConfigError(
            f"Encoder weights {file} do not fit this encoder: keys {'; '.join(problems)}. "
            "Check that --encoder names the network that saved the file."
        )
    nn.Module.load_state_dict(encoder, state, strict=False)  # the checks above are the strict part
