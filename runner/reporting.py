"""What a run leaves in its folder, and the table it prints."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .files import write_json
from .text_table import number_cell

if TYPE_CHECKING:  # dtlpy takes most of a second to import, and the report reads folders only
    import dtlpy as dl


class RunRecord:
    """``run.json``: how a run ended — status, times, objective, model version, error — written
    at the start (``running``) and again at the end, so a sweep report can tell a job that failed
    from one that is still going or was killed."""

    def __init__(self, output_dir: Path, overrides: list[str] | None = None):
        self.path = output_dir / "run.json"
        self.started = datetime.now(UTC)
        self.objective: dict = {}
        self.model: dict | None = None
        self.configuration_changes: dict = {}  # keys of the version's configuration this run changed
        self.items: dict = {}  # how many items the predict and embed steps wrote: {"predicted": n, "embedded": n}
        self.overrides = overrides  # the job's command-line overrides: what resume=true compares
        self.environment: dict | None = None  # what it ran on (runner/run_environment.py)
        self._write("running")

    def completed(self, objective_value: float | None, model) -> None:
        self.model = {"id": model.id, "name": model.name, "status": model.status}
        self._write("completed", objective_value=objective_value)

    def failed(self, err: BaseException) -> None:
        message, kind = str(err) or type(err).__name__, type(err).__name__
        if isinstance(err, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (runner.interrupts.Terminated names its signal)
            stopped_by = getattr(err, "signal", signal.SIGINT)
            message = f"interrupted by {stopped_by.name}"
            kind = "KeyboardInterrupt" if stopped_by == signal.SIGINT else "Terminated"  # as the user sent it
        elif isinstance(err, SystemExit):
            message = f"stopped (SystemExit {err.code})"
        self._write("failed", error={"type": kind, "message": message})

    def not_started(self, signum: int) -> None:
        """A sweep's job that a stop signal reached before it began: nothing of it ran."""
        stopped_by = signal.Signals(signum)
        self._write("not started", error={"type": "KeyboardInterrupt" if stopped_by == signal.SIGINT else "Terminated",
                                          "message": f"stopped by {stopped_by.name} before it began"})

    def _write(self, status: str, objective_value: float | None = None, error: dict | None = None) -> None:
        finished = datetime.now(UTC) if status != "running" else None
        write_json(self.path, {
            "status": status,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds") if finished else None,
            "seconds": round((finished - self.started).total_seconds(), 3) if finished else None,
            **({"objective": {**self.objective, "value": objective_value}} if self.objective else {}),
            "model": self.model,
            **({"configuration_changes": self.configuration_changes} if self.configuration_changes else {}),
            **({"items": self.items} if self.items else {}),
            **({"overrides": self.overrides} if self.overrides is not None else {}),
            **({"environment": self.environment} if self.environment else {}),
            "error": error,
        })


def runner_metadata(model: dl.Model | dict) -> dict:
    """What a training run recorded on its version (``metadata.user.runner``): the adapter, the run
    folder. ``model`` is an entity or its JSON."""
    metadata = model.get("metadata") if isinstance(model, dict) else model.metadata
    return ((metadata or {}).get("user") or {}).get("runner") or {}


def model_summary(model: dl.Model) -> dict:
    return {"id": model.id, "name": model.name, "status": model.status,
            "configuration": dict(model.configuration or {}), "labels": list(model.labels or []),
            "input_type": model.input_type, "output_type": model.output_type,
            "subsets": (model.metadata.get("system") or {}).get("subsets", {}),
            "artifacts": sorted(a.local_path for a in model.artifacts.list())}


def plot_confusion_matrix(confusion: Mapping, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], confusion["matrix"]
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("ground truth")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                axes.text(j, i, str(value), ha="center", va="center",
                          color="white" if value > peak / 2 else "black", fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_title("confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_pr_curves(curves: Mapping, path: Path) -> None:
    """One precision-recall curve per label (COCO's 101 recall points, IoU 0.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5))
    for label, curve in curves.items():
        precision = [max(p, 0.0) for p in curve["precision"]]  # -1: no ground truth for the label
        if any(p > 0 for p in precision):
            axes.plot(curve["recall"], precision, label=str(label))
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title("precision-recall per label (IoU 0.5)")
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_training_curves(samples, path: Path) -> bool:
    """One panel per figure, one line per legend, from the samples an adapter reported with
    ``model.metrics.create``. Returns False (and writes nothing) when there are none to draw."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for sample in samples:
        if _number(sample.x) and _number(sample.y):
            series.setdefault(str(sample.figure), {}).setdefault(str(sample.legend), []).append((sample.x, sample.y))
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.6), squeeze=False)
    for ax, (title, lines) in zip(axes[0], series.items(), strict=True):
        for legend, points in lines.items():
            points.sort()
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, label=legend)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_table(metrics: Mapping) -> str:
    """Scalars, then the per-label table (whatever numbers its rows hold)."""
    scalars = [(k, v) for k, v in sorted(metrics.items()) if _number(v)]
    width = max((len(k) for k, _ in scalars), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{k:<{width}}  {number_cell(v)}" for k, v in scalars]
    per_label = metrics.get("per_label")
    if isinstance(per_label, Mapping) and per_label:
        columns = [k for k, v in next(iter(per_label.values())).items() if _number(v)]
        lw = max(5, *(len(str(label)) for label in per_label))
        cells = {label: [number_cell(row.get(c)) for c in columns] for label, row in per_label.items()}
        widths = [max(len(c), 6, *(len(row[i]) for row in cells.values())) for i, c in enumerate(columns)]
        lines += ["", f"{'label':<{lw}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]
        for label, row in cells.items():
            lines.append(f"{label:<{lw}}  " + "  ".join(f"{cell:>{w}}" for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
