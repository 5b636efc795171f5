"""Links to more than one video: a multi-part video (Bilibili's `?p=3`) and a playlist,
collection or channel. Pure functions over yt-dlp's (flat) extraction result.

A playlist whose entries are the page's own media (several `<video>`s, a multi-part video)
is one video in parts: the link means part 1, `?p=N` part N. A playlist whose entries are
links to other pages (a feed, a collection, a channel) is refused unless the request asks
for items (`options.playlist_items`); then each item is a task of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from actors.domain.errors import PlaylistNotSupported, VideoNotFound

PART_PARAMETER = "p"
# Entries looked at to count a playlist whose extractor does not say how long it is: one
# page of most sites' listings, so a refusal never walks a whole channel.
COUNT_LIMIT = 100
_LINK_TYPES = ("url", "url_transparent")


@dataclass(frozen=True)
class Pick:
    """The video a link means: an extracted `entry`, or a `link` to resolve on its own."""

    entry: dict[str, Any] | None = None
    link: str | None = None
    title: str | None = None  # the title to show, when it is not the entry's own


def requested_part(url: str) -> int | None:
    """N of a `?p=N` multi-part link (Bilibili's), else None."""
    values = parse_qs(urlsplit(url).query).get(PART_PARAMETER, [])
    return int(values[-1]) if values and values[-1].isdigit() and int(values[-1]) > 0 else None


def playlist_items_option(item: int | None, part: int | None) -> str:
    """yt-dlp's `playlist_items` for a probe: the one entry wanted, else enough to count."""
    wanted = item or part
    return str(wanted) if wanted else f"1:{COUNT_LIMIT}"


def pick_video(raw: dict[str, Any], url: str, *, part: int | None, item: int | None, max_items: int) -> Pick:
    """The video `url` means (its `item`, or its `part`), from yt-dlp's result for it.

    Raises PlaylistNotSupported for a list of links when no item was asked for, and
    VideoNotFound for an item or part the link does not have.
    """
    if raw.get("_type") != "playlist":
        if item is not None and item > 1:
            raise VideoNotFound(f"{url} is a single video, not a playlist: it has no item {item}")
        title = str(raw.get("title") or "")
        return Pick(entry=raw, title=numbered_part_title(title, part) if part else None)
    entries = [entry for entry in raw.get("entries") or [] if entry]
    count, exact = _count(raw, entries)
    linked = any(entry.get("_type") in _LINK_TYPES for entry in entries)
    if item is None and (linked or not entries):
        raise PlaylistNotSupported(_playlist_refusal(url, count, exact, max_items))
    number = item or part or 1
    if not entries:
        raise VideoNotFound(f"{url} has no item {number}: it holds {count} (numbered from 1)")
    entry = entries[0]  # the probe asked yt-dlp for this one entry (or for the first few)
    if entry.get("_type") in _LINK_TYPES:
        return Pick(link=str(entry["url"]))
    if item is None and part is None:
        return Pick(entry=entry)  # a multi-part page without ?p=: its first part, as sites play it
    whole = str(raw.get("title") or "")
    return Pick(entry=entry, title=part_title(whole, number, _part_name(str(entry.get("title") or ""), whole, number)))


def part_title(title: str, number: int, name: str = "") -> str:
    """ "Title – P3 part name"; "Title – P3" when the part has no name of its own."""
    return f"{title} – P{number} {name}".strip()


def numbered_part_title(title: str, part: int) -> str:
    """A title the extractor already numbered ("Title p03 Name", Bilibili's) in our form."""
    match = re.fullmatch(rf"(?P<title>.*?)\s+p0*{part}(?:\s+(?P<name>.*))?", title, re.IGNORECASE | re.DOTALL)
    if match is None:
        return part_title(title, part)
    return part_title(match["title"], part, match["name"] or "")


def _part_name(entry_title: str, whole: str, number: int) -> str:
    """The part's own name, unless it is only the page title numbered (`Title (2)`, html5's)."""
    return "" if entry_title in (whole, f"{whole} ({number})", "") else entry_title


def _count(raw: dict[str, Any], entries: list[dict[str, Any]]) -> tuple[int, bool]:
    """(how many entries the playlist holds, whether that is exact rather than a lower bound)."""
    stated = raw.get("playlist_count")
    if isinstance(stated, int):
        return stated, True
    return len(entries), len(entries) < COUNT_LIMIT


def _playlist_refusal(url: str, count: int, exact: bool, max_items: int) -> str:
    size = f"{count} item{'s' if count != 1 else ''}" if exact else f"at least {count} items"
    example = f"1-{max(1, min(count, max_items))}"
    return (
        f"{url} is a playlist, collection or channel of {size}; send the link of one video, or ask for its "
        f'items with options.playlist_items (e.g. "{example}", at most {max_items} per request): each '
        "becomes a task of its own"
    )
