"""Issue 18 item 1: Mandarin ASR accuracy (CER) and speed (RTF) of each recognizer configuration.

The committed clips (tests/data/mandarin/, made by bench.make_mandarin_clips) are served as
video pages on a local site, each with its title and description, and every configuration
takes the service's own path: `media.probe` (link → page) → `media.download_audio` →
`SpeechRecognizer.transcribe`. CER is computed by bench.cer (Simplified, numerals spelled out,
no punctuation or spaces), pooled over all clips; RTF is transcription seconds per second of
audio; wall time adds resolving and downloading (model loading is left out: a replica loads
its model once).

    .venv/bin/python -m bench.asr_accuracy [--only NAME ...] [--clips NAME ...] [--joined] [--show] [--json PATH]

The clips are 20-25 s, one Whisper window each, so they take the recognizer's sequential
path; `--joined` serves them as one compilation video instead (4.5 min, half a second
between clips), which takes the batched path real videos take.

A configuration is a name, AsrSettings overrides, and whether the page's title and
description are handed to the recognizer (`PageHints`, as the service does); add one to
CONFIGURATIONS to measure it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import decode_audio

from actors import media
from actors.domain.video import Transcript
from actors.media.settings import MediaSettings
from actors.speech.hints import PageHints
from actors.speech.recognizer import SAMPLE_RATE, SpeechRecognizer
from actors.speech.settings import AsrSettings
from bench.cer import ErrorCount, count_errors, total
from tests.support.video_site import VideoSite

CLIPS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mandarin"


@dataclass(frozen=True)
class Configuration:
    """One way of running the recognizer: AsrSettings overrides, and whether it sees the page."""

    name: str
    asr: dict[str, Any] = field(default_factory=dict)
    page_context: bool = False  # hand the page's title, tags and description to the recognizer (PageHints)


CONFIGURATIONS = (
    # Without the page: what the service did before #18 items 2-4 (language detected, no prompt).
    Configuration("base, detected, no page"),
    Configuration("base, zh, no page", {"language": "zh"}),
    Configuration("base, zh, greedy, no page", {"language": "zh", "beam_size": 1}),
    # Clips under 30 s always go sequential; the sequential rows differ only with --joined.
    Configuration("base, zh, sequential, no page", {"language": "zh", "batch_size": 1}),
    # With the page, as the service runs now (page_prompt defaults to initial_prompt).
    Configuration("base, detected, page prompt (default)", page_context=True),
    Configuration("base, zh, page prompt", {"language": "zh"}, page_context=True),
    Configuration("base, zh, page hotwords", {"language": "zh", "page_prompt": "hotwords"}, page_context=True),
    Configuration("base, zh, page prompt, sequential", {"language": "zh", "batch_size": 1}, page_context=True),
    # Batched decoding of 30 s stretches loses sentences on the --joined compilation; shorter ones keep them.
    Configuration("base, zh, no page, 15 s batches", {"language": "zh", "batch_chunk_s": 15}),
    Configuration("base, detected, page prompt, 15 s batches", {"batch_chunk_s": 15}, page_context=True),
)


@dataclass(frozen=True)
class Clip:
    """A manifest entry: the audio file, the page it is served on, and what is said in it."""

    path: Path
    title: str
    description: str
    text: str
    duration_s: float

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class ClipResult:
    clip: str
    heard: str
    language: str | None
    errors: ErrorCount
    audio_s: float
    asr_s: float
    wall_s: float


@dataclass
class Result:
    configuration: Configuration
    load_s: float
    clips: list[ClipResult] = field(default_factory=list)

    @property
    def errors(self) -> ErrorCount:
        return total(c.errors for c in self.clips)

    @property
    def rtf(self) -> float:
        return sum(c.asr_s for c in self.clips) / sum(c.audio_s for c in self.clips)

    @property
    def wall_s(self) -> float:
        return sum(c.wall_s for c in self.clips)


def load_clips(folder: Path = CLIPS) -> list[Clip]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [
        Clip(folder / e["file"], e["title"], e["description"], e["text"], float(e["duration_s"]))
        for e in manifest["clips"]
    ]


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16 kHz mono 16-bit PCM: what a site's audio becomes once decoded."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def join_clips(clips: list[Clip], folder: Path) -> Clip:
    """The clips as one compilation video (16 kHz WAV in `folder`), half a second apart."""
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    samples = np.concatenate([part for c in clips for part in (decode_audio(str(c.path)), gap)])
    path = write_wav(folder / "joined.wav", samples)
    # A compilation's page names what is in it: the clips' titles make its description.
    title = f"普通话视频{len(clips)}段合集"
    description = " ".join(c.title for c in clips)
    return Clip(path, title, description, "".join(c.text for c in clips), len(samples) / SAMPLE_RATE)


def transcribe_page(
    url: str,
    recognizer: SpeechRecognizer,
    workdir: Path,
    *,
    page_context: bool = True,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[Transcript, float]:
    """The service's way from a link to text; (the transcript, ASR seconds)."""
    settings = MediaSettings()
    probe = media.probe(url, settings, allow_private=True)
    audio = media.download_audio(probe, workdir, settings, allow_private=True)
    hints = PageHints.of(probe.video) if page_context else None  # as TranscribeJob passes them
    started = time.perf_counter()
    transcript = recognizer.transcribe(Path(audio), hints=hints, on_warning=on_warning)
    return transcript, time.perf_counter() - started


