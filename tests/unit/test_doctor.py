"""`vidscribe doctor`: passes on a working set-up, names what is broken with its fix, never prints a key."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest
import yt_dlp.version

from actors.storage.schema import SCHEMA_VERSION
from actors.storage.store import STORE_FILE, Store
from serve_app.cli import doctor
from serve_app.cli.main import main
from tests.support.fake_llm import PROOFREAD_MODEL, SUMMARY_MODEL, FakeLLM
from tests.support.wecom_receiver import WeComReceiver

ROBOT_KEY = "doctor-robot-key-0123456789"
RIGHT_KEY = "sk-right-key-0123456789"
WRONG_KEY = "sk-wrong-key-9876543210"


@dataclass
class Report:
    code: int
    out: str

    def line(self, name: str) -> tuple[str, str]:
        """(status, rest of the line) of check `name`."""
        for line in self.out.splitlines():
            if m := re.fullmatch(rf"(ok|warn|FAIL) +{re.escape(name)} {{2,}}(.*)", line):
                return m.group(1), m.group(2)
        raise AssertionError(f"no line for {name!r} in:\n{self.out}")


@pytest.fixture
def run_doctor(capsys: pytest.CaptureFixture[str]) -> Callable[..., Report]:
    def run(*args: str) -> Report:
        code = main(["doctor", *args])
        captured = capsys.readouterr()
        return Report(code, captured.out + captured.err)

    return run


@pytest.fixture(autouse=True)
def defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_default_model: Callable[[Path], Path]) -> Path:
    """The environment of a fresh machine: no VIDSCRIBE_* but a data dir holding the session's model."""
    for name in list(os.environ):
        if name.startswith("VIDSCRIBE_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    data_dir = link_default_model(tmp_path / "data")
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(data_dir))
    return data_dir


def use_llm(monkeypatch: pytest.MonkeyPatch, fake: FakeLLM, key: str) -> None:
    monkeypatch.setenv("VIDSCRIBE_LLM__BASE_URL", fake.base_url)
    monkeypatch.setenv("VIDSCRIBE_LLM__API_KEY", key)
    monkeypatch.setenv("VIDSCRIBE_LLM__PROOFREAD_MODEL", PROOFREAD_MODEL)
    monkeypatch.setenv("VIDSCRIBE_LLM__SUMMARY_MODEL", SUMMARY_MODEL)


def test_passes_with_defaults_and_only_warns_about_what_is_optional(run_doctor: Callable[..., Report]) -> None:
    report = run_doctor()

    assert report.code == 0, report.out
    assert "FAIL" not in report.out
    for name in ("settings", "ffmpeg", "data dir", "speech model", "store", "Ray"):
        assert report.line(name)[0] == "ok", report.out
    assert "sha256 verified" in report.line("speech model")[1]
    assert "will be created" in report.line("store")[1]
    assert report.line("yt-dlp")[0] in ("ok", "warn")  # a warning once yt-dlp is 60 days old
    status, text = report.line("LLM")
    assert status == "warn"
    assert text.startswith("no LLM: raw transcripts are delivered")
    assert report.line("WeCom")[0] == "warn"
    assert "vidscribe doctor: all needed parts work" in report.out


def test_fails_without_ffmpeg_on_path(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # IMAGEIO_FFMPEG_EXE=ffmpeg asks for the system's ffmpeg, and PATH has none.
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "ffmpeg")

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("ffmpeg")
    assert status == "FAIL"
    assert "cannot run 'ffmpeg'" in text
    assert "IMAGEIO_FFMPEG_EXE=ffmpeg names no working ffmpeg" in text
    assert report.line("Ray")[0] == "ok"  # the checks after it still ran


