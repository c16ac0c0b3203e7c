"""Composition from config: with ``runner.run_plan``, which checks the config alone, the only code
that reads the config tree.

``run(cfg, output_dir)`` validates everything it can before it writes anything, then builds the
platform, the dataset, the model version and the adapter, runs the pipeline steps, writes the run's
outputs and returns the objective metric (for sweepers).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from . import interrupts, run_lock
from .config_sources import adapter_option, option_found
from .data.recorded_source import as_recorded, with_defaults
from .errors import AlreadyExistsError, ConfigError, EmptySubsetError, FilterError, NotFoundError
from .gc_control import collection_paused
from .model_details import config_folders_of, this_launch, with_its_settings
from .paths import holds_store
from .reporting import (
    RunRecord,
    metrics_table,
    model_summary,
    plot_confusion_matrix,
    plot_pr_curves,
    plot_training_curves,
    runner_metadata,
    write_json,
)
from .resolvers import register_resolvers
from .run_configuration import apply_for_this_run, changed_for_this_run, given_keys, shown
from .run_environment import run_environment
from .run_log import say
from .run_plan import (
    INPUT_MIMETYPES,
    RUN_SETTINGS,
    Plan,
    check_used_subsets,
    plan,
    used_subsets,
    version_configuration,
)
from .source_listing import is_path_key, source_listing, source_paths
from .sweep_table import job_overrides
from .text_table import did_you_mean, first_few
from .version_names import stored_version, version_name, version_near

logger = logging.getLogger("runner")

register_resolvers()


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:  # only when an adapter uses it; importing torch costs seconds
        sys.modules["torch"].manual_seed(seed)


def instantiate(node, *args, **kwargs):
    """hydra's instantiate, re-raising the runner's own errors as they are, not wrapped."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    from .errors import RunnerError

    try:
        return hydra_instantiate(node, *args, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, RunnerError):
            raise err.__cause__ from None
        raise


def _dataset(platform, spec: dict):
    source = spec.get("source")
    dataset = platform.find_dataset(spec["name"])
    if dataset is not None:
        _check_import_source(platform, dataset, as_recorded(source))
        _import_what_is_new(platform, dataset, source or _recorded_source(platform, dataset))
        return dataset
    if source and platform.name != "local":
        raise ConfigError(f"the {platform.name} platform has no dataset {spec['name']!r}; the importers write to "
                          "the local platform only", where="dataset.name",
                          fix="name a dataset that exists on the platform, or import it there first")
    if not source:
        names = [d.name for d in platform.list_datasets()] if hasattr(platform, "list_datasets") else []
        close = did_you_mean(spec["name"], names, "dataset.name=")
        raise ConfigError(f"the platform has no dataset {spec['name']!r}{close} and the config gives no source to "
                          "import", where="dataset.name, dataset.source",
                          fix="name a stored dataset (python -m runner.store datasets lists them), or give "
                              "dataset.source to import it (a dataset option does: dataset=<option>)")
    logger.info("importing dataset %r", spec["name"])
    listing = source_listing(as_recorded(source))  # before the import: a file added meanwhile shows next time
    dataset = instantiate(source, platform=platform).dataset
    platform.record_import_source(dataset, as_recorded(source))
    if listing is not None:
        platform.store.set_import_listing(dataset.id, listing)
    return dataset


def _import_what_is_new(platform, dataset, source: dict | None) -> None:
    """A dataset imported from files (a folder, a COCO file) whose files have changed since: imported
    again, from the same source, which adds the files it lacks (a file it holds with other bytes is
    refused, naming it). Items whose files were removed stay."""
    wanted = as_recorded(source)
    gone = [path for path in source_paths(wanted) if not os.path.exists(path)]
    if gone and platform.name == "local":  # moved or removed: the store holds the dataset's files
        logger.warning("dataset %r: %s, which it was imported from, is gone: the dataset is used as stored (%d "
                       "items); if the files moved, the same run with dataset.folder=<where they are now> follows "
                       "them there",
                       dataset.name, ", ".join(gone), platform.count_items(dataset, None))
        return
    listing = source_listing(wanted) if platform.name == "local" else None
    if listing is None or listing == platform.store.import_listing(dataset.id):
        return
    logger.info("the files of dataset %r changed since it was imported (or it was imported before this was "
                "recorded): importing it again from the same source, which adds the files it does not hold", dataset.name)
    result = instantiate(source, platform=platform)
    where = ", ".join(source_paths(wanted))
    if result.added:
        logger.warning("dataset %r: %d new item(s) from %s", dataset.name, result.added, where)
    gone = platform.count_items(dataset, None) - result.added - result.skipped
    if gone > 0:
        logger.warning("dataset %r holds %d item(s) whose files are no longer in %s (removed, or moved to another "
                       "folder, which imports them as new items): they stay in the dataset; to have it match the "
                       "files, import them under a new dataset.name (or python -m runner.store delete-dataset %s "
                       "--with-models)", dataset.name, gone, where, dataset.name)
    platform.store.set_import_listing(dataset.id, listing)


