"""Translate Dataloop DQL (the JSON of ``dl.Filters(...).prepare()``) into SQLite WHERE / ORDER BY text.

Values are always bound as ``?`` parameters; only validated column names and JSON paths are written into
the SQL. Field predicates follow Mongo's query semantics, not SQLite's:

- values compare only within their type bracket: numbers with numbers (``7`` equals ``7.0``), strings
  with strings (by code point), booleans only with ``true``/``false``. So ``{"$gt": 5}`` never matches
  a string, ``true`` and ``1`` never match each other, and a number never matches a text column
  (``dir``, ``name``, ...). The one leniency: the ``hidden`` column also takes 1/0 for true/false.
- a missing field never equals anything, and ``$ne``/``$nin``/``$not`` match rows where it is missing.
- a scalar predicate on a metadata array holds when one element satisfies it (each operator on its own,
  as in Mongo); a list value equals an array exactly.
- ``*`` in an equality value on ``filename`` or ``dir`` is a wildcard (Dataloop's glob), also across '/'.
- ``$match`` (``dl.FiltersOperations.MATCH``) is Dataloop's element match: on a metadata array of objects
  (``metadata.system.refs``) it holds when one element satisfies every condition of the object given
  (nested objects are sub-paths: ``{"metadata": {"status": {"$exists": true}}}``); on ``filename`` or
  ``dir`` a string is a ``*`` pattern, as with ``$eq``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runner.errors import FilterError

__all__ = ["SqlFilter", "annotation_filter", "item_filter", "order_by", "page_size"]


@dataclass(frozen=True)
class SqlFilter:
    where: str  # SQL boolean expression, safe to AND into a query; "1" when no condition
    params: tuple  # positional '?' parameters, in order


Frag = tuple[str, list]  # an SQL fragment and its parameters, in order

_TOP_KEYS = ("filter", "page", "pageSize", "resource", "join", "sort", "context")
_JOIN_ON = {"resource": "annotations", "local": "itemId", "forigen": "id"}
_FIELD_OPS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$not", "$match")
_LOGIC_OPS = ("$and", "$or", "$not")
_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_SCALARS = (str, int, float, bool, type(None))
_SEGMENT = re.compile(r"[\w-]+")  # no quote, dot or bracket can reach the SQL literal or the JSON path

_ITEM_COLUMNS = {
    "id": "id", "dir": "dir", "filename": "filename", "name": "name", "type": "type", "hidden": "hidden",
    "mimetype": "mimetype", "datasetId": "dataset_id", "dataset_id": "dataset_id", "createdAt": "created_at",
}  # fmt: skip
_ANNOTATION_COLUMNS = {
    "id": "id", "type": "type", "label": "label", "itemId": "item_id", "datasetId": "dataset_id",
    "createdAt": "created_at", "metadata.system.model.name": "model_name",
}  # fmt: skip
_ANNOTATION_JSON = ("source", "creator")
_ITEM_FIELDS = ", ".join([*_ITEM_COLUMNS, "annotated", "metadata.<path>"])
_ANNOTATION_FIELDS = ", ".join([*_ANNOTATION_COLUMNS, *_ANNOTATION_JSON, "metadata.<path>"])


def _dump(value: Any) -> str:
    return json.dumps(value, default=repr)


def _bad(what: str, loc: str, part: Any, fix: str) -> FilterError:
    return FilterError(f"{what}: {_dump(part)}", where=loc, fix=fix)


@dataclass(frozen=True)
class _Field:
    name: str
    expr: str  # SQL value expression
    json: tuple[str, str] | None = None  # (column, path) of a JSON field: arrays and $exists need them
    boolean: bool = False  # values must be true/false (hidden, annotated)
    glob: bool = False  # a '*' in an equality value is a wildcard (filename, dir)
    annotated: bool = False  # expr is an EXISTS over annotations, only true/false make sense

    @property
    def text(self) -> bool:
        """A plain text column (all but hidden): a number or a boolean never equals or compares with it."""
        return self.json is None and not self.boolean and not self.annotated


def _json_path(segments: list[str], name: str, loc: str) -> str:
    if not segments or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise _bad(f"bad field path {name!r}", loc, name,
                   "write metadata paths as dot-separated names of letters, digits, '_' or '-'")  # fmt: skip
    return "$." + ".".join(f'"{s}"' for s in segments)


def _field(resource: str, alias: str, name: Any, loc: str) -> _Field:
    if not isinstance(name, str):
        raise _bad("field name must be a string", loc, name, "use a field name")
    if resource == "element":  # a field of one object element of an array, for $match; alias is its json_each
        col, path = f"{alias}.value", _json_path(name.split("."), name, loc)
        return _Field(name, f"json_extract({col}, '{path}')", json=(col, path))
    columns = _ITEM_COLUMNS if resource == "items" else _ANNOTATION_COLUMNS
    if name in columns:
        column = columns[name]
        return _Field(
            name, f"{alias}.{column}", boolean=column == "hidden", glob=column in ("dir", "filename")
        )
    if resource == "items" and name == "annotated":
        expr = f"EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = {alias}.id)"
        return _Field(name, expr, boolean=True, annotated=True)
    if name.startswith("metadata.") or (resource == "annotations" and name in _ANNOTATION_JSON):
        # items keep metadata in their own column; annotations keep their whole record in `json`
        segments = name.split(".")
        col = f"{alias}.metadata" if resource == "items" else f"{alias}.json"
        path = _json_path(segments[1:] if resource == "items" else segments, name, loc)
        return _Field(name, f"json_extract({col}, '{path}')", json=(col, path))
    supported = _ITEM_FIELDS if resource == "items" else _ANNOTATION_FIELDS
    raise _bad(f"unknown {resource} field {name!r}", loc, name, f"use one of: {supported}")


def _all(frags: list[Frag], op: str = "AND") -> Frag:
    frags = [f for f in frags if f[0] != "1"] if op == "AND" else frags
    if not frags:
        return ("1" if op == "AND" else "0"), []
    if len(frags) == 1:
        return frags[0]
    return "(" + f" {op} ".join(sql for sql, _ in frags) + ")", [p for _, params in frags for p in params]


def _not(frag: Frag) -> Frag:
    # NULL (missing field) inside must count as false, so that its negation matches
    return f"NOT IFNULL({frag[0]}, 0)", frag[1]


def _is_glob(f: _Field, value: Any) -> bool:
    return f.glob and isinstance(value, str) and "*" in value


def _glob(value: str) -> str:
    # only '*' is a wildcard in Dataloop; make GLOB's other specials literal
    return "*".join(part.replace("[", "[[]").replace("?", "[?]") for part in value.split("*"))


def _bracket(value: Any) -> str:
    """Mongo's type bracket of a scalar that is not null: 'true', 'false', 'number' or 'text'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "number" if isinstance(value, int | float) else "text"


