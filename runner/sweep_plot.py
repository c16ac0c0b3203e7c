"""``sweep_report.png``: the objective against each swept parameter, one panel each."""

from __future__ import annotations

import math
from pathlib import Path

from .sweep_table import Job, Sweep, count_of


def numeric_axis(values: list[str]) -> str | None:
    """``linear`` or ``log`` (positive values spanning more than two decades) when every value is a
    finite number; None for categories."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return None
    if not numbers or not all(math.isfinite(x) for x in numbers):
        return None
    low, high = min(numbers), max(numbers)
    return "log" if low > 0 and high / low > 100 else "linear"


def _panel(axes, sweep: Sweep, key: str | None, jobs: list[Job]) -> None:
    points = [(job.name if key is None else job.param(key), job) for job in jobs]
    points = [(x, job) for x, job in points if x is not None]
    axes.set_xlabel(key or "job")
    axes.set_ylabel(sweep.metric or "objective")
    if not points:
        axes.text(0.5, 0.5, "no completed job\nwith an objective value", ha="center", va="center",
                  transform=axes.transAxes)
        return
    scale = numeric_axis([x for x, _ in points])
    if scale is None:  # categories, in the order the jobs ran
        categories = list(dict.fromkeys(x for x, _ in points))
        position = {c: i for i, c in enumerate(categories)}
        xs = [float(position[x]) for x, _ in points]
        axes.set_xticks(range(len(categories)), categories, rotation=30 if max(map(len, categories)) > 6 else 0,
                        ha="right" if max(map(len, categories)) > 6 else "center")
        axes.set_xlim(-0.5, len(categories) - 0.5)
    else:
        xs = [float(x) for x, _ in points]
        axes.set_xscale(scale)
        if scale == "linear" and all(x.is_integer() for x in xs):
            from matplotlib.ticker import MaxNLocator

            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    ys = [job.value for _, job in points]
    by_x: dict[float, list[float]] = {}
    for x, y in zip(xs, ys, strict=True):
        by_x.setdefault(x, []).append(y)
    mean_x = sorted(by_x)
    axes.plot(mean_x, [sum(by_x[x]) / len(by_x[x]) for x in mean_x], color="0.6", linewidth=1, zorder=1,
              label="mean")
    axes.scatter(xs, ys, color="tab:blue", zorder=2, label="job")
    for x, (_, job) in zip(xs, points, strict=True):
        if job is sweep.best:
            axes.scatter([x], [job.value], marker="*", s=260, color="tab:red", zorder=3, label=f"best: job {job.name}")
    axes.legend(fontsize=7)


def plot_sweep(sweep: Sweep, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = sorted((job for job in sweep.jobs if job.value is not None),
                  key=lambda job: sweep.jobs.index(job) if not job.name.isdigit() else int(job.name))
    keys: list[str | None] = list(sweep.swept) or [None]
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        _panel(ax, sweep, key, jobs)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    direction = "maximize" if sweep.maximize else "minimize"
    figure.suptitle(f"{sweep.metric or 'objective'} ({direction}): {len(jobs)} of {count_of(len(sweep.jobs), 'job')} plotted",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")
    plt.close(figure)
