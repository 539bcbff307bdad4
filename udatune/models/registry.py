"""Models by name: each builder turns a `ModelConfig` and a class count into an `nn.Module`.

Every registered model has the same contract, so the trainer never asks which one it holds:
it maps a normalised float batch ``B×3×H×W`` to logits ``B×num_classes×H×W`` at the input
resolution, for any ``H, W >= 32`` (sizes need not be multiples of 16 or 32).

Models with a pretrained encoder (smp's, torchvision's DeepLabV3) derive from `EncoderModel`,
so the trainer can give the encoder its own learning rate and freeze it for the first steps
without knowing which model it holds. They still take the same ImageNet-normalised input; one
whose encoder was pretrained with other statistics converts inside its ``forward``.

udatune's own models download nothing: their weights come from ``ModelConfig.weights``. smp's
pretrained encoders are fetched once into the user's cache (`udatune.models.encoder_weights`),
never during tests.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from udatune.config import ModelConfig
from udatune.errors import ConfigError

ModelBuilder = Callable[[ModelConfig, int], nn.Module]
ModelPreparer = Callable[[ModelConfig], ModelConfig]
MODELS: dict[str, ModelBuilder] = {}
# Checks (and fetches) what a model needs from outside before any data is loaded; returns the
# config completed with what it found (an smp model: its encoder weights' hash).
PREPARERS: dict[str, ModelPreparer] = {}
# Models built over ``model.encoder`` / ``model.encoder_weights`` (smp's); the others ignore them.
ENCODER_MODELS: set[str] = set()


# Public classes only (timm's BatchNormAct2d derives from BatchNorm2d).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class EncoderModel(nn.Module):
    """A segmentation model with a (usually pretrained) ``encoder`` submodule.

    ``encoder_frozen`` keeps the encoder's normalisation layers in eval mode even when the
    model is put in train mode, so a frozen encoder's BatchNorm statistics stay those it was
    pretrained with; the trainer freezes the weights themselves with a zero learning rate
    (which, unlike ``requires_grad=False``, leaves a DDP-wrapped model's parameters unchanged).
    """

    encoder_frozen: bool = False

    @property
    def encoder(self) -> nn.Module:
        raise NotImplementedError

    def train(self, mode: bool = True) -> "EncoderModel":
        super().train(mode)
        if mode and self.encoder_frozen:
            for module in self.encoder.modules():
                if isinstance(module, BATCH_NORMS):
                    module.eval()
        return self


def encoder_of(model: nn.Module) -> nn.Module | None:
    """The encoder of a (possibly DDP-wrapped) model, or None for a model without one (the U-Net)."""
    model = getattr(model, "module", model)
    return model.encoder if isinstance(model, EncoderModel) else None


def set_encoder_frozen(model: nn.Module, frozen: bool) -> None:
    model = getattr(model, "module", model)
    if isinstance(model, EncoderModel):
        model.encoder_frozen = frozen
        model.train(model.training)


def register_model(
    name: str, prepare: ModelPreparer | None = None, takes_encoder: bool = False
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register ``builder(cfg, num_classes) -> nn.Module`` under ``name`` (timm style), with an
    optional ``prepare(cfg) -> cfg`` that `prepare_model` runs before any data is loaded.
    ``takes_encoder``: the model is built over ``cfg.encoder`` and ``cfg.encoder_weights``."""

    def add(builder: ModelBuilder) -> ModelBuilder:
        MODELS[name] = builder
        if prepare is not None:
            PREPARERS[name] = prepare
        if takes_encoder:
            ENCODER_MODELS.add(name)
        return builder

    return add


def _load_builtin() -> None:
    # Importing the modules registers their builders; kept lazy so that importing the
    # registry stays cheap and free of side effects beyond filling MODELS.
    from udatune.models import deeplab, smp_models, unet  # noqa: F401


def model_names() -> list[str]:
    _load_builtin()
    return sorted(MODELS)


def takes_encoder(name: str) -> bool:
    """Whether the model ``name`` uses the encoder settings (an smp model), so that a trial's
    encoder and its weights are worth recording."""
    _load_builtin()
    return name in ENCODER_MODELS


def check_model_name(name: str) -> None:
    _load_builtin()
    if name not in MODELS:
        raise ConfigError(f"--model {name!r} is not known; choose one of: {', '.join(sorted(MODELS))}.")


def prepare_model(cfg: ModelConfig) -> ModelConfig:
    """Check the model name and fetch what the model needs (pretrained encoder weights) once,
    here, before data is loaded or trials start; return ``cfg`` with what was found recorded."""
    check_model_name(cfg.name)
    prepare = PREPARERS.get(cfg.name)
    return prepare(cfg) if prepare is not None else cfg


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Build the model named by ``cfg.name`` and, if ``cfg.weights`` is set, load that file."""
    check_model_name(cfg.name)
    model = MODELS[cfg.name](cfg, num_classes)
    if cfg.weights is not None:
        load_weights(model, cfg.weights, num_classes)
    return model


def describe_key_mismatch(missing: list[str], unexpected: list[str], reshaped: list[str],
                          state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """How a weights file's keys differ from a model's, one phrase per kind, with an example."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if reshaped:
        key = reshaped[0]
        problems.append(f"{len(reshaped)} of another shape (e.g. {key}: {tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} here)")
    return problems


def _saved_model(loaded: Any) -> str:
    """For a udatune checkpoint (which keeps its run's config beside the weights), the model
    settings that saved it, as the options that rebuild it; else ''."""
    config = loaded.get("config") if isinstance(loaded, dict) else None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or "name" not in model:
        return ""
    if model["name"] != "unet":
        return f": it was saved by model {model['name']}"
    width, depth = model.get("width", "?"), model.get("depth", 4)  # depth 4: before model.depth existed
    return f": it was saved by the U-Net of width {width} and depth {depth} (--width {width} --set model.depth={depth})"


def load_weights(model: nn.Module, path: str | Path, num_classes: int) -> None:
    """Load a local weights file into ``model``; raise `ConfigError` if it does not fit.

    The file may hold a plain state_dict or a checkpoint dict with the state_dict under
    ``"model"`` (what udatune's trainer saves). It is read with ``weights_only=True``, so a
    file cannot run code when loaded.

    One mismatch is allowed on purpose: when only the final classifier layer (the keys the
    model lists in ``classifier_keys``) differs in shape, the weights were trained for another
    number of classes. Everything else is loaded, that layer keeps its fresh initialisation
    (the equivalent of ``strict=False`` for that layer only), and a warning says so — this is
    how a model pretrained on one dataset is fine-tuned on another. Keys under a model's
    ``ignored_weight_prefixes`` (e.g. torchvision's auxiliary head) are dropped. Any other
    missing, unexpected or reshaped key is an error, because a partly loaded backbone would
    silently train from a worse start.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"Weights file {file} does not exist; set model.weights to a local .pt file "
            "or leave it empty to start from random weights (nothing is downloaded)."
        )
    try:
        loaded: Any = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a corrupt or non-tensor file
        raise ConfigError(
            f"Weights file {file} could not be read as PyTorch weights ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}); save it with torch.save(model.state_dict(), path)."
        ) from None
    saved_by = _saved_model(loaded)
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ConfigError(
            f"Weights file {file} does not hold a state_dict (a mapping of names to tensors, "
            'optionally under a "model" key); save it with torch.save(model.state_dict(), path).'
        )

    # A DDP wrapper's keys (``module.``): older udatune DDP checkpoints, other tools' files.
    consume_prefix_in_state_dict_if_present(loaded, "module.")
    ignored = tuple(getattr(model, "ignored_weight_prefixes", ()))
    state = {k: v for k, v in loaded.items() if not k.startswith(ignored)}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    classifier = set(getattr(model, "classifier_keys", ()))
    name = type(model).__name__

    if not missing and not unexpected and reshaped and set(reshaped) <= classifier:
        saved = state[reshaped[0]].shape[0]
        warnings.warn(
            f"Weights file {file} was trained for {saved} classes, this {name} has {num_classes}; "
            "loaded everything except the final classifier layer, which starts from random weights.",
            stacklevel=3,
        )
        for key in reshaped:
            state[key] = expected[key]
    elif missing or unexpected or reshaped:
        problems = describe_key_mismatch(missing, unexpected, reshaped, state, expected)
        hint = (
            " The classifier differs too, so the file may also be trained for another number of classes."
            if classifier & set(reshaped)
            else ""
        )
        raise ConfigError(
            f"Weights file {file} does not fit model {name}: keys {'; '.join(problems)}. "
            f"Check that model.name (and model.width and model.depth for the U-Net) match the model that saved the file"
            f"{saved_by}.{hint}"
        )
    model.load_state_dict(state)
