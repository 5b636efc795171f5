"""Settings of the LLM stage: the OpenAI-compatible endpoint, proofreading and summaries."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class LLMSettings(BaseModel):
    """OpenAI-compatible LLM for proofreading and summaries."""

    base_url: str | None = Field(
        None,
        description="Base URL of any OpenAI-compatible endpoint (OpenAI, DeepSeek, DashScope, Ollama, vLLM); "
        "unset: no proofreading or summary, the raw transcript is delivered.",
    )
    api_key: SecretStr | None = Field(
        None, description="API key for the LLM endpoint; unset for servers that need none."
    )
    proofread_model: str = Field("gpt-4o-mini", description="Model name used to proofread.")
    summary_model: str = Field("gpt-4o-mini", description="Model name used to summarise.")
    timeout_s: float = Field(120, description="Timeout of one LLM call, in seconds.")
    max_retries: int = Field(
        3, description="Retries of one LLM call on HTTP 408/409/429/5xx, timeouts and connection errors; 0: one try."
    )
    retry_base_s: float = Field(
        1.0, description="Seconds before the first retry; doubles on each retry (a longer Retry-After wins)."
    )
    chunk_chars: int = Field(
        3000,
        description="Largest proofread chunk, in characters: longer transcripts are cut at paragraph, then "
        "sentence boundaries and each chunk is one LLM call.",
    )
    concurrency: int = Field(4, description="Chunks of one video proofread at once.")
    ratio_min: float = Field(
        0.7,
        description="Smallest plausible proofread/original length ratio of a chunk; outside "
        "ratio_min..ratio_max the chunk keeps its original text, with a warning.",
    )
    ratio_max: float = Field(1.5, description="Largest plausible proofread/original length ratio of a chunk.")
    summary_min_chars: int = Field(200, description="Transcripts shorter than this many characters get no summary.")
    max_input_chars: int = Field(
        200_000,
        description="Longest transcript sent to the LLM, in characters; a longer one is delivered without "
        "proofreading or summary, with a note saying why.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)
