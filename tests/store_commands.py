"""Running ``python -m runner.store`` on a test's platform: in-process (``main``) and as a process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from runner.store import main


def store(platform, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(platform.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def listed(platform, capsys, *args: str) -> list[dict]:
    code, out, err = store(platform, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def as_process(*args: str, env: dict, cwd: Path, module: str = "runner.store", options: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess:
    """``python <options> -m <module> <args>`` in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, *options, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


class Terminal(io.StringIO):
    """Answers typed on a terminal: ``monkeypatch.setattr(sys, "stdin", Terminal("y\\n"))``."""

    def isatty(self) -> bool:
        return True
