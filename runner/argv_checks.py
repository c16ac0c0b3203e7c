"""Checks of the command line, made before Hydra starts: each returns the message for an argument that
Hydra would meet with a traceback, a bare exit status or a late failure, else None."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import NamedTuple

from .paths import CONFIG_DIR, holds_store, shipped_config
from .sweep_table import resumes
from .text_table import closest, did_you_mean, first_few

# launcher option -> (the plugin's module, the extra that installs it)
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
}


def missing_launcher(argv: list[str]) -> str | None:
    """The message for a ``hydra/launcher=<name>`` whose plugin is not installed, else None.

    Hydra would fail later with an import trace that does not say which package to install."""
    import importlib.util

    for arg in argv:
        key, sep, name = arg.lstrip("+~").partition("=")
        if key == "hydra.launcher" and sep:  # a dot for the slash: Hydra says "no _target_ field"
            return (f"hydra.launcher={name} sets the launcher's settings node, not the launcher\n  where: {arg}\n"
                    f"  fix: hydra/launcher={name} (a slash: the hydra/launcher config group)")
        if key != "hydra/launcher":
            continue
        if name not in ("basic", *LAUNCHER_PLUGINS) and not any(c in name for c in ",()*"):
            known = _launcher_options(argv)
            if name not in known:
                started = [k for k in known if k.startswith(name)]  # submitit: submitit_local and submitit_slurm
                meant = f" (did you mean {' or '.join(f'hydra/launcher={k}' for k in started)}?)" if len(started) > 1 \
                    else did_you_mean(name, known, "hydra/launcher=")
                return (f"hydra/launcher has no option {name!r}{meant}\n  "
                        f"where: {arg}\n  fix: one of {known} (those this project documents: basic, "
                        f"{', '.join(LAUNCHER_PLUGINS)})")
        if name not in LAUNCHER_PLUGINS:
            continue
        module, extra = LAUNCHER_PLUGINS[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return (f"hydra/launcher={name} needs the {module.split('.')[-1].replace('_', '-')} plugin, which is "
                    f"not installed\n  where: {arg}\n  fix: pip install -e \"{Path(CONFIG_DIR).parent}[{extra}]\" (or "
                    "choose another launcher)")
    return None


def _launcher_options(argv: list[str]) -> list[str]:
    """The hydra/launcher options there are: the installed plugins' and the config folders'."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports the installed plugins, which register their launchers' configs
    names = {n.removesuffix(".yaml") for n in ConfigStore.instance().list("hydra/launcher")}
    for folder in [Path(CONFIG_DIR), *_config_folders(argv)]:
        names |= {path.stem for path in (folder / "hydra" / "launcher").glob("*.yaml")}
    return sorted(names)


# flags that replace the primary config (conf/config.yaml): its groups and options are then Hydra's alone
_OTHER_PRIMARY = ("--config-path", "-cp", "--config-name", "-cn")


def _config_folders(argv: list[str]) -> list[Path]:
    """The user's config folders on the command line: ``hydra.searchpath=[file://...]``, ``--config-dir``
    / ``-cd`` and ``--config-path`` / ``-cp`` (a ``pkg://`` entry is an installed package's)."""
    folders, args = [], iter(argv)
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if key in ("--config-dir", "-cd", "--config-path", "-cp"):
            folders.append(value if sep else next(args, ""))
        elif key == "hydra.searchpath" and sep:
            entries = value.strip().strip("[]").split(",")
            folders += [e.strip().strip("'\"")[len("file://"):] for e in entries if e.strip().strip("'\"").startswith("file://")]
    return [Path(f) for f in folders if f]


def _group_of(entry: str) -> str:
    """The group a defaults-list entry names: ``override /adapter@x`` -> ``adapter``."""
    return entry.split("@")[0].removeprefix("override ").strip("/")


def _chosen_options(argv: list[str]) -> dict[str, set[str]]:
    """group -> the options this command line may compose: the primary config's defaults, replaced by
    the command line's ``group=option`` (each of a sweep's; ``*`` for a glob or a sweep function)."""
    chosen: dict[str, set[str]] = {}
    for entry in shipped_config().get("defaults") or []:
        if isinstance(entry, dict):
            for group, option in entry.items():
                chosen[_group_of(group)] = {str(option)}
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and not key.startswith("-") and "." not in key:
            sweep = _SWEEP_FUNCTION.match(value) or "*" in value
            chosen[key.split("@")[0]] = {"*"} if sweep else {v.strip() for v in value.split(",")}
    return chosen


def _files_read(folder: Path, chosen: dict[str, set[str]]) -> list[Path]:
    """The YAML files of a config folder a run may read: its top-level files (primary configs), the
    chosen options' files, and the files those name in their own defaults lists."""
    import yaml

    files = sorted(folder.glob("*.yaml"))
    todo = [(group, option) for group, options in chosen.items() for option in options]
    while todo:
        group, option = todo.pop()
        found = sorted((folder / group).rglob("*.yaml")) if option == "*" else [folder / group / f"{option}.yaml"]
        for path in (p for p in found if p.is_file() and p not in files):
            files.append(path)
            try:
                defaults = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("defaults") or []
            except (yaml.YAMLError, OSError, UnicodeDecodeError, AttributeError):
                continue  # reported as the file's own problem
            todo += [(_group_of(key), str(value))
                     for entry in defaults if isinstance(entry, dict) for key, value in entry.items()]
    return files


