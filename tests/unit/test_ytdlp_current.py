"""yt-dlp stays current: pyproject pins a minimum only, the image takes a YTDLP_VERSION build
argument, and each Transcriber logs the version it runs when it starts (media.warm_up)."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest
from yt_dlp.version import __version__ as installed

from actors import media

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_pins_a_minimum_never_a_maximum() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if re.match(r"yt-dlp\b", d)]
    assert re.fullmatch(r"yt-dlp>=[\d.]+", pin.replace(" ", "")), pin


def test_the_image_can_take_another_ytdlp_without_a_release() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ARG YTDLP_VERSION=""' in dockerfile
    assert 'pip install --upgrade "yt-dlp${YTDLP_VERSION:+==$YTDLP_VERSION}"' in dockerfile


def test_warm_up_logs_the_version(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="actors.media.ytdlp"):
        media.warm_up()
    assert f"yt-dlp {installed}" in caplog.messages
