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
        description="Preferred subtitle languages, best first (comma-separated in env).",
    )
    auto_captions: bool = Field(True, description="Use automatic captions when no manual ones exist.")
    max_duration_s: float = Field(4 * 3600, description="Longest video accepted, in seconds.")
    max_download_bytes: int = Field(1024**3, description="Largest media file downloaded, in bytes.")
    socket_timeout_s: float = Field(30, description="Network timeout for one read during resolution/download.")

    @field_validator("subtitle_languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        return split_csv(value)
