"""SQLite records of the local platform. All SQL lives here; it speaks Dataloop JSON in and out.

One connection per thread (sqlite3 connections are not shared across threads); WAL so readers
never block the writer; ``BEGIN IMMEDIATE`` polled every few milliseconds (and a busy timeout for
everything else) so concurrent jobs queue for the write lock instead of failing.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dtlpy as dl

from ... import interrupts
from ...errors import AlreadyExistsError, NotFoundError, RunnerError
from ..annotation_json import model_stamp
from . import dql
from .schema import SCHEMA, SCHEMA_VERSION

_BUSY_TIMEOUT_MS = 60000  # reads and commits wait this long for a checkpoint or another writer
_LOCK_WAIT = 300.0  # seconds a write waits for the write lock before it gives up
_ITEM_COLUMNS = "items.rid, items.id, items.dataset_id, items.filename, items.dir, items.name, items.type, " \
    "items.hidden, items.mimetype, items.blob, items.size, items.created_at, items.metadata"
_DELETED_UNDER_RUN = ("it was deleted while this run was using it (python -m runner.store delete-model); run "
                      "again with a model that exists")
_SQL_VARS = 500  # ids per IN (...) chunk, well under SQLite's variable limit


class RecordNotFound(NotFoundError, dl.exceptions.NotFound):
    """A record the local platform does not hold. Adapters catch it as they would on Dataloop,
    ``except dl.exceptions.NotFound`` (status code 404), and the runner as any of its errors."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        super().__init__(what, where, fix)
        self.status_code, self.message = "404", str(self)


BLOB_KEY = "_blob"  # the item's blob travels with its JSON inside the platform; never shown to adapters