def expanded_globs(argv: list[str]) -> list[str]:
    """``group=glob(...)`` with the group's options listed, from the config folders a ``hydra.searchpath``
    adds too: Hydra's sweeper lists the options a glob matches without the command line's search path,
    so an option of the user's own folder was left out of the sweep (``--config-dir`` it does see)."""
    searched = _config_folders([a for a in argv if a.lstrip("+").startswith("hydra.searchpath=")])
    if not searched:
        return argv
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    expanded = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and "." not in key and not key.startswith("-") and value.lstrip().startswith("glob("):
            try:
                glob = OverridesParser.create().parse_override(arg).value()
            except Exception:  # noqa: BLE001 - Hydra reports a malformed override itself
                glob = None
            options = _options(key.lstrip("+~").split("@")[0], argv)
            if isinstance(glob, Glob) and glob.filter(options):
                arg = f"{key}={','.join(glob.filter(options))}"
        expanded.append(arg)
    return expanded


def help_argv(argv: list[str]) -> list[str]:
    """``--help`` lists each group's options from the config folders Hydra starts with, which take in
    ``--config-dir`` but not ``hydra.searchpath``: the first file:// folder of the search path is given as
    ``--config-dir`` too, so the options there are listed (``argv`` as it is otherwise)."""
    if not {"--help", "-h"} & set(argv) or any(a.split("=")[0] in ("--config-dir", "-cd") for a in argv):
        return argv
    searched = _config_folders([a for a in argv if a.lstrip("+").startswith("hydra.searchpath=")])
    return [f"--config-dir={searched[0]}", *argv] if searched else argv


def config_file_problem(argv: list[str]) -> str | None:
    """A YAML file of the user's config folders, among those this run may read, that does not parse
    (or repeats a key): Hydra would print the YAML library's traceback when it reaches the file. A
    draft in a group option the run does not choose stops nothing."""
    import yaml
    from omegaconf._utils import get_yaml_loader

    folders = [folder for folder in _config_folders(argv) if folder.is_dir()]
    chosen = _chosen_options(argv) if folders else {}
    for folder in folders:
        for path in _files_read(folder, chosen):
            try:
                text = path.read_text(encoding="utf-8")
                document = yaml.load(text, Loader=get_yaml_loader())
                problem = _package_line_problem(path, folder, text, document)
                if problem:
                    return problem
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                return (f"a config file is not valid YAML: {problem}\n  where: {path}{at}\n"
                        "  fix: correct the YAML there (each key once per mapping; lists in [] or as '- ' lines)")
            except (OSError, UnicodeDecodeError) as err:
                return f"a config file cannot be read: {err}\n  where: {path}\n  fix: make it a readable UTF-8 text file"
    return None


def _package_line_problem(path: Path, folder: Path, text: str, document) -> str | None:
    """An experiment or search file whose defaults override other groups (``override /dataset: ...``)
    without the ``# @package _global_`` line: Hydra then reads it as keys under ``experiment.`` and
    refuses its overrides with "Could not override 'dataset@experiment.dataset'"."""
    if path.parent.parent != folder or path.parent.name not in ("experiment", "hparams_search"):
        return None
    defaults = document.get("defaults") if isinstance(document, dict) else None
    overrides = any(isinstance(entry, dict) and any(str(key).startswith("override /") for key in entry)
                    for entry in defaults or [])
    header = [line for line in text.splitlines() if line.strip()][:3]
    if not overrides or any(re.match(r"#\s*@package\s+_global_\s*$", line.strip()) for line in header):
        return None
    return (f"{path.parent.name}/{path.name} overrides other groups in its defaults list, but lacks the line "
            f"'# @package _global_', which must come first\n  where: {path}\n  fix: make '# @package _global_' "
            "its first line: its keys are then the config's own (batch_size, adapter.configuration...), as an "
            f"{path.parent.name} option's are")


_NOT_A_NAME = re.compile(r"(?i)(true|false|null|[-+]?\d[\d_]*(\.\d*)?(e[-+]?\d+)?)")


def _unknowable_options(argv: list[str]) -> bool:
    """Options may come from where only Hydra reads them: another primary config, or an installed
    package's config folder (``pkg://``) on the search path."""
    return any(arg.split("=")[0] in _OTHER_PRIMARY or (arg.startswith("hydra.searchpath=") and "pkg://" in arg)
               for arg in argv)


def _searches(argv: list[str]) -> bool:
    """The command line chooses a search: an Optuna preset, or a sweeper of its own."""
    return any(a.lstrip("+").startswith(("hparams_search=", "hydra/sweeper=")) for a in argv)


def _multirun(argv: list[str]) -> bool:
    """The command line runs a sweep: ``-m``, or a search preset (which sets ``hydra.mode=MULTIRUN``)."""
    return any(a in ("-m", "--multirun") or a.lstrip("+").startswith("hparams_search=") for a in argv)


def _primary_groups() -> set[str]:
    """The groups conf/config.yaml's defaults list chooses (``experiment: null`` among them)."""
    import yaml

    try:
        defaults = shipped_config().get("defaults") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    return {key.removeprefix("optional ") for entry in defaults if isinstance(entry, dict) for key in entry}


