"""Real faster-whisper with the bundled model on committed speech clips."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from faster_whisper import decode_audio

from actors.domain.errors import TranscriptionError
from actors.domain.video import Segment, TranscriptSource
from actors.speech.hints import PageHints
from actors.speech.recognizer import SpeechRecognizer, to_simplified
from tests.support.asr import SPEECH_EN, SPEECH_EN_TEXT, SPEECH_EN_VIDEO
from tests.support.text import word_overlap

CLIP_SECONDS = 14.4


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def assert_ordered(segments: list[Segment], duration: float) -> None:
    for seg in segments:
        assert 0 <= seg.start <= seg.end <= duration + 0.5
    assert [s.start for s in segments] == sorted(s.start for s in segments)


@pytest.mark.slow
def test_english_clip_words_language_and_progress(recognizer: SpeechRecognizer) -> None:
    progress: list[tuple[float, float | None]] = []

    transcript = recognizer.transcribe(SPEECH_EN, on_progress=lambda done, total: progress.append((done, total)))

    assert word_overlap(SPEECH_EN_TEXT, transcript.text) >= 0.8, transcript.text
    assert transcript.language == "en"
    assert transcript.source == TranscriptSource.ASR
    assert transcript.duration == pytest.approx(CLIP_SECONDS, abs=0.5)
    assert len(transcript.segments) >= 2  # sentence-sized cues, not one block
    assert_ordered(transcript.segments, transcript.duration)
    done = [d for d, _ in progress]
    assert len(done) >= 2
    assert done == sorted(done)
    assert {total for _, total in progress} == {transcript.duration}
    assert done[-1] == pytest.approx(transcript.duration)


@pytest.mark.slow
def test_forced_language_from_a_video_file(recognizer: SpeechRecognizer) -> None:
    transcript = recognizer.transcribe(SPEECH_EN_VIDEO, language="fr")

    assert transcript.language == "fr"  # forced, not detected
    assert word_overlap(SPEECH_EN_TEXT, transcript.text) >= 0.6


@pytest.mark.slow
def test_long_audio_goes_batched_with_fine_segments(recognizer: SpeechRecognizer, tmp_path: Path) -> None:
    clip = decode_audio(str(SPEECH_EN))
    pause = np.zeros(8000, dtype=np.float32)
    long_audio = write_wav(tmp_path / "long.wav", np.concatenate([clip, pause, clip, pause, clip]))
    progress: list[float] = []

    transcript = recognizer.transcribe(long_audio, on_progress=lambda done, _: progress.append(done))

    assert transcript.duration == pytest.approx(3 * CLIP_SECONDS + 1, abs=0.5)
    assert word_overlap(SPEECH_EN_TEXT, transcript.text) >= 0.8, transcript.text
    assert transcript.text.lower().count("fox") == 3
    assert transcript.segments[-1].end > 2 * CLIP_SECONDS  # the end of the audio was heard
    assert max(s.end - s.start for s in transcript.segments) < 15  # timestamps kept, not 30 s blocks
    assert_ordered(transcript.segments, transcript.duration)
    assert progress == sorted(progress)
    assert progress[-1] == pytest.approx(transcript.duration)


@pytest.mark.slow
def test_silence_gives_an_empty_transcript(recognizer: SpeechRecognizer, tmp_path: Path) -> None:
    silent = write_wav(tmp_path / "silence.wav", np.zeros(3 * 16_000, dtype=np.float32))

    transcript = recognizer.transcribe(silent)

    assert transcript.segments == []
    assert transcript.text == ""
    assert transcript.duration == pytest.approx(3.0)
    assert transcript.language is None


@pytest.mark.slow
def test_undecodable_or_missing_audio_is_a_transcription_error(recognizer: SpeechRecognizer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.m4a"
    junk.write_bytes(b"this is not audio\n" * 100)

    with pytest.raises(TranscriptionError, match="could not decode"):
        recognizer.transcribe(junk)
    with pytest.raises(TranscriptionError, match="not found"):
        recognizer.transcribe(tmp_path / "absent.m4a")


@pytest.mark.slow
def test_video_without_sound_is_a_transcription_error(recognizer: SpeechRecognizer, tmp_path: Path) -> None:
    mute = tmp_path / "mute.mp4"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(SPEECH_EN_VIDEO), "-an", "-c", "copy", str(mute)],
        check=True,
        timeout=60,
    )

    with pytest.raises(TranscriptionError, match="no audio track"):
        recognizer.transcribe(mute)


@pytest.mark.slow
def test_device_and_compute_type_resolved(recognizer: SpeechRecognizer) -> None:
    import ctranslate2

    expected = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    assert recognizer.device == expected
    assert recognizer.compute_type == ("float16" if expected == "cuda" else "int8")


def test_traditional_chinese_is_simplified() -> None:
    segments = [Segment(start=0, end=1, text="這是繁體字，我們說話。"), Segment(start=1, end=2, text="ok")]

    assert [s.text for s in to_simplified(segments)] == ["这是繁体字，我们说话。", "ok"]


@pytest.mark.slow
def test_when_whisper_is_unsure_the_pages_language_decides(
    recognizer: SpeechRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    french_page = PageHints(title="Le renard brun", language="fr")
    # Sure enough (the default confidence): Whisper hears English whatever the page says.
    assert recognizer.transcribe(SPEECH_EN, hints=french_page).language == "en"
    # Never sure enough: the platform's word wins, then the title's script.
    never_sure = recognizer.settings.model_copy(update={"language_confidence": 1.0})
    monkeypatch.setattr(recognizer, "settings", never_sure)
    assert recognizer.transcribe(SPEECH_EN, hints=french_page).language == "fr"
    # Decoded in the page's language Whisper may hear nothing: then its own guess is used.
    transcript = recognizer.transcribe(SPEECH_EN, hints=PageHints(title="敏捷的棕色狐狸"))
    assert transcript.language == "en"
    assert word_overlap(SPEECH_EN_TEXT, transcript.text) >= 0.8, transcript.text


@pytest.mark.slow
def test_a_repetition_loop_is_decoded_again_from_the_audio(recognizer: SpeechRecognizer) -> None:
    samples = decode_audio(str(SPEECH_EN))
    looping = [Segment(start=0.0, end=CLIP_SECONDS, text="The quick brown fox. " * 6)]
    warnings: list[str] = []

    redone = recognizer._without_loops(samples, looping, "en", warnings.append)

    text = " ".join(s.text for s in redone)
    assert word_overlap(SPEECH_EN_TEXT, text) >= 0.8, text
    assert text.lower().count("quick brown fox") == 1
    assert warnings == []  # the second decoding heard the speech: nothing left to say
    assert_ordered(redone, CLIP_SECONDS)
