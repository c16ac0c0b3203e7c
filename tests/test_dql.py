"""DQL -> SQL translation, checked against a real SQLite database built from the platform schema."""

from __future__ import annotations

import json
import sqlite3

import dtlpy as dl
import pytest

from runner.errors import FilterError
from runner.platform.local import schema
from runner.platform.local.dql import SqlFilter, annotation_filter, item_filter, order_by, page_size

OPS = dl.FiltersOperations

# id, dataset, filename, type, hidden, mimetype, created_at, metadata
ITEMS = [
    ("i01", "d1", "/train/a1.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z",
     {"system": {"tags": {"train": True}}, "user": {"labels": ["a", "b"], "score": 5}}),
    ("i02", "d1", "/train/a2.png", "file", 0, "image/png", "2024-01-02T10:00:00.000Z",
     {"system": {"tags": {"train": True}}, "user": {"score": 10}}),
    ("i03", "d1", "/train/sub/b1.jpg", "file", 0, "image/jpeg", "2024-01-03T10:00:00.000Z",
     {"system": {"tags": {"validation": True}}, "user": {"labels": ["b"], "score": 1}}),
    ("i04", "d1", "/val/c1.png", "file", 0, "image/png", "2024-02-01T10:00:00.000Z",
     {"system": {"tags": {"validation": True}}, "user": {"labels": "a"}}),
    ("i05", "d1", "/val/c2.png", "file", 0, None, "2024-02-02T10:00:00.000Z", {"user": {"score": None}}),
    ("i06", "d1", "/val/hidden.png", "file", 1, "image/png", "2024-02-03T10:00:00.000Z", {}),
    ("i07", "d1", "/test/[x]?.png", "file", 0, "image/png", "2024-03-01T10:00:00.000Z",
     {"user": {"note": "x' OR 1=1 --"}}),
    ("i08", "d1", "/test/xy.png", "file", 0, "image/png", "2024-03-02T10:00:00.000Z", {}),
    ("i09", "d1", "/train", "dir", 0, None, "2024-01-01T00:00:00.000Z", {}),
    ("i10", "d1", "/a/b/c/deep.png", "file", 0, "image/png", "2024-04-01T10:00:00.000Z",
     {"system": {"tags": {"train": False}}, "user": {"score": 7.5, "nested": {"deep": {"x": 1}}}}),
    ("i11", "d1", "/misc/x' OR 1=1 --", "file", 0, None, "2024-05-01T10:00:00.000Z", {}),
    ("i12", "d1", "/train/a3.png", "file", 0, "image/png", "2023-12-31T10:00:00.000Z", {"user": {"labels": ["c"]}}),
    ("i13", "d1", "/val/c3.png", "file", 0, "image/png", "2024-06-01T10:00:00.000Z", {"user": {"score": 3}}),
    ("i14", "d1", "/train/a4.txt", "file", 0, "text/plain", "2024-06-02T10:00:00.000Z", {}),
    ("j01", "d2", "/train/a1.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z",
     {"system": {"tags": {"train": True}}}),
    ("j02", "d2", "/val/c1.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {}),
    ("j03", "d2", "/val/hidden.png", "file", 1, "image/png", "2024-01-01T10:00:00.000Z", {}),
    ("j04", "d2", "/train/b.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"score": 50}}),
    # d3: one metadata field holding values of several JSON types, and task refs for $match
    ("k01", "d3", "/k/s.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": "abc"}}),
    ("k02", "d3", "/k/n.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": 7}}),
    ("k03", "d3", "/k/f.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": 7.0}}),
    ("k04", "d3", "/k/str7.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": "7"}}),
    ("k05", "d3", "/k/arr.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": [1, "zzz"]}}),
    ("k06", "d3", "/k/true.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"flag": True}}),
    ("k07", "d3", "/k/one.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"flag": 1}}),
    ("k08", "d3", "/k/false.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"flag": False}}),
    ("k09", "d3", "/k/zero.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"flag": 0}}),
    ("k10", "d3", "/k/flags.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"flag": [0, "yes"]}}),
    ("k11", "d3", "/k/real.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"user": {"x": 2.5}}),
    ("k12", "d3", "/k/5", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {}),
    ("m1", "d3", "/m/1.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"system": {"refs": [
        {"id": "t1", "type": "task", "metadata": {"status": "completed", "creator": "a@x.io"}},
        {"id": "t2", "type": "task"}]}}),
    ("m2", "d3", "/m/2.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"system": {"refs": [
        {"id": "t1", "type": "task"}, {"id": "t2", "type": "task", "metadata": {"status": "completed"}}]}}),
    ("m3", "d3", "/m/3.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"system": {"refs":
        {"id": "t1", "type": "task", "metadata": {"status": "completed"}}}}),  # an object, not an array
    ("m4", "d3", "/m/4.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"system": {"refs": [
        "t1", {"id": "t1", "type": "task", "metadata": {"status": "approved", "timestamp": 5}}]}}),
    ("m5", "d3", "/m/5.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z", {"system": {"refs": []}}),
    # d4: arrays of objects inside the elements of an array of objects
    ("n1", "d4", "/n/1.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z",
     {"user": {"l": [{"k": [{"a": 1, "b": 2}]}]}}),
    ("n2", "d4", "/n/2.png", "file", 0, "image/png", "2024-01-01T10:00:00.000Z",
     {"user": {"l": [{"k": [{"a": 1}, {"b": 2}]}]}}),
]  # fmt: skip