def run(
    configuration: Configuration, pages: dict[str, str], clips: list[Clip], base: dict[str, Any], data_dir: Path
) -> Result:
    """Every clip through one configuration, with the model from `data_dir`."""
    with tempfile.TemporaryDirectory(prefix="asr-accuracy-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        recognizer = SpeechRecognizer(AsrSettings(**{**base, **configuration.asr}), data_dir)
        result = Result(configuration, load_s=time.perf_counter() - started)
        # A replica's first transcription pays one-off set-up; the service's later ones do not.
        recognizer.transcribe(clips[0].path)
        for clip in clips:
            workdir = root / clip.name
            workdir.mkdir()
            started = time.perf_counter()
            heard, asr_s = transcribe_page(
                pages[clip.name], recognizer, workdir, page_context=configuration.page_context
            )
            wall_s = time.perf_counter() - started
            errors = count_errors(clip.text, heard.text)
            audio_s = heard.duration or 0.0
            result.clips.append(ClipResult(clip.name, heard.text, heard.language, errors, audio_s, asr_s, wall_s))
        return result


def print_table(results: list[Result], audio_s: float, show: bool) -> None:
    print(f"\n{len(results[0].clips)} clips, {audio_s:.1f} s of speech, {os.cpu_count()} CPUs\n")
    print("| configuration | CER | RTF | ASR s | wall s | languages |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        languages = ", ".join(f"{lang} {n}" for lang, n in Counter(c.language for c in r.clips).most_common())
        asr_s = sum(c.asr_s for c in r.clips)
        cells = [r.configuration.name, f"{r.errors.rate:.1%}", f"{r.rtf:.3f}", f"{asr_s:.1f}", f"{r.wall_s:.1f}"]
        print("| " + " | ".join([*cells, languages]) + " |")
    print("\nCER per clip:\n")
    print("| clip | " + " | ".join(r.configuration.name for r in results) + " |")
    print("| --- |" + " --- |" * len(results))
    for i, clip in enumerate(results[0].clips):
        print(f"| {clip.clip} | " + " | ".join(f"{r.clips[i].errors.rate:.1%}" for r in results) + " |")
    if show:
        for r in results:
            print(f"\n{r.configuration.name}:")
            for c in r.clips:
                print(f"  {c.clip} ({c.language}, {c.errors.rate:.1%}): {c.heard.replace(chr(10), ' ')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="configuration names to run; default all")
    parser.add_argument("--clips", nargs="*", help="clip names to use; default all")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads of the recognizer")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", type=Path, help="a data dir with pulled models (for model overrides)")
    parser.add_argument("--joined", action="store_true", help="the clips as one 4.5 min video (batched path)")
    parser.add_argument("--show", action="store_true", help="print what each configuration heard")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args()

    clips = [c for c in load_clips() if not args.clips or c.name in args.clips]
    configurations = [c for c in CONFIGURATIONS if not args.only or c.name in args.only]
    base = {"cpu_threads": args.threads, "device": args.device}
    site = VideoSite().start()
    # The bundled model is put together once into a data dir; a throwaway one unless given.
    with tempfile.TemporaryDirectory(prefix="asr-accuracy-data-") as tmp:
        if args.joined:
            clips = [join_clips(clips, Path(tmp))]
        try:
            pages = {c.name: site.add_video(c.name, c.path, title=c.title, description=c.description) for c in clips}
            results = []
            for configuration in configurations:
                results.append(run(configuration, pages, clips, base, args.data_dir or Path(tmp)))
                print(f"{configuration.name}: CER {results[-1].errors.rate:.1%}, RTF {results[-1].rtf:.3f}", flush=True)
        finally:
            site.close()
    print_table(results, sum(c.audio_s for c in results[0].clips), args.show)
    if args.json:
        args.json.write_text(
            json.dumps([_as_json(r) for r in results], ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )


def _as_json(result: Result) -> dict[str, Any]:
    return {
        "configuration": result.configuration.name,
        "asr": result.configuration.asr,
        "page_context": result.configuration.page_context,
        "cer": result.errors.rate,
        "rtf": result.rtf,
        "wall_s": result.wall_s,
        "load_s": result.load_s,
        "clips": [
            {"clip": c.clip, "language": c.language, "cer": c.errors.rate, "heard": c.heard, "asr_s": c.asr_s}
            for c in result.clips
        ],
    }


if __name__ == "__main__":
    main()