def group_value_problem(argv: list[str]) -> str | None:
    """The message for ``group=<value>`` where the value is not an option's name (``debug=true``,
    ``adapter=3``) or names no option of the group (``adapter=nope``) in this repository's config
    folder or the command line's, else None. Hydra would fail with a traceback about a bool or an
    int, or with exit status 1."""
    unknowable = _unknowable_options(argv)
    folders = [Path(CONFIG_DIR), *_config_folders(argv)]
    chosen = set() if unknowable else _primary_groups()
    added = None
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and arg.startswith("+") and not arg.startswith("++") and key in chosen and added is None:
            # Hydra: "Multiple values for experiment. To override a value use 'override experiment: ...'"
            added = (f"+{key}= adds a group the config does not have, but {key} is one of its groups already\n"
                     f"  where: {arg}\n  fix: {key}={value} (no +)")
        groups = [folder / key.split("@")[0] for folder in folders]
        if not sep or key.startswith(("hydra", "~")) or not any(group.is_dir() for group in groups):
            continue
        # the group's own options; one in a subfolder (debug/adapter/...) belongs to a group of its own,
        # though naming it with its folder (adapter=mine/v2) still chooses it
        options = _options(key.split("@")[0], argv)
        fix = f"{key}=<option>, one of {options} (or ~{key} to leave the group out)"
        if _NOT_A_NAME.fullmatch(value.strip()):
            return (f"{key} is a config group: its value names one of its options, not {value!r}\n  where: {arg}\n"
                    f"  fix: {fix}")
        if unknowable or any(c in value for c in "()[]${}'\""):  # a sweep function, an interpolation
            continue
        unknown = [name for name in value.split(",") if name.strip() and name.strip() not in options
                   and not any((group / f"{name.strip()}.yaml").is_file() for group in groups)]
        if unknown:
            close = difflib.get_close_matches(unknown[0].strip(), options, n=1)
            hint = f" (did you mean {key}={close[0]}?)" if close else ""
            return f"{key} has no option {unknown[0].strip()!r}{hint}\n  where: {arg}\n  fix: {fix}"
    return added  # after a misspelt option, which the fix without + would meet next


def trials_problem(argv: list[str]) -> str | None:
    """``hydra.sweeper.n_trials`` below 1: Optuna's sweeper would run nothing and then fail with a
    traceback looking for its results file."""
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key == "hydra.sweeper.n_trials" and sep and value.strip().lstrip("-").isdigit() and int(value) < 1:
            return (f"hydra.sweeper.n_trials is {value.strip()}: a search needs at least one trial\n  where: {arg}\n"
                    "  fix: hydra.sweeper.n_trials=<1 or more>")
        # the sweeper divides by it, after it has made the study
        if key == "hydra.sweeper.n_jobs" and sep and value.strip().lstrip("-").isdigit() and int(value) < 1:
            return (f"hydra.sweeper.n_jobs is {value.strip()}: the trials a search asks for at a time must be at "
                    f"least one\n  where: {arg}\n  fix: hydra.sweeper.n_jobs=<1 or more> (the launcher's own "
                    "n_jobs says how many run at once)")
        # joblib's: 0 has no meaning (a traceback once the sweep folder is made); -1 is one per core
        if key == "hydra.launcher.n_jobs" and sep and value.strip() == "0":
            return (f"hydra.launcher.n_jobs is 0: the launcher would run no job at a time\n  where: {arg}\n"
                    "  fix: hydra.launcher.n_jobs=<1 or more>, or -1 for one job per core")
    return None


# the keys of Hydra's basic sweeper; any other hydra.sweeper key is a search's (the Optuna sweeper's)
_BASIC_SWEEPER_KEYS = ("max_batch_size", "params")


def sweeper_key_problem(argv: list[str]) -> str | None:
    """A search's setting (``hydra.sweeper.n_trials``) on a command line that chooses no search: Hydra
    says the key is not in ``BasicSweeperConf`` and offers ``+`` before it, which would change nothing."""
    if _searches(argv):
        return None
    for arg in argv:
        key, sep, _value = arg.lstrip("+").partition("=")
        if sep and key.startswith("hydra.sweeper.") and key.split(".")[2] not in _BASIC_SWEEPER_KEYS:
            return (f"{key} is a setting of an Optuna search, and this command line chooses none (its sweeper is "
                    f"Hydra's basic grid)\n  where: {arg}\n  fix: choose a search with it: hparams_search=<preset> "
                    f"({', '.join(_options('hparams_search', argv))})")
    return None


def _options(group: str, argv: list[str]) -> list[str]:
    """The options of ``group`` in this repository's config folder and the command line's."""
    return sorted({p.stem for folder in [Path(CONFIG_DIR), *_config_folders(argv)] for p in (folder / group).glob("*.yaml")})


def run_dir_in_use_problem(argv: list[str]) -> str | None:
    """A ``hydra.run.dir`` (or, for a sweep, ``hydra.sweep.dir``) that a run running now holds: Hydra
    would write this run's ``.hydra/`` over that run's before the run itself could refuse the folder."""
    from .run_lock import holder

    key = "hydra.sweep.dir" if _multirun(argv) else "hydra.run.dir"
    for arg, folder in _folders_given(argv, key):
        jobs = sorted(p for p in folder.glob("[0-9]*") if p.is_dir()) if key == "hydra.sweep.dir" else []
        busy = [(f, by) for f in (folder, *jobs) if (by := holder(f)) is not None]
        if busy:
            where, by = busy[0]
            return (f"another run{f' (process {by})' if by else ''} is running in {where}: two runs in one folder "
                    f"would mix their outputs\n  where: {arg}\n  fix: give this run a folder of its own (leave "
                    f"{key} out, or name a new one), or wait for that run to end")
    return None


