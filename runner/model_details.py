"""One model version whole, for ``python -m runner.store show``: what trained it, on which data and
subsets, with which configuration, where its run folder is, its artifacts and latest evaluation."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import yaml

from .configuration import is_number
from .errors import NotFoundError
from .reporting import metrics_table, model_summary, runner_metadata
from .run_configuration import with_changes
from .store_lookup import meant_models
from .sweep_table import PREFERRED, SHOWN_METRICS, job_overrides
from .text_table import aligned, number_cell
from .training_claim import process_gone


def day(stamp: str | None) -> str:
    """``2026-11-24T06:04:35.123Z`` -> ``2026-11-24 06:04``."""
    return (stamp or "")[:16].replace("T", " ")


def scored_on(dataset, subset: str | None, items: int | None, changes: dict | None = None) -> str:
    """Where an evaluation was taken: ``digits (test), 269 items``, and the configuration keys its
    run changed (``, with min_score=0.9``: runner/run_configuration.py)."""
    return (f"{dataset}" + (f" ({subset})" if subset else "") + (f", {items} items" if items is not None else "")
            + (f", with {with_changes(changes)}" if changes else ""))


def cloned_from(model_id: str | None, names: dict[str, str]) -> str | None:
    if model_id is None:
        return None
    return names.get(model_id, f"{model_id} (deleted)")


class Listing(NamedTuple):
    """The project's model records and dataset names, read once for details of several versions."""
    records: list[dict]
    datasets: dict[str, str]


def listing(platform) -> Listing:
    return Listing(platform.store.list_models(platform.project.id), {d.id: d.name for d in platform.list_datasets()})


def model_details(platform, name: str, rerun_check: bool = True, subset: str | None = None,
                  listed: Listing | None = None) -> dict:
    """``rerun_check``: compose the rerun command's config again, to name what composes differently now;
    ``subset``: the evaluation shown is the latest on that subset of the version's (not its latest);
    ``listed``: the project's listing, when the caller already read it."""
    records, datasets = listed or listing(platform)
    names = {m["id"]: m["name"] for m in records}
    record = next((m for m in records if m["name"] == name), None)
    if record is None:
        raise NotFoundError(f"no model named {name!r}{meant_models(name, list(names.values()))}",
                            where=f"the local platform at {platform.root}",
                            fix="python -m runner.store models lists the models")
    model = platform.model_entity(record)
    ours = runner_metadata(record)
    launched = version_launch(record)
    reused = holds_another_run(ours.get("run"), model.id)
    evaluation, evaluated_on = platform.store.latest_evaluation_on(model.id, subset) or (None, None)
    artifacts = platform.store.list_artifacts(model.id)
    return {**model_summary(model), "process_gone": process_gone(record),
            "dataset": datasets.get(record.get("datasetId"), record.get("datasetId")),
            "cloned_from": cloned_from(record.get("clonedFrom"), names),
            "created": record.get("createdAt"), "updated": record.get("updatedAt"),
            "adapter": ours.get("adapter"), "run": ours.get("run"), "rerun": rerun_command(launched),
            "run_reused": reused,
            "overrides": launched.overrides if launched else None,
            # no weights, nothing to evaluate or predict with: those commands would only fail
            "use": use_command(model.name, launched, model.output_type) if artifacts else {},
            "rerun_changes": rerun_changes(launched) if rerun_check and not reused else [],
            "vectors": dict(zip(("count", "size"), platform.store.model_vectors(model.id), strict=True)),
            "artifacts": [{"name": n, "size": size} for n, _blob, size in artifacts],
            "evaluation": None if evaluation is None else {
                "dataset": datasets.get(evaluated_on, evaluated_on), "metrics": evaluation},
            "evaluations": [{"created": when, "dataset": datasets.get(on, on), "subset": metrics.get("subset"),
                             "items": metrics.get("n_items"), "with": metrics.get("configuration_changes"),
                             "metrics": {k: v for k, v in metrics.items() if is_number(v, finite=True)}}
                            for when, on, metrics in platform.store.evaluations(model.id)]}


