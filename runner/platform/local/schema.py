"""SQLite schema of the local platform.

Records keep their full Dataloop JSON in a ``json`` column; the fields that filters and joins
touch are also stored as indexed columns so DQL translates to SQL without loading rows.
"""

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',        -- ontology labels: [{"tag", "color", "children", ...}]
    attributes TEXT NOT NULL DEFAULT '[]',
    UNIQUE (project_id, name)
);

CREATE TABLE IF NOT EXISTS items (
    rid INTEGER PRIMARY KEY,                   -- insertion order; keyset paging
    id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL REFERENCES datasets(id),
    filename TEXT NOT NULL,                    -- remote path, '/train/0001.png'
    dir TEXT NOT NULL,                         -- '/train'
    name TEXT NOT NULL,                        -- '0001.png'
    type TEXT NOT NULL DEFAULT 'file',
    hidden INTEGER NOT NULL DEFAULT 0,
    mimetype TEXT,
    blob TEXT,                                 -- sha256 of the bytes in the blob folder
    size INTEGER,
    created_at TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (dataset_id, filename)
);
CREATE INDEX IF NOT EXISTS items_dir ON items (dataset_id, dir);
CREATE INDEX IF NOT EXISTS items_dataset ON items (dataset_id, rid);    -- paging in insertion order
CREATE INDEX IF NOT EXISTS items_name ON items (dataset_id, name);

CREATE TABLE IF NOT EXISTS annotations (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    type TEXT NOT NULL,
    label TEXT,
    model_name TEXT,                           -- metadata.system.model.name; NULL for ground truth
    created_at TEXT NOT NULL,
    json TEXT NOT NULL                         -- Dataloop annotation JSON
);
CREATE INDEX IF NOT EXISTS annotations_item ON annotations (item_id, model_name);
CREATE INDEX IF NOT EXISTS annotations_dataset ON annotations (dataset_id, model_name);

CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    dataset_id TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'created',
    cloned_from TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    json TEXT NOT NULL,                        -- configuration, labels, metadata, input/output type ...
    UNIQUE (project_id, name)
);

CREATE TABLE IF NOT EXISTS artifacts (
    model_id TEXT NOT NULL REFERENCES models(id),
    name TEXT NOT NULL,                        -- path relative to the artifact folder
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (model_id, name)
);

CREATE TABLE IF NOT EXISTS metric_samples (
    rid INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models(id),
    dataset_id TEXT,
    json TEXT NOT NULL                         -- a PlotSample: figure, legend, x, y, data
);
CREATE INDEX IF NOT EXISTS metric_samples_model ON metric_samples (model_id);

CREATE TABLE IF NOT EXISTS evaluations (
    rid INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models(id),
    dataset_id TEXT,
    created_at TEXT NOT NULL,
    json TEXT NOT NULL                         -- metric name -> value or table
);

CREATE TABLE IF NOT EXISTS feature_sets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    model_id TEXT,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    set_type TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE IF NOT EXISTS features (
    feature_set_id TEXT NOT NULL REFERENCES feature_sets(id),
    item_id TEXT NOT NULL,
    vector BLOB NOT NULL,                      -- float32 little-endian
    PRIMARY KEY (feature_set_id, item_id)
);
"""