def _recorded_source(platform, dataset) -> dict | None:
    """The source a dataset named alone (``dataset.source=null``) was imported from, to follow its files
    as the source given does: only while every file and folder it names is still there."""
    recorded = platform.import_source(dataset) if platform.name == "local" else None
    paths = source_paths(recorded)
    return recorded if paths and all(os.path.exists(path) for path in paths) else None


def _check_import_source(platform, dataset, wanted: dict | None) -> None:
    """A dataset in the store is used as it is: a ``dataset.source`` that differs from the one it was
    imported with (another size, seed or folder) would otherwise be ignored without a word."""
    if not wanted or platform.name != "local":
        return
    recorded = as_recorded(platform.import_source(dataset))  # relative paths of older stores: from here
    if recorded is None:
        return
    recorded, wanted = with_defaults(recorded), with_defaults(wanted)  # split_dirs: true given or left out: one import
    if recorded == wanted:
        return
    changed = sorted(key for key in recorded.keys() | wanted.keys() if recorded.get(key) != wanted.get(key))
    moved = all(is_path_key(key) and isinstance(recorded.get(key), str) and not os.path.exists(recorded[key])
                and isinstance(wanted.get(key), str) and os.path.exists(wanted[key]) for key in changed)
    if moved:  # its files moved (the folder it was imported from is gone): follow them there
        logger.warning("dataset %r: %s, which it was imported from, is gone; its source now names %s (the files "
                       "it holds already are not imported again)", dataset.name,
                       ", ".join(recorded[key] for key in changed), ", ".join(wanted[key] for key in changed))
        platform.record_import_source(dataset, wanted)
        return
    was = ", ".join(f"{key}={recorded.get(key)!r}" for key in changed)
    now = ", ".join(f"{key}={wanted.get(key)!r}" for key in changed)
    raise ConfigError(f"dataset {dataset.name!r} is already in the store, imported with {was}; this run's "
                      f"dataset.source asks for {now}, which would be ignored",
                      where="dataset.source", fix=f"import the new data under another name (dataset.name=<new name>), "
                      f"delete the stored one (python -m runner.store delete-dataset {dataset.name} --with-models), "
                      f"set dataset.source back to {was}, or use the stored dataset as it is: dataset.source=null")


def _subsets(platform, dataset, spec: dict) -> dict[str, dict]:
    if "_target_" in spec:
        # entities go in as call arguments: passed to instantiate they would be merged into the config
        return instantiate(spec, _partial_=True, _convert_="all")(platform=platform, dataset=dataset)
    return spec


def _trained_on_configuration(base, configuration: dict, target: str | None) -> dict:
    """A version that trains on from ``base``'s weights: the run's configuration over ``base``'s, as
    dtlpy's clone merges them, so the keys the adapter wrote there (``weights_filename`` in ``save``,
    a resume epoch) still find those weights. A base with no weights, or another adapter's, starts
    from the run's configuration alone."""
    if (_trained_by(base) or {}).get("_target_") != target or not base.artifacts.list():
        return configuration
    kept = {key: value for key, value in (base.configuration or {}).items() if key not in configuration}
    if kept:
        logger.info("configuration kept from %s (keys the run does not set): %s", base.name,
                    ", ".join(f"{key}={value!r}" for key, value in kept.items()))
    return {**kept, **configuration}


def _clone_version(platform, base, name: str):
    """A new version of ``base`` under a fresh name; parallel jobs started in the same second may
    draw the same random suffix, so a taken name is drawn again."""
    for attempt in range(5):
        try:
            return platform.clone_model(base, version_name(name), status="created")
        except AlreadyExistsError:
            if attempt == 4:
                raise


