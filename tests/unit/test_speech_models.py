"""Speech models other than the bundled base: pulled once with `vidscribe models pull`, never
fetched while serving. The copies come from the session's bundled model folder (no internet)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from actors.domain.errors import TranscriptionError
from actors.speech.models import pulled_folder, resolve_model
from actors.speech.settings import AsrSettings
from serve_app.cli.main import main

# A Hugging Face id, as a user would pull a CTranslate2 Whisper model that is not a faster-whisper size.
MODEL_ID = "local-test/whisper-base-copy"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("VIDSCRIBE_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(data))
    return data


@pytest.fixture
def bundled(asr_data_dir: Path) -> Path:
    return asr_data_dir / "models" / "whisper-base"


def test_a_model_not_pulled_fails_with_the_command_and_is_not_downloaded(data_dir: Path) -> None:
    with pytest.raises(TranscriptionError) as refused:
        resolve_model(AsrSettings(model="large-v3-turbo"), data_dir)
    assert "vidscribe models pull large-v3-turbo" in refused.value.message
    assert not (data_dir / "models").exists()  # nothing fetched, nothing half-written


def test_pulled_once_then_loaded_by_name_and_listed(
    data_dir: Path, bundled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", MODEL_ID, "--from", str(bundled)]) == 0
    folder = pulled_folder(data_dir / "models", MODEL_ID)
    assert f"VIDSCRIBE_ASR__MODEL={MODEL_ID}" in capsys.readouterr().out
    assert resolve_model(AsrSettings(model=MODEL_ID), data_dir) == str(folder)
    assert (folder / "model.bin").stat().st_size == (bundled / "model.bin").stat().st_size

    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    assert f"{MODEL_ID}\t{folder}\t{size / 2**20:.0f} MiB\n" in listed
    assert listed.startswith("base\t(bundled")


def test_a_models_folder_of_the_image_is_looked_in_too(data_dir: Path, bundled: Path, tmp_path: Path) -> None:
    baked = tmp_path / "opt-models"
    assert main(["models", "pull", MODEL_ID, "--from", str(bundled), "--to", str(baked)]) == 0
    with pytest.raises(TranscriptionError):
        resolve_model(AsrSettings(model=MODEL_ID), data_dir)
    found = resolve_model(AsrSettings(model=MODEL_ID, models_dir=baked), data_dir)
    assert found == str(pulled_folder(baked, MODEL_ID))


def test_a_model_that_does_not_load_is_refused_and_nothing_is_left(
    data_dir: Path, bundled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundled, broken)
    with (broken / "model.bin").open("r+b") as model:
        model.truncate(1_000_000)  # an interrupted download
    assert main(["models", "pull", MODEL_ID, "--from", str(broken)]) == 1
    assert "does not load" in capsys.readouterr().err
    assert list((data_dir / "models").iterdir()) == []
    with pytest.raises(TranscriptionError, match="models pull"):
        resolve_model(AsrSettings(model=MODEL_ID), data_dir)


def test_a_folder_that_is_not_a_model_is_refused(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", MODEL_ID, "--from", str(tmp_path)]) == 1
    assert "not a faster-whisper model folder: no model.bin, config.json, tokenizer.json" in capsys.readouterr().err


def test_an_unknown_name_is_a_usage_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "enormous"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'enormous'" in err and "large-v3-turbo" in err


def test_a_model_folder_is_used_as_given_and_a_missing_one_says_so(data_dir: Path, bundled: Path) -> None:
    assert resolve_model(AsrSettings(model=str(bundled)), data_dir) == str(bundled)
    with pytest.raises(TranscriptionError, match="folder /opt/models/nowhere does not exist"):
        resolve_model(AsrSettings(model="/opt/models/nowhere"), data_dir)


def test_the_doctor_says_which_command_fetches_a_missing_model(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDSCRIBE_ASR__MODEL", "small")
    assert main(["doctor"]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if "speech model" in line)
    assert line.startswith("FAIL") and "vidscribe models pull small" in line
