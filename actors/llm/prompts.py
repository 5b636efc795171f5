"""The instructions sent as system messages, with the video's context; the user message is only
transcript text."""

from __future__ import annotations

from actors.domain.video import VideoInfo

PROOFREAD_INSTRUCTIONS = """\
You proofread an automatic speech-recognition transcript of a video.
- Fix recognition errors: wrong homophones, misheard words, names and terms the context makes clear.
- Fix punctuation and split the text into paragraphs (blank line between paragraphs).
- Keep the speaker's wording, order and language. Do not translate, summarise, shorten, explain \
or add anything.
- The text may be one part of a longer transcript and start or end mid-thought; leave it so.
- Output only the corrected text: no preface, no notes, no Markdown."""

SUMMARY_INSTRUCTIONS = """\
You write a summary of a video's transcript for readers who have not watched it.
- Write in the transcript's language (a Chinese transcript gets a Chinese summary).
- Output a Markdown bullet list: "- " items for the main points in the order they come, \
nested "  - " items for important details, and a last item with the conclusion if there is one.
- Only what the transcript says; no opinions of your own, no headings, no preface."""

PART_SUMMARY_INSTRUCTIONS = """\
You summarise one part of a long video transcript; the parts' summaries are combined later.
- Write in the transcript's language (a Chinese transcript gets a Chinese summary).
- Output a Markdown bullet list of the main points of this part, in the order they come, briefly.
- Only what the text says; no opinions of your own, no headings, no preface."""

COMBINE_INSTRUCTIONS = """\
You combine the summaries of consecutive parts of one video's transcript into one summary \
for readers who have not watched it.
- Write in the summaries' language.
- Output a Markdown bullet list: "- " items for the main points in the order they come, \
nested "  - " items for important details, and a last item with the conclusion if there is one.
- Merge repeated points; only what the summaries say; no headings, no preface."""


# The page's description as context: enough to name people and terms, never a second transcript.
CONTEXT_DESCRIPTION_CHARS = 500


def system_message(instructions: str, video: VideoInfo) -> str:
    """Instructions followed by the video's context: what its page says about it, so names
    and terms the speech recognition got wrong can be put right. Never in the user message,
    which is only transcript text."""
    context = [f"Title: {video.title or '(unknown)'}"]
    if video.author:
        context.append(f"Author: {video.author}")
    if video.tags:
        context.append(f"Tags: {', '.join(video.tags)}")
    description = " ".join(video.description.split())
    if description:
        if len(description) > CONTEXT_DESCRIPTION_CHARS:
            description = description[:CONTEXT_DESCRIPTION_CHARS] + "…"
        context.append(f"Description: {description}")
    return f"{instructions}\n\nContext about the video (do not add it to your output):\n" + "\n".join(context)