# id, item, dataset, type, label, model name, extra json
ANNOTATIONS = [
    ("a1", "i01", "d1", "box", "cat", None, {}),
    ("a2", "i01", "d1", "box", "dog", "m1", {}),
    ("a3", "i02", "d1", "class", "dog", None, {}),
    ("a4", "i03", "d1", "box", "cat", "m1", {}),
    ("a5", "i04", "d1", "segment", "bird", None, {"source": "ui", "creator": "me@x.io"}),
    ("a6", "j01", "d2", "box", "cat", None, {}),
    ("a7", "i10", "d1", "class", "cat", "m2", {"metadata": {"user": {"reviewed": True}}}),
    ("a8", "m1", "d3", "class", "cat", None,
     {"metadata": {"user": {"reviews": [{"by": "a", "ok": True}, {"by": "b", "ok": False}]}}}),
]

D1 = {row[0] for row in ITEMS if row[1] == "d1"}
D3 = {row[0] for row in ITEMS if row[1] == "d3"}
FILES = {
    row[0] for row in ITEMS if row[1] == "d1" and row[3] == "file" and not row[4]
}  # dl.Filters() defaults


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> sqlite3.Connection:
    con = sqlite3.connect(tmp_path_factory.mktemp("dql") / "platform.db")
    con.executescript(schema.SCHEMA)
    for item_id, ds, filename, typ, hidden, mime, created, metadata in ITEMS:
        d, _, name = filename.rpartition("/")
        con.execute(
            "INSERT INTO items (id, dataset_id, filename, dir, name, type, hidden, mimetype, created_at, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item_id, ds, filename, d or "/", name, typ, hidden, mime, created, json.dumps(metadata)),
        )
    for ann_id, item_id, ds, typ, label, model, extra in ANNOTATIONS:
        record = {"id": ann_id, "itemId": item_id, "type": typ, "label": label, **extra}
        record.setdefault("metadata", {})["system"] = {"model": {"name": model}} if model else {}
        con.execute(
            "INSERT INTO annotations (id, item_id, dataset_id, type, label, model_name, created_at, json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ann_id, item_id, ds, typ, label, model, "2024-01-01T00:00:00.000Z", json.dumps(record)),
        )
    con.commit()
    return con


def _dql(query):
    return query.prepare() if isinstance(query, dl.Filters) else query


def items(db, query, dataset="d1") -> set[str]:
    f = item_filter(_dql(query))
    sql = f"SELECT items.id FROM items WHERE items.dataset_id = ? AND ({f.where})"
    return {row[0] for row in db.execute(sql, (dataset, *f.params))}


def annotations(db, query, dataset="d1") -> set[str]:
    f = annotation_filter(_dql(query))
    sql = f"SELECT annotations.id FROM annotations WHERE annotations.dataset_id = ? AND ({f.where})"
    return {row[0] for row in db.execute(sql, (dataset, *f.params))}


def items_filter(*clauses, **top) -> dict:
    """Hand-written DQL with dtlpy's default clauses."""
    return {"filter": {"$and": [{"hidden": False}, {"type": "file"}, *clauses]}, "resource": "items", **top}


def filters(field, values, operator=None, **kwargs) -> dl.Filters:
    f = dl.Filters(**kwargs)
    f.add(field=field, values=values, operator=operator)
    return f


# --- defaults and equality -------------------------------------------------------------------------------


def test_no_condition(db):
    assert item_filter(None) == SqlFilter("1", ())
    assert item_filter({}) == SqlFilter("1", ())
    assert annotation_filter(None) == SqlFilter("1", ())
    assert items(db, dl.Filters(use_defaults=False)) == D1
    assert items(db, dl.Filters()) == FILES
    assert items(db, dl.Filters(), dataset="d2") == {"j01", "j02", "j04"}


def test_dir_equality_and_eq_operator(db):
    assert items(db, dl.Filters(field="dir", values="/train")) == {"i01", "i02", "i12", "i14"}
    assert items(db, filters("dir", "/train", OPS.EQUAL)) == {"i01", "i02", "i12", "i14"}
    assert items(db, dl.Filters(field="dir", values="/train"), dataset="d2") == {"j01", "j04"}


