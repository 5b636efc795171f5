"""One settings model: environment variables `VIDSCRIBE_*`, `__` for nesting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
        return _split_csv(value)


class AsrSettings(BaseModel):
    """Speech recognition with faster-whisper."""

    model: str = Field("base", description="'base' = the bundled offline model; or any faster-whisper name/path.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    compute_type: str = Field("auto", description="auto: float16 on CUDA, int8 on CPU.")
    cpu_threads: int = Field(0, description="0 follows OMP_NUM_THREADS (Ray sets it to the replica's num_cpus).")
    beam_size: int = Field(5, description="Beam size for decoding.")
    batch_size: int = Field(8, description="Batched inference batch size; 1 disables batching.")
    vad: bool = Field(True, description="Skip silence with Silero VAD.")
    language: str | None = Field(None, description="Force a language (e.g. 'zh'); None detects it.")
    simplified_chinese: bool = Field(True, description="Convert Chinese output to Simplified characters.")


class LLMSettings(BaseModel):
    """OpenAI-compatible LLM for proofreading and summaries."""

    base_url: str | None = Field(None, description="OpenAI-compatible base URL; unset disables the LLM.")
    api_key: SecretStr | None = Field(None, description="API key for the LLM endpoint.")
    proofread_model: str = Field("gpt-4o-mini", description="Model used to proofread.")
    summary_model: str = Field("gpt-4o-mini", description="Model used to summarise.")
    timeout_s: float = Field(120, description="Timeout of one LLM call.")
    max_retries: int = Field(3, description="Retries on 429 / 5xx / timeouts, with backoff.")
    retry_base_s: float = Field(1.0, description="First backoff delay; doubles on each retry.")
    chunk_chars: int = Field(3000, description="Proofread chunk size in characters.")
    concurrency: int = Field(4, description="Chunks proofread at once for one video.")
    ratio_min: float = Field(0.7, description="Smallest plausible output/input length ratio.")
    ratio_max: float = Field(1.5, description="Largest plausible output/input length ratio.")
    summary_min_chars: int = Field(200, description="Skip the summary for shorter transcripts.")
    max_input_chars: int = Field(200_000, description="Longest transcript sent to the LLM.")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class WeComSettings(BaseModel):
    """WeCom group robot delivery."""

    webhook_url: SecretStr | None = Field(None, description="Group robot webhook URL (holds the key).")
    msgtype: Literal["markdown", "text"] = Field("markdown", description="Message type used for content.")
    rate_per_window: int = Field(20, description="Messages allowed per window per robot (WeCom: 20/min).")
    window_s: float = Field(60, description="Length of the rate window in seconds.")
    timeout_s: float = Field(15, description="HTTP timeout of one send.")
    max_attempts: int = Field(8, description="Attempts per message on 45009 / -1 / network errors.")
    retry_base_s: float = Field(1.0, description="First backoff delay on busy answers.")
    attach_after_messages: int = Field(
        6, ge=0, description="A text needing more messages goes as summary + one .txt file message; 0 never attaches."
    )
    allowed_webhook_hosts: Annotated[list[str], NoDecode] = Field(
        default=["qyapi.weixin.qq.com"],
        description="Hosts a per-request webhook_url may point at (exact or *.suffix; comma-separated in env).",
    )
    allow_private_webhooks: bool = Field(False, description="Allow webhooks on loopback/private hosts; testing only.")

    @field_validator("allowed_webhook_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return _split_csv(value)


class ClientSettings(BaseModel):
    """One team using the service: its token, its WeCom group, its own request rate."""

    token: SecretStr = Field(description="Bearer token of this client.")
    webhook_url: SecretStr | None = Field(None, description="Its group robot webhook (default: wecom.webhook_url).")
    rate_limit_per_minute: int | None = Field(None, description="Its submissions per minute (default: global).")


class NoticeSettings(BaseModel):
    """Status notices (【状态】) sent to the group, outside any video's block."""

    accepted: bool = Field(False, description="Announce each accepted link with its view page.")
    failed: bool = Field(True, description="Announce each failed task with the reason.")
    view_links: bool = Field(True, description="End the summary with a link to the task's view page.")


class RecoverySettings(BaseModel):
    """How soon a task held by a dead Transcriber (crash, lost node) is dispatched again."""

    lease_s: float = Field(60, description="A Transcriber's hold on its task, renewed every third of it.")
    redispatch_after_s: float = Field(
        120, description="A waiting task nobody holds and nobody was handed for this long is dispatched again."
    )
    sweep_interval_s: float = Field(15, description="How often the Gateway looks for such tasks.")


class SenderSettings(BaseModel):
    """LLMSender behaviour."""

    generation_concurrency: int = Field(4, description="Videos proofread/summarised at once.")


class Settings(BaseSettings):
    """All of vidscribe's configuration."""

    model_config = SettingsConfigDict(env_prefix="VIDSCRIBE_", env_nested_delimiter="__", extra="ignore")

    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Bearer tokens accepted by /api (comma-separated)."
    )
    data_dir: Path = Field(Path("~/.local/share/vidscribe"), description="SQLite store, model and temp media.")
    allow_private_urls: bool = Field(False, description="Allow loopback/private hosts; for local testing only.")
    public_url: str = Field("http://127.0.0.1:8000", description="Base of view links sent to the group.")
    max_url_length: int = Field(2048, description="Longest URL accepted.")
    max_body_bytes: int = Field(16 * 1024, description="Largest request body accepted.")
    max_queued_tasks: int = Field(200, description="Unfinished tasks beyond which submissions get 429.")
    rate_limit_per_minute: int = Field(
        120, description="Submissions per bearer token per minute, per Gateway replica (429 beyond); 0 disables."
    )

    media: MediaSettings = Field(default_factory=MediaSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    sender: SenderSettings = Field(default_factory=SenderSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)
    clients: dict[str, ClientSettings] = Field(
        default_factory=dict,
        description="Named clients, e.g. VIDSCRIBE_CLIENTS__TEAMA__TOKEN / __WEBHOOK_URL (names are lower-cased).",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