def _typed(jtype: str, expr: str, bracket: str, tail: str, params: list) -> Frag:
    """``expr <tail>`` for a JSON value ``expr`` of type ``jtype`` (SQL expressions), only within
    ``bracket``: SQLite alone would take true for 1 and order every string above every number."""
    if bracket in ("true", "false"):
        return f"{jtype} = '{bracket}'", []  # JSON true/false: their value is 1/0, their type tells them apart
    test = f"{jtype} IN ('integer', 'real')" if bracket == "number" else f"{jtype} = 'text'"
    return f"({test} AND {expr} {tail})", params


def _conditions(value: Any) -> bool:
    """An object of field conditions (``$and``/``$or``/``$not`` allowed), as $match takes."""
    return (isinstance(value, dict) and bool(value)
            and all(not str(k).startswith("$") or k in _LOGIC_OPS for k in value))  # fmt: skip


def _subfields(value: Any) -> bool:
    """An object without operators: inside $match, conditions on sub-fields."""
    return isinstance(value, dict) and bool(value) and not any(str(k).startswith("$") for k in value)


class _Translator:
    def __init__(self, resource: str, alias: str):
        self.resource, self.alias = resource, alias
        self.matches = 0  # $match subqueries so far, each under its own alias

    def clause(self, node: Any, loc: str) -> Frag:
        if not isinstance(node, dict):
            raise _bad(
                "a filter clause must be an object", loc, node, 'write {"field": value} or {"$and": [...]}'
            )
        frags = []
        for key, value in node.items():
            here = f"{loc}.{key}"
            if key in ("$and", "$or"):
                if not isinstance(value, list):
                    raise _bad(
                        f"{key} needs a list of clauses",
                        here,
                        {key: value},
                        f'write {{"{key}": [{{...}}, ...]}}',
                    )
                frags.append(
                    _all([self.clause(c, f"{here}[{i}]") for i, c in enumerate(value)], key[1:].upper())
                )
            elif key == "$not":
                frags.append(_not(self.clause(value, here)))
            elif isinstance(key, str) and key.startswith("$"):
                raise _bad(
                    f"unknown logical operator {key}",
                    here,
                    {key: value},
                    f"use one of: {', '.join(_LOGIC_OPS)}",
                )
            elif self.resource == "element" and _subfields(value):
                # inside $match, Dataloop nests sub-fields: {"metadata": {"status": ...}} is metadata.status
                frags.append(self.clause({f"{key}.{k}": v for k, v in value.items()}, loc))
            else:
                frags.append(self.field(_field(self.resource, self.alias, key, here), value, here))
        return _all(frags)

    def field(self, f: _Field, spec: Any, loc: str) -> Frag:
        if isinstance(spec, dict) and any(isinstance(k, str) and k.startswith("$") for k in spec):
            if not all(isinstance(k, str) and k.startswith("$") for k in spec):
                raise _bad(
                    "do not mix operators and values", loc, {f.name: spec}, 'write {"field": {"$op": value}}'
                )
            return _all([self.op(f, op, v, f"{loc}.{op}") for op, v in spec.items()])
        return self.op(f, "$eq", spec, loc, {f.name: spec})

    def op(self, f: _Field, op: str, value: Any, loc: str, part: Any = None) -> Frag:
        part = part or {f.name: {op: value}}  # the clause as written, for error messages
        if f.annotated and op not in ("$eq", "$ne"):
            raise _bad(
                f"{f.name} supports only $eq and $ne", loc, part, f'write {{"{f.name}": true}} or false'
            )
        if op in ("$eq", "$ne"):
            eq = self.eq(f, self.scalar(f, value, loc, part, allow_list=op == "$eq"))
            if op == "$eq":
                return eq
            if (f.boolean or (f.text and (value is None or isinstance(value, str)))) and not _is_glob(f, value):
                return f"{f.expr} IS NOT ?", [self.bind(value)]  # NULL-safe and readable for plain columns
            return _not(eq)
        if op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise _bad(f"{op} needs a list", loc, part, f'write {{"{f.name}": {{"{op}": [v1, v2]}}}}')
            values = [self.scalar(f, v, loc, part) for v in value]
            # null and wildcards need their own test; the rest go in one IN list (index friendly)
            special = [v for v in values if v is None or _is_glob(f, v)]
            plain = [v for v in values if not (v is None or _is_glob(f, v))]
            if f.text:
                plain = [v for v in plain if isinstance(v, str)]  # a number or boolean never equals text
            if op == "$nin" and f.json is None and plain and not special:
                marks = ", ".join("?" * len(plain))
                return f"({f.expr} IS NULL OR {f.expr} NOT IN ({marks}))", [self.bind(v) for v in plain]
            frags = [self.eq(f, v) for v in special]
            if plain:
                frags.insert(0, self.member(f, plain))
            frag = _all(frags, "OR")
            return frag if op == "$in" else _not(frag)
        if op in _CMP:
            if isinstance(value, bool) or not isinstance(value, str | int | float) or f.boolean:
                raise _bad(
                    f"{op} needs a number or a string", loc, part, "compare numbers, strings or ISO dates"
                )
            return self.compare(f, _CMP[op], value)
        if op == "$exists":
            if not isinstance(value, bool):
                raise _bad(
                    "$exists needs true or false", loc, part, f'write {{"{f.name}": {{"$exists": true}}}}'
                )
            expr = f"json_type({f.json[0]}, '{f.json[1]}')" if f.json else f.expr
            return f"{expr} IS {'NOT ' if value else ''}NULL", []
        if op == "$not":
            if not (isinstance(value, dict) and value and all(str(k).startswith("$") for k in value)):
                raise _bad(
                    "$not needs an operator object",
                    loc,
                    part,
                    f'write {{"{f.name}": {{"$not": {{"$eq": v}}}}}}',
                )
            return _not(self.field(f, value, loc))
        if op == "$match":
            return self.match(f, value, loc, part)
        patterns = ('; patterns: a * glob on filename or dir ({"filename": "/train/*.png"}), as $regex is not served'
                    if op in ("$regex", "$glob", "$like") else "")
        raise _bad(f"unknown operator {op}", loc, part, f"on a field, use one of: {', '.join(_FIELD_OPS)} ($and and $or "
                   f"combine whole clauses){patterns}")

    def match(self, f: _Field, value: Any, loc: str, part: Any) -> Frag:
        """Dataloop's $match: a '*' pattern on filename / dir, or one object element of a metadata array
        that meets every condition given (Mongo's $elemMatch)."""
        if f.glob and isinstance(value, str):
            return self.eq(f, value)  # {"filename": {"$match": "*.jpg"}}: a pattern, as with $eq
        if f.json is None or not _conditions(value):
            raise _bad(
                f"$match on {f.name} needs an object of conditions on the fields of one array element"
                + (" (a '*' pattern string is matched on filename and dir only)" if f.json else
                   " and works on metadata fields, or a '*' pattern string on filename and dir"),
                loc, part,
                'write {"metadata.system.refs": {"$match": {"id": "<task id>", "metadata": {"status": '
                '{"$exists": true}}}}} or {"filename": {"$match": "/train/*.png"}}; for one value use $eq, '
                "for any of several values $in, for a range $gt/$lt",
            )  # fmt: skip
        col, path = f.json
        self.matches += 1
        alias = f"{self.alias}_m{self.matches}"
        sub, params = _Translator("element", alias).clause(value, loc)
        cond = "" if sub == "1" else f" AND {sub}"
        # Mongo: only an array's elements that are objects can match; a lone object or a scalar does not
        each = f"SELECT 1 FROM json_each({col}, '{path}') AS {alias} WHERE {alias}.type = 'object'{cond}"
        return f"(json_type({col}, '{path}') = 'array' AND EXISTS ({each}))", params

    def scalar(self, f: _Field, value: Any, loc: str, part: Any, allow_list: bool = False) -> Any:
        if isinstance(value, list) and allow_list and f.json:
            return value  # Mongo: a list equals an array exactly
        if isinstance(value, list):
            raise _bad(
                f"a list is not a value of {f.name}",
                loc,
                part,
                "use $in / $nin to match any of several values",
            )
        if not isinstance(value, _SCALARS):
            raise _bad(f"expected a value for {f.name}", loc, part, "use a string, number, boolean or null")
        if f.boolean and not (isinstance(value, bool) or (not f.annotated and value in (0, 1))):
            raise _bad(f"{f.name} takes true or false", loc, part, f'write {{"{f.name}": true}} or false')
        return value

    @staticmethod
    def bind(value: Any) -> Any:
        return int(value) if isinstance(value, bool) else value  # only the hidden column stores 0/1

    def eq(self, f: _Field, value: Any) -> Frag:
        if f.annotated:
            return (f.expr if value else f"NOT {f.expr}"), []
        if value is None:
            return f"{f.expr} IS NULL", []
        if isinstance(value, list):
            col, path = f.json  # type: ignore[misc]  # scalar() lets lists through only for JSON fields
            return f"(json_type({col}, '{path}') = 'array' AND {f.expr} = json(?))", [json.dumps(value)]
        if _is_glob(f, value):
            return f"{f.expr} GLOB ?", [_glob(value)]
        return self.compare(f, "=", value)

    def compare(self, f: _Field, sign: str, value: Any) -> Frag:
        """``f <sign> value`` for a scalar that is not null, within the value's type bracket."""
        if f.json is None:
            if f.text and not isinstance(value, str):
                return "0", []  # a text column never equals nor orders with a number or a boolean
            return f"{f.expr} {sign} ?", [self.bind(value)]
        bracket = _bracket(value)
        return self.any_element(f, lambda t, v: _typed(t, v, bracket, f"{sign} ?", [value]),
                                text=value if sign == "=" else None)  # fmt: skip

    def member(self, f: _Field, values: list) -> Frag:
        """``f IN values`` for scalars that are neither null nor patterns, each within its type bracket."""
        if f.json is None:
            return f"{f.expr} IN ({', '.join('?' * len(values))})", [self.bind(v) for v in values]

        def cond(jtype: str, expr: str) -> Frag:
            frags = []
            for bracket in ("text", "number", "true", "false"):
                group = [v for v in values if _bracket(v) == bracket]
                if group:
                    frags.append(_typed(jtype, expr, bracket, f"IN ({', '.join('?' * len(group))})", group))
            return _all(frags, "OR")

        return self.any_element(f, cond)

    @staticmethod
    def any_element(f: _Field, cond: Any, text: Any = None) -> Frag:
        """``cond(type, value)`` holds for the JSON field's value, or for one element when it is an array."""
        # Mongo: a predicate on an array field holds when it holds for any element. json_each yields a
        # scalar itself (key NULL) or an array's elements (integer keys); an object's members are skipped.
        # One json_each parses the row's JSON once.
        col, path = f.json  # type: ignore[misc]
        where, params = cond("json_each.type", "json_each.value")
        each = (f"SELECT 1 FROM json_each({col}, '{path}') WHERE (json_each.key IS NULL OR "
                f"typeof(json_each.key) = 'integer') AND {where}")
        condition = f"EXISTS ({each})"
        if isinstance(text, str) and _plain_ascii(text):
            # a cheap substring test first: the JSON text must hold the quoted string to match
            return f"(instr({col}, ?) > 0 AND {condition})", [json.dumps(text), *params]
        return condition, params


