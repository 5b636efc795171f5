"""Speech to text with faster-whisper: one model loaded per process, reused for every job.

Plain module (no Ray): the Transcriber deployment and the CLI both wrap it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import ctranslate2
import numpy as np
import zhconv
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
from faster_whisper.tokenizer import _LANGUAGE_CODES
from faster_whisper.transcribe import Segment as WhisperSegment
from faster_whisper.transcribe import TranscriptionInfo

from actors.domain.errors import TranscriptionError, VidscribeError
from actors.domain.video import Segment, Transcript, TranscriptSource
from actors.speech.hints import PageHints
from actors.speech.loops import collapse_loops, find_loops
from actors.speech.models import resolve_model
from actors.speech.settings import AsrSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# Whisper decodes 30 s windows. Batching decodes several windows at once, so it only pays
# off when there is more than one: measured on a 2-core box (int8, beam 5), a 14 s clip
# took 3.4-3.6 s either way, while 119 s of speech took 19-27 s sequential and 10-11 s
# batched (RTF 0.16-0.23 vs 0.08-0.09). Short clips therefore go sequential.
BATCH_MIN_DURATION_S = 30.0
# Re-decoding a loop: no text carried over from the window before, repeated tokens cost a
# little more, and sampling at rising temperatures when the output still compresses too
# well (Whisper's own sign of a loop).
SAFER_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SAFER_REPETITION_PENALTY = 1.1
# Whisper's language guess looks at the first 30 s of speech, found by VAD in this much audio.
LANGUAGE_SAMPLE_S = 120
# Languages whose output may come in Traditional characters.
_CHINESE = frozenset({"zh", "yue"})

ProgressCallback = Callable[[float, float | None], None]


class SpeechRecognizer:
    """A loaded Whisper model plus the decoding settings; `transcribe` is one ASR job."""

    def __init__(self, settings: AsrSettings, data_dir: Path) -> None:
        self.settings = settings
        self.device = settings.device
        if self.device == "auto":
            self.device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.compute_type = settings.compute_type
        if self.compute_type == "auto":
            self.compute_type = "float16" if self.device == "cuda" else "int8"
        model = resolve_model(settings, data_dir)
        started = time.perf_counter()
        try:
            self.model = WhisperModel(
                model, device=self.device, compute_type=self.compute_type, cpu_threads=settings.cpu_threads
            )
        except Exception as e:  # unknown name, no network for a download, bad files, no CUDA…
            raise TranscriptionError(f"could not load Whisper model {settings.model!r}: {e}") from e
        self.batched = BatchedInferencePipeline(self.model)
        self.load_seconds = time.perf_counter() - started
        log.info(
            "Whisper model %s loaded on %s/%s in %.1f s",
            settings.model,
            self.device,
            self.compute_type,
            self.load_seconds,
        )

    def transcribe(
        self,
        audio: Path,
        *,
        language: str | None = None,
        hints: PageHints | None = None,
        on_progress: ProgressCallback | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> Transcript:
        """Transcribe an audio/video file; `on_progress(seconds_done, duration)` as segments arrive,
        `on_warning(text)` for what the task should say (a repetition loop that stayed)."""
        samples = _decode(audio)
        duration = len(samples) / SAMPLE_RATE
        if on_progress is not None:
            on_progress(0.0, duration)  # the length is known before the first segment is
        try:
            for forced in self._languages(samples, language or self.settings.language or None, hints):
                raw, info = self._run(samples, duration, forced, hints.prompt(forced) if hints else None)
                segments = _collect(raw, duration, on_progress)
                if segments:
                    break
            if self.settings.loop_guard:
                segments = self._without_loops(samples, segments, info.language, on_warning)
        except VidscribeError:
            raise
        except Exception as e:  # ctranslate2/onnxruntime failures surface as plain RuntimeErrors
            raise TranscriptionError(f"speech recognition failed on {audio.name}: {e}") from e
        # No speech: the "detected" language is a guess on silence, so say nothing.
        detected = info.language if segments else forced
        if self.settings.simplified_chinese and detected in _CHINESE:
            segments = to_simplified(segments)
        if on_progress is not None:
            on_progress(duration, duration)
        return Transcript(segments=segments, language=detected, duration=duration, source=TranscriptSource.ASR)

    def _languages(self, samples: np.ndarray, forced: str | None, hints: PageHints | None) -> list[str | None]:
        """The languages to decode in, in turn until one hears speech: the forced one; else
        Whisper's guess on the first speech, unless it is unsure and the page names another
        language, which is tried first (the guess is the pass transcribe would make itself)."""
        page = None if hints is None else _whisper_language(hints.language) or hints.script_language
        if forced or page is None:
            return [forced]
        try:
            guess, probability, _ = self.model.detect_language(
                samples[: LANGUAGE_SAMPLE_S * SAMPLE_RATE], vad_filter=self.settings.vad
            )
        except ValueError:  # VAD heard no speech at the start: the page's word is all there is
            return [page]
        if probability >= self.settings.language_confidence or guess == page:
            return [guess]
        log.info("Whisper heard %s (p=%.2f), the page says %s: decoding as %s first", guess, probability, page, page)
        # A Chinese title over English speech: decoded as Chinese, Whisper may hear nothing.
        return [page, guess]

    def _run(
        self, samples: np.ndarray, duration: float, language: str | None, prompt: str | None
    ) -> tuple[Iterable[WhisperSegment], TranscriptionInfo]:
        s = self.settings
        # The page's words as Whisper's initial prompt or as hotwords (the setting names the keyword).
        by_page = {s.page_prompt: prompt} if prompt and s.page_prompt != "off" else {}
        # Batched mode cuts the audio at VAD silences, so it needs VAD on; without VAD it
        # would cut mid-word at fixed 30 s marks.
        if s.batch_size > 1 and s.vad and duration > BATCH_MIN_DURATION_S:
            return self.batched.transcribe(
                samples,
                language=language,
                beam_size=s.beam_size,
                batch_size=s.batch_size,
                chunk_length=s.batch_chunk_s,
                # Keep Whisper's timestamps: sentence-sized segments (not 30 s blocks) for
                # subtitles; measured at the same speed.
                without_timestamps=False,
                **by_page,
            )
        return self.model.transcribe(
            samples,
            language=language,
            beam_size=s.beam_size,
            vad_filter=s.vad,
            condition_on_previous_text=s.condition_on_previous_text,
            **by_page,
        )

    def _without_loops(
        self,
        samples: np.ndarray,
        segments: list[Segment],
        language: str | None,
        on_warning: Callable[[str], None] | None,
    ) -> list[Segment]:
        """Decode each looping stretch again with safer settings; cut what still loops to one."""
        for loop in reversed(find_loops(segments)):  # from the end: indices before stay valid
            start, end = loop.span(segments)
            redone = self._redecode(samples, start, end, language)
            if find_loops(redone):
                if on_warning is not None:
                    on_warning(f"speech recognition repeated itself at {_clock(start)}-{_clock(end)}; cut to one")
                redone = collapse_loops(redone)
            log.info("repetition loop at %.1f-%.1f s decoded again", start, end)
            segments[loop.first : loop.last + 1] = redone
        return segments

    def _redecode(self, samples: np.ndarray, start: float, end: float, language: str | None) -> list[Segment]:
        window = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        raw, _ = self.model.transcribe(
            window,
            language=language,
            beam_size=self.settings.beam_size,
            condition_on_previous_text=False,
            temperature=SAFER_TEMPERATURES,
            repetition_penalty=SAFER_REPETITION_PENALTY,
            vad_filter=self.settings.vad,
        )
        return [
            s.model_copy(update={"start": round(s.start + start, 3), "end": round(s.end + start, 3)})
            for s in _collect(raw, len(window) / SAMPLE_RATE, None)
        ]


def to_simplified(segments: list[Segment]) -> list[Segment]:
    """Segments with Traditional Chinese characters converted to Simplified."""
    # "zh-hans" converts the script only; "zh-cn" would also swap regional vocabulary.
    return [s.model_copy(update={"text": zhconv.convert(s.text, "zh-hans")}) for s in segments]


def _whisper_language(code: str | None) -> str | None:
    return code if code in _LANGUAGE_CODES else None


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def _decode(audio: Path) -> np.ndarray:
    if not audio.is_file():
        raise TranscriptionError(f"audio file not found: {audio}")
    try:
        samples: np.ndarray = decode_audio(str(audio), sampling_rate=SAMPLE_RATE)
    except IndexError as e:  # PyAV's way of saying the container has no audio stream
        raise TranscriptionError(f"{audio.name} has no audio track") from e
    except Exception as e:  # PyAV raises InvalidDataError & co. for files it cannot read
        raise TranscriptionError(f"could not decode audio from {audio.name}: {e}") from e
    return samples


def _collect(raw: Iterable[WhisperSegment], duration: float, on_progress: ProgressCallback | None) -> list[Segment]:
    # `raw` is lazy: decoding happens while we iterate, so progress follows real work.
    segments: list[Segment] = []
    done = 0.0
    for seg in raw:
        text = seg.text.strip()
        if text:
            segments.append(Segment(start=round(seg.start, 3), end=round(seg.end, 3), text=text))
        done = min(max(done, seg.end), duration)  # monotonic, never past the end
        if on_progress is not None:
            on_progress(done, duration)
    return segments
