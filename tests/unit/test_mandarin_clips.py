"""The committed Mandarin clips match their scripts and stay a small, varied benchmark."""

from __future__ import annotations

import json

from bench.asr_accuracy import CLIPS, load_clips
from bench.mandarin_corpus import CLIPS as SCRIPTS


def test_manifest_is_the_corpus_as_last_made() -> None:
    # A text, title or voice edited in bench/mandarin_corpus.py without remaking the clips
    # would measure one text against the audio of another.
    manifest = json.loads((CLIPS / "manifest.json").read_text(encoding="utf-8"))["clips"]
    assert [e["file"] for e in manifest] == [f"{s.name}.ogg" for s in SCRIPTS]
    for entry, script in zip(manifest, SCRIPTS, strict=True):
        assert (entry["voice"], entry["topic"], entry["title"], entry["description"], entry["text"]) == (
            script.voice,
            script.topic,
            script.title,
            script.description,
            script.text,
        )


def test_clips_are_varied_short_and_small() -> None:
    clips = load_clips()
    assert all(15 <= c.duration_s <= 30 for c in clips)
    assert 180 <= sum(c.duration_s for c in clips) <= 300  # 3-5 minutes in all
    assert len({s.voice for s in SCRIPTS}) >= 3
    assert len({s.topic for s in SCRIPTS}) == len(SCRIPTS)
    assert all(c.title and c.description for c in clips)
    assert sum(c.path.stat().st_size for c in clips) < 2_000_000
