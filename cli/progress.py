"""What the user sees during `udatune train`: a rich progress bar, and files on disk.

The hook writes every record the loop emits to ``metrics.jsonl`` (one JSON object per line,
flushed, so a killed run keeps what it logged) and keeps a checkpoint of the latest eval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from udatune.config import TrialConfig
from udatune.data.base import SegmentationData


class TrainProgress:
    def __init__(self, cfg: TrialConfig, data: SegmentationData, out: Path, console: Console | None = None) -> None:
        self.cfg, self.data, self.out = cfg, data, out
        self.console = console or Console()
        self.metrics_file = (out / "metrics.jsonl").open("w")
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = None
        self.last_miou = math.nan

    def __enter__(self) -> "TrainProgress":
        self.progress.start()
        c = self.cfg
        label = f"{c.uda.mode} {c.model.name} on {self.data.name}"
        self.task = self.progress.add_task(label, total=c.train.steps, status="starting")
        self.console.print(
            f"[bold]{c.data.dataset}[/]: {len(self.data.labeled)} labeled, {len(self.data.unlabeled)} unlabeled, "
            f"{len(self.data.val)} val frames, {self.data.num_classes} classes -> {self.out}"
        )
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()
        self.metrics_file.close()

    def hook(self, record: dict, save) -> None:
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        if record["kind"] == "eval" and record.get("split") == "val":
            self.last_miou = record["miou"]
            save(self.out / "checkpoint")
        if record["kind"] == "train":
            parts = [f"loss {record['loss']:.3f}", f"sup {record['loss_sup']:.3f}"]
            if "loss_unsup" in record:
                parts += [f"unsup {record['loss_unsup']:.4f}", f"mask {record['mask_ratio']:.2f}"]
            parts.append(f"val mIoU {self.last_miou:.3f}")
            self.progress.update(self.task, completed=record["step"], status="  ".join(parts))

    def finish(self, result) -> None:
        self.progress.update(self.task, completed=result.steps)
        self.progress.stop()
        final = result.final
        table = Table(title="final validation", show_header=True)
        table.add_column("class")
        table.add_column("IoU", justify="right")
        for name in self.data.classes:
            value = final.get(f"iou/{name}", math.nan)
            table.add_row(name, "-" if math.isnan(value) else f"{value:.3f}")
        table.add_row("[bold]mIoU", f"[bold]{final.get('miou', math.nan):.3f}")
        self.console.print(table)
        summary = {"steps": result.steps, "val": final, "best_miou": result.best_miou, "test": result.test}
        (self.out / "result.json").write_text(json.dumps(summary, indent=2))
        if result.test:
            self.console.print(f"test mIoU {result.test['miou']:.3f}")
        self.console.print(f"metrics: {self.out / 'metrics.jsonl'}  checkpoint: {self.out / 'checkpoint'}")
