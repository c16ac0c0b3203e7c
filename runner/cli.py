"""``python -m runner`` / ``dlrun``: Hydra over the top-level ``conf/``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .app import run
    from .errors import RunnerError

    # dtlpy logs at DEBUG to its own handlers; keep that out of the run log
    logging.getLogger("dtlpy").propagate = False
    hydra_config = HydraConfig.get()
    try:
        return run(cfg, hydra_config.runtime.output_dir)
    except RunnerError as err:
        logging.getLogger("runner").error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        if hydra_config.mode == RunMode.MULTIRUN:
            # the launcher marks this job failed and the sweep goes on (its sweeper decides when to stop)
            raise
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
