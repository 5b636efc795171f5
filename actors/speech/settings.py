"""Settings of the speech stage: faster-whisper."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
