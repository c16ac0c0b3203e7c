"""What the config asks for, checked before anything runs: part of the composition room with
``runner.app``, which alone calls it.

``plan(cfg)`` resolves the config, refuses what cannot work (unknown keys of the adapter and model
groups, bad scalars, steps the adapter lacks a user function for, metrics for another output type, an
objective the evaluate step does not compute, subsets the pipeline names but the subsets option lacks)
and returns the adapter class and the metric functions the run uses.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from .config_sources import file_setting
from .configuration import is_whole_number
from .errors import ConfigError
from .metrics import CLASSIFICATION_SCALARS, COCO_SCALARS, INSTANCE_SCALARS, SCORE_SCALARS, SEMANTIC_SCALARS
from .paths import CONFIG_DIR, is_folder_name, shipped_config
from .resolvers import register_resolvers
from .studies import objective_problem
from .text_table import did_you_mean

logger = logging.getLogger("runner")


STEPS = ("train", "evaluate", "predict", "embed")


@dataclass
class Plan:
    """What the config asks for, checked and resolved before anything runs."""

    settings: dict
    steps: list[str]
    adapter_class: type
    metric_functions: dict[str, Any]
    sharding: Any


def plan(cfg: DictConfig) -> Plan:
    from .adapter import bind_adapter_class, check_adapter_class
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
        raise _unresolved(err) from None

    for key in ("platform", "dataset", "adapter", "model", "subsets", "pipeline"):
        if not isinstance(settings.get(key), dict):
            raise ConfigError(f"the config has no {key!r} group", where=key, fix=f"choose one: {key}=<option>")

    check_group_keys(settings)
    _warn_added_near_misses(settings)
    _warn_top_level_near_misses(settings)
    _check_scalars(settings)
    _check_run_settings(settings)

    steps = settings["pipeline"].get("steps") or []
    if isinstance(steps, str):  # pipeline.steps=train: a string, not the list of steps
        raise ConfigError(f"pipeline.steps is the string {steps!r}, not a list of steps", where="pipeline.steps",
                          fix=f"pipeline.steps=[{steps}] (or choose a pipeline: pipeline=train)")
    steps = list(steps)
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
                                  fix=f"define {name} on the adapter, or choose a pipeline without {step}"
                                      + _pipelines_it_runs(adapter_class))
    check_adapter_class(adapter_class, steps)
    metric_functions: dict[str, Any] = {}
    metrics = settings.get("metrics") or {}
    output_type = settings["model"].get("output_type")
    _check_output_type(output_type)
    _check_input_type(settings["model"].get("input_type"))
    if "evaluate" in steps and metrics:
        family = OUTPUT_FAMILY.get(output_type, output_type)
        if OUTPUT_FAMILY.get(metrics.get("output_type"), metrics.get("output_type")) not in (None, family):
            option = {"class": "classification", "box": "detection", "segment": "segmentation"}.get(family)
            raise ConfigError(f"the metrics set scores {metrics['output_type']!r} outputs, but model "
                              f"{settings['model']['name']!r} outputs {output_type!r}",
                              where="metrics", fix=f"choose a metrics set for {output_type!r} outputs: "
                              + (f"metrics={option}" + (" (or metrics=minimal)" if family == "class" else "")
                                 + f"; or let the adapter's option choose it, as the shipped shapes_detector does: "
                                   f"defaults: [override /metrics@_global_.metrics: {option}] in its YAML"
                                 if option else "metrics=<option>"))
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
            raise ConfigError(f"objective.metric {objective!r} is not a metric the evaluate step computes"
                              + did_you_mean(objective, sorted(known)),
                              where="objective.metric", fix=f"choose one of {sorted(known)}")

    names = _subset_names(settings["subsets"])
    if names is not None:  # else known once computed (subsets=model)
        check_used_subsets(settings["pipeline"], steps, names)
    for key, value in (("pipeline.cleanup", settings["pipeline"].get("cleanup", False)),
                       ("resume", settings.get("resume", False))):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} is {value!r}, not true or false", where=key, fix=f"{key}=true or {key}=false")
    from .sharding import Sharding

    try:
        sharding = Sharding(**(settings.get("sharding") or {}))
    except TypeError as err:
        raise ConfigError(f"the sharding settings are not valid: {err}", where="sharding",
                          fix="use the keys workers, backend and ray_address") from None
    return Plan(settings, steps, adapter_class, metric_functions, sharding)


def _unresolved(err) -> ConfigError:
    """A config that does not resolve. An interpolation of a key a group's option does not set (an
    adapter YAML without ``output_type``, which ``model.output_type`` reads) names that option's file
    and the key to add to it; anything else is shown as OmegaConf says it."""
    from .config_sources import option_choice, option_files

    message = err.msg if hasattr(err, "msg") else str(err)
    full_key = getattr(err, "full_key", None) or "?"
    missing = re.match(r"Interpolation key '(\w+)\.(\w+)' not found", message.strip())
    option = option_choice(missing.group(1)) if missing else None
    if missing and option:
        group, key = missing.groups()
        files = option_files(group, option) or []
        where = str(files[0]) if files else f"{group}={option}"
        return ConfigError(f"the {group} option {option!r} sets no {key!r}, which {full_key} takes (${{{group}.{key}}})",
                           where=where, fix=f"add '{key}: <value>' to {where}, or give it on the command line: "
                                            f"+{group}.{key}=<value>")
    return ConfigError(f"the config cannot be resolved: {message}", where=f"key {full_key}",
                       fix="check the interpolations (${...}) and overrides of that key")


def _check_output_type(output_type) -> None:
    import dtlpy as dl

    known = sorted({t.value for t in dl.AnnotationType} | {"embedding"})
    if output_type is not None and output_type not in known:
        raise ConfigError(f"output type {output_type!r} is not one Dataloop knows", where="adapter.output_type "
                          "(model.output_type)", fix=f"use one of {known} (class for classification, box for "
                          "detection, segment or binary for segmentation)")


# input_type -> the mimetype family of the items a model of it reads (Dataloop's item kinds)
INPUT_MIMETYPES = {"image": "image/", "text": "text/", "audio": "audio/", "video": "video/"}


def _check_input_type(input_type) -> None:
    if input_type is not None and input_type not in INPUT_MIMETYPES:
        raise ConfigError(f"input type {input_type!r} is not a kind of item Dataloop holds"
                          f"{did_you_mean(str(input_type), INPUT_MIMETYPES)}",
                          where="adapter.input_type (model.input_type)",
                          fix=f"use one of {sorted(INPUT_MIMETYPES)}: the kind of item the adapter reads")


# the keys the runner reads of these groups: any other is a misspelling (``configuraton:``) that would
# leave the setting it meant unset without a word
GROUP_KEYS = {"adapter": ("_target_", "name", "input_type", "output_type", "configuration"),
              "model": ("name", "labels", "input_type", "output_type", "description", "configuration")}


def check_group_keys(settings: dict) -> None:
    for group, known in GROUP_KEYS.items():
        for key in settings.get(group) or {}:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                path = file_setting(group, key)
                raise ConfigError(f"{group}.{key} is not a key the runner reads"
                                  + (f" (did you mean {group}.{close[0]}?)" if close else ""),
                                  where=f"{group}.{key}" + (f", written in {path}" if path else ""),
                                  fix=f"the keys of {group} are {', '.join(known)}; an adapter's own settings go under "
                                      f"{group}.configuration")


def _warn_top_level_near_misses(settings: dict) -> None:
    """A top-level key a letter or two off one the config has (``batchsize: 16`` in an experiment file
    of package ``_global_``, which Hydra merges in as a new key): nothing reads it, and the setting
    meant keeps its value. A key of your own farther from them (one your files interpolate) is left."""
    main = shipped_config()
    known = [k for k in main if k != "defaults"] + [
        name for entry in main["defaults"] if isinstance(entry, dict) for name in entry if "/" not in name]
    for key in settings:
        close = [] if key in known or _given_on_command_line(key) else difflib.get_close_matches(key, known, n=1,
                                                                                                  cutoff=0.8)
        if close:
            path = file_setting("experiment", key) or file_setting("hparams_search", key)
            logger.warning("the config has a top-level key %s%s, which nothing reads (did you mean %s?); %s keeps "
                           "its value", key, f" (written in {path})" if path else "", close[0], close[0])


def _given_on_command_line(key: str) -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and any(o.lstrip("+~").partition("=")[0] == key
                                             for o in HydraConfig.get().overrides.task)


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
    for group in ("adapter", "model"):
        given = settings[group].get("configuration")
        if given is not None and not isinstance(given, dict):
            written = None if _given_on_command_line(f"{group}.configuration") else file_setting(group, "configuration")
            raise ConfigError(f"{group}.configuration is {given!r:.80}, not a mapping of settings",
                              where=f"{group}.configuration" + (f" in {written}" if written else ""),
                              fix="write it as keys and values (configuration:, then indented 'image_size: 8' "
                                  "lines, not '- image_size: 8' list items)")
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


def _pipelines_it_runs(adapter_class: type) -> str:
    """The shipped pipelines whose every step the adapter has the user functions for, as a fix's tail."""
    import yaml

    runs = [p.stem for p in sorted(Path(CONFIG_DIR, "pipeline").glob("*.yaml"))
            if all(_defines(adapter_class, name) for step in yaml.safe_load(p.read_text()).get("steps") or []
                   for name in STEP_NEEDS.get(step, ()))]
    return f": {adapter_class.__name__} runs " + ", ".join(f"pipeline={name}" for name in runs) if runs else ""


