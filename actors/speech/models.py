"""Which Whisper model a Transcriber loads: the bundled base, a folder, or one pulled once.

A model name other than the bundled `base` is never downloaded while serving (a worker
would stall on the download, or fail without the internet): `vidscribe models pull NAME`
fetches it once, through faster-whisper from Hugging Face or from a folder copied by hand
onto an offline machine, into `<data_dir>/models/faster-whisper-NAME` (or another models
folder), checks that it loads and then marks it complete. A name not found there fails
with the command that fixes it. Plain module, no Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from faster_whisper import WhisperModel, available_models, download_model

from actors.domain.errors import TranscriptionError
from actors.speech.bundled_model import DEFAULT_MODEL_NAME, ensure_default_model
from actors.speech.settings import AsrSettings

PULLED_PREFIX = "faster-whisper-"
COMPLETE = ".pulled.json"  # written last: a folder without it is an interrupted pull
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")  # what every CTranslate2 Whisper folder holds


def model_roots(settings: AsrSettings, data_dir: Path) -> list[Path]:
    """Where pulled models are looked for: the data dir's, then `asr.models_dir` (an image's)."""
    roots = [data_dir / "models"]
    if settings.models_dir is not None:
        roots.append(settings.models_dir)
    return roots


def pulled_folder(root: Path, name: str) -> Path:
    """The folder of model `name` under `root` (a Hugging Face id's "/" becomes "--")."""
    return root / f"{PULLED_PREFIX}{name.replace('/', '--')}"


def find_pulled(name: str, roots: list[Path]) -> Path | None:
    """The complete pulled folder of `name`, or None."""
    for root in roots:
        folder = pulled_folder(root, name)
        if (folder / COMPLETE).is_file():
            return folder
    return None


def resolve_model(settings: AsrSettings, data_dir: Path) -> str:
    """What WhisperModel loads for `settings.model`: the bundled folder for "base", a folder
    as given, else the folder it was pulled into. TranscriptionError when it is not here."""
    name = settings.model
    if name == DEFAULT_MODEL_NAME:
        return str(ensure_default_model(data_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:  # a folder, not a name
        raise TranscriptionError(f"speech model folder {name} does not exist")
    pulled = find_pulled(name, model_roots(settings, data_dir))
    if pulled is None:
        raise TranscriptionError(
            f"speech model {name!r} is not on this machine (models are never downloaded while serving); "
            f"run `vidscribe models pull {name}`, or set VIDSCRIBE_ASR__MODEL=base for the bundled one"
        )
    return str(pulled)


def pull(name: str, root: Path, *, source: Path | None = None) -> Path:
    """Fetch model `name` into `root` (from `source`, a model folder, when given), check that
    it loads, mark it complete; returns its folder. ValueError for an unknown name, OSError
    or whatever the download raises for a failed fetch (nothing half-written is left)."""
    if not _is_hub_id(name) and name not in available_models():
        raise ValueError(f"unknown model {name!r}: one of {', '.join(available_models())}, or a Hugging Face id")
    target = pulled_folder(root, name)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    try:
        if source is not None:
            _copy_model(source, staging)
        else:
            download_model(name, output_dir=str(staging))
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's download notes
        _check_loads(staging)
        files = {p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()}
        note = {"model": name, "from": str(source) if source else "huggingface", "files": files, "at": time.time()}
        (staging / COMPLETE).write_text(json.dumps(note, indent=1), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def pulled_models(roots: list[Path]) -> Iterator[tuple[str, Path, int]]:
    """(name, folder, bytes) of each complete pulled model under `roots`."""
    for root in roots:
        for marker in sorted(root.glob(f"{PULLED_PREFIX}*/{COMPLETE}")):
            note = json.loads(marker.read_text(encoding="utf-8"))
            yield note["model"], marker.parent, sum(note["files"].values())


def _is_hub_id(name: str) -> bool:
    owner, slash, repo = name.partition("/")
    return bool(slash and owner and repo and "/" not in repo and not name.startswith((".", "~")))


def _copy_model(source: Path, staging: Path) -> None:
    missing = [f for f in MODEL_FILES if not (source / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} is not a faster-whisper model folder: no {', '.join(missing)}")
    staging.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file() and not file.name.startswith("."):
            shutil.copy2(file, staging / file.name)


def _check_loads(folder: Path) -> None:
    """Load it once on the CPU: a truncated or foreign download fails here, not in a worker."""
    try:
        WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1)
    except Exception as e:
        raise OSError(f"the model in {folder} does not load: {e}") from e
