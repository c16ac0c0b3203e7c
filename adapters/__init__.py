"""Adapters shipped with the runner. Each holds user functions only."""

# runner first: it claims dtlpy's logger before dtlpy loads, so a script that imports one of these
# adapters first does not start dtlpy's clean-up of old files under DATALOOP_PATH (runner/dtlpy_logger.py)
import runner  # noqa: F401
