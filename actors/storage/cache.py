"""Cache layers per video (metadata, transcript, proofread, summary), keyed by (platform,
video id) and never by raw URL, and the aliases that map links seen before to their video."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from actors.storage.database import Database

CACHE_LAYERS = frozenset({"metadata", "transcript", "proofread", "summary"})


def normalize_url(url: str) -> str:
    """The idempotency form of a URL: case-folded scheme and host, no default port, fragment or utm_*."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and (scheme, parts.port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")])
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


class CacheTable(Database):
    """The `cache` and `aliases` tables."""

    def cache_get(self, platform: str, video_id: str, layer: str) -> Any | None:
        """The cached JSON value of a layer for this video, or None."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        with self._tx() as db:
            row = db.execute(
                "SELECT value FROM cache WHERE platform = ? AND video_id = ? AND layer = ?",
                (platform.lower(), video_id, layer),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_put(self, platform: str, video_id: str, layer: str, value: Any) -> None:
        """Store (replace) a layer for this video; `value` is JSON-able or a pydantic model."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if value is None:
            raise ValueError("None is what a cache miss returns; it cannot be stored")
        with self._tx(write=True) as db:
            db.execute(
                "INSERT INTO cache (platform, video_id, layer, value, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, video_id, layer)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (platform.lower(), video_id, layer, json.dumps(value, ensure_ascii=False), time.time()),
            )

    def remember_alias(self, url: str, platform: str, video_id: str) -> None:
        """Record that `url` resolves to this video, so a repeat is known before resolving."""
        with self._tx(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO aliases (url_key, platform, video_id) VALUES (?, ?, ?)",
                (normalize_url(url), platform.lower(), video_id),
            )

    def cached_video(self, url: str) -> tuple[str, str] | None:
        """The video behind `url` when both its metadata and transcript are cached."""
        with self._tx() as db:
            row = db.execute(
                "SELECT platform, video_id FROM aliases WHERE url_key = ?", (normalize_url(url),)
            ).fetchone()
            return (row[0], row[1]) if row is not None and fully_cached(db, normalize_url(url)) else None


def fully_cached(db: sqlite3.Connection, url_key: str) -> bool:
    """Whether the video this URL resolved to has its metadata and transcript cached."""
    row = db.execute(
        "SELECT COUNT(*) FROM aliases a JOIN cache c ON c.platform = a.platform AND c.video_id = a.video_id"
        " WHERE a.url_key = ? AND c.layer IN ('metadata', 'transcript')",
        (url_key,),
    ).fetchone()
    return bool(row[0] == 2)
