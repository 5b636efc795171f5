"""The issue's acceptance check on the whole app (real Ray, Gateway, Store, LLMSender,
Transcriber, the local video site and fake LLM): a member @-mentions the smart robot with a
share text holding a short link, gets an answer within seconds (then live progress in it) and
the video's whole block in the same chat, although the connection is cut as the block starts
going out."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.video_site import SPEECH_EN_VTT
from tests.support.wecom_bot_server import WeComBotServer, wait_until
from tests.support.wecom_receiver import assert_contiguous_blocks

pytestmark = pytest.mark.slow


def test_a_link_asked_in_a_chat_comes_back_whole_to_that_chat(
    service_factory: Any, video_site: Any, wecom: Any, tmp_path: Path
) -> None:
    with WeComBotServer() as server:
        ca_file = server.write_ca(tmp_path / "wecom-ca.pem")
        service = service_factory(wecom_bot=server.settings(ca_file, progress_s=0.5))
        wait_until(server.online, 60, "the LLMSender did not subscribe the robot")
        health = httpx.get(f"{service.base_url}/healthz", params={"details": "true"}, timeout=30).json()
        assert health == {"store": "ok", "wecom_bot": {"state": "online", "reason": "subscribed"}}
        name = f"bot-{uuid.uuid4().hex[:8]}"
        title = f"Asked in chat {name}"
        short_link = video_site.add_redirect(
            f"/s/{name}", video_site.add_video(name, subtitles_vtt=SPEECH_EN_VTT, title=title)
        )
        server.cut_at_push = (1, "abort")  # the block's first message cuts the connection

        started = time.monotonic()
        req_id = server.post(f"@vidscribe 【{title}】 看看这个 {short_link} 复制链接打开", chatid="team-chat")
        answer = server.wait_answer(req_id, timeout=30)
        answered_s = time.monotonic() - started
        assert answer.startswith("已接收 1 个链接"), answer
        match = re.search(r"/view/([\w-]+)\)", answer)
        assert match is not None, answer
        view = service.wait_finished([match.group(1)])[match.group(1)]
        assert view["status"] == "done", view
        wait_until(lambda: bool(server.messages("team-chat")), 30, "no block in the chat")

        counts = assert_contiguous_blocks(server.messages("team-chat"), expected_titles=[title])
        assert counts[title]["校对"] >= 1
        assert server.accepted_subscribes() == 2  # cut, reconnected, the block finished whole
        wait_until(lambda: server.finished(req_id), 30, "the answer's live progress did not finish")
        assert server.wait_answer(req_id).endswith("结果见下方。")
        assert not wecom.messages("group-a")  # nothing went to the webhook group
        print(f"answered in {answered_s:.2f} s; {sum(counts[title].values())} message(s) in the chat")
        assert answered_s < 10