def _folders_given(argv: list[str], key: str) -> list[tuple[str, Path]]:
    """(the argument, its folder) of each ``key=<folder>`` on the command line; one that interpolates
    (``${now:...}``) names no folder yet."""
    given = []
    for arg in argv:
        name, sep, value = arg.lstrip("+").partition("=")
        if name == key and sep and "${" not in value:
            given.append((arg, Path(value.strip().strip("'\""))))
    return given


def sweep_dir_problem(argv: list[str]) -> str | None:
    """A sweep into a ``hydra.sweep.dir`` that holds an earlier sweep's job folders: its jobs are
    numbered from 0 again and would write over them, a completed job's results among them."""
    if not _multirun(argv):
        return None
    for arg, folder in _folders_given(argv, "hydra.sweep.dir"):
        jobs = sorted((p.name for p in folder.glob("[0-9]*") if p.name.isdigit() and (p / ".hydra").is_dir()), key=int)
        if jobs and resumes(argv) and _searches(argv):
            return ("resume=true continues a grid sweep; a search continues its study by itself\n  where: resume=true"
                    "\n  fix: run the search's command again without resume=true, into a new hydra.sweep.dir")
        if jobs and not resumes(argv):
            return (f"{folder} holds the job folders of an earlier sweep ({first_few(jobs)}): this sweep numbers "
                    f"its jobs from 0 and would write over them\n  where: {arg}\n  fix: give a new folder "
                    "(hydra.sweep.dir=<new folder>), or delete that one first; to run the jobs of that sweep that "
                    "did not complete, give its own command with resume=true")
    return None