def test_hidden_and_type(db):
    assert items(db, filters("hidden", True)) == {"i06"}
    assert items(db, filters("type", "dir", use_defaults=False)) == {"i09"}
    assert items(db, {"filter": {"hidden": 1, "type": "file"}}) == {"i06"}


def test_ne_matches_null(db):
    # mimetype is NULL on i05 / i11: Mongo's $ne matches missing values
    assert items(db, filters("mimetype", "image/png", OPS.NOT_EQUAL)) == {"i03", "i05", "i11", "i14"}
    assert items(db, filters("metadata.user.score", 5, OPS.NOT_EQUAL)) == FILES - {"i01"}
    assert items(db, items_filter({"mimetype": {"$ne": None}})) == FILES - {"i05", "i11"}


def test_eq_null_means_missing(db):
    assert items(db, filters("metadata.user.score", None)) == FILES - {"i01", "i02", "i03", "i10", "i13"}
    assert items(db, filters("mimetype", None)) == {"i05", "i11"}


def test_in_nin(db):
    assert items(db, filters("name", ["a1.png", "c1.png"], OPS.IN)) == {"i01", "i04"}
    assert items(db, filters("name", ["a1.png", "c1.png"], OPS.IN), dataset="d2") == {"j01", "j02"}
    assert items(db, filters("mimetype", ["image/png", "image/jpeg"], OPS.NIN)) == {"i05", "i11", "i14"}
    assert items(db, items_filter({"mimetype": {"$in": ["text/plain", None]}})) == {"i05", "i11", "i14"}
    assert items(db, items_filter({"mimetype": {"$nin": ["image/png", None]}})) == {"i03", "i14"}
    assert items(db, items_filter({"name": {"$in": []}})) == set()
    assert items(db, items_filter({"name": {"$nin": []}})) == FILES


def test_comparisons(db):
    score = "metadata.user.score"
    assert items(db, filters(score, 5, OPS.GREATER_THAN)) == {"i02", "i10"}
    assert items(db, filters(score, 5, OPS.GREATER_THAN_OR_EQUAL)) == {"i01", "i02", "i10"}
    assert items(db, filters(score, 3, OPS.LESS_THAN)) == {"i03"}
    assert items(db, filters(score, 3, OPS.LESS_THAN_OR_EQUAL)) == {"i03", "i13"}
    # several operators on one field are ANDed
    assert items(db, items_filter({score: {"$gt": 1, "$lt": 10}})) == {"i01", "i10", "i13"}


def test_exists(db):
    with_score = {"i01", "i02", "i03", "i05", "i10", "i13"}  # i05's explicit null exists
    assert items(db, filters("metadata.user.score", True, OPS.EXISTS)) == with_score
    assert items(db, filters("metadata.user.score", False, OPS.EXISTS)) == FILES - with_score
    assert items(db, filters("metadata.system.tags.train", True, OPS.EXISTS)) == {"i01", "i02", "i10"}
    assert items(db, filters("mimetype", False, OPS.EXISTS)) == {"i05", "i11"}


def test_and_or(db):
    f = dl.Filters()
    f.add(field="dir", values="/val", method=dl.FiltersMethod.OR)
    f.add(field="dir", values="/test", method=dl.FiltersMethod.OR)
    assert items(db, f) == {"i04", "i05", "i07", "i08", "i13"}
    f = dl.Filters(field="dir", values="/train")
    f.add(field="mimetype", values="image/png")
    assert items(db, f) == {"i01", "i02", "i12"}
    nested = items_filter(
        {"$or": [{"dir": "/val", "metadata.user.score": 3}, {"$and": [{"name": "a2.png"}]}]}
    )
    assert items(db, nested) == {"i13", "i02"}
    assert items(db, items_filter({"$or": []})) == set()


def test_not(db):
    assert items(db, items_filter({"$not": {"dir": "/train"}})) == FILES - {"i01", "i02", "i12", "i14"}
    # a missing score is "not > 4" (Mongo), both for top-level and field-level $not
    expected = FILES - {"i01", "i02", "i10"}
    assert items(db, items_filter({"$not": {"metadata.user.score": {"$gt": 4}}})) == expected
    assert items(db, items_filter({"metadata.user.score": {"$not": {"$gt": 4}}})) == expected
    assert items(db, items_filter({"mimetype": {"$not": {"$eq": "image/png"}}})) == {
        "i03",
        "i05",
        "i11",
        "i14",
    }
    assert items(db, items_filter({"name": {"$not": {"$in": ["a1.png", "a2.png"]}}, "dir": "/train"})) == {
        "i12",
        "i14",
    }


# --- wildcards, computed and metadata fields -------------------------------------------------------------


