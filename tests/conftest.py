"""Shared fixtures: every test gets its own DATALOOP_PATH and a local platform in a temp dir; the
digits dataset on it."""

from __future__ import annotations

import pytest

from runner.data import import_digits
from runner.platform.local import LocalPlatform


@pytest.fixture(autouse=True)
def dataloop_home(tmp_path, monkeypatch):
    home = tmp_path / "dataloop"
    monkeypatch.setenv("DATALOOP_PATH", str(home))
    return home


@pytest.fixture
def platform(tmp_path):
    return LocalPlatform(tmp_path / "platform")


@pytest.fixture
def home_platform(dataloop_home):
    """The store where a run keeps it, ``$DATALOOP_PATH/local``: the copies a run makes under
    ``$DATALOOP_PATH`` (``models/``, ``model_data/``) are the ones beside it, its own."""
    return LocalPlatform(dataloop_home / "local")


@pytest.fixture
def digits(platform):
    """scikit-learn's digits imported into ``platform``: its dataset."""
    return import_digits(platform).dataset