def _command(launched: Launch, args: list[str]) -> str:
    """``cd <the folder it ran in> && python -m runner <its config folders and args>``."""
    return " ".join(["cd", shlex.quote(str(launched.cwd)), "&&", "python", "-m", "runner",
                     *map(shlex.quote, [*launched.config_dirs, *args, *launched.searchpath])])


def rerun_command(launched: Launch | None) -> str | None:
    """The command that runs a version's run again, from its run folder's ``.hydra/``: in the folder
    it ran in, its config folders (``--config-dir``, ``hydra.searchpath``) and the overrides it was
    given; an Optuna trial alone, not a new search (``hydra.mode=RUN``). Where its outputs went, and
    how a sweep launched it, are left out. None when the folder or its files are gone."""
    return None if launched is None else _command(launched, _run_again(launched))


def train_again_command(launched: Launch | None, name: str) -> str | None:
    """The command of a run whose version failed, on that version (``model.name=<it>``): it trains
    again from what the failed training saved, with the run's adapter, data and config folders."""
    if launched is None:
        return None
    return _command(launched, [*(o for o in _run_again(launched) if not o.lstrip("+").startswith("model.name=")),
                               f"model.name={name}"])


def _run_again(launched: Launch) -> list[str]:
    """A run's overrides; an Optuna trial's with ``hydra.mode=RUN``: the trial alone, not a new search."""
    trial = any(o.startswith("hparams_search=") for o in launched.overrides)
    return [*launched.overrides, *(["hydra.mode=RUN"] if trial else [])]


def rerun_changes(launched: Launch | None, shown: int = 3) -> list[str]:
    """``key: then -> now`` for each setting the rerun command would compose differently from the
    config the run had (its ``.hydra/config.yaml``): a config file edited since, or a package's default
    changed. Empty when they agree, or the run folder is gone."""
    from .argv_checks import composed_config

    try:
        then = yaml.safe_load((Path(launched.folder) / ".hydra" / "config.yaml").read_text()) if launched else None
    except (OSError, yaml.YAMLError):
        then = None
    if not isinstance(then, dict):
        return []
    now = composed_config([*launched.config_dirs, *launched.overrides, *launched.searchpath])
    if now is None:
        return ["the config does not compose from its command line any more"]
    before, after = flat(then), flat(now)
    changed = [f"{key}: {before.get(key, '<not set>')} -> {after.get(key, '<not set>')}"
               for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]
    return changed[:shown] + ([f"and {len(changed) - shown} more"] if len(changed) > shown else [])