def _check_input_type(platform, dataset, input_type: str | None, subset_filter: dict | None, adapter_class) -> None:
    """Items of another kind than the model reads (text items, and a model of images): with the default
    prepare_item_func, which reads items by that kind, every item would fail, so the run stops before
    anything is stored; an adapter with its own prepare_item_func may read them, and is warned."""
    family = INPUT_MIMETYPES.get(input_type or "")
    page = next(iter(platform.iter_items(dataset, subset_filter, 50)), []) if family else []
    # an item without a mimetype (a folder entry) says nothing of the kind the dataset holds
    typed = {item.filename: m for item in page if (m := str((item.metadata.get("system") or {}).get("mimetype") or ""))}
    if not typed or any(m.startswith(family) for m in typed.values()):
        return
    held = max(set(typed.values()), key=list(typed.values()).count)
    what = (f"the model reads {input_type} items (model.input_type {input_type!r}), but the items of dataset "
            f"{dataset.name!r} are {held} (e.g. {next(f for f, m in typed.items() if m == held)})")
    fix = ("choose an adapter made for those items (adapter=tfidf_text reads text; adapter=<option>), or, if your "
           "adapter reads them, set its input_type (in its YAML, or model.input_type=...)")
    from .adapter import BaseModelAdapter

    if getattr(adapter_class, "prepare_item_func", None) is BaseModelAdapter.prepare_item_func:
        raise ConfigError(what, where="model.input_type, dataset", fix=fix)
    logger.warning("%s: %s", what, fix)


def _check_annotated(platform, dataset, settings: dict, subsets: dict) -> None:
    """Before a version is made: every subset holds items that prepare_data will take (with an
    annotation of the output type, as on Dataloop), else the error comes now, not after training."""
    from .adapter import downloaded, ground_truth_filter, no_annotated_items

    configuration = version_configuration(settings)
    output_type = settings["model"].get("output_type")
    background = bool(configuration.get("include_background", False))
    annotations = ground_truth_filter(output_type, bool(configuration.get("include_model_annotations", False)))
    for name, subset_filter in subsets.items():
        if not any(platform.count_items(dataset, f) for f in downloaded(subset_filter, annotations, output_type,
                                                                       background)):
            page = next(iter(platform.iter_items(dataset, subset_filter, 50)), [])  # what its items hold instead
            held = sorted({a.get("type") for found in platform.annotations_of(page, None).values() for a in found
                           if a.get("type")}) if page else []
            raise no_annotated_items(name, settings["model"]["name"], output_type, subset_filter, annotations,
                                     background, held)


def _warn_if_trained_on(platform, dataset, model, name: str | None, subset_filter: dict | None,
                        scored_count: int | None, training: bool = False) -> None:
    """A version scored on items of its own train subset gets a score that is not a held-out one: say
    so (subsets=model, the evaluate pipeline's default, never does this; a training run does when its
    subsets' filters overlap). Scoring on the train subset by name is a choice, not a slip."""
    trained_on = (((model.metadata or {}).get("system") or {}).get("subsets") or {}).get("train")
    if not trained_on or name == "train" or model.dataset_id != dataset.id:
        return
    scored = subset_filter or {"filter": {}, "resource": "items"}
    if "join" in trained_on or "join" in scored:  # DQL joins do not combine under one $and
        return
    both = {"filter": {"$and": [scored.get("filter") or {}, trained_on.get("filter") or {}]}, "resource": "items"}
    overlap = platform.count_items(dataset, both)
    if overlap:
        hint = ("give the subsets filters that do not overlap" if training else
                "subsets=model (the evaluate pipeline's default) scores it on its own test subset")
        logger.warning("%d of the %d items evaluated (subset %s) are in the train subset model %s was trained on: "
                       "the score is not a held-out score; %s", overlap,
                       scored_count if scored_count is not None else platform.count_items(dataset, subset_filter),
                       name or "null: every item", model.name, hint)


def _apply_given_configuration(model, configuration: dict, steps: list[str]) -> None:
    """Configuration keys set on the command line of a run that does not train: applied for this run,
    and said, with the version's own values; ``experiment=`` (a training recipe) is not applied."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    task = HydraConfig.get().overrides.task
    if any(o.split("=", 1)[0].lstrip("+~") == "experiment" for o in task):
        logger.warning("experiment: not applied; this run (%s) uses the configuration model %s was trained with "
                       "(and the configuration keys its command line sets): train a new version with it "
                       "(pipeline=train_evaluate ...)", "/".join(steps), model.name)
    keys = [(key, deleted) for key, deleted in given_keys(task) if key.split(".", 1)[0] not in RUN_SETTINGS]
    changes = apply_for_this_run(model, configuration, keys)
    if changes:
        # the adapter's load and predict read them; what its training fixed (a fitted estimator's
        # parameters, the number of components) they do not change
        logger.info("model %s, for this run only (the version keeps its own configuration; a setting its training "
                    "fixed is not changed by it): %s", model.name,
                    "; ".join(f"{key}: {shown(before)} -> {shown(after)}" for key, (before, after) in changes.items()))


def _export_hint(platform, dataset, model) -> str:
    """How to see a local run's predictions (the local platform has no web view)."""
    if platform.name != "local":
        return ""
    from .paths import default_local_root

    root = Path(platform.root)
    where = "" if root.resolve() == default_local_root().resolve() else f" --root {shlex.quote(str(root))}"
    return (f"; to see them: python -m runner.store export{where} {shlex.quote(dataset.name)} <new folder> --model "
            f"{shlex.quote(model.name)} --no-ground-truth")


