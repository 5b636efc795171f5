"""A corpus of bad input against the live HTTP app: each answer's status and error code,
then the failures that only show once a worker looks at the link, and afterwards a
service that is healthy and still does its job.

Two deployments for the whole module (deploying costs ~15 s): a strict one as
production runs it (`allow_private_urls=False`: the local video site is refused too,
which is the point for the SSRF spellings), then a local-testing one that may reach the
video site, with small media limits and a low per-token rate limit.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from actors.util.ratelimit import RateLimiter
from serve_app.http.auth import retry_after_header, token_key
from tests.support.service import TOKEN, Service
from tests.support.ssrf_cases import SSRF_CASES
from tests.support.video_site import SPEECH_EN_VTT, VideoSite

BURST_TOKEN = "burst-token-9876543210"  # a second client, for the per-token rate limit
RATE_PER_MINUTE = 10
MAX_DOWNLOAD_BYTES = 30_000  # tests/data/speech_en.mp4 is ~70 kB
MAX_DURATION_S = 60

DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "strict": {"allow_private_urls": False, "rate_limit_per_minute": 0},  # the corpus is ~130 POSTs
    "local": {
        "allow_private_urls": True,
        "api_tokens": [TOKEN, BURST_TOKEN],
        "rate_limit_per_minute": RATE_PER_MINUTE,
        "media": {"max_duration_s": MAX_DURATION_S, "max_download_bytes": MAX_DOWNLOAD_BYTES},
    },
}


@pytest.fixture(scope="module")
def deploy(module_service_factory: Callable[..., Service]) -> Callable[[str], Service]:
    """`deploy(name)`: the app with DEPLOYMENTS[name], deployed once while tests ask for it."""
    current: dict[str, Service] = {}

    def use(name: str) -> Service:
        if name not in current:
            current.clear()
            current[name] = module_service_factory(**DEPLOYMENTS[name])
        return current[name]

    return use


@pytest.fixture
def strict(deploy: Callable[[str], Service]) -> Service:
    return deploy("strict")


@pytest.fixture
def local(deploy: Callable[[str], Service]) -> Service:
    return deploy("local")


# ---- the corpus -----------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get."""

    id: str
    status: int
    code: str
    method: str = "POST"
    path: str = "/api/transcribe"
    body: Any = None  # sent as JSON unless `content` is given
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))


def submit(url: Any = "https://videos.example/v/1", **options: Any) -> dict[str, Any]:
    return {"url": url, "options": options} if options else {"url": url}


def _chunks(size: int) -> Iterator[bytes]:
    body = json.dumps(submit("https://videos.example/" + "a" * size)).encode()
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


