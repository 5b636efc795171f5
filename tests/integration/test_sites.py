"""Sites as they are, against the local video site with real yt-dlp: login walls (412 without
a session cookie), geo blocks, 429s, a download proxy (every request counted, the SSRF guard
still checking each target), multi-part videos and playlists; and through the service on
Ray: playlist items as tasks delivered in order, with no cookie or proxy password anywhere
a user or a log could see it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from yt_dlp.utils import DownloadError

from actors import media
from actors.domain.errors import AccessDenied, ForbiddenURL, GeoBlocked, RateLimitedBySite, VidscribeError
from actors.media import media_workdir
from actors.media.settings import COOKIES_ENV, PROXY_ENV, MediaSettings
from actors.net.proxies import YTDLP_PROXY_SCHEMES, ProxyRoutes
from actors.net.ytdlp_guard import GuardedYoutubeDL, forbidden_cause
from tests.support.asr import HEARD_THE_CLIP
from tests.support.forward_proxy import ForwardProxy
from tests.support.text import word_overlap
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_TEXT, SPEECH_EN_VTT, VideoSite
from tests.support.wecom_receiver import parse_blocks

COOKIE_VALUE = "sessdata-" + uuid.uuid4().hex  # unique: found anywhere only if it leaked
PROXY_PASSWORD = "proxy-pw-" + uuid.uuid4().hex
QUIET: dict[str, Any] = {"quiet": True, "no_warnings": True, "noprogress": True}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def cookies_txt(path: Path, value: str = COOKIE_VALUE, domain: str = "127.0.0.1") -> Path:
    """A Netscape cookies.txt, as browser cookie-export extensions write it."""
    path.write_text(f"# Netscape HTTP Cookie File\n{domain}\tFALSE\t/\tFALSE\t0\tSESSDATA\t{value}\n")
    return path


def spoken(words: str) -> str:
    """A one-cue WebVTT file saying `words`."""
    return f"WEBVTT\n\n00:00:00.500 --> 00:00:04.000\n{words}\n"


def changed(settings: MediaSettings, **changes: Any) -> MediaSettings:
    """`settings` with `changes`, validated as the environment's would be."""
    return MediaSettings(**{**settings.model_dump(), **changes})


@pytest.fixture
def settings() -> MediaSettings:
    return MediaSettings(socket_timeout_s=10, site_retry_delays_s=[0.05, 0.05])


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy(user="vidscribe", password=PROXY_PASSWORD) as running:
        yield running


