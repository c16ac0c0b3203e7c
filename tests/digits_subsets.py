"""The digits dataset's train / validation / test subsets, by the folder each item was imported into."""

from __future__ import annotations

import dtlpy as dl


def by_dir(name: str) -> dict:
    return dl.Filters(field="dir", values=f"/{name}").prepare()


SUBSETS = {name: by_dir(name) for name in ("train", "validation", "test")}
