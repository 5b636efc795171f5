"""What a model wraps around its answer, taken off: reasoning, a preface, fences, quotes.

Reasoning models print their thinking in `<think>` blocks; when the chat template already
opened the block in the prompt (DeepSeek-R1 distills, Qwen3) only the closing tag comes
back, and an answer cut short may hold an opening tag alone. Small models like to announce
their answer ("好的，以下是校对后的文本：") or wrap it in a code fence. Lines that are in
the source text are never taken off: a transcript may itself begin with "好的，".
"""

from __future__ import annotations

import re

_TAG = r"(?:think|thinking|reasoning)"
_CLOSED_BLOCK = re.compile(rf"<{_TAG}>.*?</{_TAG}>", re.DOTALL | re.IGNORECASE)
_CLOSE_TAG = re.compile(rf"</{_TAG}>", re.IGNORECASE)
_OPEN_TAG = re.compile(rf"<{_TAG}>", re.IGNORECASE)

_FENCED = re.compile(r"\A```[\w-]*[ \t]*\n(.*?)\n?```\s*\Z", re.DOTALL)
_QUOTES = {"“": "”", '"': '"', "「": "」", "『": "』", "«": "»"}
# A first line announcing the answer: it ends with a colon or speaks of "the text below".
_PREFACE_WORDS = re.compile(
    r"^(?:好的|好|当然|可以|没问题|以下|下面|这是|校对|修改|修正|整理|总结|摘要|"
    r"sure|certainly|okay|ok|of course|here is|here's|here are|below|the (?:corrected|proofread|summary))",
    re.IGNORECASE,
)
_PREFACE_TAIL = re.compile(r"[:：]\s*$|以下|如下|下面|below|as follows", re.IGNORECASE)
# A last line adding remarks: a note, an offer of more help.
_CLOSING_WORDS = re.compile(
    r"^[（(]?(?:注|备注|说明|希望|如有|如果您|如需|以上|note|notes|hope|if you|let me know)", re.IGNORECASE
)
_MAX_REMARK_CHARS = 120  # a longer line is content, whatever its first word


def strip_reasoning(text: str) -> str:
    """`text` without `<think>` reasoning: closed blocks, a close-only block, an unclosed one."""
    text = _CLOSED_BLOCK.sub("", text)
    closes = list(_CLOSE_TAG.finditer(text))
    if closes:  # the template opened the block: everything before the last close is thinking
        text = text[closes[-1].end() :]
    opened = _OPEN_TAG.search(text)
    if opened:  # never closed: the answer was cut while still thinking
        text = text[: opened.start()]
    return text.strip()


def strip_wrappers(answer: str, source: str) -> str:
    """`answer` without a preface line, closing remarks, a code fence or quotes around it
    that `source` does not have."""
    text = answer.strip()
    for _ in range(2):  # a preface may stand outside a fence, or inside it
        text = _drop_preface(text, source)
        text = _drop_closing(text, source)
        text = _unfence(text, source)
        text = _unquote(text, source)
    return text


def clean_answer(answer: str, source: str) -> str:
    """The answer proper: reasoning and wrappers taken off."""
    return strip_wrappers(strip_reasoning(answer), source)


def _in_source(line: str, source: str) -> bool:
    squeezed = "".join(line.split())
    return bool(squeezed) and squeezed in "".join(source.split())


def _drop_preface(text: str, source: str) -> str:
    first, newline, rest = text.partition("\n")
    line = first.strip().lstrip("#*> ").strip()
    if not newline or not line or len(line) > _MAX_REMARK_CHARS or _in_source(line, source):
        return text
    if _PREFACE_WORDS.search(line) and _PREFACE_TAIL.search(line):
        return rest.strip()
    return text


def _drop_closing(text: str, source: str) -> str:
    rest, newline, last = text.rpartition("\n")
    line = last.strip().lstrip("*> ").strip()
    if not newline or not line or len(line) > _MAX_REMARK_CHARS or _in_source(line, source):
        return text
    if _CLOSING_WORDS.search(line):
        return rest.strip()
    return text


def _unfence(text: str, source: str) -> str:
    match = _FENCED.match(text)
    if match is None or source.lstrip().startswith("```"):
        return text
    return match.group(1).strip()


def _unquote(text: str, source: str) -> str:
    if len(text) < 2 or _QUOTES.get(text[0]) != text[-1]:
        return text
    stripped = source.strip()
    if stripped[:1] == text[0] and stripped[-1:] == text[-1]:
        return text
    inner = text[1:-1]
    # Only quotes around the whole answer: an inner pair means "a" and "b" were quoted.
    return inner.strip() if text[0] not in inner and text[-1] not in inner else text
