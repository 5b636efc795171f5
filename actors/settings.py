"""The settings the work reads: each stage's section (beside its code) and the few that
several stages share, composed into `PipelineSettings`. `serve_app.settings.Settings`
adds the HTTP edge's own settings and reads them all from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from actors.delivery.settings import NoticeSettings, SenderSettings, WeComSettings
from actors.llm.settings import LLMSettings
from actors.media.settings import MediaSettings
from actors.speech.settings import AsrSettings


class RecoverySettings(BaseModel):
    """How soon a task held by a dead Transcriber (crash, lost node) is dispatched again."""

    lease_s: float = Field(60, description="A Transcriber's hold on its task, renewed every third of it.")
    redispatch_after_s: float = Field(
        120, description="A waiting task nobody holds and nobody was handed for this long is dispatched again."
    )
    sweep_interval_s: float = Field(15, description="How often the Gateway looks for such tasks.")


class PipelineSettings(BaseModel):
    """Everything the deployments and their work modules read."""

    data_dir: Path = Field(Path("~/.local/share/vidscribe"), description="SQLite store, model and temp media.")
    allow_private_urls: bool = Field(False, description="Allow loopback/private hosts; for local testing only.")
    public_url: str = Field("http://127.0.0.1:8000", description="Base of view links sent to the group.")

    media: MediaSettings = Field(default_factory=MediaSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    sender: SenderSettings = Field(default_factory=SenderSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()
