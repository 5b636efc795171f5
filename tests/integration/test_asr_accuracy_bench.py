"""bench.asr_accuracy end to end on one committed Mandarin clip: page → audio → ASR → CER."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.asr_accuracy import Configuration, load_clips, run
from tests.support.video_site import VideoSite


@pytest.mark.slow
def test_one_clip_through_the_service_path(video_site: VideoSite, asr_data_dir: Path) -> None:
    clip = next(c for c in load_clips() if c.name == "phones_iphone16")
    page = video_site.add_video("bench-iphone16", clip.path, title=clip.title, description=clip.description)

    result = run(Configuration("zh", {"language": "zh"}), {clip.name: page}, [clip], {"cpu_threads": 2}, asr_data_dir)

    (heard,) = result.clips
    assert heard.language == "zh"
    assert heard.errors.rate < 0.2, heard.heard  # 2.7 % when measured; the clip is clear
    assert heard.audio_s == pytest.approx(clip.duration_s, abs=0.5)
    assert video_site.requested(video_site.media_path("bench-iphone16")) >= 1  # downloaded, not read from disk
