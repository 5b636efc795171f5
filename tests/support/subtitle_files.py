"""Subtitle tracks encoded as Chinese sites and Windows tools still write them."""

from __future__ import annotations

from tests.support.video_site import SPEECH_EN_TEXT

CHINESE_LINES = ["大家好，欢迎收看本期节目。", "今天我们来聊一聊字幕。"]
CHINESE_TEXT = "\n".join(CHINESE_LINES)

# GBK without a byte-order mark, CRLF line ends: what a subtitle group's .srt often is.
GBK_SRT = "".join(
    f"{i}\r\n00:00:0{i},000 --> 00:00:0{i + 1},000\r\n{line}\r\n\r\n" for i, line in enumerate(CHINESE_LINES, 1)
).encode("gbk")

# UTF-16 with its BOM ("Unicode" in Windows tools), the words of the test clip.
UTF16_VTT = f"WEBVTT\n\n00:00:00.300 --> 00:00:03.600\n{SPEECH_EN_TEXT}\n".encode("utf-16")
