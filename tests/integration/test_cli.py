"""`vidscribe transcribe` as a user runs it: real model, real files, output on stdout or disk."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from serve_app.cli.main import main
from tests.support.asr import SPEECH_EN, SPEECH_EN_TEXT, SPEECH_EN_VIDEO
from tests.support.subtitle_files import CHINESE_TEXT, GBK_SRT, UTF16_VTT
from tests.support.text import word_overlap

SRT_CUE = re.compile(r"(\d+)\n(\d{2}:\d{2}:\d{2},\d{3}) --> (\d{2}:\d{2}:\d{2},\d{3})\n(.+)")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_default_model: Callable[[Path], Path]) -> Path:
    """VIDSCRIBE_* environment with a data dir that already holds the assembled model."""
    data_dir = link_default_model(tmp_path / "data")
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("VIDSCRIBE_ASR__CPU_THREADS", str(os.cpu_count() or 1))
    return data_dir


@pytest.mark.slow
def test_transcribe_file_to_srt_on_stdout(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["transcribe", str(SPEECH_EN), "--format", "srt"])

    out, err = capsys.readouterr()
    assert code == 0
    blocks = out.strip().split("\n\n")
    cues = [SRT_CUE.fullmatch(block) for block in blocks]
    assert all(cues), out
    assert [int(c.group(1)) for c in cues if c] == list(range(1, len(blocks) + 1))
    assert word_overlap(SPEECH_EN_TEXT, " ".join(c.group(4) for c in cues if c)) >= 0.8
    assert "transcribing" in err  # the tqdm bar went to stderr, not into the transcript


@pytest.mark.slow
def test_transcribe_file_to_json_file(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "speech.json"
    target.parent.mkdir()

    code = main(["transcribe", str(SPEECH_EN), "-f", "json", "--output", str(target), "--language", "en"])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == ""
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["language"] == "en"
    assert data["source"] == "asr"
    assert word_overlap(SPEECH_EN_TEXT, data["text"]) >= 0.8


@pytest.mark.slow
def test_undecodable_file_exits_1_with_the_reason(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)

    code = main(["transcribe", str(junk)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "transcription_failed" in err
    assert "could not decode" in err


def test_neither_file_nor_url_exits_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["transcribe", "no/such/file.m4a"])

    assert code == 1
    assert "invalid_url" in capsys.readouterr().err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["transcribe", str(SPEECH_EN), "--format", "doc"])

    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


SUBTITLE_TEXT = "Subtitles written by a person."
PAGES = {
    "plain.html": '<html><head><title>Plain</title></head><body><video src="speech.mp4"></video></body>',
    "subtitled.html": (
        '<html><head><title>Subtitled</title></head><body><video src="speech.mp4">'
        '<track kind="subtitles" src="speech.en.vtt" srclang="en" label="English"></video></body></html>'
    ),
    "speech.en.vtt": f"WEBVTT\n\n00:00:00.500 --> 00:00:04.000\n{SUBTITLE_TEXT}\n",
}


@pytest.fixture
def video_site(tmp_path: Path) -> Iterator[str]:
    """A local web page with a <video> (and, on one page, a subtitle <track>), like a video site."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(SPEECH_EN_VIDEO, root / "speech.mp4")
    for name, body in PAGES.items():
        (root / name).write_text(body, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.slow
def test_url_without_subtitles_is_downloaded_and_transcribed(
    env: Path, video_site: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("actors.media")
    monkeypatch.setenv("VIDSCRIBE_ALLOW_PRIVATE_URLS", "true")

    code = main(["transcribe", f"{video_site}/plain.html", "--format", "json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == "asr"
    assert word_overlap(SPEECH_EN_TEXT, data["text"]) >= 0.8
    assert "downloading" in err
    assert "transcribing" in err
    assert not any((env / "tmp").iterdir())  # the downloaded media was cleaned up


@pytest.mark.slow
def test_url_with_subtitles_uses_them(
    env: Path, video_site: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("actors.media")
    monkeypatch.setenv("VIDSCRIBE_ALLOW_PRIVATE_URLS", "true")

    code = main(["transcribe", f"{video_site}/subtitled.html", "--format", "json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == "subtitles"
    assert data["text"] == SUBTITLE_TEXT
    assert "transcribing" not in err  # no ASR when the site has subtitles


@pytest.mark.slow
@pytest.mark.parametrize(
    ("track", "data", "text"),
    [("zh.srt", GBK_SRT, CHINESE_TEXT), ("en.vtt", UTF16_VTT, SPEECH_EN_TEXT)],
    ids=["gbk-srt", "utf16-vtt"],
)
def test_url_with_gbk_or_utf16_subtitles_gives_their_words(
    env: Path,
    video_site: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    track: str,
    data: bytes,
    text: str,
) -> None:
    monkeypatch.setenv("VIDSCRIBE_ALLOW_PRIVATE_URLS", "true")
    (tmp_path / "site" / f"encoded.{track}").write_bytes(data)
    (tmp_path / "site" / "encoded.html").write_text(
        f'<html><head><title>Encoded</title></head><body><video src="speech.mp4">'
        f'<track kind="subtitles" src="encoded.{track}" srclang="{track[:2]}"></video></body></html>',
        encoding="utf-8",
    )

    code = main(["transcribe", f"{video_site}/encoded.html", "--format", "json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["source"] == "subtitles"
    assert json.loads(out)["text"] == text
    assert "\ufffd" not in out
    assert "transcribing" not in err  # no ASR


def test_private_url_is_refused_by_default(
    env: Path, video_site: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("actors.media")
    monkeypatch.delenv("VIDSCRIBE_ALLOW_PRIVATE_URLS", raising=False)

    code = main(["transcribe", f"{video_site}/plain.html"])

    assert code == 1
    assert "forbidden_url" in capsys.readouterr().err