def test_glob(db):
    # '*' also crosses '/' (sub folders)
    assert items(db, dl.Filters(field="filename", values="/train/*.png")) == {"i01", "i02", "i12"}
    assert items(db, dl.Filters(field="filename", values="/a/*.png")) == {"i10"}
    assert items(db, dl.Filters(field="filename", values="/train/*")) == {"i01", "i02", "i03", "i12", "i14"}
    assert items(db, dl.Filters(field="filename", values="*.jpg")) == {"i03"}
    assert items(db, dl.Filters(field="dir", values="/train*")) == {"i01", "i02", "i03", "i12", "i14"}
    assert items(db, filters("filename", ["/val/*", "/test/xy.png"], OPS.IN)) == {"i04", "i05", "i13", "i08"}
    assert items(db, filters("filename", "*.png", OPS.NOT_EQUAL)) == {"i03", "i11", "i14"}
    # '[' and '?' are literal: unescaped, '/test/[x]?*' would also match '/test/xy.png'
    assert items(db, dl.Filters(field="filename", values="/test/[x]?*")) == {"i07"}
    assert items(db, dl.Filters(field="filename", values="/test/[x]?.png")) == {"i07"}
    # only filename and dir are patterns
    assert items(db, dl.Filters(field="name", values="*.png")) == set()


def test_annotated(db):
    annotated = {"i01", "i02", "i03", "i04", "i10"}
    assert items(db, filters("annotated", True)) == annotated
    assert items(db, filters("annotated", False)) == FILES - annotated
    assert items(db, filters("annotated", True, OPS.NOT_EQUAL)) == FILES - annotated
    assert items(db, filters("annotated", True), dataset="d2") == {"j01"}


def test_metadata_paths(db):
    assert items(db, filters("metadata.system.tags.train", True)) == {"i01", "i02"}
    assert items(db, filters("metadata.system.tags.train", False)) == {"i10"}
    assert items(db, filters("metadata.user.nested.deep.x", 1)) == {"i10"}
    assert items(db, filters("metadata.user.score", 7.5)) == {"i10"}
    assert items(db, filters("metadata.user-x.a_b", 1)) == set()  # '-' and '_' are valid path characters
    # a string never equals a number (no type coercion)
    assert items(db, filters("metadata.user.score", "5")) == set()
    # a scalar does not match an object's members
    assert items(db, filters("metadata.system.tags", True)) == set()


def test_array_contains(db):
    labels = "metadata.user.labels"
    assert items(db, filters(labels, "a")) == {"i01", "i04"}  # i04 holds the scalar "a"
    assert items(db, filters(labels, "b")) == {"i01", "i03"}
    assert items(db, filters(labels, ["b", "c"], OPS.IN)) == {"i01", "i03", "i12"}
    assert items(db, filters(labels, "a", OPS.NOT_EQUAL)) == FILES - {"i01", "i04"}
    assert items(db, filters(labels, ["a", "b"], OPS.NIN)) == FILES - {"i01", "i03", "i04"}
    # a list value is an exact array match, as in Mongo
    assert items(db, filters(labels, ["a", "b"])) == {"i01"}
    assert items(db, filters(labels, ["b", "a"])) == set()


def test_comparisons_stay_within_the_values_type_bracket(db):
    # Mongo: numbers order with numbers and strings with strings; SQLite alone puts every string above
    # every number, so {"$gt": 5} took the strings and {"$lt": "b"} the numbers
    x = "metadata.user.x"
    assert items(db, filters(x, 5, OPS.GREATER_THAN), "d3") == {"k02", "k03"}
    assert items(db, filters(x, 7, OPS.GREATER_THAN_OR_EQUAL), "d3") == {"k02", "k03"}
    assert items(db, filters(x, 3, OPS.LESS_THAN), "d3") == {"k05", "k11"}  # k05's element 1
    assert items(db, filters(x, 7.0, OPS.LESS_THAN_OR_EQUAL), "d3") == {"k02", "k03", "k05", "k11"}
    assert items(db, filters(x, "b", OPS.LESS_THAN), "d3") == {"k01", "k04"}
    assert items(db, filters(x, "7", OPS.LESS_THAN_OR_EQUAL), "d3") == {"k04"}
    assert items(db, filters(x, "7", OPS.GREATER_THAN), "d3") == {"k01", "k05"}  # k05's element "zzz"
    assert items(db, filters(x, "a", OPS.GREATER_THAN_OR_EQUAL), "d3") == {"k01", "k05"}
    assert items(db, items_filter({x: {"$gt": 1, "$lt": "zz"}}), "d3") == set()  # no value is both
    # what a comparison skips, its negation keeps (and a missing x)
    assert items(db, items_filter({x: {"$not": {"$gt": 5}}}), "d3") == D3 - {"k02", "k03"}
    # a number is never ordered against a text column
    assert items(db, filters("name", 1, OPS.GREATER_THAN), "d3") == set()
    assert items(db, filters("createdAt", 0, OPS.GREATER_THAN_OR_EQUAL), "d3") == set()