def grid_sweep_problem(argv: list[str]) -> str | None:
    """A sweep value the basic (grid) sweeper cannot list, or lists as nothing or one value by mistake:
    ``interval(...)`` (a range only a search draws from: a traceback), ``range(3,0)`` (no job: the
    sweep ends at once, exit 0), ``range(0,3,0)`` (a traceback), ``range(0.1,1.0)`` (step 1: one job).
    The message, else None; an Optuna search or another sweeper reads its own sweeps."""
    if not any(a in ("-m", "--multirun") for a in argv) or _searches(argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import RangeSweep

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or not is_sweep_override(arg):
            continue
        if "glob(" in arg:
            problem = _glob_problem(parser, arg, argv)
            if problem:
                return problem
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - Hydra reports a malformed override itself
            continue
        fix = "list the values (key=a,b,c), or use range(start, stop, step)"
        if override.is_interval_sweep():
            return (f"{arg}: interval(...) is a range an Optuna search draws from; a grid sweep (-m) cannot list its "
                    f"values\n  where: {arg}\n  fix: {fix}, or search it: hparams_search=<preset> with this key in "
                    "its params")
        try:
            values = list(override.sweep_string_iterator())
        except ValueError as err:
            return f"{arg} gives no values: {err}\n  where: {arg}\n  fix: {fix}"
        sweep = override.value()
        if not values:
            return (f"{arg} gives no value, so the sweep would run no job\n  where: {arg}\n  fix: range(start, stop) "
                    "counts up from start and stops before stop; to count down give a negative step, "
                    "range(3,0,-1)")
        if isinstance(sweep, RangeSweep) and len(values) == 1 and any(
                isinstance(v, float) for v in (sweep.start, sweep.stop)):
            return (f"{arg} gives one value ({values[0]}): range's step is 1 unless given\n  where: {arg}\n  fix: "
                    f"give the step, e.g. range({sweep.start},{sweep.stop},{(sweep.stop - sweep.start) / 4:g})")
    return None


def _glob_problem(parser, arg: str, argv: list[str]) -> str | None:
    """``group=glob(...)`` that matches none of the group's options: the sweep would run no job, exit 0."""
    from hydra.core.override_parser.types import Glob

    key = arg.partition("=")[0].lstrip("+~").split("@")[0]
    try:
        glob = parser.parse_override(arg).value()
    except Exception:  # noqa: BLE001 - Hydra reports a malformed override itself
        return None
    options = _options(key, argv)
    if not isinstance(glob, Glob) or not options or glob.filter(options):
        return None
    return (f"{arg} matches no option of {key}, so the sweep would run no job\n  where: {arg}\n"
            f"  fix: a pattern that matches some of {options}")


def direction_problem(argv: list[str]) -> str | None:
    """``objective.direction=<other than maximize / minimize>``: the message, else None. Each job checks
    it too, but an Optuna sweeper reads it before any job runs, and fails with a traceback."""
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key != "objective.direction" or not sep or any(c in value for c in "()[]${}'\""):
            continue  # a sweep function or an interpolation: the jobs check what it gives
        wrong = [v.strip() for v in value.split(",") if v.strip() not in ("maximize", "minimize")]
        if wrong:
            return (f"objective.direction is {wrong[0]!r}, not maximize or minimize\n  where: {arg}\n"
                    "  fix: objective.direction=maximize or objective.direction=minimize")
    return None


def swept_group_key_problem(argv: list[str]) -> str | None:
    """``-m adapter=a,b adapter.configuration.epochs=1``: Hydra composes a sweep's config once before
    it expands the sweep, with the group's default option, and stops when that option lacks the key,
    suggesting ``+key``, which then fails in each job whose option has it. The message, else None."""
    if not _multirun(argv) or _unknowable_options(argv):
        return None
    swept = {arg.partition("=")[0] for arg in argv if "=" in arg and not arg.startswith("-") and is_sweep_override(arg)}
    setting = [arg for arg in argv if "=" in arg and not arg.startswith(("-", "+", "~"))
               and arg.split(".")[0] in swept and "." in arg.partition("=")[0]]
    if not setting:
        return None
    cfg = _composed_from(argv, leaving_out=setting)
    if cfg is None:
        return None
    for arg in setting:
        key = arg.partition("=")[0]
        group = key.split(".")[0]
        if not _has_key(cfg, key):
            return (f"{key} is not a key of {group}={cfg.hydra.runtime.choices.get(group)}, the option Hydra "
                    f"composes the sweep's config with before it expands {group}=...: the sweep would stop there\n"
                    f"  where: {arg}\n  fix: ++{arg} (sets the key in each job, adding it where an option lacks it)")
    return None


def misspelt_key_hint(argv: list[str]) -> str | None:
    """After Hydra refused a ``key=value`` whose key the config lacks ("Key 'c' is not in struct"):
    the key likely meant, found by composing the config without those overrides. None when every key
    is there (the failure was another), or no key is close."""
    if _unknowable_options(argv):
        return None
    groups = [Path(CONFIG_DIR), *_config_folders(argv)]
    # a sweep's key too (``-m batch_sise=16,32``): the config is composed without it either way
    plain = [arg for arg in argv if "=" in arg and not arg.startswith(("-", "+", "~", "hydra.")) and
             not any((g / arg.partition("=")[0]).is_dir() for g in groups)]
    if not plain:
        return None
    cfg = _composed_from(argv, leaving_out=plain)
    if cfg is None:
        return None
    from hydra.core.hydra_config import HydraConfig

    from .errors import ConfigError
    from .run_plan import check_group_keys

    if not HydraConfig.initialized():  # the composed choices and search path: the error names the option's file
        HydraConfig.instance().set_config(cfg)
    try:  # a key misspelt in an option's file (configuraton:) is the one to correct, not to follow
        check_group_keys(cfg)
    except ConfigError as err:
        return f"hint: {err}"
    for arg in plain:
        key, _sep, value = arg.partition("=")
        if _has_key(cfg, key):
            shape = _shape_hint(_node(cfg, key), key, value)
            if shape:  # "Cannot merge DictConfig with ListConfig" says no more
                return shape
            continue  # not the key Hydra refused
        meant = _same_name_elsewhere(cfg, key) or _closest_key(cfg, key)
        if not meant and key.startswith("model.configuration."):  # merged over the adapter's configuration
            meant = _closest_key(cfg, "adapter." + key.removeprefix("model."))
        if meant:
            return f"hint: did you mean {meant}? (+{arg.partition('=')[0]} would add it as a new key)"
    return None


def _shape_hint(node, key: str, value: str) -> str | None:
    """A value of another shape than the key holds: a list or a single value for a mapping (Hydra only
    says it cannot merge them), which is set key by key."""
    from omegaconf import DictConfig

    if not isinstance(node, DictConfig) or node._is_none() or node._is_missing() or value.strip() in ("null", ""):
        return None
    keys = [str(k) for k in node]
    example = next((k for k in keys if k != "_target_"), keys[0] if keys else "<key>")
    return (f"hint: {key} is a mapping ({', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}), not a single value "
            f"or list: set its keys one by one ({key}.{example}=<value>; ++{key}.<new key>=<value> adds one), or "
            f"replace it whole: '~{key}' '+{key}={{{example}: <value>, ...}}'")


def _same_name_elsewhere(cfg, key: str) -> str | None:
    """Where the config has a key of the same last name as ``key`` in another place
    (``adapter.configuration.batch_size`` for the top-level ``batch_size``), which beats a fuzzy match
    beside it: the one sharing most of ``key``'s leading parts, then the shortest (None on a tie). A key that only
    interpolates another (``model.configuration.batch_size: ${batch_size}``) is left out for it."""
    from omegaconf import DictConfig

    parts = key.split(".")
    found: list[list[str]] = []

    def walk(node: DictConfig, path: list[str]) -> None:
        for name in node:
            child = node._get_node(name)
            if isinstance(child, DictConfig):
                walk(child, [*path, str(name)])
            elif str(name) == parts[-1] and not child._is_interpolation():
                found.append([*path, str(name)])

    walk(cfg, [])
    found = [f for f in found if f[0] != "hydra" and f != parts]

    def shared(path: list[str]) -> int:
        return next((i for i, (a, b) in enumerate(zip(path, parts, strict=False)) if a != b), min(len(path), len(parts)))

    ranked = sorted(found, key=lambda f: (-shared(f), len(f)))
    if not ranked or (len(ranked) > 1 and shared(ranked[0]) == shared(ranked[1]) and len(ranked[0]) == len(ranked[1])):
        return None  # none, or no one place to name (``name`` is the adapter's, the model's and the dataset's)
    return ".".join(ranked[0])


def _closest_key(cfg, key: str) -> str | None:
    """The key of ``cfg`` closest to ``key``, which ``cfg`` lacks: each part it lacks replaced by the
    closest one beside it (the same but for case first). Only as far as the first part with none, when
    that is already a correction; None when ``cfg`` has ``key`` or nothing is close."""
    from omegaconf import DictConfig

    node, found, corrected = cfg, [], False
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return None
        names = [str(k) for k in node]
        if part not in names:
            close = closest(part, names)
            if close is None:
                return ".".join(found) + " (the rest of the key aside)" if corrected else None
            part, corrected = close, True
        found.append(part)
        node = node._get_node(part, validate_access=False)  # unresolved: a missing value (???) beside it is no failure here
    return ".".join(found) if corrected else None


def _has_key(cfg, key: str) -> bool:
    """Whether ``cfg`` has ``key``, read node by node without resolving: a missing value (``???``) or an
    interpolation is a key it has (``OmegaConf.select`` says the first is absent and raises on the second)."""
    return _node(cfg, key) is not None


def _node(cfg, key: str):
    from omegaconf import DictConfig

    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
            return None
        node = node._get_node(part, validate_access=False)  # struct mode raises for a key it lacks
        if node is None:
            return None
    return node


def _search_path_override(argv: list[str]) -> list[str]:
    """The command line's config folders as the override compose takes (not as ``--config-dir``)."""
    folders = _config_folders(argv)
    return [f"hydra.searchpath=[{','.join(f'file://{f.resolve()}' for f in folders)}]"] if folders else []


def _composed_from(argv: list[str], leaving_out: list[str] = ()):
    """The config the command line composes, its sweeps and ``leaving_out`` aside (None: it does not)."""
    overrides = [a for a in argv if "=" in a and not a.startswith(("-", "hydra.searchpath="))
                 and not is_sweep_override(a) and a not in leaving_out]
    return _composed(overrides + _search_path_override(argv))


def _gives(argv: list[str], group: str) -> bool:
    """The command line chooses ``group`` or sets a key of it (an experiment chooses groups too)."""
    return _chooses(argv, group) or any(a.lstrip("+~").startswith(f"{group}.") for a in argv)


def _chooses(argv: list[str], group: str) -> bool:
    """The command line chooses an option of ``group`` (``adapter=...``, or an experiment that may)."""
    return any(a.lstrip("+~").startswith((f"{group}=", "experiment=")) or a.startswith(f"{group}@") for a in argv)


def trained_settings(argv: list[str]) -> list[tuple[list[str], str]]:
    """For a run that uses a version without training it (``pipeline=evaluate model.name=<version>``):
    the overrides that give it what the version was trained with where the command line names none,
    each with the note that says so; a version not in the store is a ``NotFoundError``. The adapter option that trained it (it records that), when not
    the default's and it composes here; and its dataset, when not the default's, as stored
    (``dataset.name=<it> dataset.source=null``). Empty otherwise: the run itself then refuses an adapter
    that did not train the version, naming the one that did."""
    from omegaconf import OmegaConf

    if not any(a.startswith("model.name=") and not is_sweep_override(a) for a in argv) or \
            any(a in ("-m", "--multirun") for a in argv) or _unknowable_options(argv) or \
            (_chooses(argv, "adapter") and _gives(argv, "dataset")):
        return []
    # a key of the version's adapter that the default one lacks (adapter.configuration.device=cpu) does not
    # compose yet: the adapter option is what is being found
    cfg = _composed_from(argv) or (None if _chooses(argv, "adapter") else
                                   _composed_from([a for a in argv if not a.lstrip("+~").startswith("adapter.")]))
    if cfg is None or "train" in (OmegaConf.select(cfg, "pipeline.steps", default=None) or ["train"]):
        return []
    try:
        if not str(cfg.platform.get("_target_", "")).endswith("LocalPlatform"):
            return []
        root, project, name = str(cfg.platform.root), str(cfg.platform.project), str(cfg.model.name)
        default_dataset = str(cfg.dataset.name)
    except Exception:  # noqa: BLE001 - a value that does not resolve: the run reports it
        return []
    if not holds_store(root):
        return []
    from .platform.local import LocalPlatform
    from .reporting import runner_metadata

    try:
        platform = LocalPlatform(root, project=project, create_project=False)
        model = platform.find_model(name)
        dataset = next((d.name for d in platform.list_datasets() if model is not None and d.id == model.dataset_id),
                       None)
    except Exception:  # noqa: BLE001 - the run opens the store itself and says what is wrong
        return []
    if model is None:  # refused now: the default adapter would be refused first, for a step it lacks
        from .version_names import stored_version

        stored_version(platform, name)
    found = []
    option = (runner_metadata(model).get("adapter") or {}).get("option")
    if not _chooses(argv, "adapter") and option and option != cfg.hydra.runtime.choices.get("adapter") and \
            _composed_from([*argv, f"adapter={option}"]) is not None:
        found.append(([f"adapter={option}"], f"adapter={option}: the adapter that trained the version "
                                               "(adapter=<option> chooses another)"))
    if not _gives(argv, "dataset") and dataset and dataset != default_dataset:
        found.append(([f"dataset.name={dataset}", "dataset.source=null"],
                      f"dataset.name={dataset} dataset.source=null: the dataset the version was trained on, as "
                      "stored (dataset=<option> chooses another)"))
    return found


def composed_config(argv: list[str]) -> dict | None:
    """The config a command line's overrides and config folders compose now, without Hydra's own node
    and unresolved, as a run's ``.hydra/config.yaml`` holds it; None when it does not compose."""
    from omegaconf import OmegaConf

    cfg = _composed_from(argv)
    if cfg is None:
        return None
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=False)


