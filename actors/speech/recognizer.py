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
from faster_whisper.transcribe import Segment as WhisperSegment
from faster_whisper.transcribe import TranscriptionInfo

from actors.domain.errors import TranscriptionError, VidscribeError
from actors.domain.video import Segment, Transcript, TranscriptSource
from actors.speech.models import resolve_model
from actors.speech.settings import AsrSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# Whisper decodes 30 s windows. Batching decodes several windows at once, so it only pays
# off when there is more than one: measured on a 2-core box (int8, beam 5), a 14 s clip
# took 3.4-3.6 s either way, while 119 s of speech took 19-27 s sequential and 10-11 s
# batched (RTF 0.16-0.23 vs 0.08-0.09). Short clips therefore go sequential.
BATCH_MIN_DURATION_S = 30.0
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
        on_progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Transcribe an audio/video file; `on_progress(seconds_done, duration)` as segments arrive."""
        samples = _decode(audio)
        duration = len(samples) / SAMPLE_RATE
        forced = language or self.settings.language or None
        if on_progress is not None:
            on_progress(0.0, duration)  # the length is known before the first segment is
        try:
            raw, info = self._run(samples, duration, forced)
            segments = _collect(raw, duration, on_progress)
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

    def _run(
        self, samples: np.ndarray, duration: float, language: str | None
    ) -> tuple[Iterable[WhisperSegment], TranscriptionInfo]:
        s = self.settings
        # Batched mode cuts the audio at VAD silences, so it needs VAD on; without VAD it
        # would cut mid-word at fixed 30 s marks.
        if s.batch_size > 1 and s.vad and duration > BATCH_MIN_DURATION_S:
            return self.batched.transcribe(
                samples,
                language=language,
                beam_size=s.beam_size,
                batch_size=s.batch_size,
                # Keep Whisper's timestamps: sentence-sized segments (not 30 s blocks) for
                # subtitles; measured at the same speed.
                without_timestamps=False,
            )
        return self.model.transcribe(samples, language=language, beam_size=s.beam_size, vad_filter=s.vad)


def to_simplified(segments: list[Segment]) -> list[Segment]:
    """Segments with Traditional Chinese characters converted to Simplified."""
    # "zh-hans" converts the script only; "zh-cn" would also swap regional vocabulary.
    return [s.model_copy(update={"text": zhconv.convert(s.text, "zh-hans")}) for s in segments]


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