def flat(tree: dict, prefix: str = "") -> dict:
    """A nested dict's leaves by dotted key (``estimator.C``)."""
    leaves = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            leaves.update(flat(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def config_folders_of(model) -> list[str]:
    """The arguments that gave a version's training run its config folders (``--config-dir``,
    ``hydra.searchpath``), as a command line writes them; empty when it had none, or nothing says."""
    launched = version_launch(model)
    return [] if launched is None else [shlex.quote(arg) for arg in launched.config_dirs + launched.searchpath]


def use_command(name: str, launched: Launch | None, output_type: str | None = None) -> dict[str, str]:
    """The commands that evaluate and predict with a version the runner trained (embed, for an
    embedding model): in its training run's folder, with the adapter, dataset (and the dataset's import
    settings) and metrics options that run chose, and its config folders; on the version's own subsets.
    Empty when nothing says how it ran. ``launched``: the training run of version ``name`` (:func:`version_launch`)."""
    if launched is None:
        return {}
    def chosen(groups: tuple[str, ...]) -> list[str]:
        return [f"{group}={launched.choices[group]}" for group in groups if launched.choices.get(group)]

    dataset = [o for o in launched.overrides if o.lstrip("+").startswith("dataset.")]
    if output_type == "embedding":  # an embedder has no predictions to score: it embeds every item
        return {"embed": _command(launched, ["pipeline=embed", f"model.name={name}", *chosen(("adapter", "dataset")),
                                             *dataset])}
    # the evaluate pipeline's subsets are the version's own already; a prediction is scored by no metrics set
    return {"evaluate": _command(launched, ["pipeline=evaluate", f"model.name={name}",
                                            *chosen(("adapter", "dataset", "metrics")), *dataset]),
            "predict": _command(launched, ["pipeline=predict", f"model.name={name}", *chosen(("adapter", "dataset")),
                                           *dataset, "subsets=model"])}


def with_its_settings(model, steps: list[str]) -> str:
    """``; or, with all it was trained with: <command>``, for a fix that names one setting at a time."""
    pipeline = next((step for step in ("evaluate", "predict", "embed") if step in steps), None)
    command = use_command(model.name, version_launch(model), model.output_type).get(pipeline)
    return f"; or, with all it was trained with: {command}" if command else ""


class Launch(NamedTuple):
    folder: str  # the run folder
    cwd: str  # the working folder it ran in
    config_dirs: list[str]  # --config-dir <path> arguments
    overrides: list[str]  # the task's overrides (empty unless asked for)
    searchpath: list[str]  # hydra.searchpath= overrides
    choices: dict  # group -> the option the run chose


def holds_another_run(run: str | None, model_id: str) -> bool:
    """The run folder of version ``model_id`` holds another run now (a ``hydra.run.dir`` or sweep folder
    used again): its ``model.json`` names another version."""
    try:
        return json.loads((Path(run) / "model.json").read_text()).get("id") not in (None, model_id)
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def read_launch(run: str | None, with_overrides: bool = False, model_id: str | None = None) -> Launch | None:
    """How a run was launched, from its folder's ``.hydra/``; None when the folder or its files are gone,
    or (given the id of the version it trained) when it holds another run now."""
    if not run or model_id is not None and holds_another_run(run, model_id):
        return None
    try:
        hydra = yaml.safe_load((Path(run) / ".hydra" / "hydra.yaml").read_text())["hydra"]
        overrides = yaml.safe_load((Path(run) / ".hydra" / "overrides.yaml").read_text()) or [] \
            if with_overrides else []
        return _launch_of(run, hydra, overrides)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None


def _launch_of(run: str, hydra: Mapping, overrides: list) -> Launch:
    """A Launch from Hydra's own config of the run (``hydra.yaml``, or the running job's)."""
    sources = hydra["runtime"].get("config_sources") or []
    config_dirs = [arg for source in sources if source.get("provider") == "command-line"
                   for arg in ("--config-dir", source["path"])]
    searchpath = [str(o) for o in hydra["overrides"].get("hydra") or [] if str(o).startswith("hydra.searchpath=")]
    return Launch(run, hydra["runtime"]["cwd"], config_dirs, job_overrides(overrides), searchpath,
                  dict(hydra["runtime"].get("choices") or {}))


def this_launch(run_dir: Path) -> dict | None:
    """How the running job was launched, for its version to keep (``metadata.user.runner.launch``):
    its commands then outlive the run folder (moved, deleted, or a store copied elsewhere)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hydra = OmegaConf.to_container(HydraConfig.get(), resolve=False)
    return {k: v for k, v in _launch_of(str(run_dir), hydra, list(hydra["overrides"]["task"]))._asdict().items()
            if k != "folder"}


def version_launch(model) -> Launch | None:
    """How a version's training run was launched: as the version keeps it, else (a version trained
    before it kept one) as its run folder's ``.hydra/`` says. ``model``: an entity or its JSON."""
    ours = runner_metadata(model)
    kept = ours.get("launch")
    if isinstance(kept, dict):
        with contextlib.suppress(TypeError):
            return Launch(folder=ours.get("run") or "", **kept)
    model_id = model.get("id") if isinstance(model, dict) else model.id
    return read_launch(ours.get("run"), with_overrides=True, model_id=model_id)


def print_details(details: dict) -> None:
    adapter = details["adapter"] or {}
    facts = [("model", f"{details['name']} ({details['id']})"),
             ("status", details["status"] + (" (the process that trained it is gone: killed; delete-model removes it, "
                                             "or a run with its model.name trains on from the checkpoint it saved, if any)"
                                             if details.get("process_gone") else "")),
             ("dataset", details["dataset"] or ""), ("cloned from", details["cloned_from"] or ""),
             ("created", day(details["created"])), ("updated", day(details["updated"])),
             ("adapter", (adapter.get("_target_") or "") + (f" (adapter={adapter['option']})"
                                                             if adapter.get("option") else "")),
             ("run folder", details["run"] and details["run"] + (
                 " (no longer there)" if not os.path.isdir(details["run"]) else
                 " (holds another run now: the folder was used again" + (
                     ")" if details["rerun"] else ", so no command of it is given)")
                 if details.get("run_reused") else "")),
             ("rerun", details["rerun"] or ""),
             ("rerun composes", "differently now (the config files changed since; its .hydra/config.yaml holds what "
                                f"it ran with): {'; '.join(details['rerun_changes'])}"
                                if details.get("rerun_changes") else ""),
             *((pipeline, command) for pipeline, command in (details.get("use") or {}).items()),
             ("input, output", f"{details['input_type']}, {details['output_type']}"),
             ("vectors", f"{details['vectors']['count']} of {details['vectors']['size']} values (python -m runner.store "
                         f"vectors {details['name']} <file.npz|.csv> writes them)"
                         if (details.get("vectors") or {}).get("count") else ""),
             ("labels", f"{len(details['labels'])}: {' '.join(map(str, details['labels'][:20]))}"
                        + (" ..." if len(details["labels"]) > 20 else ""))]
    width = max(len(key) for key, _ in facts)
    print("\n".join(f"{key:<{width}}  {value}" for key, value in facts if value))
    print("\nconfiguration:")
    print(_indented(yaml.safe_dump(details["configuration"], sort_keys=False, default_flow_style=False).rstrip()
                    if details["configuration"] else "{}"))
    if details["subsets"]:
        print("\nsubsets:")
        print(_indented("\n".join(aligned(["subset", "filter"], [
            [name, json.dumps(_shortened(spec.get("filter", spec) if isinstance(spec, dict) else spec))]
            for name, spec in details["subsets"].items()]))))
    print("\nartifacts:" if details["artifacts"] else "\nartifacts: none")
    if details["artifacts"]:
        print(_indented("\n".join(aligned(["file", "bytes"], [[a["name"], str(a["size"])]
                                                             for a in details["artifacts"]]))))
    evaluation = details["evaluation"]
    if evaluation is None:
        print("\nnot evaluated")
    else:
        metrics = evaluation["metrics"]
        where = scored_on(evaluation["dataset"], metrics.get("subset"), None, metrics.get("configuration_changes"))
        print(f"\nlatest evaluation, on {where}:")
        print(_indented(metrics_table(evaluation["metrics"])))
    every = details.get("evaluations") or []
    if len(every) > 1:
        print(f"\nevery evaluation ({len(every)}), latest first:")
        shown = [name for name in PREFERRED if any(name in e["metrics"] for e in every)][:SHOWN_METRICS]
        changed = ["with"] if any(e["with"] for e in every) else []
        print(_indented("\n".join(aligned(
            ["when", "dataset", "subset", "items", *shown, *changed],
            [[day(e["created"]), str(e["dataset"] or ""), e["subset"] or "", number_cell(e["items"]),
              *(number_cell(e["metrics"].get(name)) for name in shown), *([with_changes(e["with"])] if changed else [])]
             for e in every]))))


def _shortened(value, shown: int = 3):
    """A filter for the eye: a long list (a random split's item ids) as its first few and a count;
    ``--json`` keeps it whole."""
    if isinstance(value, dict):
        return {key: _shortened(item, shown) for key, item in value.items()}
    if isinstance(value, list):
        items = [_shortened(item, shown) for item in value]
        return [*items[:shown], f"... {len(value) - shown} more"] if len(value) > shown + 1 else items
    return value


def _indented(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())
