"""Issue 18 item 3: a 10+ minute Mandarin video transcribes without repetition loops, in
Simplified characters, with punctuation.

The committed Mandarin clips twice over, 2 s apart, with a 20 s stretch of noise and a
tone "jingle" in the middle (where Whisper likes to invent text or lock onto a phrase),
served as one video page and taken the service's way with the default settings (page
prompt, loop guard on). Prints what the output looks like:

    .venv/bin/python -m bench.asr_long
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import zhconv
from faster_whisper import decode_audio

from actors.speech.bundled_model import ensure_default_model
from actors.speech.loops import find_loops
from actors.speech.recognizer import SAMPLE_RATE, SpeechRecognizer
from actors.speech.settings import AsrSettings
from bench.asr_accuracy import load_clips, transcribe_page, write_wav
from bench.cer import count_errors
from tests.support.video_site import VideoSite

PUNCTUATION = set("，。？！、：；")


def noise_and_jingle(seconds: float, seed: int = 7) -> np.ndarray:
    """Quiet noise with a few bars of tones on top: music-like, speech-free."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = 220.0 * 2 ** (np.floor(t * 2) % 8 / 12)  # a new note every half second
    return (0.05 * rng.standard_normal(t.size) + 0.15 * np.sin(2 * np.pi * notes * t)).astype(np.float32)


def long_video(folder: Path) -> tuple[Path, str]:
    """The WAV file and its reference text."""
    clips = load_clips()
    gap = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    parts: list[np.ndarray] = []
    text = ""
    for round_ in range(2):
        for index, clip in enumerate(clips):
            parts += [decode_audio(str(clip.path)), gap]
            text += clip.text
            if round_ == 0 and index == len(clips) // 2:
                parts += [noise_and_jingle(20.0), gap]
    samples = np.concatenate(parts)
    return write_wav(folder / "long.wav", samples), text


def main() -> None:
    site = VideoSite().start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, reference = long_video(folder)
        url = site.add_video(
            "long", path, title="普通话节目合集：科技、财经、美食和历史", description="十二段节目，各讲两遍。"
        )
        ensure_default_model(folder)
        recognizer = SpeechRecognizer(AsrSettings(cpu_threads=os.cpu_count() or 1), folder)
        warnings: list[str] = []
        transcript, asr_s = transcribe_page(url, recognizer, folder, on_warning=warnings.append)
    site.close()
    text = transcript.text
    duration = transcript.duration or 0.0
    errors = count_errors(reference, text)
    traditional = sum(1 for ch in text if zhconv.convert(ch, "zh-hans") != ch)
    print(
        f"audio {duration / 60:.1f} min, ASR {asr_s:.0f} s (RTF {asr_s / duration:.3f}), language {transcript.language}"
    )
    print(
        f"CER {errors.rate:.1%}; segments {len(transcript.segments)}; loops left {len(find_loops(transcript.segments))}"
    )
    print(f"Traditional characters {traditional}; punctuation marks {sum(ch in PUNCTUATION for ch in text)}")
    print(f"warnings: {warnings or 'none'}")
    print(f"start: {text[:80]}")


if __name__ == "__main__":
    main()
