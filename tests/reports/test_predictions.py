"""Sample predictions from a trial's kept checkpoint: found, rebuilt, run, coloured, embedded."""

import base64
import io

import numpy as np
import torch
from PIL import Image

from udatune.config import TrialConfig
from udatune.data.base import ArrayFrames
from udatune.models.registry import build_model
from udatune.reports.predictions import (
    SCALE,
    colouriser,
    enlarge,
    find_checkpoint,
    png_data_uri,
    prediction_rows,
    read_checkpoint,
    sample_predictions,
    trained_model,
)

CLASSES = 10


def save_trial(sweep, trial_id: str, folder: str, ddp: bool = False) -> TrialConfig:
    cfg = TrialConfig().override({"model.width": 4})
    torch.manual_seed(0)
    model = build_model(cfg.model, CLASSES)
    weights = {("module." if ddp else "") + k: v for k, v in model.state_dict().items()}
    path = sweep / "train" / trial_id / folder
    path.mkdir(parents=True)
    torch.save({"config": cfg.to_dict(), "model": weights}, path / "trial.pt")
    return cfg


def test_the_newest_checkpoint_is_found_and_its_model_rebuilt(tmp_path):
    save_trial(tmp_path, "t1", "checkpoint_2026-01-01_00-00-00.000001")
    save_trial(tmp_path, "t1", "checkpoint_2026-01-01_00-00-09.000001", ddp=True)  # saved by a DDP run
    found = find_checkpoint(str(tmp_path), "t1")
    assert found.endswith("00-00-09.000001/trial.pt") and find_checkpoint(str(tmp_path), "t2") is None
    model = trained_model(read_checkpoint(found), CLASSES)
    assert not model.training

    frames = ArrayFrames(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
                         np.zeros((3, 32, 32), np.uint8))
    rows = prediction_rows(frames, {"baseline": model}, colouriser("synthetic"), count=2)
    assert len(rows) == 2 and list(rows[0]) == ["input", "baseline", "ground truth"]
    assert all(picture.shape == (32, 32, 3) and picture.dtype == np.uint8 for picture in rows[0].values())

    uri = png_data_uri(enlarge(rows[0]["baseline"]))
    picture = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix("data:image/png;base64,"))))
    assert picture.size == (32 * SCALE, 32 * SCALE)


def test_a_trial_without_checkpoint_gives_a_note(tmp_path):
    predictions = sample_predictions(str(tmp_path), {"supervised": "gone"})
    assert predictions.rows == [] and "no checkpoint kept for supervised (gone)" in predictions.note
