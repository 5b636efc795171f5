"""What the video's page tells Whisper before it listens: the language and the words to expect.

A title like "用Python调用ChatGPT接口" names exactly the terms Whisper base mishears (Python
→ 拜登), and a Chinese prompt written in Simplified characters with punctuation steers the
output to Simplified, punctuated text. Whisper reads the prompt as text that came before
the audio, so it is written as such: a plain sentence, then the title, description and tags.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from actors.domain.video import VideoInfo

# Whisper keeps the last 223 tokens of a prompt; Chinese costs about one token a character,
# so the page's words are cut to this many characters and the style sentence always fits.
PROMPT_PAGE_CHARS = 160

# A sentence in the style the transcript should take (Simplified, full-width punctuation).
STYLE_SENTENCES = {
    "zh": "以下是普通话视频的文字记录，使用简体中文和标点符号。",
    "yue": "以下是粤语视频的文字记录，使用简体中文和标点符号。",
}

# Scripts that name a language on their own; Latin script names none.
_SCRIPT_LANGUAGES = (("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"), ("CJK UNIFIED", "zh"))
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PageHints:
    """The page's words about the video that help recognition."""

    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    language: str | None = None  # what the platform says is spoken

    @classmethod
    def of(cls, video: VideoInfo) -> PageHints:
        return cls(video.title, video.description, tuple(video.tags), video.language)

    @property
    def script_language(self) -> str | None:
        """The language the title's script implies (kana → ja, hangul → ko, Han alone → zh)."""
        return script_language(self.title)

    def prompt(self, language: str | None) -> str | None:
        """Whisper's initial prompt: a style sentence for the language, then the page's words."""
        words = [self.title, *self.tags, self.description]
        page = _WHITESPACE.sub(" ", " ".join(w.strip() for w in words if w.strip()))[:PROMPT_PAGE_CHARS]
        style = STYLE_SENTENCES.get(language or "", "")
        prompt = f"{style}{page}".strip()
        return prompt or None


def script_language(text: str) -> str | None:
    """The language a text's script implies, when at least a third of it is of one script.

    A Han, kana or hangul character counts as one unit, and so does a whole word of any
    other letters: "iPhone 16 Pro 评测" is half Chinese, as a reader would say."""
    counts = dict.fromkeys(("ja", "ko", "zh", "other"), 0)
    in_word = False
    for ch in text:
        script = _script(ch) if ch.isalpha() else None
        if script == "other":
            counts["other"] += not in_word
        elif script is not None:
            counts[script] += 1
        in_word = script == "other"
    units = sum(counts.values())
    counts.pop("other")
    if counts["ja"]:  # Japanese mixes kana with Han characters: any kana decides it
        counts["ja"] += counts["zh"]
    language, count = max(counts.items(), key=lambda item: item[1])
    return language if count and count * 3 >= units else None


def _script(letter: str) -> str:
    name = unicodedata.name(letter, "")
    return next((language for prefix, language in _SCRIPT_LANGUAGES if name.startswith(prefix)), "other")
