"""Composition from config: the only code that reads the config tree.

``run(cfg, output_dir)`` validates everything it can before it writes anything, then builds the
platform, the dataset, the model version and the adapter, runs the pipeline steps, writes the run's
outputs and returns the objective metric (for sweepers).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import random
import re
import secrets
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from . import interrupts
from .configuration import is_whole_number
from .errors import AlreadyExistsError, ConfigError, EmptySubsetError, FilterError, NotFoundError
from .gc_control import collection_paused
from .metrics import CLASSIFICATION_SCALARS, COCO_SCALARS, INSTANCE_SCALARS, SCORE_SCALARS, SEMANTIC_SCALARS
from .model_details import config_folders_of
from .paths import is_folder_name
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
from .studies import objective_problem

logger = logging.getLogger("runner")

STEPS = ("train", "evaluate", "predict", "embed")

register_resolvers()


@dataclass
class Plan:
    """What the config asks for, checked and resolved before anything runs."""

    settings: dict
    steps: list[str]
    adapter_class: type
    metric_functions: dict[str, Any]
    sharding: Any


def plan(cfg: DictConfig) -> Plan:
    from .adapter import bind_adapter_class
    from .evaluation import leave_out_shadowing_metric
    from .locating import locate

    register_resolvers()  # a launcher's worker process may run many jobs, and Hydra resets resolvers per job

    try:
        settings = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(f"the config is missing a required value: {err.full_key}",
                          where=f"key {err.full_key}",
                          fix=f"set it on the command line, e.g. {err.full_key}=<value>") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"the config cannot be resolved: {err.msg if hasattr(err, 'msg') else err}",
                          where=f"key {getattr(err, 'full_key', '?')}",
                          fix="check the interpolations (${...}) and overrides of that key") from None

    for key in ("platform", "dataset", "adapter", "model", "subsets", "pipeline"):
        if not isinstance(settings.get(key), dict):
            raise ConfigError(f"the config has no {key!r} group", where=key, fix=f"choose one: {key}=<option>")

    _check_group_keys(settings)
    _warn_added_near_misses(settings)
    _check_scalars(settings)
    _check_run_settings(settings)

    steps = list(settings["pipeline"].get("steps") or [])
    unknown = [s for s in steps if s not in STEPS]
    if not steps or unknown:
        raise ConfigError(f"pipeline steps {unknown or steps} are not steps this runner knows",
                          where="pipeline.steps", fix=f"use steps from {list(STEPS)}")
    _check_search_has_an_objective(steps, settings)

    target = settings["adapter"].get("_target_")
    located = locate(target, "adapter._target_", "check the module path and class name, or install the package that "
                                                 "provides it")
    try:
        adapter_class = bind_adapter_class(located)
    except TypeError as err:
        raise ConfigError(str(err), where="adapter._target_",
                          fix="point _target_ at a class subclassing runner.BaseModelAdapter or dl.BaseModelAdapter") from None

    for step in steps:
        for name in STEP_NEEDS[step]:
            if not _defines(adapter_class, name):
                raise ConfigError(f"the {step} step needs the user function {name!r}, which "
                                  f"{adapter_class.__name__} does not define", where=f"adapter._target_ {target!r}",
                                  fix=f"define {name} on the adapter, or choose a pipeline without {step}")
    metric_functions: dict[str, Any] = {}
    metrics = settings.get("metrics") or {}
    output_type = settings["model"].get("output_type")
    _check_output_type(output_type)
    if "evaluate" in steps and metrics:
        family = OUTPUT_FAMILY.get(output_type, output_type)
        if OUTPUT_FAMILY.get(metrics.get("output_type"), metrics.get("output_type")) not in (None, family):
            raise ConfigError(f"the metrics set scores {metrics['output_type']!r} outputs, but model "
                              f"{settings['model']['name']!r} outputs {output_type!r}",
                              where="metrics", fix=f"choose a metrics set for {output_type!r} outputs: "
                              + {"class": "metrics=classification (or metrics=minimal)", "box": "metrics=detection",
                                 "segment": "metrics=segmentation"}.get(family, "metrics=<option>"))
        standard = set(DEFAULT_SCALARS.get(output_type, ())) if _uses_default_evaluate(adapter_class) else set()
        for name, spec in (metrics.get("scores") or {}).items():
            if name in standard:  # as older metrics sets (and saved configs) have them: the standard one stays
                leave_out_shadowing_metric(name)
                continue
            spec = dict(spec)
            function = locate(spec.pop("_target_", None), f"metrics.scores.{name}._target_",
                              "name a function f(y_true, y_pred), e.g. sklearn.metrics.f1_score")
            if not callable(function):
                raise ConfigError(f"metrics.scores.{name}._target_ names {type(function).__name__} {function!r}, not a "
                                  "function", where=f"metrics.scores.{name}._target_",
                                  fix="name a function f(y_true, y_pred), e.g. sklearn.metrics.f1_score")
            metric_functions[name] = partial(function, **spec)

    objective = (settings.get("objective") or {}).get("metric")
    if "evaluate" in steps and objective and _uses_default_evaluate(adapter_class):
        known = set(DEFAULT_SCALARS.get(output_type, ())) | set(metric_functions)
        if output_type in ("class", "text_mark"):
            known |= set(SCORE_SCALARS)  # when the adapter gives per-class scores
        if objective not in known:
            raise ConfigError(f"objective.metric {objective!r} is not a metric the evaluate step computes",
                              where="objective.metric", fix=f"choose one of {sorted(known)}")

    names = _subset_names(settings["subsets"])
    if names is not None:  # else known once computed (subsets=model)
        _check_used_subsets(settings["pipeline"], steps, names)
    if not isinstance(settings["pipeline"].get("cleanup", False), bool):
        raise ConfigError(f"pipeline.cleanup is {settings['pipeline']['cleanup']!r}, not true or false",
                          where="pipeline.cleanup", fix="pipeline.cleanup=true or pipeline.cleanup=false")
    from .sharding import Sharding

    try:
        sharding = Sharding(**(settings.get("sharding") or {}))
    except TypeError as err:
        raise ConfigError(f"the sharding settings are not valid: {err}", where="sharding",
                          fix="use the keys workers, backend and ray_address") from None
    return Plan(settings, steps, adapter_class, metric_functions, sharding)


def _check_output_type(output_type) -> None:
    import dtlpy as dl

    known = sorted({t.value for t in dl.AnnotationType} | {"embedding"})
    if output_type is not None and output_type not in known:
        raise ConfigError(f"output type {output_type!r} is not one Dataloop knows", where="adapter.output_type "
                          "(model.output_type)", fix=f"use one of {known} (class for classification, box for "
                          "detection, segment or binary for segmentation)")


# the keys the runner reads of these groups: any other is a misspelling (``configuraton:``) that would
# leave the setting it meant unset without a word
GROUP_KEYS = {"adapter": ("_target_", "name", "input_type", "output_type", "configuration"),
              "model": ("name", "labels", "input_type", "output_type", "description", "configuration")}


def _check_group_keys(settings: dict) -> None:
    for group, known in GROUP_KEYS.items():
        for key in settings.get(group) or {}:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                path = _file_setting(group, key)
                raise ConfigError(f"{group}.{key} is not a key the runner reads"
                                  + (f" (did you mean {group}.{close[0]}?)" if close else ""),
                                  where=f"{group}.{key}" + (f", written in {path}" if path else ""),
                                  fix=f"the keys of {group} are {', '.join(known)}; an adapter's own settings go under "
                                      f"{group}.configuration")


def _warn_added_near_misses(settings: dict) -> None:
    """A key added with ``+`` (Hydra's advice for a key the config lacks) that is a letter or two off a
    key beside it (``+batch_sise=3``, ``+adapter.configuration.estimater.C=2`` next to ``estimator``):
    nothing reads it, and the setting meant keeps its value. And a subset's filter added with ``+`` over
    the option's, which Hydra merges into it: both then apply."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    task = HydraConfig.get().overrides.task
    for override in task:
        key = override[1:].partition("=")[0]
        if not override.startswith("+") or override.startswith("++") or key.startswith("hydra."):
            continue
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "subsets" and parts[2] == "filter" and f"~{key}" not in task:
            logger.warning("%s, added with '+', is merged into the filter of the subsets option (both apply); to "
                           "replace it: '~%s' '+%s=...'", key, key, key)
        # an adapter's configuration takes new keys at any depth below it; elsewhere the added key is
        # the last part (the parts before it name existing nodes)
        configuration = parts[0] in ("adapter", "model") and parts[1:2] == ["configuration"]
        first = 2 if configuration else len(parts) - 1
        node = settings
        for depth, part in enumerate(parts):
            if not isinstance(node, dict):
                break
            beside = [k for k in {*node, *(RUN_SETTINGS if configuration and depth == 2 else ())} if k != part]
            close = difflib.get_close_matches(part, beside, n=1, cutoff=0.8) if depth >= first else []
            if close:
                meant = ".".join([*parts[:depth], close[0]])
                logger.warning("%s, added with '+', is close to %s: a misspelt key is a new setting %s does not "
                               "read (did you mean %s?)", ".".join(parts[:depth + 1]), meant,
                               "the adapter" if configuration else "the runner", meant)
                break
            node = node.get(part)


def _check_scalars(settings: dict) -> None:
    """The top-level values every step uses: a bad one would otherwise fail, or score wrong, only
    after a model version was trained."""
    for key, minimum, example in (("batch_size", 1, "batch_size=32"), ("seed", 0, "seed=0")):
        if key in settings and not is_whole_number(settings[key], minimum):
            bound = f" of at least {minimum}" if minimum is not None else ""
            raise ConfigError(f"{key} is {settings[key]!r}, not a whole number{bound}", where=key,
                              fix=f"e.g. {example}")
    direction = (settings.get("objective") or {}).get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"objective.direction is {direction!r}, not maximize or minimize", where="objective.direction",
                          fix="objective.direction=maximize or objective.direction=minimize")
    for group, example in (("dataset", "my-photos"), ("model", "digits-cnn")):  # model.name derives from dataset.name
        name = settings[group].get("name")
        if not is_folder_name(name):
            raise ConfigError(f"{group}.name is {name!r}: a {group}'s name names its folders, so it must be a "
                              "non-empty name without '/', '\\' or a NUL", where=f"{group}.name",
                              fix=f"{group}.name=<name>, e.g. {group}.name={example}")


