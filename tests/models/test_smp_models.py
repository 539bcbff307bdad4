"""smp architectures keep the registry's contract; encoder weights come from a local file or the
local cache, are hashed, and never from the network in a test."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

from udatune.config import ModelConfig
from udatune.errors import ConfigError
from udatune.models import build_model, model_names, prepare_model
from udatune.models.encoder_weights import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, resolve_encoder_weights
from udatune.models.smp_models import ARCHITECTURES, SmpSegmenter

NUM_CLASSES = 5
# A light encoder keeps the per-architecture tests to seconds on a CPU.
ENCODER = "resnet18"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No connection may be opened, and the weight caches are empty folders of this test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model tried to reach the network")

    from huggingface_hub import constants

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    return tmp_path / "hf"


def smp_config(name: str = "deeplabv3plus", **kw: object) -> ModelConfig:
    return ModelConfig(name=name, **{"encoder": ENCODER, "encoder_weights": "none", **kw})


def test_smp_architectures_are_registered_next_to_the_own_models() -> None:
    names = model_names()
    assert {"unet", "deeplabv3_mobilenet", "deeplabv3_resnet50"} <= set(names)
    assert set(ARCHITECTURES) <= set(names)
    assert "smp-unet" in names and "deeplabv3plus" in names and "deeplabv3" in names


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_trains_at_an_odd_size(name: str) -> None:
    model = build_model(smp_config(name), NUM_CLASSES).train()
    logits = model(torch.randn(2, 3, 37, 53))
    assert logits.shape == (2, NUM_CLASSES, 37, 53)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    first = next(p for p in model.encoder.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0  # gradients reach the encoder's stem


def test_a_timm_encoder_works_too() -> None:
    model = build_model(smp_config("fpn", encoder="tu-mobilenetv3_small_050"), NUM_CLASSES).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 45)).shape == (1, NUM_CLASSES, 33, 45)


def test_an_unknown_encoder_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="not an smp encoder"):
        build_model(smp_config(encoder="resnet19"), NUM_CLASSES)
    with pytest.raises(ConfigError, match="timm has no model"):
        build_model(smp_config(encoder="tu-nosuchnet"), NUM_CLASSES)


class Passthrough(nn.Module):
    """Stands in for an smp model: returns what the encoder would receive."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_the_encoder_gets_its_own_normalisation() -> None:
    x01 = torch.rand(1, 3, 32, 32)
    mean_in, std_in = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    imagenet_input = (x01 - mean_in) / std_in  # what udatune's trainer hands every model

    same = SmpSegmenter(Passthrough(), Preprocessing())
    assert same.identity and torch.equal(same(imagenet_input), imagenet_input)

    # An Inception-style encoder: mean 0.5, std 0.5, pixels in 0..255, BGR order.
    other = SmpSegmenter(Passthrough(), Preprocessing(mean=(127.5,) * 3, std=(127.5,) * 3, input_range=(0, 255), input_space="BGR"))
    expected = (x01.flip(1) * 255 - 127.5) / 127.5
    assert torch.allclose(other(imagenet_input), expected, atol=1e-5)


def test_a_checkpoint_round_trips(tmp_path: Path) -> None:
    model = build_model(smp_config(), NUM_CLASSES).eval()
    file = tmp_path / "model.pt"
    torch.save({"model": model.state_dict()}, file)  # the trainer's checkpoint layout
    torch.manual_seed(1)
    again = build_model(smp_config(weights=str(file)), NUM_CLASSES).eval()
    x = torch.randn(2, 3, 40, 60)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    with pytest.warns(UserWarning, match="classifier"):  # another class count: all but the head
        build_model(smp_config(weights=str(file)), NUM_CLASSES + 2)


