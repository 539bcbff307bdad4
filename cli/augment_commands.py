"""`udatune ops` (the op registry as a table) and `udatune preview` (see that masks stay
aligned under a policy)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from udatune.cli.app import app


@app.command()
def ops() -> None:
    """List the augmentation ops: name, kind, and the parameter each magnitude bin maps to."""
    from udatune.augment.ops import describe_ops

    table = Table(title="augmentation ops (magnitude bins 0..10)")
    for column in ("op", "kind", "parameter", "at 0", "at 5", "at 10"):
        table.add_column(column)
    for row in describe_ops():
        table.add_row(row["name"], row["kind"], row["parameter"], str(row["at_0"]), str(row["at_5"]), str(row["at_10"]))
    Console().print(table)


@app.command()
def preview(
    policy: str = typer.Option("randaugment:2,9", help="Policy: randaugment:2,9, trivialaugment, autoaugment, or a JSON file."),
    dataset: str = typer.Option("synthetic", help="Dataset to draw frames from."),
    data_root: Optional[str] = typer.Option(None, help="Folder of a real dataset."),
    image_size: Optional[str] = typer.Option(None, help="Resize frames to HEIGHTxWIDTH."),
    frames: int = typer.Option(4, min=1, max=32, help="How many frames (rows)."),
    seed: int = typer.Option(0, help="Seed for the augmentation draws."),
    out: Path = typer.Option(Path("preview.png"), help="PNG to write."),
) -> None:
    """Render original | strong view | strong view with its warped label overlaid, per frame."""
    from udatune.augment.policy import parse_policy
    from udatune.augment.preview import render_grid
    from udatune.config import DataConfig, TrialConfig
    from udatune.data.registry import build_data

    from udatune.outputs import check_output_file

    check_output_file(out, "--out")
    parsed = parse_policy(policy)
    cfg = TrialConfig().override({"data.dataset": dataset, "data.root": data_root, "data.image_size": image_size, "data.labeled": "all"})
    data = build_data(cfg.data)
    grid = render_grid(data.labeled, parsed, frames, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(grid).save(out)
    Console().print(f"{parsed.summary()}: {frames} frames -> {out}")
