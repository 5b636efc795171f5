"""Cache layers per video (metadata, transcript, proofread, summary), keyed by (platform,
video id) and never by raw URL, and the aliases that map links seen before to their video."""

from __future__ import annotations

import json
import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from actors.storage.database import Database

CACHE_LAYERS = frozenset({"metadata", "transcript", "proofread", "summary"})
# A read marks its layer used at most this often: an LRU order to the minute is plenty,
# and most reads stay read-only transactions.
TOUCH_EVERY_S = 60.0


def normalize_url(url: str) -> str:
    """The idempotency form of a URL: case-folded scheme and host, no default port, fragment or utm_*."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and (scheme, parts.port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")])
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def task_key(url: str, playlist_item: int | None = None) -> str:
    """A task's idempotency key: its normalised link, and which item of it when it is a
    playlist's (normalised links never keep a fragment, so "#item=N" cannot collide)."""
    key = normalize_url(url)
    return f"{key}#item={playlist_item}" if playlist_item is not None else key


class CacheTable(Database):
    """The `cache` and `aliases` tables."""

    def cache_get(self, platform: str, video_id: str, layer: str) -> Any | None:
        """The cached JSON value of a layer for this video, or None; a hit marks the layer used."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        key = (platform.lower(), video_id, layer)
        with self._tx() as db:
            row = db.execute(
                "SELECT c.value, u.used_at FROM cache c LEFT JOIN cache_usage u USING (platform, video_id, layer)"
                " WHERE c.platform = ? AND c.video_id = ? AND c.layer = ?",
                key,
            ).fetchone()
        if row is None:
            return None
        value, used_at = row
        now = self._clock()
        if used_at is None or now - used_at >= TOUCH_EVERY_S:  # reads stay reads most of the time
            with self._tx(write=True) as db:
                _mark_used(db, key, len(value.encode()), now)
        return json.loads(value)

    def cache_put(self, platform: str, video_id: str, layer: str, value: Any) -> None:
        """Store (replace) a layer for this video; `value` is JSON-able or a pydantic model."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if value is None:
            raise ValueError("None is what a cache miss returns; it cannot be stored")
        text, now = json.dumps(value, ensure_ascii=False), self._clock()
        with self._tx(write=True) as db:
            db.execute(
                "INSERT INTO cache (platform, video_id, layer, value, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, video_id, layer)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (platform.lower(), video_id, layer, text, now),
            )
            _mark_used(db, (platform.lower(), video_id, layer), len(text.encode()), now)

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


def _mark_used(db: sqlite3.Connection, key: tuple[str, str, str], size: int, now: float) -> None:
    """Record a layer's size and last use: the retention pruner evicts the least recently used.
    Nothing when the layer is gone (evicted between a read and this mark)."""
    db.execute(
        "INSERT INTO cache_usage (platform, video_id, layer, bytes, used_at) SELECT ?, ?, ?, ?, ?"
        " WHERE EXISTS (SELECT 1 FROM cache WHERE platform = ? AND video_id = ? AND layer = ?)"
        " ON CONFLICT (platform, video_id, layer) DO UPDATE SET bytes = excluded.bytes, used_at = excluded.used_at",
        (*key, size, now, *key),
    )


def fully_cached(db: sqlite3.Connection, url_key: str) -> bool:
    """Whether the video this URL resolved to has its metadata and transcript cached."""
    row = db.execute(
        "SELECT COUNT(*) FROM aliases a JOIN cache c ON c.platform = a.platform AND c.video_id = a.video_id"
        " WHERE a.url_key = ? AND c.layer IN ('metadata', 'transcript')",
        (url_key,),
    ).fetchone()
    return bool(row[0] == 2)