_SEGMENTATION_SCALARS = (*SEMANTIC_SCALARS, *(f"instance_{k}" for k in INSTANCE_SCALARS))
DEFAULT_SCALARS = {"class": CLASSIFICATION_SCALARS, "text_mark": CLASSIFICATION_SCALARS, "box": COCO_SCALARS,
                   "segment": _SEGMENTATION_SCALARS, "binary": _SEGMENTATION_SCALARS}
# output types one metrics set serves: polygons and masks are both scored as segmentation
OUTPUT_FAMILY = {"binary": "segment", "text_mark": "class"}
STEP_NEEDS = {"train": ("load", "save", "train"), "evaluate": ("load", "predict"),
              "predict": ("load", "predict"), "embed": ("load", "embed")}


def _defines(adapter_class: type, name: str) -> bool:
    import dtlpy as dl

    return getattr(adapter_class, name) is not getattr(dl.BaseModelAdapter, name)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _check_search_has_an_objective(steps: list[str], settings: dict) -> None:
    """An Optuna trial must return its objective; checked before the search starts too, except for a
    config only Hydra composes (runner.argv_checks): stop each trial before it trains."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or "optuna" not in str(HydraConfig.get().sweeper.get("_target_", "")).lower():
        return
    problem = objective_problem(steps, (settings.get("objective") or {}).get("metric"))
    if problem:
        raise ConfigError(*problem)


def _subset_names(spec: dict) -> list[str] | None:
    """The subsets a subsets option defines; a computed one (``_target_``) names them in ``fractions``,
    or is known only once computed (None)."""
    if "_target_" in spec:
        return sorted(spec["fractions"]) if "fractions" in spec else None
    return sorted(spec)


_STEP_SUBSET = {"evaluate": "evaluate_subset", "predict": "predict_subset", "embed": "embed_subset"}


def _used_subsets(pipeline: dict, steps: list[str]) -> dict[str, str]:
    """pipeline key -> the subset name a non-training step reads (null: every item, left out)."""
    return {key: pipeline[key] for step, key in _STEP_SUBSET.items() if step in steps and pipeline.get(key) is not None}


def _check_used_subsets(pipeline: dict, steps: list[str], names) -> None:
    for key, subset in _used_subsets(pipeline, steps).items():
        if subset not in names:
            raise ConfigError(f"pipeline.{key} is {subset!r}, which is not one of the subsets {sorted(names)}",
                              where=f"pipeline.{key}",
                              fix="name a subset of the chosen subsets group, or null for every item")


def _uses_default_evaluate(adapter_class: type) -> bool:
    from .adapter import BaseModelAdapter

    return adapter_class.evaluate is BaseModelAdapter.evaluate


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
        _check_import_source(platform, dataset, _as_json(source))
        return dataset
    if source and platform.name != "local":
        raise ConfigError(f"the {platform.name} platform has no dataset {spec['name']!r}; the importers write to "
                          "the local platform only", where="dataset.name",
                          fix="name a dataset that exists on the platform, or import it there first")
    if not source:
        raise ConfigError(f"the platform has no dataset {spec['name']!r} and the config gives no source to import",
                          where="dataset.source", fix="import the dataset first, or give dataset.source")
    logger.info("importing dataset %r", spec["name"])
    dataset = instantiate(source, platform=platform).dataset
    platform.record_import_source(dataset, _as_json(source))
    return dataset


def _as_json(source: dict | None) -> dict | None:
    """``source`` as the store keeps it (JSON types: tuples become lists), so the two compare; file and
    folder paths absolute, so ``photos``, ``./photos/`` and ``/abs/photos`` are one folder and
    ``photos`` seen from another working folder is another."""
    if not source:
        return None
    return {key: _absolute(value) if _is_path_key(key) and isinstance(value, str) else value
            for key, value in json.loads(json.dumps(source)).items()}


def _is_path_key(key: str) -> bool:
    return key == "folder" or key.endswith(("_dir", "_file", "_folder", "_path"))


def _absolute(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _check_import_source(platform, dataset, wanted: dict | None) -> None:
    """A dataset in the store is used as it is: a ``dataset.source`` that differs from the one it was
    imported with (another size, seed or folder) would otherwise be ignored without a word."""
    if not wanted or platform.name != "local":
        return
    recorded = _as_json(platform.import_source(dataset))  # relative paths of older stores: from here
    if recorded is None or recorded == wanted:
        return
    changed = sorted(key for key in recorded.keys() | wanted.keys() if recorded.get(key) != wanted.get(key))
    was = ", ".join(f"{key}={recorded.get(key)!r}" for key in changed)
    now = ", ".join(f"{key}={wanted.get(key)!r}" for key in changed)
    raise ConfigError(f"dataset {dataset.name!r} is already in the store, imported with {was}; this run's "
                      f"dataset.source asks for {now}, which would be ignored",
                      where="dataset.source", fix=f"import the new data under another name (dataset.name=<new name>), "
                      f"delete the stored one (python -m runner.store delete-dataset {dataset.name} --with-models), "
                      f"or set dataset.source back to {was}")


def _subsets(platform, dataset, spec: dict) -> dict[str, dict]:
    if "_target_" in spec:
        # entities go in as call arguments: passed to instantiate they would be merged into the config
        return instantiate(spec, _partial_=True, _convert_="all")(platform=platform, dataset=dataset)
    return spec


_VERSION_SUFFIX = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def _version_name(base: str) -> str:
    """``<base>-<date>-<time>-<4 hex>``; a version trained again (a resumed failed one) gets a fresh
    suffix instead of a second one."""
    return f"{_VERSION_SUFFIX.sub('', base)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _clone_version(platform, base, name: str):
    """A new version of ``base`` under a fresh name; parallel jobs started in the same second may
    draw the same random suffix, so a taken name is drawn again."""
    for attempt in range(5):
        try:
            return platform.clone_model(base, _version_name(name), status="created")
        except AlreadyExistsError:
            if attempt == 4:
                raise


def _configuration(settings: dict) -> dict:
    """A new version's configuration: the adapter's, with ``model.configuration`` merged over it."""
    return {**(settings["adapter"].get("configuration") or {}), **(settings["model"].get("configuration") or {})}


# configuration keys that say how a run goes, not what the model is: a run that does not train takes
# them from its own config (the version keeps the rest of what it was trained with)
RUN_SETTINGS = ("batch_size", "prepare_in", "prepare_workers")


def _check_run_settings(settings: dict) -> None:
    """The configuration keys the runner itself reads, checked before anything is stored (a bad one
    would fail the evaluate step after a version was trained)."""
    from .adapter import check_prepare_settings

    configuration = _configuration(settings)
    given = settings["adapter"].get("configuration") or {}
    if "batch_size" in given and given["batch_size"] != configuration.get("batch_size"):
        logger.warning("adapter.configuration.batch_size=%r is replaced by the run's batch_size (%r): set the batch "
                       "size with batch_size=%s", given["batch_size"], configuration.get("batch_size"),
                       given["batch_size"])
    if "batch_size" in configuration and not is_whole_number(configuration["batch_size"], 1):
        raise ConfigError(f"configuration.batch_size is {configuration['batch_size']!r}, not a whole number of at "
                          "least 1", where="model.configuration.batch_size", fix="batch_size=32")
    check_prepare_settings(configuration, "adapter.configuration")


def _check_annotated(platform, dataset, settings: dict, subsets: dict) -> None:
    """Before a version is made: every subset holds items that prepare_data will take (with an
    annotation of the output type, as on Dataloop), else the error comes now, not after training."""
    from .adapter import downloaded, ground_truth_filter, no_annotated_items

    configuration = _configuration(settings)
    output_type = settings["model"].get("output_type")
    background = bool(configuration.get("include_background", False))
    annotations = ground_truth_filter(output_type, bool(configuration.get("include_model_annotations", False)))
    for name, subset_filter in subsets.items():
        if not any(platform.count_items(dataset, f) for f in downloaded(subset_filter, annotations, output_type,
                                                                       background)):
            raise no_annotated_items(name, settings["model"]["name"], output_type, subset_filter, annotations,
                                     background)


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


def _warn_ignored_overrides(model, steps: list[str]) -> None:
    """Configuration keys set on the command line of a run that does not train do not reach the
    version (it keeps what it was trained with, as on Dataloop): say so rather than ignore them."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    given = [o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task]
    # adapter=<option> is how the run finds the class that loads the version: it applies
    ignored = [key for key in given if key == "experiment" or (key.startswith(
        ("adapter.configuration.", "model.configuration.")) and key.split(".", 2)[2] not in RUN_SETTINGS)]
    if ignored:
        logger.warning("%s: not applied; this run (%s) uses the configuration model %s was trained with (only %s "
                       "are taken from this run): train a new version with them (pipeline=train_evaluate ...)",
                       ", ".join(ignored), "/".join(steps), model.name, ", ".join(RUN_SETTINGS))


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
    apart = (f"model {model.name!r} knows the labels {sorted(known)[:8]}, none of which dataset {dataset.name!r} "
             f"has ({sorted(present)[:8]})")
    own_dataset = f"dataset.name={own}" if own else None
    if "evaluate" in steps:
        raise ConfigError(f"{apart}: there is nothing to evaluate", where="model.name, dataset.name",
                          fix=(f"evaluate it on its own dataset ({own_dataset}), " if own else "")
                          + "or name a model trained on this dataset")
    if "predict" in steps:
        logger.warning("%s: its predictions there carry labels the dataset does not have%s", apart,
                       f" (its own dataset: {own_dataset})" if own else "")