def _check_labels_meet(platform, model, dataset, steps: list[str]) -> None:
    """A model on a labelled dataset none of whose labels it knows (another dataset's model, with the
    default dataset.name left as is): evaluating would store its predictions there and then find
    nothing to score, so it is refused first; a predict step warns, as its predictions would carry
    labels the dataset does not have."""
    known = set(model.labels or [])
    present = {label.tag for label in dataset.labels}
    if not known or not present or known & present:
        return
    own = None
    if model.dataset_id and model.dataset_id != dataset.id:
        try:
            own = platform.get_dataset(dataset_id=model.dataset_id).name
        except Exception:  # noqa: BLE001 - the name only adds a hint to the message below
            own = None
    apart = (f"model {model.name!r} knows the labels {first_few(sorted(known), 8)}, none of which dataset "
             f"{dataset.name!r} has ({first_few(sorted(present), 8)})")
    own_dataset = f"dataset.name={own}" if own else None
    if "evaluate" in steps:
        raise ConfigError(f"{apart}: there is nothing to evaluate", where="model.name, dataset.name",
                          fix=(f"evaluate it on its own dataset ({own_dataset}), " if own else "")
                          + "or name a model trained on this dataset" + with_its_settings(model, steps))
    if "predict" in steps:
        logger.warning("%s: its predictions there carry labels the dataset does not have%s", apart,
                       f" (its own dataset: {own_dataset})" if own else "")


def _subclass_of(target: str | None, trained_by: str | None) -> bool:
    """The run's adapter class derives from the one that trained the version (a fix of its predict, a
    subclass that logs more): it loads the same artifacts, so it may use the version."""
    from hydra.utils import get_class

    try:
        if issubclass(get_class(target), get_class(trained_by)):
            logger.info("the adapter %s derives from %s, which trained the version: it loads it", target, trained_by)
            return True
    except Exception:  # noqa: BLE001 - a class that no longer imports: the refusal below names it
        pass
    return False


def _trained_by(model) -> dict | None:
    """The adapter a version was trained with (``metadata.user.runner.adapter``), if the runner trained it."""
    return runner_metadata(model).get("adapter")