def _composed(overrides: list[str]):
    """The config these overrides compose (Hydra's own included), or None when it cannot be composed."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - a config Hydra cannot compose: Hydra itself says why, next
        return None
    finally:
        GlobalHydra.instance().clear()


class Search(NamedTuple):
    storage: str | None
    study_name: str | None
    cfg: object  # the config the command line composes
    search_path: list[str]  # the override that adds the command line's config folders, for compose


def composed_search(argv: list[str]) -> Search | None:
    """The Optuna search (``hparams_search=...``) the command line asks for, composed; None for a
    single run of a trial's overrides (``hydra.mode=RUN``), and when only Hydra can compose the config."""
    if not any(arg.startswith("hparams_search=") for arg in argv) or "hydra.mode=RUN" in argv or \
            _unknowable_options(argv):
        return None
    cfg = _composed_from(argv)
    if cfg is None or "optuna" not in str(cfg.hydra.sweeper.get("_target_", "")).lower():
        return None
    return Search(cfg.hydra.sweeper.get("storage"), cfg.hydra.sweeper.get("study_name"), cfg,
                  _search_path_override(argv))


def search_problem(argv: list[str], search: Search) -> str | None:
    """A search whose trials would return no objective, or that would resume its stored study with other
    settings or search space: the message, else None."""
    from .errors import ConfigError
    from .studies import objective_problem

    try:
        problem = objective_problem(list(search.cfg.pipeline.get("steps") or []), search.cfg.objective.get("metric"))
    except Exception:  # noqa: BLE001 - a value that does not resolve: each trial's own check reports it
        problem = None
    if problem:
        return str(ConfigError(*problem))
    problem = _search_range_problem(argv, search.cfg)
    if problem:
        return problem
    absent = _absent_search_keys(argv, search.cfg)
    if not absent:
        problem = _every_trial_problem(argv, search.cfg)
        if problem:
            return problem
    if absent:
        choices = search.cfg.hydra.runtime.choices
        searches = sorted(p.stem for folder in [Path(CONFIG_DIR), *_config_folders(argv)]
                          for p in (folder / "hparams_search").glob("*.yaml"))
        # some keys there and some not: a misspelling; none there: a search made for another adapter
        some_there = len(absent) < len(dict.fromkeys(p.partition("=")[0] for p in _search_params(argv, search.cfg)))
        meant = {key: some_there and (_same_name_elsewhere(search.cfg, key) or _closest_key(search.cfg, key))
                 for key in absent}
        named = ", ".join(key + (f" (did you mean {meant[key]}?)" if meant[key] else "") for key in absent)
        given = [arg for arg in argv if arg.partition("=")[0].lstrip("+~") in absent]
        where = ", ".join(given) if given else f"{_search_file(argv, search.cfg)}: hydra.sweeper.params"
        write = ("correct the key there" if any(meant.values()) else
                 f"pick a search made for this adapter (hparams_search: {', '.join(searches)}), or write one in a "
                 "hparams_search/ folder of your config folder")
        return str(ConfigError(
            f"the search varies {named}, which this configuration (adapter={choices.get('adapter')}) does "
            "not have: every trial would fail", where=where,
            fix=f"{write}, with params this configuration has (`--cfg job` prints them; a key written +<key> is "
                "added)"))
    return study_problem(argv, search) if search.storage and search.study_name else None