def _defines(adapter_class: type, name: str) -> bool:
    import dtlpy as dl

    return getattr(adapter_class, name) is not getattr(dl.BaseModelAdapter, name)


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


def used_subsets(pipeline: dict, steps: list[str]) -> dict[str, str]:
    """pipeline key -> the subset name a non-training step reads (null: every item, left out)."""
    return {key: pipeline[key] for step, key in _STEP_SUBSET.items() if step in steps and pipeline.get(key) is not None}


def check_used_subsets(pipeline: dict, steps: list[str], names) -> None:
    for key, subset in used_subsets(pipeline, steps).items():
        if subset not in names:
            raise ConfigError(f"pipeline.{key} is {subset!r}, which is not one of the subsets {sorted(names)}",
                              where=f"pipeline.{key}",
                              fix="name a subset of the chosen subsets group, or null for every item")


def _uses_default_evaluate(adapter_class: type) -> bool:
    from .adapter import BaseModelAdapter

    return adapter_class.evaluate is BaseModelAdapter.evaluate


def version_configuration(settings: dict) -> dict:
    """A new version's configuration: the adapter's, with ``model.configuration`` merged over it."""
    return {**(settings["adapter"].get("configuration") or {}), **(settings["model"].get("configuration") or {})}


# configuration keys that say how a run goes, not what the model is: a run that does not train takes
# them from its own config (the version keeps the rest of what it was trained with)
RUN_SETTINGS = ("batch_size", "prepare_in", "prepare_workers")


def _check_run_settings(settings: dict) -> None:
    """The configuration keys the runner itself reads, checked before anything is stored (a bad one
    would fail the evaluate step after a version was trained)."""
    from .adapter import check_prepare_settings

    configuration = version_configuration(settings)
    given = settings["adapter"].get("configuration") or {}
    if "batch_size" in given and given["batch_size"] != configuration.get("batch_size"):
        logger.warning("adapter.configuration.batch_size=%r is replaced by the run's batch_size (%r): set the batch "
                       "size with batch_size=%s", given["batch_size"], configuration.get("batch_size"),
                       given["batch_size"])
    if "batch_size" in configuration and not is_whole_number(configuration["batch_size"], 1):
        raise ConfigError(f"configuration.batch_size is {configuration['batch_size']!r}, not a whole number of at "
                          "least 1", where="model.configuration.batch_size", fix="batch_size=32")
    check_prepare_settings(configuration, "adapter.configuration")
