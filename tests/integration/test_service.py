"""The whole service on a real local Ray instance, over real HTTP: the video site, the
fake LLM and the WeCom receiver are local servers; ASR is the real bundled model."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.support.asr import HEARD_THE_CLIP
from tests.support.hostile import HOSTILE_TITLE, assert_seen_as_words_and_whole, hostile_transcript
from tests.support.service import Service
from tests.support.text import word_overlap
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_TEXT, SPEECH_EN_VTT
from tests.support.wecom_receiver import assert_contiguous_blocks

pytestmark = pytest.mark.slow


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def service(service_factory: Any) -> Service:
    return service_factory(
        deployment_options={"Transcriber": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 2}}}
    )


def test_four_videos_end_to_end_then_cached_resubmit(service: Service, video_site: Any, wecom: Any) -> None:
    names = [unique(n) for n in ("subs", "asr-a", "asr-b", "asr-c")]
    pages = [video_site.add_video(names[0], subtitles_vtt=SPEECH_EN_VTT, title=f"Subtitled {names[0]}")]
    pages += [video_site.add_video(n, SPEECH_EN_AUDIO, title=f"Spoken {n}") for n in names[1:]]
    short_link = video_site.add_redirect(f"/s/{names[1]}", pages[1])

    async def submit_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers=service.auth) as client:
            urls = [short_link, *pages[0:1], *pages[2:]]
            return list(
                await asyncio.gather(
                    *(client.post(f"{service.base_url}/api/transcribe", json={"url": url}) for url in urls)
                )
            )

    responses = asyncio.run(submit_all())
    assert [r.status_code for r in responses] == [202] * 4, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert all(b["status"] == "queued" and not b["cached"] for b in bodies)
    assert all(b["status_url"].endswith(b["task_id"]) for b in bodies)

    views = service.wait_finished([b["task_id"] for b in bodies])
    assert {v["status"] for v in views.values()} == {"done"}, views
    by_title = {v["video"]["title"]: v for v in views.values()}
    sources = sorted(v["source"] for v in views.values())
    assert sources == ["asr", "asr", "asr", "subtitles"]
    for view in views.values():
        assert word_overlap(SPEECH_EN_TEXT, view["transcript"]) >= HEARD_THE_CLIP, view["transcript"]
        assert view["proofread"]
        assert view["summary"] is None or view["summary"].startswith("- ")
        assert view["delivery"]["state"] == "sent"
        assert view["delivery"]["parts_sent"] == view["delivery"]["parts_total"] >= 1
        assert view["progress"]["fraction"] == 1.0
        proofread_tokens = view["llm_usage"]["proofread"]
        assert proofread_tokens["prompt_tokens"] > 0 and proofread_tokens["completion_tokens"] > 0
    subtitled = next(v for v in views.values() if v["source"] == "subtitles")
    assert video_site.requested(video_site.media_path(names[0])) == 0  # subtitles: no download

    counts = assert_contiguous_blocks(wecom.messages("group-a"), expected_titles=list(by_title))
    assert all(c.get("校对", 0) >= 1 for c in counts.values())
    assert subtitled["video"]["platform"]

    # The same video again, through its short link: known, cached, no download, no ASR.
    media_requests = video_site.requested(video_site.media_path(names[1]))
    delivered_before = len(wecom.messages("group-a"))
    again = service.submit(short_link)
    assert again.status_code == 202
    assert again.json()["cached"] is True
    view = service.wait_finished([again.json()["task_id"]])[again.json()["task_id"]]
    assert view["status"] == "done"
    assert view["source"] == "cache"
    assert view["cached"] is True
    assert view["llm_usage"] == {}  # cached layers: no LLM call, no tokens
    assert video_site.requested(video_site.media_path(names[1])) == media_requests
    title = view["video"]["title"]
    redelivered = assert_contiguous_blocks(wecom.messages("group-a")[delivered_before:], expected_titles=[title])
    assert redelivered[title] == counts[title]

    # Exports of a finished task.
    task_id = again.json()["task_id"]
    srt = httpx.get(f"{service.base_url}/api/task/{task_id}/transcript?format=srt", headers=service.auth)
    assert srt.status_code == 200
    assert "-->" in srt.text
    assert srt.headers["content-type"].startswith("application/x-subrip")


def test_auth_and_errors(service: Service) -> None:
    base = service.base_url
    for method, path in [("POST", "/api/transcribe"), ("GET", "/api/task/x"), ("GET", "/api/task/x/transcript")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = httpx.request(method, base + path, headers=headers, json={"url": "https://a.example/v"})
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"{base}/api/task/{'A' * 22}", headers=service.auth).status_code == 404
    malformed = httpx.post(f"{base}/api/transcribe", headers=service.auth, json={"link": "x"})
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "invalid_request"
    not_json = httpx.post(
        f"{base}/api/transcribe", headers={**service.auth, "Content-Type": "application/json"}, content=b"{"
    )
    assert not_json.status_code == 422
    too_big = httpx.post(
        f"{base}/api/transcribe", headers=service.auth, json={"url": "https://a.example/" + "x" * 20000}
    )
    assert too_big.status_code == 413
    bad_scheme = service.submit("file:///etc/passwd")
    assert bad_scheme.status_code == 400, bad_scheme.text
    assert bad_scheme.json()["error"]["code"] == "invalid_url"
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_hundred_concurrent_posts_get_202_or_429(service_factory: Any, video_site: Any) -> None:
    service = service_factory(max_queued_tasks=30)
    urls = [video_site.url(f"/{unique('burst')}.html") for _ in range(100)]  # 404 pages: tasks fail fast

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=30, headers=service.auth, limits=limits) as client:
            return list(
                await asyncio.gather(
                    *(client.post(f"{service.base_url}/api/transcribe", json={"url": url}) for url in urls)
                )
            )

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 429}, statuses
    assert statuses.count(202) >= 1
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    accepted = [r.json()["task_id"] for r in responses if r.status_code == 202]
    views = service.wait_finished(accepted, timeout=180)
    assert {v["error"]["code"] for v in views.values()} == {"video_not_found"}


def test_a_hostile_video_reaches_the_group_as_words_and_whole(
    service_factory: Any, video_site: Any, wecom: Any
) -> None:
    service = service_factory(public_url="https://vidscribe.test", wecom={"attach_after_messages": 0})
    cues = "\n\n".join(
        f"00:00:{i:02d}.000 --> 00:00:{i + 1:02d}.000\n{line}。"
        for i, line in enumerate(hostile_transcript(40).split("。")[:40])
    )
    page = video_site.add_video(unique("hostile"), subtitles_vtt=f"WEBVTT\n\n{cues}\n", title=HOSTILE_TITLE)

    accepted = service.submit(page)
    assert accepted.status_code == 202, accepted.text
    view = service.wait_finished([accepted.json()["task_id"]])[accepted.json()["task_id"]]

    assert view["status"] == "done" and view["delivery"]["state"] == "sent", view
    messages = wecom.messages("group-a")
    assert len(messages) >= 3
    assert_seen_as_words_and_whole(messages, "https://vidscribe.test")
