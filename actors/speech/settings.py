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
    vad: bool = Field(True, description="Skip silence with Silero VAD; batching needs it.")
    language: str | None = Field(
        None, description="Force a spoken language (e.g. zh); unset detects it. A request's options.language wins."
    )
    simplified_chinese: bool = Field(
        True, description="Convert Chinese (zh, yue) speech recognised in Traditional characters to Simplified."
    )
