"""Model version names (``<base>-<date>-<time>-<4 hex>``), and finding the version a run names
(a misspelt one answered with the version meant)."""

from __future__ import annotations

import difflib
import re
import secrets
from datetime import datetime

from .errors import NotFoundError

VERSION_SUFFIX = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def version_name(base: str) -> str:
    """``<base>-<date>-<time>-<4 hex>``; a version trained again (a resumed failed one) gets a fresh
    suffix instead of a second one."""
    return f"{VERSION_SUFFIX.sub('', base)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def version_near(platform, name: str) -> str | None:
    """The version whose name is ``name`` but for a character or two: ``name`` is most likely it, misspelt."""
    versions = [m.name for m in platform.list_models() if VERSION_SUFFIX.search(m.name)]
    close = difflib.get_close_matches(name, versions, n=1, cutoff=0.9)
    return close[0] if close else None


def stored_version(platform, name: str):
    """The version a run without training uses; missing, the error names the key and the version
    meant, or how to make one."""
    try:
        return platform.get_model(name=name)
    except NotFoundError as err:
        close = version_near(platform, name)
        if close:  # a misspelt version: training under that name is refused too
            raise NotFoundError(f"{err.what} (did you mean model.name={close}?)", where="model.name",
                                fix=f"model.name={close}; python -m runner.store models lists the versions") from None
        if VERSION_SUFFIX.search(name):  # a version's name: made by a training, in the store it used
            raise NotFoundError(err.what, where=f"model.name (the store at {getattr(platform, 'root', '?')})",
                                fix="a version lives in the store of the run that trained it: point DATALOOP_PATH (or "
                                    "platform.root) at that store, or copy the store (python -m runner.store models "
                                    "lists the versions a store holds)") from None
        raise NotFoundError(err.what, where="model.name", fix=(err.fix or "").removesuffix(", or create it first")
                            + f", or train one first: a run with pipeline=train (or train_evaluate) and "
                              f"model.name={name} trains a version of it") from None
