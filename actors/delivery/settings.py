"""Settings of the delivery stage: the WeCom robot, status notices, the LLMSender's mailbox."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from actors.net.proxies import HttpxProxy
from actors.util.config import split_csv


class WeComSettings(BaseModel):
    """WeCom group robot delivery."""

    # A rejected proxy, key or webhook may hold a secret: errors say what is wrong, never the value.
    model_config = ConfigDict(hide_input_in_errors=True)

    webhook_url: SecretStr | None = Field(
        None,
        description="The default group's robot webhook, .../cgi-bin/webhook/send?key=... (the key is the secret); "
        "unset: results stay in the store, nothing is delivered.",
    )
    msgtype: Literal["markdown", "markdown_v2", "text"] = Field(
        "markdown",
        description="Message type of content messages: markdown (4096 bytes each; bold, no lists), markdown_v2 "
        "(4096 bytes; lists, tables; older WeCom clients show it as plain text) or text (2048 bytes; the only "
        "type personal-WeChat members of a group can read).",
    )
    rate_per_window: int = Field(
        20,
        description="Requests to one robot (messages, file uploads, retries) within any window_s; "
        "WeCom allows 20 a minute.",
    )
    window_s: float = Field(
        60,
        description="Length of the rate window in seconds; also the wait after errcode 45009 (rate limited) "
        "and the longest backoff.",
    )
    timeout_s: float = Field(15, description="HTTP timeout of one request to WeCom, in seconds.")
    max_attempts: int = Field(
        8,
        description="Attempts per request to WeCom on errcode -1 (busy), 45009 or 45033, HTTP 429/5xx and "
        "network errors; after the last, the group's lane pauses and later tries that message again.",
    )
    park_after_s: float = Field(
        1800,
        description="Seconds a block may keep failing with such transient errors before it is parked: its task "
        "shows a failed delivery and the group's next block goes on; POST /api/task/{id}/redeliver sends it again.",
    )
    retry_base_s: float = Field(
        1.0, description="Seconds to wait before the first retry; doubles on each one, capped at window_s."
    )
    attach_after_messages: int = Field(
        6,
        ge=0,
        description="A proofread (or raw) text needing more messages than this goes as the summary plus one .txt "
        "file message (upload_media); 0 never attaches.",
    )
    allowed_webhook_hosts: Annotated[list[str], NoDecode] = Field(
        default=["qyapi.weixin.qq.com"],
        description="Hosts a request's own options.webhook_url may point at: exact names or *.suffix.",
    )
    allow_private_webhooks: bool = Field(
        False,
        description="Let a request's own options.webhook_url point at loopback/private hosts (testing only); "
        "webhooks the operator configures are always used as given.",
    )
    proxy: HttpxProxy = Field(
        None,
        description="Proxy for the webhooks the operator configures (http://, https://, socks5:// with the "
        "socksio package); a request's own options.webhook_url always goes direct, SSRF-checked. Unset: direct.",
    )

    @field_validator("allowed_webhook_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return split_csv(value)


class NoticeSettings(BaseModel):
    """Status notices (【状态】) sent to the group, outside any video's block."""

    accepted: bool = Field(False, description="Send a notice with the view page's link when a link is accepted.")
    failed: bool = Field(True, description="Send a notice with the reason when a task fails.")
    view_links: bool = Field(
        True, description="End a video's last message (the summary, else the text) with a link to its view page."
    )


class SenderSettings(BaseModel):
    """LLMSender behaviour."""

    generation_concurrency: int = Field(
        4, description="Videos proofread/summarised at once; a freed slot goes to the most urgent waiting video."
    )