def _trained_by(model) -> dict | None:
    """The adapter a version was trained with (``metadata.user.runner.adapter``), if the runner trained it."""
    return runner_metadata(model).get("adapter")


def _adapter_option() -> str | None:
    """The ``adapter=`` option of this run (None outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("adapter") if HydraConfig.initialized() else None


def _option_files(group: str, option: str | None = None) -> list[Path] | None:
    """This run's files of ``group/option.yaml`` (``option``: this run's choice), in search-path order;
    None when it cannot tell: outside a Hydra run, or with a package's config folder on the search path."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    runtime = HydraConfig.get().runtime
    option = option or runtime.choices.get(group)
    found = []
    for source in runtime.config_sources:
        if source.schema == "file" and (Path(source.path) / group / f"{option}.yaml").is_file():
            found.append(Path(source.path) / group / f"{option}.yaml")
        if source.schema == "pkg" and not source.path.startswith(("hydra.", "hydra_plugins.")):
            return None  # only Hydra reads a package's config folder
    return found


def _option_found(group: str, option: str) -> bool:
    files = _option_files(group, option)
    return files is None or bool(files)


def _file_setting(group: str, key: str) -> Path | None:
    """The file of this run's ``group`` option that writes ``key`` (None: the command line did)."""
    import yaml

    for path in _option_files(group) or []:  # the first on the search path is the one Hydra reads
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
            if key in (yaml.safe_load(path.read_text()) or {}):
                return path
    return None


