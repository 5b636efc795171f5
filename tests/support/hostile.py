"""Hostile input for the delivery tests: a title and a transcript full of markup, emoji
sequences, flags and long links, and the check that a group saw them as words, whole."""

from __future__ import annotations

from typing import Any

from actors.delivery.render import strip_header

HOSTILE_TITLE = '**免费领取** [点我](https://evil.example) <@zhangsan> <font color="warning">红</font>'
WHOLE = ["👨‍👩‍👧‍👦", "🇨🇳", "🇯🇵", "👍🏽", "e\u0301"]  # ZWJ family, flags, skin tone, combining accent
LONG_LINK = "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL" + "x" * 80 + "&t=42s"


def hostile_transcript(lines: int) -> str:
    return "".join(
        f"第{i}句{WHOLE[i % len(WHOLE)] * 3}看{LONG_LINK}吧<@all>[点我](https://evil.example)。" for i in range(lines)
    )


def assert_seen_as_words_and_whole(messages: list[Any], public_url: str) -> None:
    """No live markup but the service's own view link, no cluster or link cut between two messages."""
    for message in messages:
        foreign = [
            (kind, text) for kind, text in message.live_markup() if not text.startswith("[查看全文](" + public_url)
        ]
        assert foreign == [], message.content
    bodies = [strip_header(message.content) for message in messages]
    for whole in [*WHOLE, LONG_LINK]:
        assert sum(body.count(whole) for body in bodies) == "".join(bodies).count(whole), whole
