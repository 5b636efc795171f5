"""Settings of the speech stage: faster-whisper."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class AsrSettings(BaseModel):
    """Speech recognition with faster-whisper."""

    model: str = Field(
        "base",
        description="base = the bundled offline model; or a faster-whisper model name (small, medium, "
        "large-v3-turbo, large-v3, ... or a Hugging Face id) fetched once with `vidscribe models pull NAME`, "
        "never while serving; or a model folder.",
    )
    models_dir: Path | None = Field(
        None,
        description="Another folder of pulled models, looked in after <data_dir>/models (the image bakes "
        "models into /opt/vidscribe/models).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where ASR runs; auto: CUDA when a GPU is visible, else CPU."
    )
    compute_type: str = Field(
        "auto",
        description="CTranslate2 compute type (int8, float16, int8_float16, ...); auto: float16 on CUDA, int8 on CPU.",
    )
    cpu_threads: int = Field(
        0,
        description="CPU threads of one transcription; 0 follows OMP_NUM_THREADS "
        "(Ray sets it to the replica's num_cpus).",
    )
    beam_size: int = Field(5, description="Beam width of Whisper decoding; 1 is greedy (faster).")
    batch_size: int = Field(
        8,
        description="Speech segments decoded together (batched inference) in audio over 30 s with vad on; "
        "1 disables batching.",
    )
    batch_chunk_s: int = Field(
        15,
        ge=5,
        le=30,
        description="Longest stretch of speech batched decoding hands Whisper at once (VAD joins speech up to "
        "this length); at 30 it dropped whole sentences of Mandarin (CER 30.3 % vs 17.8 % at 15, bench.asr_accuracy).",
    )
    vad: bool = Field(True, description="Skip silence with Silero VAD; batching needs it.")
    language: str | None = Field(
        None, description="Force a spoken language (e.g. zh); unset detects it. A request's options.language wins."
    )
    page_prompt: Literal["off", "initial_prompt", "hotwords"] = Field(
        "initial_prompt",
        description="How the page's title, tags and description (and, for Chinese, a Simplified, punctuated "
        "style sentence) reach Whisper: as its initial prompt, as hotwords (kept for every 30 s window), or off.",
    )
    language_confidence: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="When Whisper is less sure than this of the language of the first 30 s, the page's language "
        "(the platform's word, else the title's script) is used instead; 0 always trusts Whisper.",
    )
    condition_on_previous_text: bool = Field(
        False,
        description="Feed each 30 s window the text of the one before (more consistent wording, but one "
        "misheard window can start a repetition loop on long audio).",
    )
    loop_guard: bool = Field(
        True,
        description="Find phrases repeated beyond reason in the output, decode their stretch again with "
        "safer settings, and warn on the task if the repeats persist (they are then cut to one).",
    )
    simplified_chinese: bool = Field(
        True, description="Convert Chinese (zh, yue) speech recognised in Traditional characters to Simplified."
    )