def _stored_version(platform, name: str):
    """The version a run without training uses; missing, the error names the key and how to make one."""
    try:
        return platform.get_model(name=name)
    except NotFoundError as err:
        raise NotFoundError(err.what, where="model.name", fix=(err.fix or "").removesuffix(", or create it first")
                            + f", or train one first: a run with pipeline=train (or train_evaluate) and "
                              f"model.name={name} trains a version of it") from None


def _model(platform, dataset, settings: dict, steps: list[str], subsets: dict, run_dir: Path):
    spec = settings["model"]
    configuration = _configuration(settings)
    if "train" not in steps:
        model = _stored_version(platform, spec["name"])
        trained_by = _trained_by(model)
        if trained_by and trained_by.get("_target_") != settings["adapter"].get("_target_"):
            option = trained_by.get("option")
            fix = f"add adapter={option}" if option else "choose the adapter that trained it"
            if option and not _option_found("adapter", option):
                folders = config_folders_of(runner_metadata(model).get("run"))
                fix += f" {' '.join(folders)} (the config folder its training run had)" if folders else \
                    " and the config folder that holds it (hydra.searchpath=[file://<folder>])"
            raise ConfigError(f"model {model.name!r} was trained by the adapter {trained_by.get('_target_')!r}"
                              + (f" (adapter={option})" if option else "") + f", not this run's "
                              f"{settings['adapter'].get('_target_')!r}", where="adapter", fix=fix)
        if not model.artifacts.list():
            raise ConfigError(f"model {model.name!r} has no artifacts (status {model.status!r}) to "
                              f"{'/'.join(steps)} with", where="model.name",
                              fix="name a trained version (python -m runner.store models lists them), or train one "
                                  "first (pipeline=train)")
        _check_labels_meet(platform, model, dataset, steps)
        # how this run goes, not what the model is: from the run; the version keeps the rest of the
        # configuration it was trained with (this copy is not stored)
        for key in RUN_SETTINGS:
            if key in configuration:
                model.configuration[key] = configuration[key]
        _warn_ignored_overrides(model, steps)
        return model
    labels = spec.get("labels")
    base = platform.find_model(spec["name"])
    base_trained_by = _trained_by(base) if base is not None else None
    if base_trained_by and base_trained_by.get("_target_") != settings["adapter"].get("_target_"):
        logger.warning("model.name %s was trained by the adapter %s; this run trains a new version of it with %s, "
                       "from scratch", base.name, base_trained_by.get("_target_"), settings["adapter"].get("_target_"))
    if base is None:
        versions = [m.name for m in platform.list_models() if _VERSION_SUFFIX.search(m.name)]
        close = difflib.get_close_matches(spec["name"], versions, n=1, cutoff=0.9)
        if close:  # a first run makes its base model on purpose; a misspelt version's name would make one too
            logger.warning("there is no model %r: this run makes it as a new base model and trains it from scratch "
                           "(did you mean model.name=%s?)", spec["name"], close[0])
        try:
            base = platform.create_model(spec["name"], dataset, labels=labels, configuration=configuration,
                                         input_type=spec["input_type"], output_type=spec["output_type"],
                                         subsets=subsets, description=spec.get("description"))
        except AlreadyExistsError:  # a parallel job of the same sweep created it first
            base = platform.get_model(name=spec["name"])
    version = _clone_version(platform, base, spec["name"])
    version.configuration = configuration
    version.input_type, version.output_type = spec["input_type"], spec["output_type"]
    version.metadata.setdefault("system", {})["subsets"] = subsets
    # which adapter trained it: a run that evaluates or predicts with it names the one to choose; and
    # the run folder, whose .hydra/ holds the config and overrides that reproduce it
    version.metadata.setdefault("user", {})["runner"] = {"adapter": {"_target_": settings["adapter"].get("_target_"),
                                                                      "option": _adapter_option()},
                                                         "run": str(run_dir.resolve())}
    # model.labels null: the dataset's labels now, which may have grown since the base model was made
    version.labels = list(labels) if labels is not None else list(dataset.labels_flat_dict)
    absent = [label for label in version.labels if label not in dataset.labels_flat_dict]
    if labels is not None and absent:
        logger.warning("model.labels names %s, which dataset %r does not have (it has %s): no item trains or scores "
                       "%s (a misspelling?)", absent, dataset.name, sorted(dataset.labels_flat_dict)[:12],
                       "it" if len(absent) == 1 else "them")
    version.dataset_id = dataset.id
    version.update()
    return platform.get_model(version.id)


