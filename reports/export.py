"""`udatune export-policy NAME`: the best policy and UDA settings, for a user's own training code.

Four files in the output folder:

* ``best_policy.json`` — the policy as udatune's JSON (``parse_policy`` reads it back;
  ``udatune train --set uda.policy=best_policy.json`` trains with it);
* ``albumentations.json`` — its photometric part as an albumentations pipeline
  (``A.load("albumentations.json")``), to build the strong view in any training loop;
* ``uda_config.yaml`` — the ``uda:`` section of a trial config (``udatune train --config``);
* ``uda_settings.json`` — the same settings with where they come from (sweep, trial, the
  evidence: a confirmed test gain or the best validation gain) and the ops the albumentations
  pipeline leaves out.

Geometric ops (shear, translate, rotate) and CutMix are not in the albumentations pipeline:
UDA must apply them to the student's input *and* to the teacher's prediction with the same
matrix (udatune does it on the device, see udatune/augment/warp.py); a plain image pipeline
would misalign the consistency loss. Their names are listed so a user can replay them.

The configuration exported is the best *confirmed* one when `udatune confirm` has run (highest
mean test gain), else the search's best by paired validation gain.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from udatune.errors import ConfigError
from udatune.reports.confirm import rank_candidates, row_overrides
from udatune.reports.report import Report
from udatune.tune.results import SUPERVISED

FILES = ("best_policy.json", "albumentations.json", "uda_config.yaml", "uda_settings.json")


@dataclass(frozen=True)
class Choice:
    """The configuration to export and why it was chosen."""

    method: str
    trial_id: str
    overrides: dict
    evidence: str  # one sentence for people
    confirmed: bool


def choose(report: Report) -> Choice:
    sweep = report.sweep
    finite = [c for c in report.confirmed if math.isfinite(c.gain.mean)]
    if finite:
        best = max(finite, key=lambda c: c.gain.mean)
        overrides = sweep.config(best.source_trial).get("overrides") or row_overrides(best.row)
        evidence = (f"confirmed: {best.split} gain {best.gain.describe(4)} over supervised across {best.gain.n} fresh seeds"
                    + ("" if best.confirmed else " (its 95% interval includes zero)"))
        return Choice(best.method, best.source_trial, overrides, evidence, best.confirmed)
    ranked = rank_candidates(sweep, 1)
    if not ranked:
        raise ConfigError(f"Sweep {sweep.name!r} has no UDA trial with a result yet (trials whose consistency never switched on "
                          "do not count: their scores say nothing about their policy); nothing to export.")
    top = ranked[0]
    what = "paired val gain" if report.sweep.trials["gain"].notna().any() else "val mIoU"
    evidence = f"best {what} of the search ({top.score:+.4f}, seed {top.seed}); not confirmed — run `udatune confirm {sweep.name}`"
    return Choice(top.method, top.source_trial, top.overrides, evidence, False)


def trained_uda(base_config: dict, overrides: dict):
    """The full ``uda`` section (`UDAConfig`) the chosen trial trained with."""
    from udatune.config import TrialConfig

    return TrialConfig.from_dict(base_config, source="sweep config").override(overrides, source="exported trial").uda


def left_out_ops(policy) -> list[str]:
    """The policy's geometric and mix ops: not part of its albumentations pipeline."""
    from udatune.augment.ops import GEOMETRIC, MIX, OPS

    return sorted(name for name in policy.possible_ops() if OPS[name].kind in (GEOMETRIC, MIX))


@dataclass(frozen=True)
class Exported:
    choice: Choice
    paths: dict[str, Path]  # file name -> where it was written


def export_policy(report: Report, out: Path) -> Exported:
    """Write the four files to ``out``. The albumentations file is read
    back with ``A.load`` before returning, so a pipeline that does not load is never left behind."""
    import albumentations as A

    choice = choose(report)
    uda = trained_uda(report.sweep.base_config, choice.overrides)
    if uda.mode == SUPERVISED:
        raise ConfigError("The chosen trial is supervised; there is no policy to export.")
    settings, policy = dataclasses.asdict(uda), uda.parsed_policy
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}

    paths["best_policy.json"].write_text(json.dumps(policy.to_json(), indent=2) + "\n")
    A.save(policy.photometric_pipeline(), str(paths["albumentations.json"]), data_format="json")
    A.load(str(paths["albumentations.json"]), data_format="json")
    paths["uda_config.yaml"].write_text(
        f"# UDA settings of sweep {report.sweep.name}, trial {choice.trial_id} ({choice.method}).\n"
        f"# {choice.evidence}\n# Use: udatune train --config uda_config.yaml\n"
        + yaml.safe_dump({"uda": settings}, sort_keys=False, allow_unicode=True)
    )
    paths["uda_settings.json"].write_text(json.dumps({
        "uda": settings,
        "policy": {"spec": policy.to_string(), "summary": policy.summary(), "json": policy.to_json(),
                   "not_in_albumentations": left_out_ops(policy)},
        "source": {"sweep": report.sweep.name, "path": report.sweep.path, "method": choice.method,
                   "trial_id": choice.trial_id, "confirmed": choice.confirmed, "evidence": choice.evidence},
        "notes": [
            "albumentations.json holds the photometric ops of the strong view (A.load reads it).",
            "Ops listed in policy.not_in_albumentations move pixels: apply them to the student's input and, with the "
            "same matrix, to the teacher's prediction (see udatune/augment/warp.py).",
            "lambda_u is λ, tau is τ (teacher confidence threshold), temperature is T (teacher sharpening).",
        ],
    }, indent=2, ensure_ascii=False) + "\n")
    return Exported(choice, paths)