BAD_REQUESTS: list[Bad] = [
    # URLs the guard refuses: too long for the service, or for the schema itself.
    Bad("url-over-max-length", 400, "invalid_url", body=submit("https://videos.example/" + "a" * 3000)),
    Bad("url-over-schema-limit", 422, "invalid_request", body=submit("https://videos.example/" + "a" * 9000)),
    Bad("url-empty", 422, "invalid_request", body=submit("")),
    Bad("url-only-spaces", 400, "invalid_url", body=submit("   ")),
    Bad("url-not-a-url", 400, "invalid_url", body=submit("not a url at all")),
    # Bodies that are not the JSON object the API takes.
    Bad("json-unterminated", 422, "invalid_request", content=b'{"url": "https://videos.example/v/1"'),
    Bad("json-array", 422, "invalid_request", body=[]),
    Bad("json-null", 422, "invalid_request", body=None, content=b"null"),
    Bad("json-string", 422, "invalid_request", body="https://videos.example/v/1"),
    Bad("json-empty-body", 422, "invalid_request", content=b""),
    Bad("json-not-utf8", 400, "bad_request", content=b'{"url": "\xff\xfe"}'),  # FastAPI cannot decode it
    Bad(
        "form-encoded",
        422,
        "invalid_request",
        content=b"url=https%3A%2F%2Fvideos.example%2Fv%2F1",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    ),
    # Wrong types.
    Bad("url-number", 422, "invalid_request", body=submit(123)),
    Bad("url-list", 422, "invalid_request", body=submit(["https://videos.example/v/1"])),
    Bad("url-null", 422, "invalid_request", body=submit(None)),
    Bad("options-string", 422, "invalid_request", body={"url": "https://videos.example/v/1", "options": "fast"}),
    Bad("proofread-not-bool", 422, "invalid_request", body=submit(proofread="maybe")),
    Bad("summary-object", 422, "invalid_request", body=submit(summary={})),
    # Keys the API does not know.
    Bad("unknown-option-key", 422, "invalid_request", body=submit(webhook="https://evil.example/hook")),
    Bad("unknown-top-level-key", 422, "invalid_request", body={"url": "https://videos.example/v/1", "callback": "x"}),
    # Bad language and priority.
    Bad("language-punctuation", 422, "invalid_request", body=submit(language="english!!")),
    Bad("language-one-letter", 422, "invalid_request", body=submit(language="x")),
    Bad("language-too-long", 422, "invalid_request", body=submit(language="zh-" + "a" * 20)),
    Bad("language-number", 422, "invalid_request", body=submit(language=42)),
    Bad("language-path", 422, "invalid_request", body=submit(language="../../etc")),
    Bad("priority-unknown", 422, "invalid_request", body=submit(priority="urgent")),
    Bad("priority-number", 422, "invalid_request", body=submit(priority=1)),
    Bad("priority-null", 422, "invalid_request", body=submit(priority=None)),
    # Too large, announced or streamed.
    Bad("body-too-large", 413, "body_too_large", body=submit("https://videos.example/" + "a" * 20_000)),
    # Missing or wrong credentials.
    Bad("token-missing", 401, "unauthorized", body=submit(), headers={}),
    Bad("token-wrong", 401, "unauthorized", body=submit(), headers={"Authorization": "Bearer wrong-token"}),
    Bad("token-basic-scheme", 401, "unauthorized", body=submit(), headers={"Authorization": f"Basic {TOKEN}"}),
    Bad("token-empty", 401, "unauthorized", body=submit(), headers={"Authorization": "Bearer"}),
    Bad("token-no-scheme", 401, "unauthorized", body=submit(), headers={"Authorization": TOKEN}),
    Bad("token-prefix", 401, "unauthorized", body=submit(), headers={"Authorization": f"Bearer {TOKEN[:-1]}"}),
    Bad("token-extended", 401, "unauthorized", body=submit(), headers={"Authorization": f"Bearer {TOKEN}x"}),
    Bad("task-without-token", 401, "unauthorized", method="GET", path="/api/task/" + "A" * 22, headers={}),
    # Tasks that do not exist.
    Bad("task-unknown", 404, "not_found", method="GET", path="/api/task/" + "A" * 22),
    Bad("task-id-very-long", 404, "not_found", method="GET", path="/api/task/" + "A" * 300),
    Bad("transcript-unknown", 404, "not_found", method="GET", path=f"/api/task/{'B' * 22}/transcript"),
    # Routes and methods that do not exist.
    Bad("route-unknown", 404, "not_found", method="GET", path="/api/nothing-here"),
    Bad("method-not-allowed", 405, "method_not_allowed", method="GET", path="/api/transcribe"),
    Bad(
        "transcript-bad-format",
        422,
        "invalid_request",
        method="GET",
        path=f"/api/task/{'B' * 22}/transcript?format=pdf",
    ),
]


def send(service: Service, bad: Bad) -> httpx.Response:
    headers = dict(bad.headers)
    content = bad.content
    if content is None and bad.method == "POST":
        content = json.dumps(bad.body).encode()
    if content is not None:
        headers = {**JSON, **headers}
    return httpx.request(bad.method, service.base_url + bad.path, content=content, headers=headers, timeout=30)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"], error


@pytest.mark.slow
@pytest.mark.parametrize("case", SSRF_CASES, ids=[f"{c.code}:{c.why}" for c in SSRF_CASES])
def test_ssrf_spelling_is_refused(strict: Service, case: Any) -> None:
    response = httpx.post(f"{strict.base_url}/api/transcribe", json={"url": case.url}, headers=AUTH, timeout=30)
    assert_error(response, 400, case.code)


@pytest.mark.slow
@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.id for b in BAD_REQUESTS])
def test_bad_request_gets_a_clear_error(strict: Service, bad: Bad) -> None:
    assert_error(send(strict, bad), bad.status, bad.code)


@pytest.mark.slow
def test_streamed_body_over_the_limit_is_refused(strict: Service) -> None:
    # No Content-Length (chunked): the limit is checked on what arrives.
    response = httpx.post(f"{strict.base_url}/api/transcribe", content=_chunks(40_000), headers={**AUTH, **JSON})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body_too_large")


@pytest.mark.slow
def test_token_is_compared_as_bytes_of_any_kind(strict: Service) -> None:
    # Non-ASCII bytes in the header must be a 401 like any wrong token, not a crash.
    headers = [(b"Authorization", b"Bearer \xff\xfe" + TOKEN.encode()), (b"Content-Type", b"application/json")]
    response = httpx.post(
        f"{strict.base_url}/api/transcribe", content=b'{"url": "https://a.example/"}', headers=headers
    )
    assert_error(response, 401, "unauthorized")


@pytest.mark.slow
def test_strict_service_is_healthy_after_the_corpus(strict: Service) -> None:
    assert httpx.get(f"{strict.base_url}/healthz", timeout=30).status_code == 200
    listed = httpx.get(f"{strict.base_url}/api/tasks", headers=AUTH, timeout=30)
    if listed.status_code == 200:  # the task list exists: nothing the corpus sent became a task
        assert listed.json()["tasks"] == [], listed.json()


