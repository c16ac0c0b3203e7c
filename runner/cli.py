"""``python -m runner`` / ``dlrun``: Hydra over the top-level ``conf/``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .gc_control import collection_paused, job_heap
from .resolvers import register_resolvers

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


register_resolvers()

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
        key, _, name = arg.lstrip("+~").partition("=")
        if key != "hydra/launcher" or name not in LAUNCHER_PLUGINS:
            continue
        module, extra = LAUNCHER_PLUGINS[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return (f"hydra/launcher={name} needs the {module.split('.')[-1].replace('_', '-')} plugin, which is "
                    f"not installed\n  where: {arg}\n  fix: pip install -e \".[{extra}]\" (or choose another launcher)")
    return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .errors import RunnerError

    hydra_config = HydraConfig.get()
    with job_heap():  # the process may end after this job: its exit then skips a pass over the heap
        try:
            with collection_paused():  # dtlpy and scikit-learn load here
                from .app import run
            return run(cfg, hydra_config.runtime.output_dir)
        except RunnerError as err:
            logging.getLogger("runner").error("%s", err)
            print(f"error: {err}", file=sys.stderr)
            if hydra_config.mode == RunMode.MULTIRUN:
                # the launcher marks this job failed and the sweep goes on (its sweeper decides when to stop)
                raise
            raise SystemExit(2) from None


def entry() -> None:
    """``python -m runner`` and ``dlrun``."""
    message = missing_launcher(sys.argv[1:])
    if message:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)
    main()


if __name__ == "__main__":
    entry()
