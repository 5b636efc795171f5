"""The SQLite schema and its migrations: schema version -> the SQL that brings the previous
version to it. A new version adds an entry; a file from a newer vidscribe is refused."""

from __future__ import annotations

TASKS_SCHEMA = """
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,           -- normalised url: the idempotency key with client_key
    client TEXT,
    client_key TEXT NOT NULL,        -- client or '' (NULLs never compare equal)
    webhook TEXT,
    options TEXT NOT NULL,
    priority TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,  -- 0 = high: sorts the most urgent first
    status TEXT NOT NULL,
    finished INTEGER NOT NULL,
    progress REAL NOT NULL,
    progress_detail TEXT NOT NULL,
    source TEXT,
    cached INTEGER NOT NULL,
    video TEXT,
    platform TEXT,                   -- lower-cased, from video: the cache identity
    video_id TEXT,
    title TEXT,
    transcript TEXT,
    proofread TEXT,
    summary TEXT,
    warnings TEXT NOT NULL,
    error TEXT,
    delivery TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    dispatched_at REAL
);
CREATE INDEX tasks_created ON tasks (created_at);
CREATE INDEX tasks_status ON tasks (status, created_at);
CREATE INDEX tasks_client ON tasks (client_key, created_at);
CREATE INDEX tasks_open_url ON tasks (url_key, client_key, created_at) WHERE finished = 0;
CREATE INDEX tasks_open_video ON tasks (platform, video_id, created_at) WHERE finished = 0;
CREATE INDEX tasks_open ON tasks (created_at) WHERE finished = 0;
CREATE TABLE cache (
    platform TEXT NOT NULL,
    video_id TEXT NOT NULL,
    layer TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (platform, video_id, layer)
) WITHOUT ROWID;
CREATE TABLE aliases (
    url_key TEXT PRIMARY KEY,        -- a normalised URL seen to resolve to this video
    platform TEXT NOT NULL,
    video_id TEXT NOT NULL
) WITHOUT ROWID;
"""

OUTBOX_SCHEMA = """
CREATE TABLE outbox_blocks (
    block_id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids are the send order
    task_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    key TEXT NOT NULL,
    priority TEXT NOT NULL DEFAULT 'normal',
    state TEXT NOT NULL DEFAULT 'pending',       -- pending | sent | abandoned
    parts_total INTEGER NOT NULL,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    errcode INTEGER,
    message TEXT,
    created_at REAL NOT NULL,
    UNIQUE (task_id, key)
);
-- Only pending blocks are looked up by lane; the index stays small as history grows.
CREATE INDEX outbox_pending ON outbox_blocks (lane, block_id) WHERE state = 'pending';
CREATE TABLE outbox_parts (
    block_id INTEGER NOT NULL REFERENCES outbox_blocks (block_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    content TEXT NOT NULL,
    msgtype TEXT NOT NULL,
    sent_at REAL,
    PRIMARY KEY (block_id, seq)
) WITHOUT ROWID;
"""

# Schema 2: what retention needs (actors/storage/retention.py). Only additions, so every
# row of a schema-1 file stays as it was.
RETENTION_SCHEMA = """
-- Size and last use of each cache layer: the pruner evicts least recently used first.
-- A table of its own, so that marking a layer used never rewrites its (large) value.
CREATE TABLE cache_usage (
    platform TEXT NOT NULL,
    video_id TEXT NOT NULL,
    layer TEXT NOT NULL,
    bytes INTEGER NOT NULL,          -- UTF-8 size of the cached value
    used_at REAL NOT NULL,           -- last written, or read (at most once a minute)
    PRIMARY KEY (platform, video_id, layer),
    FOREIGN KEY (platform, video_id, layer) REFERENCES cache (platform, video_id, layer) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX cache_lru ON cache_usage (used_at, bytes);
INSERT INTO cache_usage (platform, video_id, layer, bytes, used_at)
    SELECT platform, video_id, layer, length(CAST(value AS BLOB)), updated_at FROM cache;
-- Finished tasks by age, and aliases by video (dropped with the video's last cache layer).
CREATE INDEX tasks_finished ON tasks (updated_at) WHERE finished = 1;
CREATE INDEX aliases_video ON aliases (platform, video_id);
"""

# Schema 3: the tokens each LLM step of a task cost (TaskRecord.llm_usage).
USAGE_SCHEMA = """
ALTER TABLE tasks ADD COLUMN llm_usage TEXT NOT NULL DEFAULT '{}';
"""

MIGRATIONS = {1: TASKS_SCHEMA + OUTBOX_SCHEMA, 2: RETENTION_SCHEMA, 3: USAGE_SCHEMA}
SCHEMA_VERSION = max(MIGRATIONS)
