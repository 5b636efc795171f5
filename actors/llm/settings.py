"""Settings of the LLM stage: the OpenAI-compatible endpoint, proofreading and summaries."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


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
