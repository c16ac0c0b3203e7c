"""A training run's folder as Hydra and the runner leave it, made by hand: ``.hydra/hydra.yaml`` (the
working folder and the options chosen), ``.hydra/overrides.yaml``, and the version recorded as trained
there, for the commands ``runner.store show`` builds from it."""

from __future__ import annotations

import json
from pathlib import Path


def trained_in(model, run: Path, cwd: Path, choices: dict, overrides: list[str] = ()) -> None:
    """Record ``run`` as the run folder that trained ``model``, and write that folder."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "hydra.yaml").write_text(json.dumps({"hydra": {
        "runtime": {"cwd": str(cwd), "choices": choices, "config_sources": []}, "overrides": {"hydra": []}}}))
    (run / ".hydra" / "overrides.yaml").write_text(json.dumps(list(overrides)))
    (run / "model.json").write_text(json.dumps({"id": model.id}))
    model.metadata.setdefault("user", {})["runner"] = {"run": str(run)}
    model.update()
