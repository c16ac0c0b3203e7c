"""Shared fixtures: every test gets its own DATALOOP_PATH and a local platform in a temp dir."""

from __future__ import annotations

import pytest

from runner.platform.local import LocalPlatform


@pytest.fixture(autouse=True)
def dataloop_home(tmp_path, monkeypatch):
    home = tmp_path / "dataloop"
    monkeypatch.setenv("DATALOOP_PATH", str(home))
    return home


@pytest.fixture
def platform(tmp_path):
    return LocalPlatform(tmp_path / "platform")