def test_booleans_and_numbers_never_equal(db):
    flag = "metadata.user.flag"
    assert items(db, filters(flag, True), "d3") == {"k06"}
    assert items(db, filters(flag, 1), "d3") == {"k07"}
    assert items(db, filters(flag, False), "d3") == {"k08"}
    assert items(db, filters(flag, 0), "d3") == {"k09", "k10"}  # k10's element 0
    assert items(db, filters(flag, 1.0, OPS.EQUAL), "d3") == {"k07"}  # 1 and 1.0 are one number
    assert items(db, filters(flag, [True], OPS.IN), "d3") == {"k06"}
    assert items(db, filters(flag, [1], OPS.IN), "d3") == {"k07"}
    assert items(db, filters(flag, [True, 0, "yes"], OPS.IN), "d3") == {"k06", "k09", "k10"}
    assert items(db, filters(flag, [False, None], OPS.IN), "d3") == D3 - {"k06", "k07", "k09", "k10"}
    assert items(db, filters(flag, True, OPS.NOT_EQUAL), "d3") == D3 - {"k06"}
    assert items(db, filters(flag, 1, OPS.NOT_EQUAL), "d3") == D3 - {"k07"}
    assert items(db, filters(flag, [1, False], OPS.NIN), "d3") == D3 - {"k07", "k08"}
    # strings and numbers: "7" is not 7, and 7 is 7.0
    x = "metadata.user.x"
    assert items(db, filters(x, 7), "d3") == {"k02", "k03"}
    assert items(db, filters(x, "7"), "d3") == {"k04"}
    assert items(db, filters(x, ["7", 2.5], OPS.IN), "d3") == {"k04", "k11"}
    assert items(db, filters(x, [7], OPS.NIN), "d3") == D3 - {"k02", "k03"}
    # a number or a boolean never equals a text column (SQLite's text affinity would make 5 into '5')
    assert items(db, filters("name", 5), "d3") == set()
    assert items(db, filters("name", [5, True], OPS.IN), "d3") == set()
    assert items(db, filters("name", 5, OPS.NOT_EQUAL), "d3") == D3
    assert items(db, filters("name", [5], OPS.NIN), "d3") == D3
    assert items(db, filters("name", "5"), "d3") == {"k12"}
    # the hidden column keeps taking 1/0 for true/false
    assert items(db, {"filter": {"hidden": 1}}) == items(db, {"filter": {"hidden": True}}) == {"i06"}


def test_match_is_an_element_match_on_an_array_of_objects(db):
    refs = "metadata.system.refs"
    # as dtlpy's tasks.create_qa_task builds it: one ref meets every condition; nested objects are sub-fields
    with_status = {"id": "t1", "type": "task", "metadata": {"status": {"$exists": True}}}
    assert filters(refs, with_status, OPS.MATCH).prepare()["filter"]["$and"][-1] == {refs: {"$match": with_status}}
    # m2 has a ref t1 and a ref with a status, but not one ref with both; m3's refs is no array
    assert items(db, filters(refs, with_status, OPS.MATCH), "d3") == {"m1", "m4"}
    no_status = {"id": {"$in": ["t1"]}, "metadata": {"status": {"$exists": False}}}
    assert items(db, filters(refs, no_status, OPS.MATCH), "d3") == {"m2"}
    assert items(db, filters(refs, {"id": "t2", "metadata": {"status": "completed"}}, OPS.MATCH), "d3") == {"m2"}
    assert items(db, filters(refs, {"metadata.status": {"$ne": "completed"}}, OPS.MATCH), "d3") == {"m1", "m2", "m4"}
    timed = {"metadata": {"timestamp": {"$gt": 4, "$lt": 6}, "status": {"$in": ["approved"]}}}
    assert items(db, filters(refs, timed, OPS.MATCH), "d3") == {"m4"}
    assert items(db, filters(refs, {"metadata": {"timestamp": {"$gt": "4"}}}, OPS.MATCH), "d3") == set()
    either = {"$or": [{"id": "t2"}, {"metadata.status": "approved"}]}
    assert items(db, filters(refs, either, OPS.MATCH), "d3") == {"m1", "m2", "m4"}
    assert items(db, items_filter({refs: {"$not": {"$match": {"id": "t1"}}}}), "d3") == D3 - {"m1", "m2", "m4"}
    # $match inside $match: both conditions on one object of an element's own array
    deep = {"metadata.user.l": {"$match": {"k": {"$match": {"a": 1, "b": 2}}}}}
    assert items(db, {"filter": deep}, "d4") == {"n1"}
    assert items(db, {"filter": {"metadata.user.l": {"$match": {"k": {"$match": {"b": 2}}}}}}, "d4") == {"n1", "n2"}
    # on annotations, and in an item query's annotation join
    reviews = "metadata.user.reviews"
    assert annotations(db, filters(reviews, {"by": "b", "ok": False}, OPS.MATCH, resource="annotations"), "d3") == {
        "a8"
    }
    assert annotations(db, filters(reviews, {"by": "b", "ok": True}, OPS.MATCH, resource="annotations"), "d3") == set()
    f = dl.Filters()
    f.add_join(field=reviews, values={"by": "a", "ok": True}, operator=OPS.MATCH)
    assert items(db, f, "d3") == {"m1"}
    f = dl.Filters()
    f.add_join(field=reviews, values={"by": "a", "ok": 1}, operator=OPS.MATCH)  # 1 is not true
    assert items(db, f, "d3") == set()