def _plain_ascii(value: str) -> bool:
    """True when the stored JSON text spells the string exactly as json.dumps does here."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def _top(dql: Any, resource: str | None) -> dict:
    if dql is None:
        return {}
    if not isinstance(dql, dict):
        raise _bad("a DQL query must be an object", "query", dql, "pass dl.Filters(...).prepare()")
    for key in dql:
        if key not in _TOP_KEYS:
            raise _bad(f"unknown DQL key {key!r}", key, {key: dql[key]}, f"use only: {', '.join(_TOP_KEYS)}")
    got = dql.get("resource")
    if resource and got is not None and got != resource:
        raise _bad(f"this query is over {got!r}, expected {resource!r}", "resource", got,
                   f"build the filter with resource={resource!r}")  # fmt: skip
    return dql


def _filter(dql: dict, resource: str, alias: str) -> Frag:
    node = dql.get("filter")
    return ("1", []) if node is None else _Translator(resource, alias).clause(node, "filter")


def annotation_filter(dql: dict | None, *, alias: str = "annotations") -> SqlFilter:
    """The WHERE expression over annotations (table alias ``alias``) for an annotation DQL query."""
    dql = _top(dql, "annotations")
    if dql.get("join") is not None:
        raise _bad(
            "a join is only allowed on an item query", "join", dql["join"], "filter annotations directly"
        )
    sql, params = _filter(dql, "annotations", alias)
    return SqlFilter(sql, tuple(params))


def item_filter(dql: dict | None) -> SqlFilter:
    """The WHERE expression over ``items`` for an item DQL query; its annotation join becomes an EXISTS."""
    dql = _top(dql, "items")
    frags = [_filter(dql, "items", "items")]
    join = dql.get("join")
    if join is not None:
        if not isinstance(join, dict) or join.get("on") != _JOIN_ON or set(join) - {"on", "filter"}:
            yaml_true = isinstance(join, dict) and any(key in (True, "true", "True") for key in join)
            raise _bad(
                "unsupported join", "join", join, f'write {{"on": {_dump(_JOIN_ON)}, "filter": {{...}}}}'
                + (' (in YAML, quote the key: "on": , as a bare on is read as true)' if yaml_true else "")
            )
        # own alias so that the subquery's columns never resolve to the outer query's tables
        sub, params = _Translator("annotations", "ja").clause(join.get("filter") or {}, "join.filter")
        cond = "" if sub == "1" else f" AND {sub}"
        frags.append((f"EXISTS (SELECT 1 FROM annotations ja WHERE ja.item_id = items.id{cond})", params))
    sql, params = _all(frags)
    return SqlFilter(sql, tuple(params))


_DIRECTIONS = {
    "ascending": "ASC",
    "asc": "ASC",
    "1": "ASC",
    "descending": "DESC",
    "desc": "DESC",
    "-1": "DESC",
}


def order_by(dql: dict | None, resource: str) -> str:
    """ORDER BY text for the query's sort; always ends with the rowid so pages are stable."""
    if resource not in ("items", "annotations"):
        raise FilterError(
            f"unknown resource {resource!r}", where="order_by", fix="use 'items' or 'annotations'"
        )
    sort = _top(dql, resource).get("sort") or {}
    if not isinstance(sort, dict):
        raise _bad("sort must be an object", "sort", sort, 'write {"field": "ascending"}')
    terms = []
    for name, direction in sort.items():
        key = str(direction).lower() if not isinstance(direction, bool) else ""
        if key not in _DIRECTIONS:
            raise _bad(
                "bad sort direction", f"sort.{name}", {name: direction}, "use 'ascending' or 'descending'"
            )
        terms.append(f"{_field(resource, resource, name, f'sort.{name}').expr} {_DIRECTIONS[key]}")
    return ", ".join([*terms, f"{resource}.rid ASC"])


def page_size(dql: dict | None, default: int = 1000) -> int:
    """The query's pageSize (0 asks for a count only), or ``default``."""
    size = _top(dql, None).get("pageSize")
    if size is None:
        return default
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _bad("pageSize must be a whole number >= 0", "pageSize", size, "set filters.page_size")
    return size
