"""Every registered model keeps the registry's contract; weights load only from local files."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from udatune.config import ModelConfig
from udatune.errors import ConfigError
from udatune.models import build_model, model_names
from udatune.models.unet import UNet

NUM_CLASSES = 5


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to open a connection: models must never download weights."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    torch.manual_seed(0)


def test_registry_lists_the_builtin_models() -> None:
    assert {"deeplabv3_mobilenet", "deeplabv3_resnet50", "unet"} <= set(model_names())


@pytest.mark.parametrize("name", ["unet", "deeplabv3_mobilenet"])
def test_train_mode_gives_logits_at_input_size(name: str) -> None:
    model = build_model(ModelConfig(name=name), NUM_CLASSES).train()
    logits = model(torch.randn(2, 3, 40, 56))
    assert logits.shape == (2, NUM_CLASSES, 40, 56)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("name", ["unet", "deeplabv3_mobilenet", "deeplabv3_resnet50"])
def test_odd_size_single_image_in_eval(name: str) -> None:
    model = build_model(ModelConfig(name=name), NUM_CLASSES).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 63, 101))
    assert logits.shape == (1, NUM_CLASSES, 63, 101)
    assert torch.isfinite(logits).all()


def test_unet_gradients_reach_the_first_conv() -> None:
    model = UNet(NUM_CLASSES, width=4)
    model(torch.randn(2, 3, 33, 47)).logsumexp(dim=1).mean().backward()
    first = model.stem[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_unet_width_sets_the_parameter_count() -> None:
    def count(width: int) -> int:
        return sum(p.numel() for p in build_model(ModelConfig(width=width), NUM_CLASSES).parameters())

    # Convolutions dominate and scale with width², so doubling width roughly quadruples the count.
    assert 3.5 < count(16) / count(8) < 4.1


def test_unet_depth_sets_its_levels_and_any_depth_keeps_the_frame_size() -> None:
    shallow, deep = (build_model(ModelConfig(width=4, depth=d), NUM_CLASSES) for d in (3, 4))
    assert (len(shallow.down), len(deep.down)) == (3, 4)
    # The deepest level has the most channels: dropping it removes most of the parameters.
    assert sum(p.numel() for p in shallow.parameters()) < sum(p.numel() for p in deep.parameters()) / 3
    with torch.no_grad():
        assert shallow(torch.randn(1, 3, 33, 47)).shape == (1, NUM_CLASSES, 33, 47)


def test_unet_rejects_a_non_positive_width() -> None:
    with pytest.raises(ConfigError, match="model.width=0"):
        build_model(ModelConfig(width=0), NUM_CLASSES)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name="nosuchnet"), NUM_CLASSES)
    assert "'nosuchnet'" in str(err.value)
    for name in model_names():
        assert name in str(err.value)


def _saved(tmp_path: Path, cfg: ModelConfig, as_checkpoint: bool = False) -> tuple[torch.nn.Module, Path]:
    model = build_model(cfg, NUM_CLASSES)
    # One train-mode step moves the BatchNorm statistics, so the round trip covers buffers too.
    model.train()(torch.randn(2, 3, 40, 56))
    path = tmp_path / "weights.pt"
    state = model.state_dict()
    torch.save({"model": state, "step": 7} if as_checkpoint else state, path)
    return model.eval(), path


@pytest.mark.parametrize(
    ("cfg", "as_checkpoint"),
    [(ModelConfig(width=8), False), (ModelConfig(width=8), True), (ModelConfig(name="deeplabv3_mobilenet"), False)],
)
def test_weights_round_trip(tmp_path: Path, cfg: ModelConfig, as_checkpoint: bool) -> None:
    saved, path = _saved(tmp_path, cfg, as_checkpoint)
    loaded = build_model(ModelConfig(name=cfg.name, width=cfg.width, weights=str(path)), NUM_CLASSES).eval()
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(loaded(x), saved(x))


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "unet.pt"
    with pytest.raises(ConfigError, match="does not exist") as err:
        build_model(ModelConfig(weights=str(path)), NUM_CLASSES)
    assert str(path) in str(err.value)


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    _, path = _saved(tmp_path, ModelConfig(width=8))
    with pytest.raises(ConfigError, match="does not fit model UNet") as err:
        build_model(ModelConfig(width=16, weights=str(path)), NUM_CLASSES)
    assert str(path) in str(err.value) and "model.width" in str(err.value)


def test_a_udatune_checkpoint_of_another_unet_names_the_options_that_rebuild_it(tmp_path: Path) -> None:
    # A checkpoint of the default synthetic sweep is a depth-3 U-Net; `udatune train` builds depth 4.
    saved = build_model(ModelConfig(width=8, depth=3), NUM_CLASSES)
    path = tmp_path / "trial.pt"
    torch.save({"model": saved.state_dict(), "config": {"model": {"name": "unet", "width": 8, "depth": 3}}}, path)
    with pytest.raises(ConfigError, match=r"--width 8 --set model\.depth=3"):
        build_model(ModelConfig(width=8, weights=str(path)), NUM_CLASSES)
    loaded = build_model(ModelConfig(width=8, depth=3, weights=str(path)), NUM_CLASSES)
    assert torch.equal(loaded.stem[0].weight, saved.stem[0].weight)


def test_weights_for_another_class_count_load_all_but_the_classifier(tmp_path: Path) -> None:
    saved, path = _saved(tmp_path, ModelConfig(width=8))
    with pytest.warns(UserWarning, match=f"trained for {NUM_CLASSES} classes"):
        loaded = build_model(ModelConfig(width=8, weights=str(path)), NUM_CLASSES + 2)
    assert torch.equal(loaded.stem[0].weight, saved.stem[0].weight)
    assert loaded.classifier.weight.shape[0] == NUM_CLASSES + 2


def test_a_file_that_is_not_weights_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="could not be read") as err:
        build_model(ModelConfig(weights=str(path)), NUM_CLASSES)
    assert str(path) in str(err.value)
