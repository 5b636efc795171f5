"""Settings of the LLM stage: the OpenAI-compatible endpoint, proofreading and summaries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from actors.net.proxies import HttpxProxy


class LLMSettings(BaseModel):
    """OpenAI-compatible LLM for proofreading and summaries."""

    # A rejected proxy, key or webhook may hold a secret: errors say what is wrong, never the value.
    model_config = ConfigDict(hide_input_in_errors=True)

    base_url: str | None = Field(
        None,
        description="Base URL of any OpenAI-compatible endpoint (OpenAI, DeepSeek, DashScope, Ollama, vLLM, "
        "llama.cpp); unset: no proofreading or summary, the raw transcript is delivered.",
    )
    api_key: SecretStr | None = Field(
        None, description="API key for the LLM endpoint; unset for servers that need none."
    )
    proofread_model: str = Field("gpt-4o-mini", description="Model name used to proofread.")
    summary_model: str = Field("gpt-4o-mini", description="Model name used to summarise.")
    timeout_s: float = Field(
        120,
        gt=0,
        description="Deadline of one LLM request, in seconds: the whole answer, streamed or not, must arrive "
        "within it (time spent waiting for a free slot does not count).",
    )
    video_timeout_s: float = Field(
        1800,
        gt=0,
        description="Deadline of one video's LLM work (proofread and summary, retries included), in seconds; "
        "chunks not proofread by then keep their original text, a summary not done by then is left out.",
    )
    max_retries: int = Field(
        8,
        ge=0,
        description="Retries of one LLM request on HTTP 408/409/429/5xx, timeouts and connection errors; 0: one try.",
    )
    retry_base_s: float = Field(
        2.0,
        ge=0,
        description="Seconds before the first retry; doubles on each retry up to retry_max_s (a longer "
        "Retry-After from the server wins, up to retry_max_s too).",
    )
    retry_max_s: float = Field(
        120,
        ge=0,
        description="Longest wait before one retry, in seconds: with the defaults the retries of one request "
        "span about six minutes, enough for a server restart or a per-minute quota.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        description="LLM requests in flight at once, across all videos (one server, one queue); HTTP 429s and "
        "timeouts lower it for a while. 1 suits servers that answer one request at a time (llama.cpp, Ollama "
        "on CPU).",
    )
    concurrency_recover_s: float = Field(
        60,
        ge=0,
        description="Seconds without a 429 or timeout before a lowered concurrency goes up again by one.",
    )
    stream: bool = Field(
        False,
        description="Stream answers (server-sent events), so a gateway that cuts idle connections sees tokens; "
        "timeout_s still bounds the whole answer.",
    )
    context_tokens: int | None = Field(
        None,
        ge=256,
        description="Context window of the models, in tokens; unset: read from the server where it says "
        "(vLLM, llama.cpp) or learnt from its first context-length error. Set it for Ollama, which silently "
        "cuts prompts to its num_ctx (2048-4096 by default).",
    )
    tokens_per_char: float = Field(
        1.5,
        gt=0,
        description="Tokens per Chinese/Japanese/Korean character in the models' tokenizer (about 0.6-1 for "
        "GPT-4o, Qwen and DeepSeek, 1.85 for SmolLM2); sizes max_tokens and what fits the context. Other "
        "text counts about 0.4 tokens a character.",
    )
    chunk_chars: int = Field(
        3000,
        ge=50,
        description="Largest proofread chunk, in characters: longer transcripts are cut at paragraph, then "
        "sentence boundaries and each chunk is one LLM call (smaller when the context is smaller).",
    )
    ratio_min: float = Field(
        0.7,
        description="Smallest plausible proofread/original length ratio of a chunk; outside "
        "ratio_min..ratio_max the chunk keeps its original text, with a warning.",
    )
    ratio_max: float = Field(
        1.5,
        description="Largest plausible proofread/original length ratio of a chunk; also sizes max_tokens.",
    )
    min_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Smallest share of wording a proofread chunk must keep from its original (Dice overlap of "
        "character pairs and words); below it the answer is not a proofread and the chunk keeps its original.",
    )
    summary_min_chars: int = Field(200, description="Transcripts shorter than this many characters get no summary.")
    summary_max_tokens: int = Field(
        1500,
        ge=64,
        description="Output budget of one summary request, in tokens; a text whose summary needs more is "
        "summarised in parts, then the parts.",
    )
    max_input_chars: int = Field(
        200_000,
        description="Longest transcript sent to the LLM, in characters; a longer one is delivered without "
        "proofreading or summary, with a note saying why.",
    )
    proxy: HttpxProxy = Field(
        None,
        description="Proxy for the LLM endpoint (http://, https://, socks5:// with the socksio package); "
        "unset: direct (or the HTTP(S)_PROXY environment).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)