def only_second_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Test policy: 127.0.0.2 plays the private network, 127.0.0.1 the public internet."""
    return ip == ipaddress.IPv4Address("127.0.0.2")


# ------------------------------------------------------------------ cookies, refusals


def test_a_page_behind_a_login_is_read_with_the_cookies_file(
    video_site: VideoSite, settings: MediaSettings, tmp_path: Path
) -> None:
    name = unique("members")
    page = video_site.add_video(name, subtitles_vtt=SPEECH_EN_VTT, cookie=("SESSDATA", COOKIE_VALUE))

    with pytest.raises(AccessDenied) as refused:
        media.probe(page, settings, allow_private=True)
    assert refused.value.code == "access_denied"
    assert COOKIES_ENV in refused.value.message and "412" in refused.value.message
    assert video_site.requested(f"/media/{name}.en.vtt") == 0

    jar = cookies_txt(tmp_path / "cookies.txt")
    exported = jar.read_text()
    with_cookies = changed(settings, cookies_file=jar)
    probe = media.probe(page, with_cookies, allow_private=True)
    transcript = media.fetch_subtitles(probe, with_cookies, allow_private=True)

    assert transcript is not None and "quick brown fox" in transcript.text  # page and subtitles passed the 412
    assert video_site.requested(f"/media/{name}.en.vtt") == 1
    assert jar.read_text() == exported  # yt-dlp saved its jar into a private copy, not the operator's file
    assert COOKIE_VALUE not in repr(probe)


def test_the_media_download_sends_the_cookies_too(
    video_site: VideoSite, settings: MediaSettings, tmp_path: Path
) -> None:
    name = unique("members-asr")
    page = video_site.add_video(name, SPEECH_EN_AUDIO, cookie=("SESSDATA", COOKIE_VALUE))
    with_cookies = changed(settings, cookies_file=cookies_txt(tmp_path / "cookies.txt"))
    probe = media.probe(page, with_cookies, allow_private=True)
    with media_workdir(tmp_path / "work") as workdir:
        audio = media.download_audio(probe, workdir, with_cookies, allow_private=True)
        assert audio.stat().st_size == SPEECH_EN_AUDIO.stat().st_size


def test_an_unreadable_cookies_file_means_no_cookies_not_a_crash(
    video_site: VideoSite, settings: MediaSettings, tmp_path: Path
) -> None:
    page = video_site.add_video(unique("open"), subtitles_vtt=SPEECH_EN_VTT)
    missing = changed(settings, cookies_file=tmp_path / "not-mounted.txt")
    assert media.probe(page, missing, allow_private=True).video.title


def test_a_geo_blocked_answer_names_the_proxy_setting(video_site: VideoSite, settings: MediaSettings) -> None:
    with pytest.raises(GeoBlocked) as refused:
        media.probe(video_site.add_geo_blocked(unique("abroad")), settings, allow_private=True)
    assert refused.value.code == "geo_blocked"
    assert PROXY_ENV in refused.value.message


def test_a_site_answering_429_is_asked_again_then_given_up(video_site: VideoSite, settings: MediaSettings) -> None:
    page = video_site.add_video(unique("busy"), subtitles_vtt=SPEECH_EN_VTT, title="Busy site")
    video_site.fail_first(page, [429, 429])
    assert media.probe(page, settings, allow_private=True).video.title == "Busy site"  # third try passes
    assert video_site.requested(page) == 3

    video_site.fail_first(page, [429, 429, 429])
    with pytest.raises(RateLimitedBySite) as refused:
        media.probe(page, settings, allow_private=True)
    assert refused.value.code == "rate_limited_by_site"
    assert "2 retries" in refused.value.message
    assert video_site.requested(page) == 6


# ------------------------------------------------------------------ proxy


def test_every_request_for_a_video_goes_through_the_proxy(
    video_site: VideoSite, settings: MediaSettings, proxy: ForwardProxy, tmp_path: Path
) -> None:
    subtitled = video_site.add_video(unique("via-proxy"), subtitles_vtt=SPEECH_EN_VTT)
    plain = video_site.add_video(unique("via-proxy-asr"), SPEECH_EN_AUDIO)
    before = len(video_site.requests)
    via_proxy = changed(settings, proxy=proxy.url)

    probe = media.probe(subtitled, via_proxy, allow_private=True)
    assert media.fetch_subtitles(probe, via_proxy, allow_private=True) is not None
    probe = media.probe(plain, via_proxy, allow_private=True)
    with media_workdir(tmp_path / "work") as workdir:
        media.download_audio(probe, workdir, via_proxy, allow_private=True)

    reached_site = video_site.requests[before:]
    carried = [request.path for request in proxy.carried("http")]
    assert len(reached_site) >= 4  # two pages, a subtitle file, a media file (maybe in ranges)
    assert sorted(carried) == sorted(reached_site)  # nothing went around the proxy
    assert proxy.refused == 0  # the credentials in the proxy URL were sent


def test_proxy_rules_send_one_site_direct(video_site: VideoSite, settings: MediaSettings, proxy: ForwardProxy) -> None:
    page = video_site.add_video(unique("direct"), subtitles_vtt=SPEECH_EN_VTT)
    routed = changed(settings, proxy=proxy.url, proxy_rules=["127.0.0.1=direct"])
    media.probe(page, routed, allow_private=True)
    assert proxy.carried() == []


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_a_forbidden_target_behind_the_proxy_is_still_refused(scheme: str, proxy: ForwardProxy) -> None:
    # 127.0.0.1 plays the internet, 127.0.0.2 the private network; the proxy itself is trusted.
    public, private = VideoSite("127.0.0.1").start(), VideoSite("127.0.0.2").start()
    try:
        private.add_video("secret", subtitles_vtt=SPEECH_EN_VTT)
        start = public.add_redirect("/go", private.url("/secret.html"))
        routes = ProxyRoutes.parse(proxy.url if scheme == "http" else proxy.socks_url, [], YTDLP_PROXY_SCHEMES)
        with (
            GuardedYoutubeDL(QUIET, allow_private=False, is_forbidden=only_second_loopback, proxies=routes) as ydl,
            pytest.raises(DownloadError) as refused,
        ):
            ydl.extract_info(start, download=False)
        assert isinstance(forbidden_cause(refused.value), ForbiddenURL)
        assert "127.0.0.2" in str(refused.value)
        assert [r.port for r in proxy.carried()] == [int(public.base_url.rsplit(":", 1)[1])]  # only the hop it may take
        assert private.requests == []
    finally:
        public.close()
        private.close()


def test_the_proxy_password_never_reaches_a_site(proxy: ForwardProxy) -> None:
    # A hop routed direct after a proxied one must not carry the proxy's Proxy-Authorization.
    seen: list[dict[str, str]] = []

    class Recording(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = b"<html><title>Direct</title><video src='/v.mp4'></video></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    direct = ThreadingHTTPServer(("127.0.0.2", 0), Recording)
    threading.Thread(target=direct.serve_forever, daemon=True).start()
    site = VideoSite("127.0.0.1").start()
    try:
        start = site.add_redirect("/go", f"http://127.0.0.2:{direct.server_address[1]}/page")
        routes = ProxyRoutes.parse(proxy.url, ["127.0.0.2=direct"], YTDLP_PROXY_SCHEMES)
        with GuardedYoutubeDL(QUIET, allow_private=True, proxies=routes) as ydl:
            assert ydl.extract_info(start, download=False)["title"] == "Direct (1)"
        assert [r.path for r in proxy.carried()] == ["/go"] and proxy.refused == 0
        assert seen and not any(name.lower() == "proxy-authorization" for headers in seen for name in headers)
    finally:
        site.close()
        direct.shutdown()
        direct.server_close()


def test_a_private_link_is_refused_before_it_reaches_the_proxy(
    video_site: VideoSite, settings: MediaSettings, proxy: ForwardProxy
) -> None:
    page = video_site.add_video(unique("private"))
    with pytest.raises(ForbiddenURL):
        media.probe(page, changed(settings, proxy=proxy.url), allow_private=False)
    assert proxy.carried() == []


def test_socks5_gets_the_checked_address_not_the_name(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    # A name that rebinds after the check must not reach a private address through the proxy.
    site = VideoSite("127.0.0.1").start()
    real = socket.getaddrinfo
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])  # first the checked answer, then a rebinding one

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "videos.example":
            ip = next(answers, ["127.0.0.2"])[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        site.add_video("named", subtitles_vtt=SPEECH_EN_VTT, title="By name")
        url = f"http://videos.example:{site.base_url.rsplit(':', 1)[1]}/named.html"
        routes = ProxyRoutes.parse(proxy.socks_url, [], YTDLP_PROXY_SCHEMES)
        with GuardedYoutubeDL(QUIET, allow_private=False, is_forbidden=only_second_loopback, proxies=routes) as ydl:
            assert ydl.extract_info(url, download=False)["title"] == "By name (1)"
        assert {r.host for r in proxy.carried("socks5")} == {"127.0.0.1"}
    finally:
        site.close()


def test_https_goes_through_a_connect_tunnel(proxy: ForwardProxy) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    site = VideoSite("127.0.0.1", tls=server).start()
    try:
        page = site.add_video("secure", subtitles_vtt=SPEECH_EN_VTT, title="Secure")
        routes = ProxyRoutes.parse(proxy.url, [], YTDLP_PROXY_SCHEMES)
        params = {**QUIET, "nocheckcertificate": True}  # the tunnel is under test, not the CA
        with GuardedYoutubeDL(params, allow_private=True, proxies=routes) as ydl:
            assert ydl.extract_info(page, download=False)["title"] == "Secure (1)"
        assert [r.kind for r in proxy.carried()] == ["connect"]
        assert proxy.refused == 0
    finally:
        site.close()


# ------------------------------------------------------------------ parts and playlists


def test_a_part_link_gives_that_part_only(video_site: VideoSite, settings: MediaSettings) -> None:
    name = unique("parts")
    page = video_site.add_parts(name, [spoken(f"This is part {n}.") for n in (1, 2, 3)], title="Three parts")

    probe = media.probe(page + "?p=2", settings, allow_private=True)
    transcript = media.fetch_subtitles(probe, settings, allow_private=True)

    assert probe.video.title == "Three parts – P2"
    assert transcript is not None and transcript.text == "This is part 2."
    assert [video_site.requested(f"/media/{name}-p{n}.en.vtt") for n in (1, 2, 3)] == [0, 1, 0]
    whole = media.probe(page, settings, allow_private=True)  # no ?p=: the first part, as players start
    assert whole.video.title == "Three parts" and whole.video.video_id != probe.video.video_id


def test_a_playlist_is_refused_with_its_size_unless_items_are_asked_for(
    video_site: VideoSite, settings: MediaSettings
) -> None:
    pages = [
        video_site.add_video(unique(f"item{n}"), subtitles_vtt=SPEECH_EN_VTT, title=f"Item {n}") for n in (1, 2, 3)
    ]
    feed = video_site.add_playlist(unique("list"), pages, title="A list")

    with pytest.raises(VidscribeError) as refused:
        media.probe(feed, settings, allow_private=True)
    assert refused.value.code == "playlist_not_supported"
    assert "3 items" in refused.value.message and "playlist_items" in refused.value.message
    assert all(video_site.requested(page) == 0 for page in pages)  # counted without opening any item

    second = media.probe(feed, settings, allow_private=True, playlist_item=2)
    assert (second.video.title, second.video.url) == ("Item 2", pages[1])
    with pytest.raises(VidscribeError) as beyond:
        media.probe(feed, settings, allow_private=True, playlist_item=4)
    assert beyond.value.code == "video_not_found" and "holds 3" in beyond.value.message


# ------------------------------------------------------------------ through the service


@pytest.mark.slow
def test_playlist_items_become_tasks_delivered_in_order_and_no_secret_leaks(
    service_factory: Any, video_site: VideoSite, wecom: Any, tmp_path: Path
) -> None:
    cookie = ("SESSDATA", COOKIE_VALUE)
    # Item 1 needs ASR (slow), items 2 and 3 have subtitles (fast): order must not follow speed.
    titles = [f"Lesson {n} {uuid.uuid4().hex[:6]}" for n in (1, 2, 3)]
    pages = [video_site.add_video(unique("lesson1"), SPEECH_EN_AUDIO, title=titles[0], cookie=cookie)]
    pages += [
        video_site.add_video(unique(f"lesson{n}"), subtitles_vtt=SPEECH_EN_VTT, title=titles[n - 1], cookie=cookie)
        for n in (2, 3)
    ]
    feed = video_site.add_playlist(unique("course"), pages, title="A course")
    with ForwardProxy(user="vidscribe", password=PROXY_PASSWORD) as proxy:
        service = service_factory(
            deployment_options={"Transcriber": {"autoscaling_config": {"min_replicas": 2, "max_replicas": 2}}},
            media={"cookies_file": str(cookies_txt(tmp_path / "cookies.txt")), "proxy": proxy.url},
        )
        refused = service.submit(feed)
        accepted = service.submit(feed, playlist_items="1-3")
        assert refused.status_code == accepted.status_code == 202, accepted.text
        task_ids = accepted.json()["task_ids"]
        assert len(task_ids) == 3 and accepted.json()["task_id"] == task_ids[0]
        assert service.submit(feed, playlist_items="1-3").json()["task_ids"] == task_ids  # running: the same tasks

        views = service.wait_finished([refused.json()["task_id"], *task_ids])
        proxied = proxy.carried()

    failed = views[refused.json()["task_id"]]
    assert failed["error"]["code"] == "playlist_not_supported" and "3 items" in failed["error"]["message"]
    items = [views[task_id] for task_id in task_ids]
    assert [v["status"] for v in items] == ["done"] * 3, items
    assert [v["video"]["title"] for v in items] == titles
    assert word_overlap(SPEECH_EN_TEXT, items[0]["transcript"]) >= HEARD_THE_CLIP  # item 1 by ASR, through the proxy
    delivered = [block.title for block in parse_blocks(wecom.messages("group-a"))]
    assert delivered == titles  # three blocks, in item order

    assert proxied and proxy.refused == 0
    assert {r.path for r in proxied} >= {"/" + page.rsplit("/", 1)[1] for page in pages}

    # The secrets: not in API answers, task records (the store file), group messages or logs.
    answers = [refused.text, accepted.text, *(json.dumps(v) for v in views.values())]
    answers += [httpx.get(f"{service.base_url}/api/tasks", headers=service.auth).text]
    stored = [path.read_bytes().decode("latin-1") for path in service.data_dir.glob("*.db*")]
    group = [message.content for message in wecom.messages()]
    logs = [path.read_text(errors="replace") for path in ray_log_files()]
    assert stored and logs
    for secret in (COOKIE_VALUE, PROXY_PASSWORD):
        for where, texts in {"API": answers, "store": stored, "group": group, "logs": logs}.items():
            assert not any(secret in text for text in texts), f"{secret[:8]}… leaked into {where}"


def ray_log_files() -> list[Path]:
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())  # type: ignore[attr-defined]
    return [path for path in logs.rglob("*") if path.is_file() and re.search(r"\.(log|out|err)$", path.name)]


# ------------------------------------------------------------------ the LLM's and WeCom's own proxies


async def test_the_llm_and_the_operators_webhook_use_their_own_proxies(fake_llm: Any, wecom: Any) -> None:
    from actors.delivery.wecom import WeComClient
    from actors.llm.endpoint import Endpoint

    with ForwardProxy(user="llm", password=PROXY_PASSWORD) as llm_proxy, ForwardProxy() as wecom_proxy:
        llm = Endpoint(fake_llm.settings(proxy=llm_proxy.url))
        try:
            answer = await llm.client.chat.completions.create(
                model="fake-proofread", messages=[{"role": "user", "content": "你好。"}]
            )
        finally:
            await llm.aclose()
        assert answer.choices[0].message.content
        assert [r.kind for r in llm_proxy.carried()] == ["http"] and llm_proxy.refused == 0

        webhook = wecom.webhook_url("proxied")
        client = WeComClient(wecom.settings("proxied", proxy=wecom_proxy.url), trusted_webhooks=[webhook])
        try:
            await client.send(webhook, "through the proxy", "text")
        finally:
            await client.aclose()
        assert [m.content for m in wecom.messages("proxied")] == ["through the proxy"]
        assert len(wecom_proxy.carried()) == 1