def test_match_on_filename_and_dir_is_a_pattern(db):
    # the dtlpy cookbook: filters.add(field='filename', values='*.jpg', operator=dl.FiltersOperations.MATCH)
    assert items(db, filters("filename", "*.jpg", OPS.MATCH)) == {"i03"}
    assert items(db, filters("filename", "/train/*.png", OPS.MATCH)) == {"i01", "i02", "i12"}
    assert items(db, filters("dir", "/train*", OPS.MATCH)) == {"i01", "i02", "i03", "i12", "i14"}
    assert items(db, filters("dir", "/val", OPS.MATCH)) == {"i04", "i05", "i13"}


@pytest.mark.parametrize(
    ("clause", "shown"),
    [
        ({"name": {"$match": "a*"}}, ['{"name": {"$match": "a*"}}', "filename and dir", "$eq"]),
        ({"metadata.user.x": {"$match": "a*"}}, ["filename and dir only", "metadata.system.refs"]),
        ({"metadata.user.x": {"$match": {"$gt": 5}}}, ["one array element", "$gt/$lt"]),
        ({"metadata.user.x": {"$match": {}}}, ["one array element"]),
        ({"metadata.system.refs": {"$match": {"id": {"$regex": "t"}}}}, ["unknown operator $regex", "id"]),
        ({"metadata.system.refs": {"$match": {"a'b": 1}}}, ["a'b"]),
        ({"hidden": {"$match": True}}, ["$match on hidden"]),
        ({"annotated": {"$match": {"a": 1}}}, ["only $eq and $ne"]),
    ],
)
def test_malformed_match(clause, shown):
    with pytest.raises(FilterError) as err:
        item_filter(items_filter(clause))
    for text in shown:
        assert text in str(err.value)


def test_store_lists_mixed_types_as_mongo_does(tmp_path):
    # the store's own path: insert_items and list_items over a real platform.db
    from runner.platform.local.store import Store

    store = Store(str(tmp_path / "platform.db"))
    try:
        ds = store.create_dataset(store.get_or_create_project("p")["id"], "d")
        rows = [("s.png", {"x": "abc"}), ("n.png", {"x": 7}), ("t.png", {"flag": True}), ("one.png", {"flag": 1}),
                ("arr.png", {"x": [1, "zzz"]}), ("none.png", {}), ("f.png", {"x": 7.0}), ("str7.png", {"x": "7"})]
        store.insert_items([{"dataset_id": ds["id"], "filename": f"/a/{name}", "dir": "/a", "name": name,
                             "metadata": {"user": user}} for name, user in rows])  # fmt: skip

        def names(flt):
            return {i["name"] for i in store.list_items(ds["id"], {"filter": flt}, 0, 100)}

        assert names({"metadata.user.x": {"$gt": 5}}) == {"n.png", "f.png"}
        assert names({"metadata.user.x": {"$lt": "b"}}) == {"s.png", "str7.png"}
        assert names({"metadata.user.flag": True}) == {"t.png"}
        assert names({"metadata.user.flag": 1}) == {"one.png"}
        assert names({"filename": {"$match": "/a/*7*"}}) == {"str7.png"}
    finally:
        store.close()


def test_created_at_range(db):
    f = dl.Filters(field="createdAt", values="2024-01-02", operator=OPS.GREATER_THAN_OR_EQUAL)
    f.add(field="createdAt", values="2024-02-01T00:00:00.000Z", operator=OPS.LESS_THAN)
    assert items(db, f) == {"i02", "i03"}
    assert items(db, filters("createdAt", "2024-01-01", OPS.LESS_THAN)) == {"i12"}
    assert items(db, filters("createdAt", "2024-06-01T10:00:00.000Z", OPS.GREATER_THAN)) == {"i14"}


def test_injection_is_data(db):
    evil = "x' OR 1=1 --"
    f = item_filter(filters("name", evil).prepare())
    assert evil not in f.where and evil in f.params
    assert items(db, filters("name", evil)) == {"i11"}
    assert items(db, filters("metadata.user.note", evil)) == {"i07"}
    assert items(db, filters("dir", "/x' OR '1'='1")) == set()


# --- joins and annotations -------------------------------------------------------------------------------