def test_fails_when_no_ffmpeg_is_found_anywhere(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def nothing_found() -> str:  # what imageio-ffmpeg raises without its binary and with none on PATH
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", nothing_found)

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("ffmpeg")
    assert status == "FAIL"
    assert "no ffmpeg" in text
    assert "pip install --force-reinstall imageio-ffmpeg" in text


def test_fails_on_a_data_dir_that_cannot_be_created(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Its parent is a regular file: not even root can create it.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(blocker / "data"))

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("data dir")
    assert status == "FAIL"
    assert f"{blocker / 'data'} cannot be created or written" in text
    assert "set VIDSCRIBE_DATA_DIR to a folder this user can write" in text
    assert report.line("speech model")[0] == "FAIL"


def test_fails_on_a_wrong_llm_key_without_printing_it(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM
) -> None:
    fake_llm.required_key = RIGHT_KEY
    use_llm(monkeypatch, fake_llm, WRONG_KEY)

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("LLM")
    assert status == "FAIL"
    assert f"key refused by {fake_llm.base_url} (HTTP 401)" in text
    assert "check VIDSCRIBE_LLM__API_KEY" in text
    assert WRONG_KEY not in report.out  # the stand-in echoes it in its 401 answer


def test_a_working_llm_passes_without_printing_its_key(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM
) -> None:
    fake_llm.required_key = RIGHT_KEY
    use_llm(monkeypatch, fake_llm, RIGHT_KEY)

    report = run_doctor()

    assert report.code == 0, report.out
    assert report.line("LLM") == (
        "ok",
        f"{fake_llm.base_url}: key accepted, {PROOFREAD_MODEL}, {SUMMARY_MODEL} listed and answered",
    )
    assert sorted(r.model for r in fake_llm.requests) == [PROOFREAD_MODEL, SUMMARY_MODEL]  # one tiny request each
    assert RIGHT_KEY not in report.out


def test_fails_on_a_model_the_server_does_not_list(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM
) -> None:
    use_llm(monkeypatch, fake_llm, RIGHT_KEY)
    monkeypatch.setenv("VIDSCRIBE_LLM__SUMMARY_MODEL", "gpt-nonexistent")

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("LLM")
    assert status == "FAIL"
    assert "has no model gpt-nonexistent" in text
    assert f"one it lists: {PROOFREAD_MODEL}, {SUMMARY_MODEL}" in text
    assert fake_llm.requests == []  # no chat request for a model that is not there


def test_send_test_delivers_one_message_and_prints_the_webhook_redacted(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, wecom: WeComReceiver
) -> None:
    monkeypatch.setenv("VIDSCRIBE_WECOM__WEBHOOK_URL", wecom.webhook_url(ROBOT_KEY))

    checked = run_doctor()
    assert wecom.messages() == []  # only --send-test sends
    assert "`--send-test` sends a test message" in checked.out

    report = run_doctor("--send-test")

    assert report.code == 0, report.out
    assert [m.content for m in wecom.messages(ROBOT_KEY)] == [doctor.TEST_MESSAGE]
    status, text = report.line("WeCom")
    assert status == "warn"  # the local receiver is plain http
    assert f"{wecom.base_url}?key=doc…: test message delivered" in text
    assert ROBOT_KEY not in checked.out + report.out


def test_send_test_fails_on_a_key_wecom_does_not_know(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, wecom: WeComReceiver
) -> None:
    monkeypatch.setenv("VIDSCRIBE_WECOM__WEBHOOK_URL", wecom.webhook_url(ROBOT_KEY, known=False))

    report = run_doctor("--send-test")

    assert report.code == 1
    status, text = report.line("WeCom")
    assert status == "FAIL"
    assert "errcode 93000" in text
    assert "the key is unknown or the robot was removed" in text
    assert ROBOT_KEY not in report.out


def test_send_test_reports_a_rate_limited_robot_at_once(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch, wecom: WeComReceiver
) -> None:
    monkeypatch.setenv("VIDSCRIBE_WECOM__WEBHOOK_URL", wecom.webhook_url(ROBOT_KEY))
    wecom.script("45009")

    report = run_doctor("--send-test")

    assert report.code == 1
    status, text = report.line("WeCom")
    assert status == "FAIL"
    assert "errcode 45009" in text
    assert "try again in a minute" in text
    assert len(wecom.requests) == 1  # one attempt, no minute of retries


def test_fails_on_a_webhook_url_that_is_not_a_robot_url(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDSCRIBE_WECOM__WEBHOOK_URL", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send")

    report = run_doctor()

    assert report.code == 1
    assert report.line("WeCom")[0] == "FAIL"
    assert "VIDSCRIBE_WECOM__WEBHOOK_URL has no key=… in its query" in report.line("WeCom")[1]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}", None),
        (f"http://relay.internal:8080/wecom/cgi-bin/webhook/send?key={ROBOT_KEY}", None),
        (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/upload_media?key={ROBOT_KEY}", "has the path"),
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=", "has no key="),
        (f"ftp://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}", "is not an https URL"),
        ("qyapi.weixin.qq.com/cgi-bin/webhook/send", "is not an https URL"),
    ],
)
def test_webhook_shape(url: str, problem: str | None) -> None:
    found = doctor.webhook_problem(url)
    assert found == problem if problem is None else problem in (found or "")


def test_an_invalid_environment_is_one_clear_failure(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDSCRIBE_WECOM__MSGTYPE", "telegram")

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("settings")
    assert status == "FAIL"
    assert "VIDSCRIBE_WECOM__MSGTYPE" in text
    assert "telegram" not in text  # values are never repeated: they may be secrets


def test_store_opens_and_a_newer_schema_fails(run_doctor: Callable[..., Report], defaults: Path) -> None:
    path = defaults / STORE_FILE
    Store(path, durable=False).close()
    assert run_doctor().line("store") == ("ok", f"{path}: schema {SCHEMA_VERSION}, 0 tasks")

    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    report = run_doctor()

    assert report.code == 1
    status, text = report.line("store")
    assert status == "FAIL"
    assert f"schema {SCHEMA_VERSION + 1}, newer than this vidscribe knows" in text


def test_an_old_yt_dlp_is_a_warning(run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yt_dlp.version, "__version__", "2020.01.02")

    report = run_doctor()

    assert report.code == 0
    status, text = report.line("yt-dlp")
    assert status == "warn"
    assert "yt-dlp 2020.01.02 is" in text
    assert "pip install -U yt-dlp" in text


def test_ytdlp_age_days() -> None:
    today = dt.date(2026, 1, 1)
    assert doctor.ytdlp_age_days("2025.10.22", today) == 71
    assert doctor.ytdlp_age_days("2025.12.31.232800", today) == 1  # a nightly
    assert doctor.ytdlp_age_days("unknown", today) is None


def test_an_unreachable_ray_address_fails_within_the_timeout(
    run_doctor: Callable[..., Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setattr(doctor, "RAY_CONNECT_TIMEOUT_S", 5.0)

    report = run_doctor()

    assert report.code == 1
    status, text = report.line("Ray")
    assert status == "FAIL"
    assert f"the cluster at RAY_ADDRESS=127.0.0.1:{port}" in text
    assert "correct RAY_ADDRESS, or unset it" in text
