"""Settings of the media stage: link resolution, subtitles, download."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from actors.util.config import split_csv


class MediaSettings(BaseModel):
    """Link resolution, subtitles and download."""

    subtitle_languages: Annotated[list[str], NoDecode] = Field(
        default=["zh-Hans", "zh", "zh-CN", "zh-Hant", "zh-TW", "en"],
        description="Subtitle languages to use instead of ASR, best first (yt-dlp language codes).",
    )
    auto_captions: bool = Field(
        True, description="Also use the platform's automatic (AI) captions when no manual subtitles match."
    )
    max_duration_s: float = Field(
        4 * 3600, description="Longest video accepted, in seconds; a longer one fails with video_too_long."
    )
    max_download_bytes: int = Field(
        1024**3,
        description="Largest media file downloaded, in bytes, checked before and during the download "
        "(file_too_large beyond).",
    )
    socket_timeout_s: float = Field(
        30, description="yt-dlp's network timeout, in seconds, for one read during resolution and download."
    )

    @field_validator("subtitle_languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        return split_csv(value)