def _equal_encoders(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_encoder_weights_path_loads_a_saved_encoder(tmp_path: Path) -> None:
    source = build_model(smp_config(), NUM_CLASSES)
    file = tmp_path / "encoder.pt"
    torch.save(source.encoder.state_dict(), file)
    torch.manual_seed(1)
    fresh = build_model(smp_config(), NUM_CLASSES)
    assert not _equal_encoders(source.encoder, fresh.encoder)

    loaded = build_model(smp_config(encoder_weights=str(file)), NUM_CLASSES)
    assert _equal_encoders(source.encoder, loaded.encoder)
    # The hash that a sweep records for every trial is the file's.
    prepared = prepare_model(smp_config(encoder_weights=str(file)))
    assert prepared.encoder_weights_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()


@pytest.mark.parametrize("layout", ["torchvision", "ddp", "smp-model"])
def test_other_key_layouts_load(tmp_path: Path, layout: str) -> None:
    import torchvision

    if layout == "torchvision":  # an ImageNet classifier: fc.* is dropped
        net = torchvision.models.resnet18(weights=None)
        state = net.state_dict()
        assert "fc.weight" in state
    elif layout == "ddp":
        state = {f"module.{k}": v for k, v in build_model(smp_config(), NUM_CLASSES).encoder.state_dict().items()}
    else:  # a whole smp model, as smp saves it
        state = build_model(smp_config(), NUM_CLASSES).net.state_dict()
    file = tmp_path / "weights.pth"
    torch.save(state, file)
    model = build_model(smp_config(encoder_weights=str(file)), NUM_CLASSES)
    conv1 = [v for k, v in state.items() if k.endswith("conv1.weight") and "layer" not in k][0]
    assert torch.equal(model.encoder.state_dict()["conv1.weight"], conv1)


def test_timm_keys_load_into_a_tu_encoder(tmp_path: Path) -> None:
    import timm

    net = timm.create_model("resnet18", pretrained=False)
    file = tmp_path / "timm.pth"
    torch.save(net.state_dict(), file)  # timm's own keys, classifier head included
    model = build_model(smp_config("fpn", encoder="tu-resnet18", encoder_weights=str(file)), NUM_CLASSES)
    assert torch.equal(model.encoder.state_dict()["model.conv1.weight"], net.state_dict()["conv1.weight"])


def test_weights_of_another_encoder_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "r34.pt"
    torch.save(build_model(smp_config(encoder="resnet34"), NUM_CLASSES).encoder.state_dict(), file)
    with pytest.raises(ConfigError, match="do not fit this encoder.*unexpected"):
        build_model(smp_config(encoder_weights=str(file)), NUM_CLASSES)


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "encoder.pt"
    torch.save(build_model(smp_config(), NUM_CLASSES).encoder.state_dict(), file)
    pinned = prepare_model(smp_config(encoder_weights=str(file)))
    torch.save(build_model(smp_config(), NUM_CLASSES).encoder.state_dict(), file)  # another init, same path
    with pytest.raises(ConfigError, match="changed since the sweep started"):
        build_model(pinned, NUM_CLASSES)


def test_imagenet_without_cache_offline_names_the_ways_out() -> None:
    with pytest.raises(ConfigError) as caught:
        prepare_model(smp_config(encoder_weights="imagenet"))
    message = str(caught.value)
    assert "not in the local cache" in message and "udatune fetch-weights --encoder resnet18" in message
    assert "--encoder-weights PATH" in message


def test_imagenet_from_the_local_cache_loads_hashes_and_normalises(offline: Path) -> None:
    """A cache laid out as huggingface_hub leaves it (smp's repo and pinned revision) is used
    with no network: the file's tensors land in the encoder and its config sets the normalisation."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    settings = smp.encoders.encoders[ENCODER]["pretrained_settings"]["imagenet"]
    snapshot = offline / f"models--{settings['repo_id'].replace('/', '--')}" / "snapshots" / settings["revision"]
    snapshot.mkdir(parents=True)
    source = build_model(smp_config(), NUM_CLASSES)
    save_file({k: v.contiguous() for k, v in source.encoder.state_dict().items()}, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text(json.dumps({"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}))

    cfg = prepare_model(smp_config(encoder_weights="imagenet"))
    assert cfg.encoder_weights_sha256 == hashlib.sha256((snapshot / "model.safetensors").read_bytes()).hexdigest()
    torch.manual_seed(1)
    model = build_model(cfg, NUM_CLASSES)
    assert _equal_encoders(source.encoder, model.encoder)
    assert not model.identity and torch.allclose(model.gain.flatten(), torch.tensor(IMAGENET_STD) / 0.25)
    assert resolve_encoder_weights(cfg, fetch=False).preprocessing.mean == (0.5, 0.5, 0.5)