def test_join_label(db):
    f = dl.Filters()
    f.add_join(field="label", values="cat")
    assert items(db, f) == {"i01", "i03", "i10"}
    assert items(db, f, dataset="d2") == {"j01"}
    f.add(field="dir", values="/train")
    assert items(db, f) == {"i01"}


def test_join_same_annotation(db):
    # both join conditions hold on one annotation: i02's dog is a class, i10's cat is a class
    f = dl.Filters()
    f.add_join(field="label", values=["cat", "dog"], operator=OPS.IN)
    f.add_join(field="type", values="box")
    assert items(db, f) == {"i01", "i03"}


def test_join_ground_truth_and_model(db):
    f = dl.Filters()
    f.add_join(field="metadata.system.model.name", values=False, operator=OPS.EXISTS)
    assert items(db, f) == {"i01", "i02", "i04"}
    f = dl.Filters()
    f.add_join(field="metadata.system.model.name", values="m1")
    assert items(db, f) == {"i01", "i03"}
    assert "annotations.model_name" in item_filter(f.prepare()).where.replace("ja.", "annotations.")


def test_spec_example(db):
    f = dl.Filters()
    f.add(field="metadata.system.tags.train", values=True)
    f.add(field="filename", values="/train/*")
    f.add(field="name", values=["a1.png", "a2.png", "b1.jpg"], operator=OPS.IN)
    f.add_join(field="label", values="cat")
    assert items(db, f) == {"i01"}


def test_annotation_filter(db):
    f = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    f.add(field="metadata.system.model.name", values=False, operator=OPS.EXISTS)
    f.add(field="type", values=["box", "class"], operator=OPS.IN)
    assert annotations(db, f) == {"a1", "a3"}
    assert annotations(db, f, dataset="d2") == {"a6"}
    assert annotations(db, filters("label", "cat", OPS.NOT_EQUAL, resource="annotations")) == {
        "a2",
        "a3",
        "a5",
    }
    assert annotations(db, filters("metadata.system.model.name", "m2", resource="annotations")) == {"a7"}
    assert annotations(db, filters("metadata.user.reviewed", True, resource="annotations")) == {"a7"}
    assert annotations(db, filters("source", "ui", resource="annotations")) == {"a5"}
    assert annotations(db, filters("creator", "me@x.io", resource="annotations")) == {"a5"}
    assert annotations(db, filters("itemId", "i01", resource="annotations")) == {"a1", "a2"}
    aliased = annotation_filter(filters("label", "cat", resource="annotations").prepare(), alias="x")
    assert "x.label" in aliased.where and "annotations." not in aliased.where


# --- sort and paging -------------------------------------------------------------------------------------


def test_order_by(db):
    assert order_by(None, "items") == "items.rid ASC"
    assert order_by(dl.Filters(resource="annotations").prepare(), "annotations") == "annotations.rid ASC"
    f = dl.Filters(field="dir", values="/train")
    f.sort_by(field="filename")
    assert order_by(f.prepare(), "items") == "items.filename ASC, items.rid ASC"
    f = dl.Filters(field="dir", values="/train")
    f.sort_by(field="filename", value=dl.FiltersOrderByDirection.DESCENDING)
    where = item_filter(f.prepare())
    sql = f"SELECT id FROM items WHERE dataset_id = 'd1' AND ({where.where}) ORDER BY {order_by(f.prepare(), 'items')}"
    assert [r[0] for r in db.execute(sql, where.params)] == ["i14", "i12", "i02", "i01"]
    assert order_by({"sort": {"name": "asc", "createdAt": -1}}, "items") == (
        "items.name ASC, items.created_at DESC, items.rid ASC"
    )
    by_score = order_by({"sort": {"metadata.user.score": 1}}, "items")
    assert by_score == """json_extract(items.metadata, '$."user"."score"') ASC, items.rid ASC"""
    assert (
        order_by({"sort": {"label": "descending"}}, "annotations")
        == "annotations.label DESC, annotations.rid ASC"
    )