def _search_file(argv: list[str], cfg) -> str:
    """``hparams_search=<option> (<its file>)``: the file read first of the config folders holding it."""
    option = cfg.hydra.runtime.choices.get("hparams_search")
    found = next((folder / "hparams_search" / f"{option}.yaml" for folder in [*_config_folders(argv), Path(CONFIG_DIR)]
                  if (folder / "hparams_search" / f"{option}.yaml").is_file()), None)
    return f"hparams_search={option}" + (f" ({found})" if found else "")


def _search_range_problem(argv: list[str], cfg) -> str | None:
    """A range of the search space Optuna cannot draw from (low above high, a log scale from 0 or
    below, a step of 0 or less): the sweeper would stop with a traceback after making the study."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep

    parser = OverridesParser.create()
    on_command_line = {arg.partition("=")[0].lstrip("+~"): arg for arg in argv if is_sweep_override(arg)}
    for param in _search_params(argv, cfg):
        try:
            sweep = parser.parse_override(param).value()
        except Exception:  # noqa: BLE001 - Hydra's sweeper reports a malformed one itself
            continue
        key = param.partition("=")[0].lstrip("+~")
        where = on_command_line.get(key) or \
            f"{_search_file(argv, cfg)}: hydra.sweeper.params.{key}"
        if isinstance(sweep, IntervalSweep):
            low, high, kind = sweep.start, sweep.end, "interval"
        elif isinstance(sweep, RangeSweep) and not sweep.shuffle:
            low, high, kind = sweep.start, sweep.stop, "range"
            if sweep.step is not None and sweep.step <= 0:
                return (f"{key}: range's step is {sweep.step}: Optuna draws from low to high in steps above 0\n"
                        f"  where: {where}\n  fix: range({low}, {high}, <step above 0>)")
        else:
            continue
        if low > high:
            return (f"{key}: the {kind} runs from {low} down to {high}: Optuna draws from low to high\n"
                    f"  where: {where}\n  fix: put the low end first: {kind}({high}, {low})")
        if "log" in sweep.tags and low <= 0:
            return (f"{key}: a log-scale {kind} must start above 0, this one starts at {low}\n  where: {where}\n"
                    f"  fix: start it at a small positive value, e.g. {kind}({high / 1000:g}, {high})")
    return None


def _every_trial_problem(argv: list[str], cfg) -> str | None:
    """What the run's own checks (runner.run_plan) refuse in the search's config, outside the keys it
    varies: each trial would stop on it (a misspelt objective.metric), leaving a study of failed trials."""
    import logging

    from omegaconf import OmegaConf

    from .errors import ConfigError
    from .run_plan import plan

    varied = [param.partition("=")[0].lstrip("+~") for param in _search_params(argv, cfg)]
    base = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    logging.disable(logging.WARNING)  # each trial warns of what it finds itself, once, in its own log
    try:
        OmegaConf.to_container(base, resolve=True)  # a value only a job resolves (${hydra:job.num}): no check
        plan(base)
    except ConfigError as err:
        where = (err.where or "").split(" ")[0]
        if not any(where.startswith(key) or key.startswith(where) for key in varied if where):
            return str(err)
    except Exception:  # noqa: BLE001 - what only a trial's own values show: each trial reports it
        return None
    finally:
        logging.disable(logging.NOTSET)
    return None


def _search_params(argv: list[str], cfg) -> list[str]:
    """The search space as the sweeper builds it: its params, then the command line's sweeps over them."""
    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]
    return params + [arg for arg in argv if is_sweep_override(arg) and not arg.lstrip("+~").startswith("hydra")]


