"""Versions side by side, for ``python -m runner.store compare``: their latest evaluations metric by
metric (the best of each marked), and the facts and configuration settings in which they differ."""

from __future__ import annotations

import fnmatch
import json
import os

from .configuration import is_number
from .errors import NotFoundError, RunnerError
from .model_details import day, flat, listing, model_details, scored_on
from .store_lookup import meant_models
from .sweep_table import preferred_first
from .text_table import aligned, did_you_mean, is_pattern, number_cell, short_names

BEST = " *"  # after the best value of a metric


def lower_is_better(metric: str) -> bool:
    return any(word in metric.lower() for word in ("loss", "error"))


def chosen_names(platform, given: list[str]) -> list[str]:
    """The versions ``given`` names, in that order, each once; a shell-style pattern names every
    version it matches, oldest first. Fewer than two is refused: nothing to compare."""
    every = [m["name"] for m in platform.store.list_models(platform.project.id)]
    chosen: list[str] = []
    for name in given:
        pattern = is_pattern(name)
        matched = fnmatch.filter(every, name) if pattern else [n for n in every if n == name]
        if not matched:
            raise NotFoundError(f"no model {'matches' if pattern else 'named'} {name!r}"
                                + (did_you_mean(name, every) if pattern else meant_models(name, every)),
                                where=f"the local platform at {platform.root}",
                                fix="python -m runner.store models lists the models")
        chosen += [n for n in matched if n not in chosen]
    if len(chosen) < 2:
        raise RunnerError(f"{' '.join(given)} names {len(chosen)} version: compare needs two or more",
                          where="python -m runner.store compare", fix="name another version, or use show for one")
    return chosen


def comparison(platform, names: list[str], subset: str | None = None) -> dict:
    """The versions' details (as ``show --json`` gives them, less the rerun check), the metrics of
    their latest evaluations (on ``subset``, when given), and the configuration settings that differ
    between them."""
    listed = listing(platform)
    details = [model_details(platform, name, rerun_check=False, subset=subset, listed=listed) for name in names]
    evaluations = [(d["evaluation"] or {}).get("metrics") or {} for d in details]
    metrics = list(dict.fromkeys(k for e in evaluations for k, v in e.items() if is_number(v, finite=True)))
    settings = [flat(d["configuration"]) for d in details]
    keys = sorted({k for s in settings for k in s})
    differ = [k for k in keys if len({repr(s.get(k, _UNSET)) for s in settings}) > 1]
    alike = len({_evaluated_on(d) for d in details if d["evaluation"]}) <= 1
    # scores of different data do not rank the versions: no best is marked, and the subsets that would are named
    common = [] if alike or subset else [
        name for name in platform.store.evaluated_subsets()
        if all(platform.store.latest_evaluation_on(d["id"], name) for d in details)]
    return {"models": details, "metrics": {m: [e.get(m) for e in evaluations] for m in metrics},
            "best": {m: _best(m, [e.get(m) for e in evaluations]) if alike else [] for m in metrics},
            "configuration_differs": {k: [s.get(k, _UNSET) for s in settings] for k in differ},
            "evaluated_alike": alike, "evaluated_in_common": common, "evaluated_on": subset}


_UNSET = "<not set>"


def _best(metric: str, values: list) -> list[int]:
    """The columns holding the best score, as the table prints it (ties: each). None for a count
    (``n_items``), nor when fewer than two have the metric or all print the same."""
    scored = {i: number_cell(v) for i, v in enumerate(values) if isinstance(v, float) and is_number(v, finite=True)}
    if len(scored) < 2 or len(set(scored.values())) == 1:
        return []
    pick = min if lower_is_better(metric) else max
    top = number_cell(pick(values[i] for i in scored))
    return [i for i, cell in scored.items() if cell == top]


def _evaluated_on(details: dict, subset: str | None = None) -> str:
    evaluation = details["evaluation"]
    if not evaluation:
        return "not evaluated" + (f" on {subset}" if subset else "")
    metrics = evaluation["metrics"]
    return scored_on(evaluation["dataset"], metrics.get("subset"), metrics.get("n_items"),
                     metrics.get("configuration_changes"))


# more versions than this: one row each (a sweep's dozens would run to thousands of columns side by side)
SIDE_BY_SIDE = 5
SHOWN_IN_ROWS = 3  # metrics of a row each, the preferred ones first (--json has every one)


def print_comparison(compared: dict) -> None:
    if len(compared["models"]) > SIDE_BY_SIDE:
        _print_rows(compared)
    else:
        _print_side_by_side(compared)
    _print_notes(compared)


