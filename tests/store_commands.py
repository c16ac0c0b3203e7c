"""Running ``python -m runner.store`` on a test's platform, in-process (``main``)."""

from __future__ import annotations

import io
import json

from runner.store import main


def store(platform, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(platform.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def listed(platform, capsys, *args: str) -> list[dict]:
    code, out, err = store(platform, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


class Terminal(io.StringIO):
    """Answers typed on a terminal: ``monkeypatch.setattr(sys, "stdin", Terminal("y\\n"))``."""

    def isatty(self) -> bool:
        return True