def _absent_search_keys(argv: list[str], cfg) -> list[str]:
    """Keys of the search space that are not in ``cfg`` (a group such as ``adapter`` is: its node)."""
    keys = dict.fromkeys(param.partition("=")[0] for param in _search_params(argv, cfg))
    return [key for key in keys if not key.startswith(("+", "~")) and "/" not in key and not _has_key(cfg, key)]


_SWEEP_FUNCTION = re.compile(r"\s*(choice|range|interval|tag|glob|shuffle|sort)\(")


def is_sweep_override(arg: str) -> bool:
    """A sweep override (``key=choice(...)``, ``key=1,2``): the sweeper reads it, compose cannot."""
    value = arg.partition("=")[2]
    return bool(_SWEEP_FUNCTION.match(value)) or ("," in value and not value.strip().startswith(("[", "{")))


def _value(cfg, key: str) -> object:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    node = OmegaConf.select(cfg, key.lstrip("+~"), default=None)
    return OmegaConf.to_container(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) else node


def study_problem(argv: list[str], study: Search) -> str | None:
    """The message when a stored study would be resumed with fixed settings that compose to other
    values than those its trials ran with (``seed=0`` written out is the default, not a change), or
    over a search space that Optuna refuses for the parameters its trials drew."""
    from omegaconf import OmegaConf

    from .studies import (
        fixed_overrides,
        resume_message,
        search_space_changes,
        search_space_message,
        stored_trials,
    )

    storage, study_name, now_cfg, search_path = study
    stored = stored_trials(storage, study_name)
    if stored is None:
        return None
    # trials that all failed hold no value that new ones would be compared with
    changed = [] if stored.ran_with is None else _changed_settings(stored.ran_with, fixed_overrides(argv), now_cfg,
                                                                   search_path)
    if changed:
        return resume_message(study_name, storage, stored.n_finished, changed)
    direction = OmegaConf.select(now_cfg, "hydra.sweeper.direction", default=None)
    if stored.direction and isinstance(direction, str) and direction.lower() != stored.direction:
        return (f"study {study_name!r} was made to {stored.direction} its objective; this search would {direction} it, "
                f"which Optuna refuses for a stored study\n  where: hydra.sweeper.direction={direction}\n  fix: "
                f"objective.direction=<the objective's direction> with a new study (hydra.sweeper.study_name=<new "
                f"name>), or hydra.sweeper.direction={stored.direction} to resume this one")
    space_changed = search_space_changes(stored.distributions, _search_params(argv, now_cfg))
    return search_space_message(study_name, storage, stored.n_trials, space_changed) if space_changed else None


def _changed_settings(ran_with: dict, now: dict, now_cfg, search_path: list[str]) -> list[tuple[str, object, object]]:
    """(key, as the study's first finished trial set it, as now) for each fixed setting whose composed
    value differs; settings free to change aside."""
    from .studies import free_to_change

    then_cfg = _composed([f"{key}={value}" for key, value in ran_with.items()] + search_path)
    changed = []
    for key in sorted(set(ran_with) | set(now)):
        if free_to_change(key):
            continue
        if then_cfg is not None:
            before, after = _value(then_cfg, key), _value(now_cfg, key)
        else:  # the first trial's overrides do not compose again: compare them as written
            before, after = ran_with.get(key, "<not set>"), now.get(key, "<not set>")
        if before != after:
            if isinstance(before, (dict, list)) or isinstance(after, (dict, list)):  # a group: its options say more
                before, after = ran_with.get(key, "<not set>"), now.get(key, "<not set>")
            changed.append((key, before, after))
    return changed