def test_page_size():
    assert page_size(None) == 1000
    assert page_size({}, default=50) == 50
    f = dl.Filters()
    f.page_size = 0
    assert page_size(f.prepare()) == 0
    f.page_size = 25
    assert page_size(f.prepare()) == 25


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dql", "shown"),
    [
        (
            items_filter({"name": {"$regex": "a.*"}}),
            ['{"name": {"$regex": "a.*"}}', "filter.$and[2].name.$regex"],
        ),
        (items_filter({"name": {"$in": "a1.png"}}), ['"$in": "a1.png"', "filter.$and[2].name.$in", "list"]),
        ({"filter": {"$and": {"dir": "/a"}}}, ['{"$and": {"dir": "/a"}}', "filter.$and"]),
        (
            items_filter({"colour": "red"}),
            ['"colour"', "filter.$and[2].colour", "filename", "metadata.<path>"],
        ),
        (items_filter({"dir": {"a": 1}}), ['{"dir": {"a": 1}}', "filter.$and[2].dir"]),
        (items_filter({"$nor": [{"dir": "/a"}]}), ['{"$nor": [{"dir": "/a"}]}', "filter.$and[2].$nor"]),
        (items_filter({"dir": {"$eq": "/a", "b": 1}}), ['"b": 1', "filter.$and[2].dir"]),
        (items_filter({"dir": {"$gt": None}}), ['{"dir": {"$gt": null}}', "$gt"]),
        (items_filter({"metadata.a'b": 1}), ["metadata.a'b", "filter.$and[2]"]),
        (items_filter({"metadata.a..b": 1}), ["metadata.a..b"]),
        (items_filter({"metadata": 1}), ['"metadata"']),
        (items_filter({"name": ["a", "b"]}), ['["a", "b"]', "$in"]),
        (items_filter({"dir": {"$exists": "yes"}}), ['"$exists": "yes"']),
        (items_filter({"annotated": {"$gt": 1}}), ['{"annotated": {"$gt": 1}}']),
        (items_filter({"annotated": "yes"}), ['"yes"', "true or false"]),
        (items_filter({"hidden": "no"}), ['"no"']),
        (items_filter({"dir": {"$not": "/a"}}), ['{"dir": {"$not": "/a"}}']),
        (items_filter("dir"), ['"dir"', "filter.$and[2]"]),
        (
            {"filter": {}, "join": {"on": {"resource": "items"}, "filter": {}}},
            ['"resource": "items"', "join"],
        ),
        ({"filter": {}, "join": {**items_filter(), "on": {}}}, ["join"]),
        (  # YAML 1.1 reads a bare on: as true
            {"filter": {}, "join": {"true": {"resource": "annotations", "local": "itemId", "forigen": "id"}}},
            ['quote the key: "on":'],
        ),
        (
            {
                "join": {
                    "on": {"resource": "annotations", "local": "itemId", "forigen": "id"},
                    "filter": {"x": 1},
                }
            },
            ['"x"', "join.filter.x", "label"],
        ),
        ({"filter": {}, "limit": 5}, ["'limit'", '{"limit": 5}', "pageSize"]),
        ({"filter": {}, "resource": "annotations"}, ["'annotations'", "resource"]),
        ([{"dir": "/a"}], ['[{"dir": "/a"}]']),
    ],
)
def test_malformed_item_filters(dql, shown):
    with pytest.raises(FilterError) as err:
        item_filter(dql)
    for text in shown:
        assert text in str(err.value)


def test_malformed_other():
    with pytest.raises(FilterError, match="label"):
        annotation_filter({"filter": {"label": {"$in": "cat"}}, "resource": "annotations"})
    with pytest.raises(FilterError, match="annotated"):
        annotation_filter({"filter": {"annotated": True}})
    with pytest.raises(FilterError, match="join"):
        annotation_filter(dl.Filters().prepare() | {"resource": "annotations", "join": {}})
    with pytest.raises(FilterError, match="'items'"):
        annotation_filter(dl.Filters().prepare())
    with pytest.raises(FilterError, match="sideways"):
        order_by({"sort": {"filename": "sideways"}}, "items")
    with pytest.raises(FilterError, match="colour"):
        order_by({"sort": {"colour": 1}}, "items")
    with pytest.raises(FilterError, match="pageSize"):
        page_size({"pageSize": -1})
    with pytest.raises(FilterError, match="tasks"):
        order_by(None, "tasks")


# --- plans -----------------------------------------------------------------------------------------------


def test_dir_filter_uses_index(db):
    f = item_filter(dl.Filters(field="dir", values="/train").prepare())
    sql = f"SELECT items.id FROM items WHERE items.dataset_id = ? AND ({f.where})"
    plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("d1", *f.params)))
    assert "items_dir" in plan


def test_join_uses_annotation_index(db):
    f = dl.Filters()
    f.add_join(field="label", values="cat")
    where = item_filter(f.prepare())
    sql = f"SELECT items.id FROM items WHERE items.dataset_id = ? AND ({where.where})"
    plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("d1", *where.params)))
    assert "annotations_item" in plan


def test_an_unknown_field_operator_names_the_field_operators_and_a_pattern_points_to_globs():
    with pytest.raises(FilterError) as err:
        item_filter(items_filter({"filename": {"$regex": "^/train/.*"}}))
    assert "unknown operator $regex" in err.value.what
    assert "$and and $or combine whole clauses" in err.value.fix
    assert 'a * glob on filename or dir ({"filename": "/train/*.png"})' in err.value.fix
    assert "$match" in err.value.fix
    with pytest.raises(FilterError) as err:
        item_filter(items_filter({"filename": {"$eqq": "/a.png"}}))
    assert "glob" not in err.value.fix and "$eq" in err.value.fix
