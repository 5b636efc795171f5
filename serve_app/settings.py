"""One settings model: environment variables `VIDSCRIBE_*`, `__` for nesting.

The work's sections come from `actors.settings.PipelineSettings`; the fields here are the
HTTP edge's own (tokens, clients, request limits)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from actors.settings import PipelineSettings
from actors.util.config import split_csv


class ClientSettings(BaseModel):
    """One team using the service: its token, its WeCom group, its own request rate."""

    token: SecretStr = Field(description="Bearer token of this client.")
    webhook_url: SecretStr | None = Field(None, description="Its group robot webhook (default: wecom.webhook_url).")
    rate_limit_per_minute: int | None = Field(None, description="Its submissions per minute (default: global).")


class Settings(PipelineSettings, BaseSettings):
    """All of vidscribe's configuration."""

    model_config = SettingsConfigDict(env_prefix="VIDSCRIBE_", env_nested_delimiter="__", extra="ignore")

    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Bearer tokens accepted by /api (comma-separated)."
    )
    max_url_length: int = Field(2048, description="Longest URL accepted.")
    max_body_bytes: int = Field(16 * 1024, description="Largest request body accepted.")
    max_queued_tasks: int = Field(200, description="Unfinished tasks beyond which submissions get 429.")
    rate_limit_per_minute: int = Field(
        120, description="Submissions per bearer token per minute, per Gateway replica (429 beyond); 0 disables."
    )
    clients: dict[str, ClientSettings] = Field(
        default_factory=dict,
        description="Named clients, e.g. VIDSCRIBE_CLIENTS__TEAMA__TOKEN / __WEBHOOK_URL (names are lower-cased).",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        return split_csv(value)