def run(cfg: DictConfig, output_dir: str | Path) -> float | None:
    """Run the configured pipeline; ``run.json`` in the run folder records how it ended (a sweep
    report reads it), whether it succeeded or raised."""
    _clear_earlier_outputs(Path(output_dir))
    record = RunRecord(Path(output_dir))
    interrupts.note_run(completed=False)
    try:
        if interrupts.stopping():  # a launcher's worker told to stop: this job of the sweep does not start
            raise interrupts.Terminated(interrupts.stopping())
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
        if (record.model or {}).get("status") in ("trained", "failed"):
            err.kept_version = (record.model["name"], record.model["status"])  # the command line names it
        raise
    interrupts.release()  # a signal that came while the outputs were written ends the process now
    return objective


# what a run writes into its folder, besides Hydra's .hydra/ and the log
RUN_OUTPUTS = ("run.json", "metrics.json", "model.json", "data.json", "training_curves.png", "confusion_matrix.png",
               "pr_curves.png")


def _clear_earlier_outputs(output_dir: Path) -> None:
    """A run folder used again (``hydra.run.dir=fixed``, a sweep into the same ``hydra.sweep.dir``):
    what an earlier run wrote there must not pass for this run's outputs."""
    for name in RUN_OUTPUTS:
        (output_dir / name).unlink(missing_ok=True)


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
    record.objective = {"metric": objective_spec.get("metric"), "direction": objective_spec.get("direction", "maximize")}
    settings, steps = the_plan.settings, the_plan.steps
    platform = instantiate(cfg.platform)
    if "train" not in steps:  # the model version must exist before anything is imported
        _stored_version(platform, settings["model"]["name"])
    dataset = _dataset(platform, settings["dataset"])
    subsets = _subsets(platform, dataset, settings["subsets"])
    _check_used_subsets(settings["pipeline"], steps, subsets)
    # a training run writes every subset; the other steps need only the ones they read
    needed = set(subsets) if "train" in steps else set(_used_subsets(settings["pipeline"], steps).values())
    counts = {}
    for name, subset_filter in subsets.items():
        try:
            counts[name] = platform.count_items(dataset, subset_filter)
        except FilterError as err:  # the filter's own path alone does not say which subset holds it
            raise FilterError(err.what, where=f"subsets.{name}: {err.where}", fix=err.fix) from None
        if counts[name] == 0 and name in needed:
            every = [f"pipeline.{key}=null" for key in ("predict_subset", "embed_subset")
                     if key.split("_")[0] in steps and settings["pipeline"].get(key) == name]
            if "fractions" in settings["subsets"]:  # a computed split: the dataset is too small for it
                _refuse_split_too_small(platform, dataset, settings["subsets"], name, every)
            source = platform.import_source(dataset) if platform.name == "local" else None
            from_folder = any(_is_path_key(key) for key in source or {})
            raise EmptySubsetError(f"subset {name!r} matches no item of dataset {dataset.name!r}",
                                   where=f"subsets.{name}: {subset_filter}",
                                   fix=(f"to use every item of the dataset: {' '.join(every)}; or " if every else "")
                                   + "correct the filter (see conf/subsets/) or choose another subsets option "
                                       "(subsets=random_split splits any dataset)"
                                   + ("; a dataset imported from a folder whose layout has changed since is "
                                      "imported again under a new dataset.name" if from_folder else ""))

    if "train" in steps:
        _check_annotated(platform, dataset, settings, subsets)
    seed_everything(int(settings.get("seed", 0)))
    model = _model(platform, dataset, settings, steps, subsets, output_dir)
    record.model = {"id": model.id, "name": model.name}
    if "evaluate" in steps:
        name = settings["pipeline"].get("evaluate_subset")
        _warn_if_trained_on(platform, dataset, model, name, subsets.get(name) if name else None, counts.get(name),
                            training="train" in steps)
    adapter = the_plan.adapter_class()
    adapter.platform = platform
    adapter.metric_functions = the_plan.metric_functions
    adapter.sharding = the_plan.sharding
    pipeline = settings["pipeline"]

    def subset_filter(key: str):
        name = pipeline.get(key)
        return None if name is None else subsets[name]

    metrics: dict | None = None
    for step in steps:
        logger.info("step %s: model %s (%s)", step, model.name, model.id)
        if step == "train":
            record.model["status"] = "training"
            adapter.train_model(model, cleanup=pipeline.get("cleanup", False))
            record.model["status"] = "trained"  # a later step's failure leaves this version, run.json says
        elif step == "evaluate":
            metrics = adapter.evaluate_model(model, dataset, filters=subset_filter("evaluate_subset"))
        elif step == "predict":
            adapter.load_from_model(model_entity=model)
            count = adapter.predict_dataset(dataset, filters=subset_filter("predict_subset"))
            logger.info("predicted %d items%s", count, _export_hint(platform, dataset, model))
        elif step == "embed":
            adapter.load_from_model(model_entity=model)
            count = adapter.embed_dataset(dataset, filters=subset_filter("embed_subset"))
            logger.info("embedded %d items", count)
    adapter.batch_runner.close()

    interrupts.hold()  # the steps are done: a signal now waits until run.json says so (runner/interrupts.py)
    model = platform.get_model(model.id)
    write_json(output_dir / "model.json", model_summary(model))
    plot_training_curves(model.metrics.list(), output_dir / "training_curves.png")
    write_json(output_dir / "data.json", {
        "dataset": {"id": dataset.id, "name": dataset.name},
        "items_per_subset": counts,
        "content_hash": {name: platform.fingerprint(dataset, f) for name, f in subsets.items()},
    })
    objective = None
    if metrics is not None:
        if metrics:
            write_json(output_dir / "metrics.json", metrics)
            if isinstance(metrics.get("confusion_matrix"), dict):
                plot_confusion_matrix(metrics["confusion_matrix"], output_dir / "confusion_matrix.png")
            if isinstance(metrics.get("pr_curves"), dict):
                plot_pr_curves(metrics["pr_curves"], output_dir / "pr_curves.png")
            print(metrics_table(metrics))
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
    print(f"model version: {model.name} ({model.id}), status {model.status}")
    print(f"outputs: {output_dir.resolve()}")
    return objective, model
