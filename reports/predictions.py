"""Sample predictions, as in the UDA study's figure: input | baseline | best UDA | ground truth.

Each trial's Ray Train run keeps its final checkpoint (``<sweep>/train/<trial id>/checkpoint_*/
trial.pt``, see udatune/train/checkpoint.py). The model is rebuilt from the config saved inside
it, run on the first validation frames, and each prediction coloured like the dataset's
masks. Pictures are returned as PNG data URIs, so the HTML report stays one file.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from udatune.tune.storage import read_bytes

SCALE = 4  # small frames are enlarged (nearest) so the classes can be told apart


def _colourise_synthetic(mask: np.ndarray) -> np.ndarray:
    from udatune.data.synthetic import colourise

    return colourise(mask)


def _colourise_palette(mask: np.ndarray) -> np.ndarray:
    from udatune.augment.preview import palette

    return palette()[mask]


COLOURISERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"synthetic": _colourise_synthetic}


def colouriser(dataset: str) -> Callable[[np.ndarray], np.ndarray]:
    """The dataset's own mask colours where it has them, else a stable palette."""
    return COLOURISERS.get(dataset, _colourise_palette)


def find_checkpoint(sweep_path: str, trial_id: str, train_folder: str = "train") -> str | None:
    """The newest ``trial.pt`` of the trial's Ray Train run, or None."""
    from udatune.tune.store import checkpoint_uri

    return checkpoint_uri(sweep_path, trial_id, train_folder)


def read_checkpoint(uri: str) -> dict:
    import torch

    return torch.load(io.BytesIO(read_bytes(uri)), map_location="cpu", weights_only=False)


def trained_model(state: dict, num_classes: int):
    """The model saved in a trial checkpoint, on the CPU, in eval mode."""
    from udatune.config import TrialConfig
    from udatune.models.registry import build_model

    cfg = TrialConfig.from_dict(state["config"]).override({"model.weights": None})
    model = build_model(cfg.model, num_classes)
    # A data-parallel run saves its DDP wrapper's keys ("module." + name).
    weights = {k.removeprefix("module."): v for k, v in state["model"].items()}
    model.load_state_dict(weights)
    return model.eval()


def predict(model, image: np.ndarray) -> np.ndarray:
    """Class ids (H x W uint8) for one uint8 H x W x 3 frame."""
    import torch

    from udatune.data.loader import normalize, to_chw

    with torch.no_grad():
        logits = model(normalize(to_chw(image)[None]))
    return logits.argmax(dim=1)[0].numpy().astype(np.uint8)


def enlarge(picture: np.ndarray, scale: int = SCALE) -> np.ndarray:
    return np.repeat(np.repeat(picture, scale, axis=0), scale, axis=1)


def png_data_uri(picture: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def prediction_rows(frames, models: dict[str, object], colour: Callable[[np.ndarray], np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    """Per frame: the input, each model's prediction (in the order given), the ground truth."""
    rows = []
    for index in range(min(count, len(frames))):
        image, mask = frames.load(index)
        row = {"input": image}
        row.update({name: colour(predict(model, image)) for name, model in models.items()})
        row["ground truth"] = colour(mask)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Predictions:
    columns: list[str]
    rows: list[list[str]]  # PNG data URIs, one per column
    note: str = ""  # why there are none, when rows is empty


def sample_predictions(sweep_path: str, trials: dict[str, str], count: int = 4) -> Predictions:
    """``trials``: column name -> trial id (e.g. supervised, best UDA). The frames come from the
    validation split of the data the first trial trained on."""
    from udatune.data.registry import build_data
    from udatune.errors import UdatuneError

    found = {name: find_checkpoint(sweep_path, tid) for name, tid in trials.items()}
    missing = [f"{name} ({trials[name]})" for name, uri in found.items() if uri is None]
    if missing:
        return Predictions([], [], f"no checkpoint kept for {', '.join(missing)}")
    from udatune.config import TrialConfig

    states = {name: read_checkpoint(uri) for name, uri in found.items()}
    cfg = TrialConfig.from_dict(next(iter(states.values()))["config"])
    try:
        data = build_data(cfg.data)
    except UdatuneError as err:
        return Predictions([], [], f"the sweep's data cannot be loaded here: {err}")
    models = {name: trained_model(state, data.num_classes) for name, state in states.items()}
    rows = prediction_rows(data.val, models, colouriser(cfg.data.dataset), count)
    columns = ["input", *models, "ground truth"]
    return Predictions(columns, [[png_data_uri(enlarge(row[c])) for c in columns] for row in rows])
