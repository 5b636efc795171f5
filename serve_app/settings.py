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

    token: SecretStr = Field(description="Bearer token of this client; its videos go to its own group.")
    webhook_url: SecretStr | None = Field(
        None, description="Robot webhook of this client's group; unset: the default group (wecom.webhook_url)."
    )
    rate_limit_per_minute: int | None = Field(
        None, description="Submissions per minute with this client's token; unset or 0: rate_limit_per_minute."
    )


class Settings(PipelineSettings, BaseSettings):
    """All of vidscribe's configuration."""

    # hide_input_in_errors: a rejected value may be a secret (a proxy URL with its password).
    model_config = SettingsConfigDict(
        env_prefix="VIDSCRIBE_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted by /api; unset: vidscribe serve generates one in <data_dir>/api_token.",
    )
    max_url_length: int = Field(2048, description="Longest video link accepted, in characters (400 beyond).")
    max_body_bytes: int = Field(16 * 1024, description="Largest request body accepted, in bytes (413 beyond).")
    max_queued_tasks: int = Field(
        200, description="Unfinished tasks beyond which submissions get 429 queue_full, with Retry-After."
    )
    rate_limit_per_minute: int = Field(
        120, description="Submissions per bearer token per minute, per Gateway replica (429 beyond); 0 disables."
    )
    clients: dict[str, ClientSettings] = Field(
        default_factory=dict,
        description="Named clients (teams), each with its own token, group and rate; <NAME> is any name "
        "(read lower-cased), e.g. VIDSCRIBE_CLIENTS__TEAMA__TOKEN.",
    )

    def operator_webhooks(self) -> frozenset[str]:
        """The default group's webhook and each client's."""
        own = (client.webhook_url for client in self.clients.values())
        return super().operator_webhooks() | {webhook.get_secret_value() for webhook in own if webhook is not None}

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        return split_csv(value)
