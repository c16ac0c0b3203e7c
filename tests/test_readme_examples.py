"""The README's "Write an adapter" example, run as a reader would: its adapter module, its config file
and its Optuna search, copied from the README, on a folder of bright and dark images."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .test_cli import TIMEOUT, job_folders, ok, read_json, run_folders

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_block(language: str, holding: str) -> str:
    """The README's fenced ``language`` block that holds ``holding``."""
    [block] = [b for b in re.findall(rf"```{language}\n(.*?)```", README, re.S) if holding in b]
    return block


def photos(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for subset in ("train", "validation", "test"):
        for label, (low, high) in (("bright", (170, 255)), ("dark", (0, 85))):
            (folder / subset / label).mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(low, high, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / subset / label / f"{i}.png")


def test_the_readmes_adapter_and_its_optuna_search_run_as_written(tmp_path):
    (tmp_path / "my_package").mkdir()
    (tmp_path / "my_package" / "__init__.py").write_text("")
    (tmp_path / "my_package" / "brightness.py").write_text(readme_block("python", "class MeanBrightness"))
    for name in ("adapter/brightness.yaml", "hparams_search/brightness_optuna.yaml"):
        (tmp_path / "my_conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "my_conf" / name).write_text(readme_block("yaml", f"# my_conf/{name}"))
    photos(tmp_path / "photos")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATALOOP_PATH": str(tmp_path / "dl"),
           "PYTHONPATH": str(tmp_path)}
    dataset = ["dataset=image_folder", "dataset.folder=photos", "dataset.name=photos"]
    search_path = f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"

    def dlrun(*args: str) -> subprocess.CompletedProcess:
        return ok(subprocess.run([sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=TIMEOUT))

    dlrun("adapter=brightness", *dataset, search_path)
    [run] = run_folders(tmp_path, "outputs")
    assert read_json(run / "metrics.json")["accuracy"] == 1.0

    assert '`hparams_search=brightness_optuna "hydra.searchpath=[file://$PWD/my_conf]"`' in README
    dlrun("hparams_search=brightness_optuna", search_path, "hydra.sweeper.n_trials=2")  # as written: its data in it
    [sweep] = run_folders(tmp_path, "multirun")
    jobs = job_folders(sweep)
    assert len(jobs) == 2 and all(read_json(job / "run.json")["status"] == "completed" for job in jobs)
    thresholds = [json.loads((job / "model.json").read_text())["configuration"]["threshold"] for job in jobs]
    assert all(isinstance(t, int) and 64 <= t <= 192 for t in thresholds), thresholds