# ---- the second deployment: failures a worker finds, the rate limit, then a normal task -----


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def wait_notices(wecom: Any, codes: list[str], timeout: float = 60) -> list[str]:
    """The group's 【状态】 notices, once one has arrived for each error code."""
    deadline = time.monotonic() + timeout
    notices: list[str] = []
    while time.monotonic() < deadline:
        notices = [m.content for m in wecom.messages("group-a") if m.content.startswith("【状态】")]
        if all(any(f"（{code}）" in n for n in notices) for code in codes):
            return notices
        time.sleep(0.2)
    raise AssertionError(f"no failure notice for some of {codes}: {notices}")


@pytest.mark.slow
def test_links_that_fail_in_the_worker_fail_with_a_stable_code(
    local: Service, video_site: VideoSite, wecom_server: Any
) -> None:
    long_video = video_site.add_described_video(unique("two-hours"), title="Two hours", duration_s=7200)
    big_file = video_site.add_video(unique("big"), title="Too big to fetch")  # ~70 kB, no size announced
    expected = {
        video_site.url(f"/{unique('gone')}.html"): "video_not_found",  # HTTP 404
        video_site.no_media_page: "no_media",  # a page with words only
        long_video: "video_too_long",  # the page says 7200 s; the limit is 60 s
        big_file: "file_too_large",  # aborted once 30 kB arrived
    }
    responses = {url: local.submit(url) for url in expected}
    assert {url: r.status_code for url, r in responses.items()} == dict.fromkeys(expected, 202)

    views = local.wait_finished([r.json()["task_id"] for r in responses.values()], timeout=120)

    for url, response in responses.items():
        view = views[response.json()["task_id"]]
        assert view["status"] == "failed", view
        assert view["error"]["code"] == expected[url], (url, view["error"])
        assert view["error"]["message"], view["error"]
    # The group is told about each failure: what failed (title, or the link when the
    # title was never learnt) and why, with the code.
    notices = wait_notices(wecom_server, list(expected.values()))
    assert any("Too big to fetch" in n and "file_too_large" in n for n in notices), notices
    assert any(long_video in n and "video_too_long" in n for n in notices), notices


@pytest.mark.slow
def test_per_token_rate_limit_answers_429_with_retry_after(local: Service) -> None:
    burst = {"Authorization": f"Bearer {BURST_TOKEN}"}
    url = f"{local.base_url}/api/transcribe"
    answers = [httpx.post(url, json={"url": "file:///etc/passwd"}, headers=burst, timeout=30) for _ in range(12)]

    # Every submission counts, refused ones too: the first 10 in the minute get an answer, then 429.
    assert [r.status_code for r in answers] == [400] * RATE_PER_MINUTE + [429] * 2
    limited = answers[-1]
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert BURST_TOKEN not in limited.text
    # Reads are not limited, and the other token has its own window.
    assert httpx.get(f"{local.base_url}/api/task/{'A' * 22}", headers=burst, timeout=30).status_code == 404
    other = httpx.post(url, json={"url": "file:///etc/passwd"}, headers=local.auth, timeout=30)
    assert_error(other, 400, "invalid_url")


@pytest.mark.slow
def test_service_is_healthy_and_works_after_everything(local: Service, video_site: VideoSite) -> None:
    assert httpx.get(f"{local.base_url}/healthz", timeout=30).status_code == 200
    name = unique("after")
    page = video_site.add_video(name, subtitles_vtt=SPEECH_EN_VTT, title=f"After the storm {name}")

    response = local.submit(page)

    assert response.status_code == 202, response.text
    view = local.wait_finished([response.json()["task_id"]], timeout=120)[response.json()["task_id"]]
    assert view["status"] == "done", view
    assert view["source"] == "subtitles"
    assert "quick brown fox" in view["transcript"].lower()
    assert view["delivery"]["state"] == "sent"


# ---- the limiter itself, without Ray ----------------------------------------------------------


def test_sliding_window_allows_the_limit_then_says_how_long_to_wait() -> None:
    now = [100.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    key = token_key("secret-token")

    allowed = [limiter.hit(key) for _ in range(3)]
    now[0] += 20
    refused = limiter.hit(key)
    now[0] += 40.5  # the first hits leave the window
    again = limiter.hit(key)

    assert allowed == [None, None, None]
    assert refused == pytest.approx(40.0)
    assert again is None
    assert limiter.hit(token_key("another-token")) is None  # windows are per token
    assert retry_after_header(0.2) == "1" and retry_after_header(40.0) == "40"


def test_window_key_is_not_the_token() -> None:
    key = token_key("secret-token")
    assert "secret-token" not in key
    assert key == token_key("secret-token") != token_key("secret-tokem")