def _model(platform, dataset, settings: dict, steps: list[str], subsets: dict, run_dir: Path):
    spec = settings["model"]
    configuration = version_configuration(settings)
    if "train" not in steps:
        model = stored_version(platform, spec["name"])
        trained_by = _trained_by(model)
        if trained_by and trained_by.get("_target_") != settings["adapter"].get("_target_") \
                and not _subclass_of(settings["adapter"].get("_target_"), trained_by.get("_target_")):
            option = trained_by.get("option")
            fix = f"adapter={option}" if option else "choose the adapter that trained it"
            what = f"model {model.name!r} was trained by the adapter {trained_by.get('_target_')!r}" + \
                (f" (adapter={option})" if option else "") + f", not this run's {settings['adapter'].get('_target_')!r}"
            if option and not option_found("adapter", option):
                folders = config_folders_of(model)
                fix += f" {' '.join(folders)} (the config folder its training run had)" if folders else \
                    " and the config folder that holds it (hydra.searchpath=[file://<folder>])"
                what = (f"model {model.name!r} was trained by adapter={option} ({trained_by.get('_target_')}), an "
                        "option of a config folder this run does not search, so the run cannot take it")
            elif option:
                fix += " (or no adapter= at all: a run that does not train takes the one that trained its version)"
            fix += with_its_settings(model, steps)
            raise ConfigError(what, where="adapter", fix=fix)
        if not model.artifacts.list():
            raise ConfigError(f"model {model.name!r} has no artifacts (status {model.status!r}) to "
                              f"{'/'.join(steps)} with", where="model.name",
                              fix="name a trained version (python -m runner.store models lists them), or train one "
                                  "first (pipeline=train)")
        _check_labels_meet(platform, model, dataset, steps)
        # how this run goes, not what the model is (the run settings), and what its command line
        # sets: for this run only (runner/run_configuration.py); the version keeps its own
        apply_for_this_run(model, configuration, [(key, False) for key in RUN_SETTINGS if key in configuration],
                           recorded=False)
        _apply_given_configuration(model, configuration, steps)
        return model
    labels = spec.get("labels")
    absent = [label for label in labels or [] if str(label) not in dataset.labels_flat_dict]
    if absent:  # no item would train or score them: a misspelling, found before a version is made
        known = sorted(dataset.labels_flat_dict)
        named = ", ".join(f"{label!r}" + did_you_mean(str(label), known) for label in absent)
        raise ConfigError(f"model.labels names {named}, which dataset {dataset.name!r} does not have (it has "
                          f"{first_few(known, 12)})", where="model.labels",
                          fix="name only the dataset's labels (labels are case-sensitive), or model.labels=null for "
                              "all of them")
    base = platform.find_model(spec["name"])
    base_trained_by = _trained_by(base) if base is not None else None
    if base_trained_by and base_trained_by.get("_target_") != settings["adapter"].get("_target_"):
        logger.warning("model.name %s was trained by the adapter %s; this run trains a new version of it with %s, "
                       "from scratch", base.name, base_trained_by.get("_target_"), settings["adapter"].get("_target_"))
    if base is None:
        close = version_near(platform, spec["name"])
        if close:  # a first run makes its base model on purpose; a misspelt version's name would make one too
            raise ConfigError(f"there is no model {spec['name']!r}, and its name is that of a version but for a "
                              f"character or two (did you mean model.name={close}?): this run would make it as a "
                              "new base model, trained from scratch", where="model.name",
                              fix=f"model.name={close} trains on from that version; a new base model needs a name "
                                  "not this close to a version's (python -m runner.store models lists them)")
        try:
            base = platform.create_model(spec["name"], dataset, labels=labels, configuration=configuration,
                                         input_type=spec["input_type"], output_type=spec["output_type"],
                                         subsets=subsets, description=spec.get("description"))
        except AlreadyExistsError:  # a parallel job of the same sweep created it first
            base = platform.get_model(name=spec["name"])
    version = _clone_version(platform, base, spec["name"])
    version.configuration = _trained_on_configuration(base, configuration, settings["adapter"].get("_target_"))
    version.input_type, version.output_type = spec["input_type"], spec["output_type"]
    version.metadata.setdefault("system", {})["subsets"] = subsets
    # which adapter trained it: a run that evaluates or predicts with it names the one to choose; and
    # the run folder, whose .hydra/ holds the config and overrides that reproduce it
    version.metadata.setdefault("user", {})["runner"] = {"adapter": {"_target_": settings["adapter"].get("_target_"),
                                                                      "option": adapter_option()},
                                                         "run": str(run_dir.resolve()),
                                                         "launch": this_launch(run_dir.resolve())}
    # model.labels null: the dataset's labels now, which may have grown since the base model was made
    version.labels = list(labels) if labels is not None else list(dataset.labels_flat_dict)
    version.dataset_id = dataset.id
    version.update()
    return platform.get_model(version.id)


def run(cfg: DictConfig, output_dir: str | Path) -> float | None:
    """Run the configured pipeline; ``run.json`` in the run folder records how it ended (a sweep
    report reads it), whether it succeeded or raised. One run at a time in a folder (runner/run_lock.py)."""
    with run_lock.held(Path(output_dir)) as ours:
        if not ours:
            by = run_lock.holder(Path(output_dir))
            raise ConfigError(f"another run{f' (process {by})' if by else ''} is running in {output_dir}: two runs "
                              "in one folder would mix their outputs", where="hydra.run.dir (or hydra.sweep.dir)",
                              fix="give this run a folder of its own (leave hydra.run.dir out, or name a new one), "
                                  "or wait for that run to end")
        return _run_in_folder(cfg, output_dir)


