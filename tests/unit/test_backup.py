"""`vidscribe backup` while the store is written, `vidscribe restore` only while it is not."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from actors.domain.task import TaskOptions, TaskStatus
from actors.storage.backup import BadBackup, backup, backup_target, prune_backups, restore, verify
from actors.storage.filelock import StoreInUse, hold_exclusive, hold_shared
from actors.storage.schema import SCHEMA_VERSION
from actors.storage.store import STORE_FILE, Store
from serve_app.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "store_schema1.db"
K8S = ROOT / "k8s"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(path))
    return path


def task_ids(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {task_id for (task_id,) in db.execute("SELECT task_id FROM tasks")}


def test_a_backup_under_writes_restores_to_a_store_whose_every_task_reads_back(data_dir: Path) -> None:
    store_path = data_dir / STORE_FILE
    store = Store(store_path)
    committed: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    enough = threading.Event()

    def write() -> None:  # the service: new tasks, and progress on each
        try:
            i = 0
            while not stop.is_set():
                task, _ = store.create_task(f"https://v.example/{i}", TaskOptions())
                store.update_task(task.task_id, status=TaskStatus.RESOLVING, progress=0.5)
                committed.append(task.task_id)
                i += 1
                if i == 50:
                    enough.set()
        except BaseException as error:
            errors.append(error)
            enough.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert enough.wait(30)
        before = set(committed)
        info = backup(store_path, data_dir.parent / "backups" / "copy.db")
        during = len(committed)
        stop.set()
        writer.join(30)
    finally:
        stop.set()
        store.close()
    assert errors == []
    assert len(committed) >= during  # the writer kept going while the copy was made

    copied = task_ids(info.path)
    assert before <= copied <= set(committed)  # every commit up to the copy, nothing made up
    assert info.tasks == len(copied) and info.schema == SCHEMA_VERSION
    assert not info.path.with_name("copy.db-wal").exists()  # one self-contained file
    with closing(sqlite3.connect(info.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    restored, aside = restore(info.path, store_path)
    assert restored.tasks == len(copied)
    assert aside is not None and task_ids(aside) == set(committed)  # the replaced store is kept
    with Store(store_path) as reopened:
        for task_id in copied:
            task = reopened.get_task(task_id)
            assert task is not None and task.url.startswith("https://v.example/")
            if task_id in before:  # both its commits preceded the copy
                assert (task.status, task.progress) == (TaskStatus.RESOLVING, 0.5)
            else:  # the copy may fall between a task's two commits, never inside one
                assert (task.status, task.progress) in ((TaskStatus.QUEUED, 0.0), (TaskStatus.RESOLVING, 0.5))
        assert {t.task_id for t in reopened.list_tasks(limit=100_000)} == copied


def test_restore_refuses_while_the_store_is_open(data_dir: Path, tmp_path: Path) -> None:
    store_path = data_dir / STORE_FILE
    with Store(store_path) as store:
        store.create_task("https://v.example/1", TaskOptions())
        copy = backup(store_path, tmp_path / "copy.db").path
        store.create_task("https://v.example/2", TaskOptions())
        with pytest.raises(StoreInUse, match="Stop the service first"):
            restore(copy, store_path)
        assert main(["restore", str(copy)]) == 1
        assert store.count_unfinished() == 2  # untouched
    assert not store_path.with_name(STORE_FILE + ".restoring").exists()


def test_the_cli_says_why_restore_refused(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(data_dir / STORE_FILE):
        assert main(["backup", str(tmp_path)]) == 0
        (copy,) = tmp_path.glob("vidscribe-*.db")
        assert main(["restore", str(copy)]) == 1
    assert "is in use" in capsys.readouterr().err
    assert main(["restore", str(copy)]) == 0
    assert "restored" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["newer", "garbage", "not_vidscribe", "missing"])
def test_restore_refuses_a_file_it_cannot_use_and_changes_nothing(data_dir: Path, tmp_path: Path, damage: str) -> None:
    store_path = data_dir / STORE_FILE
    with Store(store_path) as store:
        store.create_task("https://v.example/1", TaskOptions())
    candidate = tmp_path / "candidate.db"
    if damage == "newer":
        shutil.copyfile(FIXTURE, candidate)
        with closing(sqlite3.connect(candidate)) as db:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    elif damage == "garbage":
        candidate.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    elif damage == "not_vidscribe":
        with closing(sqlite3.connect(candidate)) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
    messages = {
        "newer": "newer vidscribe",
        "garbage": "cannot be read",
        "not_vidscribe": "not a vidscribe store",
        "missing": "no",
    }

    with pytest.raises(BadBackup, match=messages[damage]):
        restore(candidate, store_path)
    assert len(task_ids(store_path)) == 1
    assert sorted(p.name for p in data_dir.iterdir() if "restor" in p.name) == []


def test_an_older_schema_backup_is_migrated_at_the_next_start(data_dir: Path, tmp_path: Path) -> None:
    # A raw copy of a running store's file (WAL mode), from the release with schema 1.
    old_backup = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, old_backup)
    info, aside = restore(old_backup, data_dir / STORE_FILE)
    assert (info.schema, info.tasks, aside) == (1, 5, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "old.db"]  # no -wal, -shm left behind
    with Store(data_dir / STORE_FILE) as store:
        assert len(store.list_tasks()) == 5
    assert verify(data_dir / STORE_FILE).schema == SCHEMA_VERSION


def test_a_store_opening_during_a_restore_waits_for_it(data_dir: Path) -> None:
    store_path = data_dir / STORE_FILE
    data_dir.mkdir(parents=True)
    with closing(hold_exclusive(store_path)):
        with pytest.raises(StoreInUse, match="being restored"):
            hold_shared(store_path, wait_s=0)
        with pytest.raises(StoreInUse):
            hold_exclusive(store_path)
    with closing(hold_shared(store_path, wait_s=0)), closing(hold_shared(store_path, wait_s=0)):
        pass  # any number of Stores and backups at once


def test_backups_into_a_directory_are_named_by_time_and_rotated(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    assert backup_target(folder, 0) == folder / "vidscribe-19700101T000000Z.db"
    assert backup_target(folder / "x.db", 0) == folder / "x.db"
    for day in range(1, 5):
        (folder / f"vidscribe-2025010{day}T000000Z.db").write_bytes(b"")
    (folder / "other.db").write_bytes(b"")
    deleted = prune_backups(folder, keep=2)
    assert [p.name for p in deleted] == ["vidscribe-20250101T000000Z.db", "vidscribe-20250102T000000Z.db"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "other.db",
        "vidscribe-20250103T000000Z.db",
        "vidscribe-20250104T000000Z.db",
    ]


def test_backup_of_a_missing_store_says_where_it_looked(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BadBackup, match="VIDSCRIBE_DATA_DIR"):
        backup(data_dir / STORE_FILE, tmp_path / "copy.db")
    assert main(["backup", str(tmp_path / "copy.db")]) == 1
    assert not (tmp_path / "copy.db").exists()


# -- Kubernetes: the backup CronJob and the restore pod (k8s/backup/) ---------------------


def manifest(name: str) -> dict[str, Any]:
    (doc,) = [doc for doc in yaml.safe_load_all((K8S / "backup" / name).read_text()) if doc]
    return doc


def test_the_backup_cronjob_runs_vidscribe_backup_beside_the_head() -> None:
    cronjob = manifest("cronjob.yaml")
    kubernetes_validate.validate(cronjob, "1.29", strict=True)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["vidscribe", "backup"]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[env["VIDSCRIBE_DATA_DIR"]]]["persistentVolumeClaim"]["claimName"] == "vidscribe-data"
    assert container["command"][2].startswith(env["VIDSCRIBE_DATA_DIR"] + "/")  # onto the same volume
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    # ReadWriteOnce: it can only mount the claim on the node of the head pod, which holds it.
    (rayservice,) = yaml.safe_load_all((K8S / "rayservice.yaml").read_text())
    head_labels = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["metadata"]["labels"]
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"].items() <= head_labels.items()
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_the_restore_pod_runs_vidscribe_restore_on_the_volume() -> None:
    pod = manifest("restore-pod.yaml")
    kubernetes_validate.validate(pod, "1.29", strict=True)
    (container,) = pod["spec"]["containers"]
    assert container["command"][:2] == ["vidscribe", "restore"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "vidscribe-data"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its kustomize) is not installed")
def test_the_backup_component_builds_with_the_app(tmp_path: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    with (tree / "kustomization.yaml").open("a") as kustomization:
        kustomization.write("components:\n  - backup\n")  # what k8s/README.md says to add
    out = subprocess.run(["kubectl", "kustomize", str(tree)], capture_output=True, text=True, check=True, timeout=60)
    (cronjob,) = [doc for doc in yaml.safe_load_all(out.stdout) if doc and doc["kind"] == "CronJob"]
    assert cronjob["metadata"]["namespace"] == "vidscribe"
    kubernetes_validate.validate(cronjob, "1.29", strict=True)