def new_id() -> str:
    """A 24-hex id like Dataloop's: seconds first, so ids sort roughly by creation time."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _chunks(seq: Sequence, n: int = _SQL_VARS) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class Store:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = self.connection()
        con.executescript(SCHEMA)  # idempotent (IF NOT EXISTS); executescript commits on its own
        with self.write():
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        found = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if int(found) != SCHEMA_VERSION:
            raise RunnerError(
                f"the local platform at {self.path} has schema version {found}, this runner reads {SCHEMA_VERSION}",
                fix="use a runner version that matches, or point platform.root at a new folder",
            )

    # -- connections and transactions -------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
        return con

    @contextmanager
    def write(self):
        """One write transaction: all of it is stored, or none of it."""
        con = self.connection()
        if self.writing():  # nested: join the outer transaction
            yield con
            return
        on_main = threading.current_thread() is threading.main_thread()  # where signal handlers raise
        if on_main:
            interrupts.defer()  # a stop waits for the COMMIT or ROLLBACK: see interrupts.defer
        self._local.writing = True
        try:
            self._begin_immediate(con)
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:  # not after a failed BEGIN, nor a COMMIT that took
                con.execute("ROLLBACK")
            raise
        finally:
            self._local.writing = False
            if on_main:
                interrupts.undefer()

    def writing(self) -> bool:
        """This thread is inside a ``write()``: a write joins its transaction."""
        return getattr(self._local, "writing", False)

    def _begin_immediate(self, con: sqlite3.Connection) -> None:
        """Take the write lock, polling every few milliseconds while another process holds it.

        SQLite's own busy handler backs off to 25-100 ms sleeps, so a process waiting for a writer
        that needs a few milliseconds would idle for most of that time; jobs that share the store
        (parallel sweeps, prediction shards) write small transactions at a high rate."""
        if not self.when_unlocked(con, "BEGIN IMMEDIATE", _LOCK_WAIT):
            raise RunnerError(f"the local platform at {self.path} stayed locked by another process for "
                              f"{_LOCK_WAIT:.0f} s", fix="wait for the other job to finish, then run again")

    @staticmethod
    def when_unlocked(con: sqlite3.Connection, statement: str, wait: float) -> bool:
        """Run ``statement``, which takes the write lock (``BEGIN IMMEDIATE``, ``VACUUM``), as soon as no
        other process holds it, polling for at most ``wait`` seconds; False when it stayed held."""
        con.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + wait
            delay = 0.0005
            while True:
                try:
                    con.execute(statement)
                    return True
                except sqlite3.OperationalError as err:
                    if "locked" not in str(err) and "busy" not in str(err):
                        raise
                if time.monotonic() > deadline:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        finally:
            con.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")

    def query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- projects ------------------------------------------------------------------------------

    def get_or_create_project(self, name: str) -> dict:
        with self.write() as con:
            row = con.execute("SELECT id, name, created_at FROM projects WHERE name = ?", (name,)).fetchone()
            if row is None:
                row = (new_id(), name, now_iso())
                con.execute("INSERT INTO projects VALUES (?, ?, ?)", row)
        return {"id": row[0], "name": row[1], "createdAt": row[2]}

    def project_names(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM projects ORDER BY name")]

    def get_project(self, project_id: str) -> dict:
        row = self.connection().execute("SELECT id, name, created_at FROM projects WHERE id = ?",
                                        (project_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no project with id {project_id!r} in the local platform at {self.path}")
        return {"id": row[0], "name": row[1], "createdAt": row[2]}

    # -- datasets ------------------------------------------------------------------------------

    def _dataset_json(self, row) -> dict:
        dataset_id, project_id, name, created_at, labels, attributes = row
        return {"id": dataset_id, "name": name, "projects": [project_id], "createdAt": created_at,
                "labels": json.loads(labels), "attributes": json.loads(attributes), "metadata": {},
                "driver": "local", "readableType": "local"}

    def create_dataset(self, project_id: str, name: str, labels: list | None = None) -> dict:
        with self.write() as con:
            exists = con.execute("SELECT 1 FROM datasets WHERE project_id = ? AND name = ?",
                                 (project_id, name)).fetchone()
            if exists:
                raise AlreadyExistsError(f"dataset {name!r} already exists in the local platform",
                                         fix="use the existing dataset, or choose another name")
            dataset_id = new_id()
            con.execute("INSERT INTO datasets (id, project_id, name, created_at, labels) VALUES (?, ?, ?, ?, ?)",
                        (dataset_id, project_id, name, now_iso(), json.dumps(labels or [])))
        return self.get_dataset(dataset_id)

    def set_import_source(self, dataset_id: str, source: dict) -> None:
        """The importer config a dataset was made from (kept in ``meta``: no schema change)."""
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        (f"import_source:{dataset_id}", json.dumps(source, sort_keys=True)))

    def import_source(self, dataset_id: str) -> dict | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key = ?",
                                        (f"import_source:{dataset_id}",)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_import_listing(self, dataset_id: str, listing: str) -> None:
        """A digest of the source's files as they were imported (runner/source_listing.py)."""
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"import_listing:{dataset_id}", listing))

    def import_listing(self, dataset_id: str) -> str | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key = ?",
                                        (f"import_listing:{dataset_id}",)).fetchone()
        return None if row is None else row[0]

    def find_dataset(self, project_id: str, name: str) -> dict | None:
        row = self.connection().execute(
            "SELECT id, project_id, name, created_at, labels, attributes FROM datasets WHERE project_id = ? AND name = ?",
            (project_id, name)).fetchone()
        return None if row is None else self._dataset_json(row)

    def get_dataset(self, dataset_id: str) -> dict:
        row = self.connection().execute(
            "SELECT id, project_id, name, created_at, labels, attributes FROM datasets WHERE id = ?",
            (dataset_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no dataset with id {dataset_id!r} in the local platform at {self.path}")
        return self._dataset_json(row)

    def list_datasets(self, project_id: str) -> list[dict]:
        rows = self.query("SELECT id, project_id, name, created_at, labels, attributes FROM datasets "
                          "WHERE project_id = ? ORDER BY created_at", (project_id,))
        return [self._dataset_json(r) for r in rows]

    def set_dataset_labels(self, dataset_id: str, labels: list) -> None:
        with self.write() as con:
            con.execute("UPDATE datasets SET labels = ? WHERE id = ?", (json.dumps(labels), dataset_id))

    # -- items ---------------------------------------------------------------------------------

    @staticmethod
    def item_json(row) -> dict:
        (_rid, item_id, dataset_id, filename, dirname, name, type_, hidden, mimetype, blob, size, created_at,
         metadata) = row[:13]
        meta = json.loads(metadata)
        system = meta.setdefault("system", {})
        if mimetype:
            system.setdefault("mimetype", mimetype)
        if size is not None:
            system.setdefault("size", size)
        out = {"id": item_id, "datasetId": dataset_id, "filename": filename, "dir": dirname, "name": name,
               "type": type_, "hidden": bool(hidden), "metadata": meta, "createdAt": created_at,
               BLOB_KEY: blob}
        if len(row) > 13:
            out["annotated"] = bool(row[13])
        return out

    def insert_items(self, rows: Iterable[dict]) -> int:
        """Insert items given as dicts with keys of the ``items`` table (id/created_at optional).
        An item whose (dataset, filename) exists is left as it is: imports are idempotent."""
        created = now_iso()
        values = [(r.get("id") or new_id(), r["dataset_id"], r["filename"], r["dir"], r["name"], r.get("type", "file"),
                   int(bool(r.get("hidden", False))), r.get("mimetype"), r.get("blob"), r.get("size"),
                   r.get("created_at") or created, json.dumps(r.get("metadata") or {})) for r in rows]
        with self.write() as con:
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO items (id, dataset_id, filename, dir, name, type, hidden, mimetype, blob, size,"
                " created_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            return con.total_changes - before

    def existing_filenames(self, dataset_id: str, filenames: Sequence[str]) -> dict[str, str | None]:
        """Those of ``filenames`` the dataset holds, with the blob of each."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(list(filenames)):
            marks = ",".join("?" * len(chunk))
            found.update((r[0], r[1]) for r in self.query(
                f"SELECT filename, blob FROM items WHERE dataset_id = ? AND filename IN ({marks})", (dataset_id, *chunk)))
        return found

    def get_item(self, item_id: str) -> dict:
        row = self.connection().execute(
            f"SELECT {_ITEM_COLUMNS}, EXISTS(SELECT 1 FROM annotations a WHERE a.item_id = items.id) "
            "FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no item with id {item_id!r} in the local platform at {self.path}")
        return self.item_json(row)

    def item_blob(self, item_id: str) -> tuple[str, str]:
        row = self.connection().execute("SELECT blob, name FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None or row[0] is None:
            raise RecordNotFound(f"item {item_id!r} has no stored file in the local platform at {self.path}")
        return row[0], row[1]

    def update_item_metadata(self, item_id: str, metadata: dict) -> None:
        with self.write() as con:
            con.execute("UPDATE items SET metadata = ? WHERE id = ?", (json.dumps(metadata), item_id))

    def count_items(self, dataset_id: str, dql_json: dict | None) -> int:
        f = dql.item_filter(dql_json)
        return self.connection().execute(
            f"SELECT COUNT(*) FROM items WHERE items.dataset_id = ? AND ({f.where})", (dataset_id, *f.params)
        ).fetchone()[0]

    def list_items(self, dataset_id: str, dql_json: dict | None, offset: int, limit: int) -> list[dict]:
        f = dql.item_filter(dql_json)
        rows = self.query(
            f"SELECT {_ITEM_COLUMNS}, EXISTS(SELECT 1 FROM annotations a WHERE a.item_id = items.id) FROM items "
            f"WHERE items.dataset_id = ? AND ({f.where}) ORDER BY {dql.order_by(dql_json, 'items')} LIMIT ? OFFSET ?",
            (dataset_id, *f.params, limit, offset))
        return [self.item_json(r) for r in rows]

    def rids_before(self, dataset_id: str, dql_json: dict | None, positions: Sequence[int]) -> list[int]:
        """The rid of the matching item just before each of ``positions`` (ascending, above 0; positions
        in rid order), in one query: cuts of the listing that later writes do not move. A position
        past the end (the matching set shrank since it was counted) cuts where the one before it did."""
        wanted = [p - 1 for p in positions]
        if not wanted:
            return []
        f = dql.item_filter(dql_json)
        found = dict(self.query(
            f"SELECT n, rid FROM (SELECT items.rid AS rid, ROW_NUMBER() OVER (ORDER BY items.rid) - 1 AS n "
            f"FROM items WHERE items.dataset_id = ? AND ({f.where})) WHERE n IN ({','.join('?' * len(wanted))})",
            (dataset_id, *f.params, *wanted)))
        cuts, rid = [], 0
        for n in wanted:
            rid = found.get(n, rid)
            cuts.append(rid)
        return cuts

    def iter_items(self, dataset_id: str, dql_json: dict | None, page_size: int = 500,
                   after: int = 0, through: int | None = None) -> Iterator[list[dict]]:
        """The matching items with ``after < rid <= through`` (insertion order), a page at a time, by
        keyset on the rid: memory holds one page, and writes to items already listed (their
        predictions) move no page boundary."""
        f = dql.item_filter(dql_json)
        upto, bound = ("", ()) if through is None else (" AND items.rid <= ?", (through,))
        where = f"items.dataset_id = ? AND items.rid > ?{upto} AND ({f.where})"
        last = after
        while True:
            rows = self.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} ORDER BY items.rid LIMIT ?",
                              (dataset_id, last, *bound, *f.params, page_size))
            if not rows:
                return
            last = rows[-1][0]
            yield [self.item_json(r) for r in rows]

    # -- annotations ---------------------------------------------------------------------------

    def annotations_of(self, item_ids: Sequence[str], dql_json: dict | None = None) -> dict[str, list[dict]]:
        """item id -> its annotations' JSON (in insertion order), optionally filtered by annotation DQL."""
        f = dql.annotation_filter(dql_json)
        out: dict[str, list[dict]] = {i: [] for i in item_ids}
        for chunk in _chunks(list(item_ids)):
            marks = ",".join("?" * len(chunk))
            for item_id, js in self.query(
                    f"SELECT annotations.item_id, annotations.json FROM annotations WHERE annotations.item_id IN "
                    f"({marks}) AND ({f.where}) ORDER BY annotations.rid", (*chunk, *f.params)):
                out[item_id].append(json.loads(js))
        return out

    def list_annotations(self, dataset_id: str, dql_json: dict | None, offset: int, limit: int) -> list[dict]:
        """A page of a dataset's annotations matching annotation DQL, in the query's sort (dtlpy pages
        by ``id``), then in insertion order."""
        f = dql.annotation_filter(dql_json)
        return [json.loads(js) for (js,) in self.query(
            f"SELECT annotations.json FROM annotations WHERE annotations.dataset_id = ? AND ({f.where}) "
            f"ORDER BY {dql.order_by(dql_json, 'annotations')} LIMIT ? OFFSET ?", (dataset_id, *f.params, limit, offset))]

    def count_matching_annotations(self, dataset_id: str, dql_json: dict | None) -> int:
        f = dql.annotation_filter(dql_json)
        return self.connection().execute(
            f"SELECT COUNT(*) FROM annotations WHERE annotations.dataset_id = ? AND ({f.where})",
            (dataset_id, *f.params)).fetchone()[0]

    def get_annotation(self, annotation_id: str) -> dict:
        row = self.connection().execute("SELECT json FROM annotations WHERE id = ?", (annotation_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no annotation with id {annotation_id!r} in the local platform at {self.path}")
        return json.loads(row[0])

    @staticmethod
    def annotation_row(ann: dict) -> tuple:
        model = model_stamp(ann)
        return (ann["id"], ann["itemId"], ann["datasetId"], ann["type"], ann.get("label"), model.get("name"),
                ann["createdAt"], json.dumps(ann))

    def insert_annotations(self, annotations: Sequence[dict]) -> None:
        """Insert annotation JSON (each with id, itemId, datasetId, type, createdAt)."""
        rows = [self.annotation_row(a) for a in annotations]  # serialised before taking the write lock
        with self.write() as con:
            self._insert_annotation_rows(con, rows)

    @staticmethod
    def _insert_annotation_rows(con: sqlite3.Connection, rows: list[tuple]) -> None:
        con.executemany("INSERT INTO annotations (id, item_id, dataset_id, type, label, model_name, created_at, json) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def update_annotations(self, annotations: Sequence[dict]) -> None:
        with self.write() as con:
            for a in annotations:
                row = self.annotation_row(a)
                cur = con.execute("UPDATE annotations SET item_id=?, dataset_id=?, type=?, label=?, model_name=?, "
                                  "created_at=?, json=? WHERE id = ?", (*row[1:], row[0]))
                if cur.rowcount == 0:
                    raise RecordNotFound(f"no annotation with id {a['id']!r} to update")

    def delete_annotations(self, item_id: str | None = None, dql_json: dict | None = None,
                           annotation_ids: Sequence[str] = ()) -> int:
        with self.write() as con:
            if annotation_ids:
                n = 0
                for chunk in _chunks(list(annotation_ids)):
                    n += con.execute(f"DELETE FROM annotations WHERE id IN ({','.join('?' * len(chunk))})",
                                     chunk).rowcount
                return n
            f = dql.annotation_filter(dql_json)
            return con.execute(f"DELETE FROM annotations WHERE annotations.item_id = ? AND ({f.where})",
                               (item_id, *f.params)).rowcount

    def replace_model_annotations(self, model_name: str, item_ids: Sequence[str], annotations: Sequence[dict]) -> None:
        """Delete the model's earlier annotations on these items and store the new ones, in one transaction:
        a rerun never duplicates, and a crash leaves the earlier ones."""
        self.replace_model_annotation_rows(model_name, item_ids, [self.annotation_row(a) for a in annotations])

    def replace_model_annotation_rows(self, model_name: str, item_ids: Sequence[str], rows: Sequence[tuple],
                                      model_id: str | None = None) -> None:
        """``replace_model_annotations`` with the rows already serialised (``annotation_row``), so the
        write lock is held for the writes alone. With ``model_id``, only while that model exists."""
        with self.write() as con:
            if model_id is not None:
                self._require_model(con, model_id)
            for chunk in _chunks(list(item_ids)):
                con.execute(f"DELETE FROM annotations WHERE model_name = ? AND item_id IN ({','.join('?' * len(chunk))})",
                            (model_name, *chunk))
            self._insert_annotation_rows(con, rows)

    def count_annotations(self, dataset_id: str, model_name: str | None = None) -> int:
        if model_name is None:
            sql, params = "SELECT COUNT(*) FROM annotations WHERE dataset_id = ?", (dataset_id,)
        else:
            sql, params = "SELECT COUNT(*) FROM annotations WHERE dataset_id = ? AND model_name = ?", (dataset_id, model_name)
        return self.connection().execute(sql, params).fetchone()[0]

    # -- models --------------------------------------------------------------------------------

    def create_model(self, model: dict) -> dict:
        model = dict(model)
        model.setdefault("id", new_id())
        stamp = now_iso()
        model.setdefault("createdAt", stamp)
        model["updatedAt"] = stamp
        model.setdefault("status", "created")
        project_id = model["context"]["project"]
        with self.write() as con:
            if con.execute("SELECT 1 FROM models WHERE project_id = ? AND name = ?", (project_id, model["name"])).fetchone():
                raise AlreadyExistsError(f"a model named {model['name']!r} already exists in this project",
                                         fix="choose another model name, or load the existing model")
            con.execute("INSERT INTO models (id, project_id, dataset_id, name, status, cloned_from, created_at, "
                        "updated_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (model["id"], project_id, model.get("datasetId"), model["name"], model["status"],
                         model.get("clonedFrom"), model["createdAt"], model["updatedAt"], json.dumps(model)))
        return self.get_model(model["id"])

    def get_model(self, model_id: str) -> dict:
        row = self.connection().execute("SELECT json, cloned_from FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no model with id {model_id!r} in the local platform at {self.path}",
                                fix="list the models with LocalPlatform.list_models()")
        model = json.loads(row[0])
        if row[1] is not None:  # kept in its column: an entity's update() writes JSON without it
            model["clonedFrom"] = row[1]
        model["artifacts"] = [{"type": "local", "name": name, "localPath": name, "size": size}
                              for name, size in self.query("SELECT name, size FROM artifacts WHERE model_id = ? "
                                                           "ORDER BY name", (model_id,))]
        return model

    def find_model(self, project_id: str, name: str) -> dict | None:
        row = self.connection().execute("SELECT id FROM models WHERE project_id = ? AND name = ?",
                                        (project_id, name)).fetchone()
        return None if row is None else self.get_model(row[0])

    def list_models(self, project_id: str) -> list[dict]:
        return [self.get_model(r[0]) for r in self.query(
            "SELECT id FROM models WHERE project_id = ? ORDER BY created_at, rowid", (project_id,))]

    def _require_model(self, con: sqlite3.Connection, model_id: str) -> None:
        """Inside a write: the model must still be there (a delete may have run while a job used it)."""
        if con.execute("SELECT 1 FROM models WHERE id = ?", (model_id,)).fetchone() is None:
            raise RecordNotFound(f"model {model_id} is not in the local platform at {self.path} any more",
                                where="a write of its artifacts, metrics or predictions",
                                fix=_DELETED_UNDER_RUN)

    def update_model(self, model: dict) -> dict:
        model = {k: v for k, v in model.items() if k != "artifacts"}
        model["updatedAt"] = now_iso()
        with self.write() as con:
            try:
                cur = con.execute("UPDATE models SET name=?, status=?, dataset_id=?, updated_at=?, json=? WHERE id = ?",
                                  (model["name"], model.get("status") or "created", model.get("datasetId"),
                                   model["updatedAt"], json.dumps(model), model["id"]))
            except sqlite3.IntegrityError:  # a rename onto another model's name
                raise AlreadyExistsError(f"a model named {model['name']!r} already exists in this project: model "
                                         f"{model['id']} cannot take that name", where="model.name",
                                         fix="choose another name, or delete that model first") from None
            if cur.rowcount == 0:
                raise RecordNotFound(f"model {model['id']} ({model['name']!r}) is not in the local platform at "
                                    f"{self.path} any more: it cannot be updated",
                                    fix=_DELETED_UNDER_RUN)
        return self.get_model(model["id"])

    # -- artifacts -----------------------------------------------------------------------------

    def list_artifacts(self, model_id: str) -> list[tuple[str, str, int]]:
        return [tuple(r) for r in self.query(
            "SELECT name, blob, size FROM artifacts WHERE model_id = ? ORDER BY name", (model_id,))]

    def set_artifacts(self, model_id: str, files: Sequence[tuple[str, str, int]], replace: bool) -> None:
        """Store (name, blob, size) rows; with ``replace`` the old set goes in the same transaction,
        so readers see the previous complete set or the new one, never a mix."""
        with self.write() as con:
            self._require_model(con, model_id)
            if replace:
                con.execute("DELETE FROM artifacts WHERE model_id = ?", (model_id,))
            con.executemany("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?)",
                            [(model_id, name, blob, size) for name, blob, size in files])

    # -- metrics and evaluations ---------------------------------------------------------------

    def add_metric_samples(self, model_id: str, dataset_id: str | None, samples: Sequence[dict]) -> None:
        with self.write() as con:
            self._require_model(con, model_id)
            con.executemany("INSERT INTO metric_samples (model_id, dataset_id, json) VALUES (?, ?, ?)",
                            [(model_id, dataset_id, json.dumps(s)) for s in samples])

    def metric_samples(self, model_id: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.query(
            "SELECT json FROM metric_samples WHERE model_id = ? ORDER BY rid", (model_id,))]

    def add_evaluation(self, model_id: str, dataset_id: str | None, metrics: dict) -> None:
        with self.write() as con:
            self._require_model(con, model_id)
            con.execute("INSERT INTO evaluations (model_id, dataset_id, created_at, json) VALUES (?, ?, ?, ?)",
                        (model_id, dataset_id, now_iso(), json.dumps(metrics)))

    def latest_evaluation(self, model_id: str) -> dict | None:
        found = self.latest_evaluation_on(model_id)
        return None if found is None else found[0]

    def latest_evaluation_on(self, model_id: str, subset: str | None = None) -> tuple[dict, str | None] | None:
        """The model's latest evaluation (with ``subset``: its latest of that subset of its own, as the
        evaluation records it) and the id of the dataset it was taken on."""
        where, params = ("", ()) if subset is None else (" AND json_extract(json, '$.subset') = ?", (subset,))
        row = self.connection().execute(f"SELECT json, dataset_id FROM evaluations WHERE model_id = ?{where} "
                                        "ORDER BY rid DESC LIMIT 1", (model_id, *params)).fetchone()
        return None if row is None else (json.loads(row[0]), row[1])

    def evaluated_subsets(self) -> list[str]:
        """The names of the subsets evaluations were taken on (as each records it), sorted."""
        return [r[0] for r in self.query("SELECT DISTINCT json_extract(json, '$.subset') AS s FROM evaluations "
                                         "WHERE s IS NOT NULL ORDER BY s")]

    def evaluations(self, model_id: str) -> list[tuple[str, str | None, dict]]:
        """Every evaluation of the model, latest first: (when, dataset id, metrics)."""
        return [(r[0], r[1], json.loads(r[2])) for r in self.query(
            "SELECT created_at, dataset_id, json FROM evaluations WHERE model_id = ? ORDER BY rid DESC", (model_id,))]

    # -- feature sets --------------------------------------------------------------------------

    @staticmethod
    def _feature_set_json(row) -> dict:
        fs_id, project_id, model_id, name, size, set_type, created_at = row
        return {"id": fs_id, "project": project_id, "modelId": model_id, "name": name, "size": size,
                "type": set_type, "entityType": "item", "createdAt": created_at}

    def create_feature_set(self, project_id: str, name: str, size: int, model_id: str | None, set_type: str | None) -> dict:
        fs_id = new_id()
        with self.write() as con:
            try:
                con.execute("INSERT INTO feature_sets VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (fs_id, project_id, model_id, name, int(size), set_type, now_iso()))
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"a feature set named {name!r} already exists in this project",
                                         fix="choose another name, or get the existing one "
                                             "(project.feature_sets.list())") from None
        return self.get_feature_set(fs_id)

    def model_feature_set(self, project_id: str, model_id: str, model_name: str, size: int) -> dict:
        """The model's feature set, found or made in one transaction (shards of one embed ask at once);
        one that holds no vector takes ``size``."""
        with self.write() as con:
            found = self.find_feature_sets(project_id, model_id=model_id)
            if not found:  # named after the model; another set of that name (an earlier model's) -> the id's end too
                name = model_name
                if self.find_feature_sets(project_id, name=name):
                    name = f"{model_name}-{model_id}"
                return self.create_feature_set(project_id, name, size, model_id, model_name)
            if found[0]["size"] != int(size) and con.execute(
                    "SELECT 1 FROM features WHERE feature_set_id = ? LIMIT 1", (found[0]["id"],)).fetchone() is None:
                con.execute("UPDATE feature_sets SET size = ? WHERE id = ?", (int(size), found[0]["id"]))
            return self.get_feature_set(found[0]["id"])

    def get_feature_set(self, feature_set_id: str) -> dict:
        row = self.connection().execute("SELECT * FROM feature_sets WHERE id = ?", (feature_set_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no feature set with id {feature_set_id!r} in the local platform at {self.path}")
        return self._feature_set_json(row)

    def find_feature_sets(self, project_id: str, name: str | None = None, model_id: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM feature_sets WHERE project_id = ?", [project_id]
        if name is not None:
            sql, params = sql + " AND name = ?", params + [name]
        if model_id is not None:
            sql, params = sql + " AND model_id = ?", params + [model_id]
        return [self._feature_set_json(r) for r in self.query(sql + " ORDER BY created_at", params)]

    def upsert_features(self, feature_set_id: str, rows: Sequence[tuple[str, bytes]]) -> None:
        with self.write() as con:
            con.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                            [(feature_set_id, item_id, vec) for item_id, vec in rows])

    def features(self, feature_set_id: str, item_ids: Sequence[str] | None = None,
                 dataset_id: str | None = None) -> list[tuple[str, bytes]]:
        """(item id, vector bytes): of ``item_ids``, or of every item (of ``dataset_id``) in the order
        the items were added."""
        if item_ids is None:
            where, params = ("", (feature_set_id,)) if dataset_id is None else \
                (" AND i.dataset_id = ?", (feature_set_id, dataset_id))
            return [tuple(r) for r in self.query(
                "SELECT f.item_id, f.vector FROM features f JOIN items i ON i.id = f.item_id "
                f"WHERE f.feature_set_id = ?{where} ORDER BY i.rid", params)]
        out: list[tuple[str, bytes]] = []
        for chunk in _chunks(list(item_ids)):
            out += [tuple(r) for r in self.query(
                f"SELECT item_id, vector FROM features WHERE feature_set_id = ? AND item_id IN "
                f"({','.join('?' * len(chunk))})", (feature_set_id, *chunk))]
        return out

    def model_vectors(self, model_id: str) -> tuple[int, int | None]:
        """(how many vectors, their size) in the model's feature set; (0, None) without one."""
        row = self.connection().execute(
            "SELECT COUNT(f.item_id), s.size FROM feature_sets s LEFT JOIN features f ON f.feature_set_id = s.id "
            "WHERE s.model_id = ? GROUP BY s.id", (model_id,)).fetchone()
        return (row[0], row[1]) if row else (0, None)

    def item_places(self, item_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """item id -> (its dataset's name, its filename)."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(list(item_ids)):
            out.update((r[0], (r[1], r[2])) for r in self.query(
                "SELECT i.id, d.name, i.filename FROM items i JOIN datasets d ON d.id = i.dataset_id "
                f"WHERE i.id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    # -- deletion ------------------------------------------------------------------------------

    def delete_models(self, project_id: str, model_ids: Sequence[str], predictions: bool = True) -> set[str]:
        """Delete these models with what is theirs: artifacts, metric samples, evaluations, feature sets
        and their vectors, and (with ``predictions``) the annotations they made on this project's
        datasets. Returns the blobs their artifacts used."""
        blobs: set[str] = set()
        with self.write() as con:
            for chunk in _chunks(list(model_ids)):
                marks = ",".join("?" * len(chunk))
                blobs |= {r[0] for r in con.execute(f"SELECT blob FROM artifacts WHERE model_id IN ({marks})", chunk)}
                names = [r[0] for r in con.execute(f"SELECT name FROM models WHERE id IN ({marks})", chunk)]
                if predictions and names:
                    con.execute(f"DELETE FROM annotations WHERE model_name IN ({','.join('?' * len(names))}) AND "
                                f"dataset_id IN (SELECT id FROM datasets WHERE project_id = ?)", (*names, project_id))
                con.execute(f"DELETE FROM features WHERE feature_set_id IN "
                            f"(SELECT id FROM feature_sets WHERE model_id IN ({marks}))", chunk)
                for table in ("feature_sets", "artifacts", "metric_samples", "evaluations"):
                    con.execute(f"DELETE FROM {table} WHERE model_id IN ({marks})", chunk)
                con.execute(f"DELETE FROM models WHERE id IN ({marks})", chunk)
        return blobs

    def delete_dataset(self, dataset_id: str) -> set[str]:
        """Delete a dataset with its items, their annotations and feature vectors, and its recorded
        import source and listing. Returns the blobs its items used."""
        with self.write() as con:
            blobs = {r[0] for r in con.execute(
                "SELECT DISTINCT blob FROM items WHERE dataset_id = ? AND blob IS NOT NULL", (dataset_id,))}
            con.execute("DELETE FROM features WHERE item_id IN (SELECT id FROM items WHERE dataset_id = ?)", (dataset_id,))
            con.execute("DELETE FROM annotations WHERE dataset_id = ?", (dataset_id,))
            con.execute("DELETE FROM items WHERE dataset_id = ?", (dataset_id,))
            con.execute("DELETE FROM meta WHERE key IN (?, ?)",
                        (f"import_source:{dataset_id}", f"import_listing:{dataset_id}"))
            con.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        return blobs

    def unreferenced(self, blobs: Iterable[str]) -> set[str]:
        """Those of ``blobs`` that no item and no artifact uses (one pass over each table)."""
        used = {r[0] for r in self.query("SELECT blob FROM items WHERE blob IS NOT NULL UNION SELECT blob FROM artifacts")}
        return set(blobs) - used

    def dataset_counts(self, project_id: str) -> dict[str, dict[str, int]]:
        """Per dataset id: items, ground-truth annotations, predictions (annotations a model made), models."""
        counts = {r[0]: {"items": 0, "annotations": 0, "predictions": 0, "models": 0}
                  for r in self.query("SELECT id FROM datasets WHERE project_id = ?", (project_id,))}
        for sql, key in (("SELECT dataset_id, COUNT(*) FROM items GROUP BY dataset_id", "items"),
                         ("SELECT dataset_id, COUNT(*) FROM annotations WHERE model_name IS NULL GROUP BY dataset_id",
                          "annotations"),
                         ("SELECT dataset_id, COUNT(*) FROM annotations WHERE model_name IS NOT NULL GROUP BY dataset_id",
                          "predictions"),
                         ("SELECT dataset_id, COUNT(*) FROM models WHERE dataset_id IS NOT NULL GROUP BY dataset_id",
                          "models")):
            for dataset_id, n in self.query(sql):
                if dataset_id in counts:
                    counts[dataset_id][key] = n
        return counts