def _run_in_folder(cfg: DictConfig, output_dir: str | Path) -> float | None:
    overrides = _job_overrides()
    kept = _completed_before(Path(output_dir), overrides) if cfg.get("resume") is True else None
    if kept is not None and _version_gone(cfg, kept, Path(output_dir)):
        kept = None
    if kept is not None:
        value = (kept.get("objective") or {}).get("value")  # none for a run without an evaluate step
        return float(value) if isinstance(value, (int, float)) else None
    _clear_earlier_outputs(Path(output_dir))
    record = RunRecord(Path(output_dir), overrides)
    interrupts.note_run(completed=False)
    if interrupts.stopping():  # a launcher's worker told to stop: this job of the sweep does not start
        record.not_started(interrupts.stopping())
        raise interrupts.Terminated(interrupts.stopping())
    try:
        with collection_paused():  # the adapter's module loads its libraries here: see runner/gc_control.py
            the_plan = plan(cfg)
        objective, model = _run(cfg, the_plan, Path(output_dir), record)
        record.completed(objective, model)
        interrupts.note_run(completed=True)
    except BaseException as err:
        interrupts.release(raise_pending=False)
        if (record.model or {}).get("status") == "training":  # train_model marked it failed
            record.model["status"] = "failed"
        record.failed(err)
        if record.configuration_changes:  # a setting the weights depend on cannot change without training
            err.configuration_changes = record.configuration_changes
        if (record.model or {}).get("status") in ("trained", "failed"):
            err.kept_version = (record.model["name"], record.model["status"], record.model.get("artifacts"),
                                str(output_dir))
        raise
    interrupts.release()  # a signal that came while the outputs were written ends the process now
    return objective


