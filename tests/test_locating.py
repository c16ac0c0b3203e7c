"""``runner.locating.locate``: which part of a config's ``_target_`` failed, and why."""

from __future__ import annotations

import sys

import pytest

from runner.errors import ConfigError
from runner.locating import locate


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "models.py").write_text("class TorchMLP:\n    pass\n")
    (root / "broken.py").write_text("import os\n\nimport nonexistent_lib_xyz  # noqa\n")
    (root / "raises.py").write_text("X = 1\nraise RuntimeError('set-up failed')\n")
    (root / "typo.py").write_text("import os\n\n\nclass A:\n    def f(self)\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [n for n in sys.modules if n == "mine" or n.startswith("mine.")]:
        del sys.modules[name]


def _message(target) -> str:
    with pytest.raises(ConfigError) as err:
        locate(target, "adapter._target_", "check it")
    return str(err.value)


def test_a_name_found_in_a_module_and_a_function_in_a_package():
    from sklearn.metrics import f1_score

    assert locate("sklearn.metrics.f1_score", "k", "f") is f1_score


def test_a_misspelt_class_gets_the_closest_name(package):
    from mine.models import TorchMLP

    assert locate("mine.models.TorchMLP", "k", "f") is TorchMLP
    assert "'mine.models' has no 'TorchMPL' (did you mean 'TorchMLP'?)" in _message("mine.models.TorchMPL")


def test_a_misspelt_module_of_a_package_gets_the_closest_module(package):
    assert "mine.models" not in sys.modules  # one the package has not imported: not among its attributes
    assert "'mine' has no 'modles' (did you mean 'models'?)" in _message("mine.modles.TorchMLP")


def test_a_module_whose_import_fails_names_its_line(package):
    message = _message("mine.broken.Adapter")
    assert "importing 'mine.broken' failed: ModuleNotFoundError: No module named 'nonexistent_lib_xyz'" in message
    assert f"raised at {package / 'broken.py'}:3" in message
    message = _message("mine.raises.Adapter")
    assert "RuntimeError: set-up failed" in message and f"{package / 'raises.py'}:2" in message


def test_a_missing_module_and_a_missing_target():
    assert "there is no module 'nope'" in _message("nope.Nope")
    assert "adapter._target_ is None" in _message(None)
    assert "_targt_" in _message(None)  # the likely cause, in the fix


def test_a_module_with_a_syntax_error_names_its_file_and_line(package):
    """The traceback of a syntax error ends in the import machinery: the message names the file and
    line of the error itself, and the fix is to correct it there (not to check the module path)."""
    message = _message("mine.typo.A")
    at = f"{package / 'typo.py'}:5"
    assert f"'mine.typo' is not valid Python: expected ':', at {at}" in message
    assert f"fix: correct the syntax at {at}" in message and "check it" not in message
