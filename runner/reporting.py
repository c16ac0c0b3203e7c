"""What a run leaves in its folder, and the table it prints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import dtlpy as dl


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


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


def metrics_table(metrics: Mapping) -> str:
    """Scalars, then the per-label table when there is one."""
    scalars = [(k, v) for k, v in sorted(metrics.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    width = max((len(k) for k, _ in scalars), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in scalars]
    per_label = metrics.get("per_label")
    if isinstance(per_label, Mapping) and per_label:
        lw = max(5, *(len(str(label)) for label in per_label))
        lines += ["", f"{'label':<{lw}}  precision  recall     f1  support"]
        for label, row in per_label.items():
            lines.append(f"{label:<{lw}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:5.4f}  "
                         f"{row['support']:7d}")
    return "\n".join(lines)