def _job_overrides() -> list[str] | None:
    """This job's command-line overrides (of its sweep's, the job's own values), less ``resume``: what
    ``resume=true`` compares with the run a folder holds."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return job_overrides(HydraConfig.get().overrides.task)


def _completed_before(output_dir: Path, overrides: list[str] | None) -> dict | None:
    """With ``resume=true``: the ``run.json`` of the run this folder holds, when it completed with these
    overrides (the job is kept, not run again); None when it has to run. A folder holding another
    job's run is refused: running this one there would write over it."""
    try:
        earlier = json.loads((output_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(earlier, dict) or earlier.get("status") in ("not started", None):
        return None
    if earlier.get("overrides") is not None and sorted(earlier["overrides"]) != sorted(overrides or []):
        raise ConfigError(f"resume=true: {output_dir} holds the run of other overrides "
                          f"({' '.join(earlier['overrides']) or 'none'}; this job's: {' '.join(overrides or []) or 'none'})",
                          where="resume=true, hydra.sweep.dir",
                          fix="give resume=true the very command of the sweep that made the folder (its "
                              "multirun.yaml holds it), or sweep into a new folder")
    if earlier.get("status") != "completed" or earlier.get("overrides") is None:
        return None
    logger.info("resume: %s completed before (model version %s): kept, not run again", output_dir,
                (earlier.get("model") or {}).get("name"))
    return earlier


def _version_gone(cfg: DictConfig, earlier: dict, output_dir: Path) -> bool:
    """A completed job that ``resume=true`` would keep, whose model version was deleted since: its
    results name a version no one can use any more, so the job runs again."""
    name = (earlier.get("model") or {}).get("name")
    if not name:
        return False
    try:
        instantiate(cfg.platform).get_model(name=name)
    except NotFoundError:
        logger.info("resume: %s completed before, but its model version %s is no longer in the store: run again",
                    output_dir, name)
        return True
    return False


# what a run writes into its folder, besides Hydra's .hydra/ and the log
RUN_OUTPUTS = ("run.json", "metrics.json", "model.json", "data.json", "training_curves.png", "confusion_matrix.png",
               "pr_curves.png")


def _clear_earlier_outputs(output_dir: Path) -> None:
    """A run folder used again (``hydra.run.dir=fixed``, a sweep into the same ``hydra.sweep.dir``):
    what an earlier run wrote there must not pass for this run's outputs. Files of those names in a
    folder no run wrote (every run writes ``run.json`` first) are the user's: refused, not deleted."""
    found = [name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    if found and "run.json" not in found:
        raise ConfigError(f"the run folder {output_dir} holds {', '.join(found)}, files this run would write over, "
                          "and no run.json: an earlier run did not write them", where="hydra.run.dir",
                          fix="give the run a folder of its own (hydra.run.dir=<new folder>, or leave it out), or "
                              "move those files away")
    for name in found:
        (output_dir / name).unlink()


def _slash_hint(dql) -> str:
    """A ``dir`` or ``filename`` value without its leading ``/`` (``dir: test``): a remote path always
    starts with one, so such a filter matches nothing."""
    found = []

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k if k in ("dir", "filename") else key if str(k).startswith("$") else None)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key and isinstance(node, str) and node and not node.startswith(("/", "*")):
            found.append((key, node))

    walk(dql)
    return "".join(f"; {key} values start with '/' ({key}: /{value}, not {value})" for key, value in found[:1])


def _refuse_split_too_small(platform, dataset, spec: dict, name: str, every: list[str]) -> None:
    """A random split that leaves a subset empty: the dataset has too few items for its fractions, and
    correcting a filter (the message for a filter option) is not what to do."""
    total = platform.count_items(dataset, spec.get("base"))
    fractions = ", ".join(f"{k}: {v}" for k, v in spec["fractions"].items())
    raise EmptySubsetError(f"the random split gives subset {name!r} no item: dataset {dataset.name!r} has {total} "
                           f"item{'s' if total != 1 else ''} to split by the fractions {{{fractions}}}",
                           where=f"subsets.fractions.{name}",
                           fix=(f"to use every item of the dataset: {' '.join(every)}; or " if every else "")
                           + "import more items, try another seed, or set fractions that give each subset an item "
                             "(subsets.fractions.<subset>=...)")


def _run(cfg: DictConfig, the_plan: Plan, output_dir: Path, record: RunRecord) -> tuple[float | None, Any]:
    objective_spec = the_plan.settings.get("objective") or {}
    settings, steps = the_plan.settings, the_plan.steps
    if "evaluate" in steps:  # the steps that score nothing have no objective to record
        record.objective = {"metric": objective_spec.get("metric"),
                            "direction": objective_spec.get("direction", "maximize")}
    root = settings["platform"].get("root")
    if "train" not in steps and str(settings["platform"].get("_target_", "")).endswith("local.LocalPlatform") \
            and root and not holds_store(root):
        raise ConfigError(f"there is no local platform at {root}, so no model version {settings['model']['name']!r} "
                          f"to {'/'.join(steps)} with", where="platform.root (DATALOOP_PATH)",
                          fix="point platform.root (or DATALOOP_PATH) at the store that holds the version: the one "
                              "its training run used (python -m runner.store --root <folder> models lists a store's "
                              "versions), or train one there first (pipeline=train)")
    platform = instantiate(cfg.platform)
    record.environment = run_environment(the_plan.adapter_class, str(root) if root else None)
    # the model version must exist before anything is imported
    version = stored_version(platform, settings["model"]["name"]) if "train" not in steps else None
    dataset = _dataset(platform, settings["dataset"])
    subsets = _subsets(platform, dataset, settings["subsets"])
    check_used_subsets(settings["pipeline"], steps, subsets)
    # a training run writes every subset; the other steps need only the ones they read
    needed = set(subsets) if "train" in steps else set(used_subsets(settings["pipeline"], steps).values())
    counts = {}
    for name, subset_filter in subsets.items():
        try:
            counts[name] = platform.count_items(dataset, subset_filter)
        except FilterError as err:  # the filter's own path alone does not say which subset holds it
            raise FilterError(err.what, where=f"subsets.{name}: {err.where}", fix=err.fix) from None
        if counts[name] == 0 and name in needed:
            # scoring on every item is for data the version was not trained on: of its own, that holds its training items
            other_data = version is not None and version.dataset_id != dataset.id
            every = [f"pipeline.{key}=null" for key in ("predict_subset", "embed_subset", "evaluate_subset")
                     if key.split("_")[0] in steps and settings["pipeline"].get(key) == name
                     and (key != "evaluate_subset" or other_data)]
            if "fractions" in settings["subsets"]:  # a computed split: the dataset is too small for it
                _refuse_split_too_small(platform, dataset, settings["subsets"], name, every)
            source = platform.import_source(dataset) if platform.name == "local" else None
            from_folder = any(is_path_key(key) for key in source or {})
            raise EmptySubsetError(f"subset {name!r} matches no item of dataset {dataset.name!r}",
                                   where=f"subsets.{name}: {subset_filter}",
                                   fix=(f"to use every item of the dataset: {' '.join(every)}; or " if every else "")
                                   + "correct the filter (see conf/subsets/) or choose another subsets option "
                                       "(subsets=random_split splits any dataset"
                                   + ("; subsets=model, the subsets the version was trained with" if "train" not in
                                      steps and not other_data and not str(settings["subsets"].get("_target_", ""))
                                      .endswith(".of_model") else "") + ")"
                                   + ("; a dataset imported from a folder whose layout has changed since is "
                                      "imported again under a new dataset.name" if from_folder else "")
                                   + _slash_hint(subset_filter))

    # the data as the steps find it: a predict step's own annotations, a dataset changed meanwhile, are not it
    content_hash = {name: platform.fingerprint(dataset, f) for name, f in subsets.items()}
    read = [subsets[name] for name in ([*subsets] if "train" in steps else used_subsets(settings["pipeline"], steps)
                                       .values()) if name in subsets] or [None]
    if "train" in steps:
        _check_input_type(platform, dataset, settings["model"].get("input_type"), read[0], the_plan.adapter_class)
        _check_annotated(platform, dataset, settings, subsets)
    seed_everything(int(settings.get("seed", 0)))
    model = _model(platform, dataset, settings, steps, subsets, output_dir)
    if "train" not in steps:
        _check_input_type(platform, dataset, model.input_type, read[0], the_plan.adapter_class)
    record.model = {"id": model.id, "name": model.name}
    record.configuration_changes = changed_for_this_run(model)
    if "evaluate" in steps:
        name = settings["pipeline"].get("evaluate_subset")
        _warn_if_trained_on(platform, dataset, model, name, subsets.get(name) if name else None, counts.get(name),
                            training="train" in steps)
    from .adapter import new_adapter

    adapter = new_adapter(the_plan.adapter_class, model)
    adapter.platform = platform
    adapter.metric_functions = the_plan.metric_functions
    adapter.sharding = the_plan.sharding
    pipeline = settings["pipeline"]

    def subset_filter(key: str):
        name = pipeline.get(key)
        return None if name is None else subsets[name]

    metrics: dict | None = None
    try:
        for step in steps:
            key = f"{step}_subset"
            reading = "" if step == "train" else (
                f", on dataset {dataset.name!r}: " + (f"subset {pipeline[key]!r}, {counts.get(pipeline[key])} items"
                                                      if pipeline.get(key) is not None else "every item"))
            logger.info("step %s: model %s (%s)%s", step, model.name, model.id, reading)
            if step == "train":
                record.model["status"] = "training"
                try:
                    adapter.train_model(model, cleanup=pipeline.get("cleanup", False))
                finally:  # a failed training keeps what it saved: the note on the console says whether that is anything
                    record.model["artifacts"] = len(model.artifacts.list())
                record.model["status"] = "trained"  # a later step's failure leaves this version, run.json says
            elif step == "evaluate":
                metrics = adapter.evaluate_model(model, dataset, filters=subset_filter("evaluate_subset"))
            elif step == "predict":
                adapter.load_from_model(model_entity=model)
                count = record.items["predicted"] = adapter.predict_dataset(dataset, filters=subset_filter("predict_subset"))
                logger.info("predicted %d items%s", count, _export_hint(platform, dataset, model))
            elif step == "embed":
                adapter.load_from_model(model_entity=model)
                count = record.items["embedded"] = adapter.embed_dataset(dataset, filters=subset_filter("embed_subset"))
                logger.info("embedded %d items", count)
    except BaseException:  # a failed step's prepare and writer threads (and processes) end with it
        adapter.close_pools(failed=True)
        raise
    adapter.close_pools()

    interrupts.hold()  # the steps are done: a signal now waits until run.json says so (runner/interrupts.py)
    model = platform.get_model(model.id)
    write_json(output_dir / "model.json", model_summary(model))
    plot_training_curves(model.metrics.list(), output_dir / "training_curves.png")
    write_json(output_dir / "data.json", {
        "dataset": {"id": dataset.id, "name": dataset.name},
        "items_per_subset": counts,
        "content_hash": content_hash,
    })
    objective = None
    if metrics is not None:
        if metrics:
            write_json(output_dir / "metrics.json", metrics)
            if isinstance(metrics.get("confusion_matrix"), dict):
                plot_confusion_matrix(metrics["confusion_matrix"], output_dir / "confusion_matrix.png")
            if isinstance(metrics.get("pr_curves"), dict):
                plot_pr_curves(metrics["pr_curves"], output_dir / "pr_curves.png")
            say(metrics_table(metrics))
        objective_key = settings.get("objective", {}).get("metric")
        if objective_key and objective_key in metrics:
            objective = float(metrics[objective_key])
        elif objective_key:
            known = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
            what = (f"objective.metric {objective_key!r} is not among the evaluate step's metrics" if known else
                    "the adapter's evaluate returned no metrics (a dl.Model, as on Dataloop, or an empty dict)")
            fix = (f"choose one of {known}" if known else "return a dict of metrics from evaluate (they are then "
                   "stored, written to metrics.json and can be swept on)")
            if _in_sweep():  # a sweeper ranks the jobs by it
                raise ConfigError(what, where="objective.metric", fix=fix)
            logger.warning("%s: this run has no objective value; %s", what, fix)
    say(f"model version: {model.name} ({model.id}), status {model.status}")
    say(f"outputs: {output_dir.resolve()}")
    return objective, model