def _print_rows(compared: dict) -> None:
    """One row per version: its status, the data it was scored on, the settings that differ and the
    overrides that set it apart, beside a few metrics, so a setting lines up with its score."""
    details = compared["models"]
    differ = compared["configuration_differs"]
    short = short_names(list(differ))
    shown = [m for m in preferred_first(list(compared["metrics"])) if not m.startswith("n_")][:SHOWN_IN_ROWS]
    overrides = _own_overrides(details, differ)
    shared, names = _headers([d["name"] for d in details])
    if shared:
        print(f"versions {shared}... :")
    header = ["version", "status", "evaluated on", *(short[k] for k in differ), *shown,
              *(["run overrides"] if any(overrides) else [])]
    rows = [[names[i], d["status"], _evaluated_on(d, compared["evaluated_on"]),
             *(_cell(values[i]) for values in differ.values()),
             *(number_cell(compared["metrics"][m][i]) + (BEST if i in compared["best"][m] else "") for m in shown),
             *([overrides[i]] if any(overrides) else [])] for i, d in enumerate(details)]
    print("\n".join(aligned(header, rows)))
    renamed = [f"{name} = {key}" for key, name in short.items() if name != key]
    if renamed:
        print("settings: " + ", ".join(renamed))
    if not differ:
        print("configuration: the same")


def _print_side_by_side(compared: dict) -> None:
    details = compared["models"]
    facts = {"status": [d["status"] for d in details], "dataset": [d["dataset"] or "" for d in details],
             "cloned from": [d["cloned_from"] or "" for d in details],
             "created": [day(d["created"]) for d in details],
             "adapter": [(d["adapter"] or {}).get("option") or (d["adapter"] or {}).get("_target_", "")
                         for d in details],
             "labels": [str(len(d["labels"])) for d in details],
             "run overrides": _own_overrides(details, compared["configuration_differs"]),
             "evaluated on": [_evaluated_on(d, compared["evaluated_on"]) for d in details]}
    rows = [[name, *values] for name, values in facts.items() if name != "run overrides" or any(values)]
    rows += [[metric, *(number_cell(v) + (BEST if i in compared["best"][metric] else "") for i, v in
                        enumerate(values))] for metric, values in compared["metrics"].items()]
    shared, header = _headers([d["name"] for d in details])
    if shared:
        print(f"versions {shared}... :")
    print("\n".join(aligned(["", *header], rows)))
    differ = compared["configuration_differs"]
    if not differ:
        print("\nconfiguration: the same")
    else:
        print("\nconfiguration, the settings that differ:")
        print("\n".join("  " + line for line in aligned(
            ["setting", *header],
            [[key, *(_cell(v) for v in values)] for key, values in differ.items()])))


def _print_notes(compared: dict) -> None:
    if any(compared["best"].values()):
        print(f"({BEST.strip()}: the best of a metric; lower is better for losses and errors)")
    if not compared["evaluated_alike"]:
        common = compared["evaluated_in_common"]
        print("note: their latest evaluations scored different data or settings (evaluated on, above), so no best is "
              "marked: " + (f"compare the evaluations each has on {' or '.join(common)} (--evaluated-on {common[0]})"
                            if common else "evaluate each on the same subset to compare them (python -m runner "
                                           "pipeline=evaluate model.name=<version>)"))


_CONFIGURATION_KEYS = ("adapter.configuration.", "model.configuration.")


def _own_overrides(details: list[dict], differ: dict) -> list[str]:
    """Each training run's command-line overrides that not all of them had (``seed=3``: a setting
    outside the configuration, which the settings below would not show), less those of a setting
    the table of settings that differ has its own row for; empty where a run folder is gone."""
    given = [d.get("overrides") or [] for d in details]
    shared = set.intersection(*map(set, given)) if all(given) else set()

    def shown_below(override: str) -> bool:
        key = override.partition("=")[0].lstrip("+")
        return key in differ or any(key.startswith(prefix) and key[len(prefix):] in differ  # batch_size: its alias
                                    for prefix in _CONFIGURATION_KEYS)

    return [" ".join(o for o in overrides if o not in shared and not shown_below(o)) for overrides in given]


def _headers(names: list[str]) -> tuple[str, list[str]]:
    """The long prefix the versions' names share (up to a ``-``; empty when short), printed once above
    the table, and the column names less it: a sweep's versions differ in their last characters."""
    shared = os.path.commonprefix(names)
    shared = shared[:shared.rfind("-") + 1]
    if len(shared) < 8:
        return "", names
    return shared, ["..." + name[len(shared):] for name in names]


def _cell(value) -> str:
    """A setting as its YAML writes it: ``2e-05`` stays itself, not a rounded ``0.0000``."""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
