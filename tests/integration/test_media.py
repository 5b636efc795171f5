"""Link resolution, subtitles and download with real yt-dlp against the local video site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from actors import media
from actors.domain.errors import DownloadError, FileTooLarge, ForbiddenURL, NoMedia, VideoNotFound, VideoTooLong
from actors.domain.video import TranscriptSource, VideoInfo
from actors.media import Probe, SubtitleTrack, media_workdir
from actors.media.settings import MediaSettings
from tests.support.subtitle_files import CHINESE_TEXT, GBK_SRT, UTF16_VTT
from tests.support.text import word_overlap
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_TEXT, SPEECH_EN_VIDEO, SPEECH_EN_VTT, VideoSite

CLIP_SECONDS = 14.4  # tests/data/speech_en.*


@pytest.fixture
def settings() -> MediaSettings:
    return MediaSettings(socket_timeout_s=10)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """Where media_workdir makes its temporary directories; must be empty after every call."""
    return tmp_path / "media-tmp"


def _seconds_of_audio(path: Path) -> float:
    with av.open(str(path)) as container:
        assert any(s.type == "audio" for s in container.streams)
        assert container.duration is not None
        return container.duration / av.time_base


def test_subtitles_page_gives_the_spoken_words_without_fetching_media(
    video_site: VideoSite, settings: MediaSettings
) -> None:
    page = video_site.add_video("subbed", subtitles_vtt=SPEECH_EN_VTT, title="A fox & a baker")

    probe = media.probe(page, settings, allow_private=True)
    transcript = media.fetch_subtitles(probe, settings, allow_private=True)

    assert probe.video.title == "A fox & a baker"
    assert probe.video.url == page
    assert [(t.language, t.ext, t.automatic) for t in probe.subtitles] == [("en", "vtt", False)]
    assert transcript is not None
    assert transcript.source == TranscriptSource.SUBTITLES
    assert transcript.language == "en"
    assert word_overlap(SPEECH_EN_TEXT, transcript.text) == 1.0
    assert transcript.segments[0].start == pytest.approx(0.3)
    assert video_site.requested("/media/subbed.en.vtt") == 1
    assert video_site.requested(video_site.media_path("subbed")) == 0  # no download for a subtitled video


def test_page_without_subtitles_downloads_audio_with_growing_progress(
    video_site: VideoSite, settings: MediaSettings, base: Path
) -> None:
    page = video_site.add_video("plain-dl", throttle_bps=400_000)
    progress: list[tuple[int, int | None]] = []

    probe = media.probe(page, settings, allow_private=True)
    assert probe.subtitles == []
    assert media.fetch_subtitles(probe, settings, allow_private=True) is None
    with media_workdir(base) as workdir:
        audio = media.download_audio(
            probe, workdir, settings, on_progress=lambda done, total: progress.append((done, total)), allow_private=True
        )
        assert audio.parent == workdir
        assert _seconds_of_audio(audio) == pytest.approx(CLIP_SECONDS, abs=0.5)
        size = audio.stat().st_size

    assert list(base.iterdir()) == []  # the workdir and the media are gone
    done = [d for d, _ in progress]
    assert len(done) >= 3
    assert done == sorted(done) and len(set(done)) == len(done)  # strictly growing
    assert progress[-1] == (size, size)  # Content-Length was advertised


def test_audio_only_source_is_preferred_over_the_video(
    video_site: VideoSite, settings: MediaSettings, base: Path
) -> None:
    video_site.add_file("/both/talk.mp4", SPEECH_EN_VIDEO, "video/mp4")
    video_site.add_file("/both/talk.m4a", SPEECH_EN_AUDIO, "audio/mp4")
    page = video_site.add_page(
        "/both.html",
        "<html><head><title>Both</title></head><body><video controls>"
        '<source src="/both/talk.mp4" type="video/mp4"><source src="/both/talk.m4a" type="audio/mp4">'
        "</video></body></html>",
    )

    probe = media.probe(page, settings, allow_private=True)
    with media_workdir(base) as workdir:
        audio = media.download_audio(probe, workdir, settings, allow_private=True)
        assert audio.suffix == ".m4a"

    assert video_site.requested("/both/talk.m4a") == 1
    assert video_site.requested("/both/talk.mp4") == 0


def test_direct_media_link_downloads_the_file(video_site: VideoSite, settings: MediaSettings, base: Path) -> None:
    probe = media.probe(video_site.media_file, settings, allow_private=True)

    assert probe.video.platform == "Generic"
    assert probe.video.title == "speech_en"
    with media_workdir(base) as workdir:
        audio = media.download_audio(probe, workdir, settings, allow_private=True)
        assert audio.read_bytes() == SPEECH_EN_VIDEO.read_bytes()


def test_short_link_and_its_page_share_the_cache_key(video_site: VideoSite, settings: MediaSettings) -> None:
    short = media.probe(video_site.short_link, settings, allow_private=True)
    long = media.probe(video_site.subtitles_page, settings, allow_private=True)

    assert short.video.cache_key == long.video.cache_key
    assert short.video.url == long.video.url == video_site.subtitles_page
    assert short.video.platform == "HTML5MediaEmbed"
    assert short.video.video_id.startswith("subtitled-1@")


def test_same_file_name_on_two_pages_gives_two_cache_keys(video_site: VideoSite, settings: MediaSettings) -> None:
    # yt-dlp's generic ids come from the URL's last segment: "index-1" on every site.
    one = video_site.add_video("a/index")
    two = video_site.add_video("b/index")

    first, second = (media.probe(url, settings, allow_private=True) for url in (one, two))

    assert first.video.video_id.startswith("index-1@")
    assert first.video.cache_key != second.video.cache_key


def test_preferred_language_prefix_matches_a_regional_track(video_site: VideoSite, settings: MediaSettings) -> None:
    video_site.add_file("/langs/de.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHallo Welt\n", "text/vtt")
    video_site.add_file("/langs/en.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello world\n", "text/vtt")
    page = video_site.add_page(
        "/langs.html",
        "<html><head><title>Langs</title></head><body><video src='/media/plain.mp4'>"
        '<track kind="subtitles" srclang="de" src="/langs/de.vtt">'
        '<track kind="captions" srclang="en-US" src="/langs/en.vtt"></video></body></html>',
    )
    wanted = settings.model_copy(update={"subtitle_languages": ["zh", "en"]})

    probe = media.probe(page, wanted, allow_private=True)
    transcript = media.fetch_subtitles(probe, wanted, allow_private=True)

    assert [t.language for t in probe.subtitles] == ["en-US"]
    assert transcript is not None and transcript.text == "Hello world"
    assert video_site.requested("/langs/de.vtt") == 0


def test_empty_subtitle_track_gives_none(video_site: VideoSite, settings: MediaSettings) -> None:
    page = video_site.add_video("empty-subs", subtitles_vtt="WEBVTT\n\n")

    probe = media.probe(page, settings, allow_private=True)

    assert len(probe.subtitles) == 1
    assert media.fetch_subtitles(probe, settings, allow_private=True) is None


def test_missing_page_is_video_not_found(video_site: VideoSite, settings: MediaSettings, base: Path) -> None:
    with pytest.raises(VideoNotFound), media_workdir(base):
        media.probe(video_site.missing, settings, allow_private=True)

    assert list(base.iterdir()) == []


def test_page_without_media_is_no_media(video_site: VideoSite, settings: MediaSettings, base: Path) -> None:
    with pytest.raises(NoMedia), media_workdir(base):
        media.probe(video_site.no_media_page, settings, allow_private=True)

    assert list(base.iterdir()) == []


def test_long_video_is_refused_after_download_when_the_page_did_not_say(
    video_site: VideoSite, settings: MediaSettings, base: Path
) -> None:
    page = video_site.add_video("long-unknown")
    short_limit = settings.model_copy(update={"max_duration_s": 5})

    probe = media.probe(page, short_limit, allow_private=True)
    assert probe.video.duration is None
    with pytest.raises(VideoTooLong), media_workdir(base) as workdir:
        media.download_audio(probe, workdir, short_limit, allow_private=True)

    assert list(base.iterdir()) == []


def test_long_video_is_refused_from_metadata_before_download(video_site: VideoSite, settings: MediaSettings) -> None:
    page = video_site.add_described_video("long-known", title="Two hours", author="Alice", duration_s=7200)

    ok = media.probe(page, settings, allow_private=True)
    with pytest.raises(VideoTooLong):
        media.probe(page, settings.model_copy(update={"max_duration_s": 3600}), allow_private=True)

    assert (ok.video.title, ok.video.author, ok.video.duration) == ("Two hours", "Alice", 7200)
    assert video_site.requested(video_site.media_path("long-known")) == 0


def test_large_file_is_refused_from_metadata_before_download(video_site: VideoSite, settings: MediaSettings) -> None:
    page = video_site.add_described_video("big-known", content_size=5 * 1024**3)

    with pytest.raises(FileTooLarge):
        media.probe(page, settings, allow_private=True)

    assert video_site.requested(video_site.media_path("big-known")) == 0


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "no-content-length"])
def test_large_file_is_aborted_during_download(
    video_site: VideoSite, settings: MediaSettings, base: Path, content_length: bool
) -> None:
    name = f"big-{content_length}"
    page = video_site.add_video(name, content_length=content_length, throttle_bps=200_000)
    small = settings.model_copy(update={"max_download_bytes": 20_000})
    progress: list[int] = []

    probe = media.probe(page, small, allow_private=True)
    with pytest.raises(FileTooLarge), media_workdir(base) as workdir:
        media.download_audio(
            probe, workdir, small, on_progress=lambda done, _: progress.append(done), allow_private=True
        )

    assert list(base.iterdir()) == []
    assert all(done <= 20_000 for done in progress)  # never reported past the limit


def test_replayed_probe_still_guards_media_and_subtitle_urls(
    video_site: VideoSite, settings: MediaSettings, base: Path
) -> None:
    # A probe resolved where private hosts were allowed must not open them where they are not.
    page = video_site.add_video("guarded", subtitles_vtt=SPEECH_EN_VTT)
    probe = media.probe(page, settings, allow_private=True)

    assert media.fetch_subtitles(probe, settings, allow_private=False) is None
    with pytest.raises(ForbiddenURL), media_workdir(base) as workdir:
        media.download_audio(probe, workdir, settings, allow_private=False)

    assert video_site.requested("/media/guarded.en.vtt") == 0
    assert video_site.requested(video_site.media_path("guarded")) == 0
    assert list(base.iterdir()) == []


def test_private_link_is_refused_before_any_request(video_site: VideoSite, settings: MediaSettings) -> None:
    page = video_site.add_video("private")

    with pytest.raises(ForbiddenURL):
        media.probe(page, settings)

    assert video_site.requested(page) == 0


def test_workdir_is_removed_after_an_exception(base: Path) -> None:
    def interrupted_download() -> None:
        with media_workdir(base) as workdir:
            (workdir / "media.m4a.part").write_bytes(b"x" * 100)
            raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        interrupted_download()

    assert list(base.iterdir()) == []


def test_subtitle_choice_follows_preferences_then_automatic_captions() -> None:
    # The shapes yt-dlp gives for YouTube (auto captions with machine translations) and
    # Bilibili (AI subtitles as "ai-zh", danmaku as xml, files already fetched into "data").
    info = {
        "subtitles": {
            "danmaku": [{"ext": "xml", "url": "https://comment.example/1.xml"}],
            "ai-zh": [{"ext": "srt", "data": "1\n00:00:00,000 --> 00:00:01,000\n大家好\n"}],
            "en-GB": [
                {"ext": "json3", "url": "https://subs.example/en.json3"},
                {"ext": "vtt", "url": "https://subs.example/en.vtt"},
            ],
        },
        "automatic_captions": {
            "en-orig": [{"ext": "vtt", "url": "https://subs.example/auto?lang=en"}],
            "zh-Hans": [{"ext": "vtt", "url": "https://subs.example/auto?lang=en&tlang=zh-Hans"}],
        },
    }
    settings = MediaSettings(subtitle_languages=["zh-Hans", "zh", "en"])

    chosen = media.choose_subtitles(info, settings)
    without_auto = media.choose_subtitles(info, settings.model_copy(update={"auto_captions": False}))

    assert [(t.language, t.ext, t.automatic) for t in chosen] == [
        ("en-GB", "vtt", False),  # manual first, in the format parsed best
        ("zh", "srt", True),  # Bilibili's AI subtitles count as automatic
        ("en", "vtt", True),  # the original auto captions, never the machine translation
    ]
    assert chosen[1].data is not None and chosen[1].url == ""
    assert [t.automatic_captions for t in chosen] == [False, False, True]  # only YouTube-style ones roll
    assert [t.language for t in without_auto] == ["en-GB"]


def test_inline_subtitle_track_needs_no_request(settings: MediaSettings) -> None:
    video = VideoInfo(url="https://www.bilibili.com/video/BV1xx", platform="BiliBili", video_id="BV1xx")
    track = SubtitleTrack(
        language="zh", ext="srt", url="", automatic=True, data="1\n00:00:01,000 --> 00:00:02,500\n大家好\n"
    )

    transcript = media.fetch_subtitles(Probe(video=video, subtitles=[track], info={}), settings)

    assert transcript is not None
    assert [(s.start, s.end, s.text) for s in transcript.segments] == [(1.0, 2.5, "大家好")]


def _video_without_audio(source: Path, target: Path) -> Path:
    """Remux only the video stream of `source` (a silent screen recording, say)."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video_in = inp.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        for packet in inp.demux(video_in):
            if packet.dts is not None:
                packet.stream = video_out
                out.mux(packet)
    return target


def test_video_without_audio_is_no_media(
    video_site: VideoSite, settings: MediaSettings, base: Path, tmp_path: Path
) -> None:
    page = video_site.add_video("silent", media=_video_without_audio(SPEECH_EN_VIDEO, tmp_path / "silent.mp4"))

    probe = media.probe(page, settings, allow_private=True)
    with pytest.raises(NoMedia, match="no audio"), media_workdir(base) as workdir:
        media.download_audio(probe, workdir, settings, allow_private=True)

    assert list(base.iterdir()) == []


def test_corrupt_media_is_a_download_error(video_site: VideoSite, settings: MediaSettings, base: Path) -> None:
    page = video_site.add_video("corrupt", media=b"this is not an mp4 file " * 100)

    probe = media.probe(page, settings, allow_private=True)
    with pytest.raises(DownloadError, match="not playable"), media_workdir(base) as workdir:
        media.download_audio(probe, workdir, settings, allow_private=True)

    assert list(base.iterdir()) == []


def test_warm_up_leaves_every_extractor_pattern_compiled() -> None:
    from yt_dlp.extractor import gen_extractor_classes

    media.warm_up()
    patterned = [ie for ie in gen_extractor_classes() if ie._VALID_URL is not False]
    assert len(patterned) > 1000  # yt-dlp's site list, not a stub
    assert all("_VALID_URL_RE" in ie.__dict__ for ie in patterned)


def add_page_with_tracks(site: VideoSite, name: str, tracks: dict[str, bytes]) -> str:
    """A page playing the site's clip with one <track> per `tracks` item ("zh.srt" -> file bytes)."""
    markup = ""
    for suffix, data in tracks.items():
        path = site.add_file(
            f"/tracks/{name}.{suffix}", data, "text/plain; charset=utf-8"
        )  # a wrong charset, as sites send
        markup += f'<track kind="subtitles" srclang="{suffix.split(".")[0]}" src="{path}">'
    site.add_file(f"/media/{name}.mp4", SPEECH_EN_VIDEO, "video/mp4")
    return site.add_page(
        f"/{name}.html",
        f"<html><head><title>{name}</title></head><body><video src='/media/{name}.mp4'>{markup}</video></body></html>",
    )


@pytest.mark.parametrize(
    ("track", "data", "text", "guessed"),
    [("zh.srt", GBK_SRT, CHINESE_TEXT, True), ("en.vtt", UTF16_VTT, SPEECH_EN_TEXT, False)],
    ids=["gbk-srt", "utf16-vtt"],
)
def test_legacy_encoded_tracks_give_their_words(
    video_site: VideoSite, settings: MediaSettings, track: str, data: bytes, text: str, guessed: bool
) -> None:
    name = f"encoded-{track.replace('.', '-')}"
    page = add_page_with_tracks(video_site, name, {track: data})
    warnings: list[str] = []

    probe = media.probe(page, settings, allow_private=True)
    transcript = media.fetch_subtitles(probe, settings, allow_private=True, on_warning=warnings.append)

    assert transcript is not None
    assert transcript.text == text
    assert "\ufffd" not in transcript.text
    assert video_site.requested(f"/media/{name}.mp4") == 0
    assert [("gb18030" in w and "guessed" in w) for w in warnings] == ([True] if guessed else [])


def test_undecodable_track_is_skipped_with_a_warning(video_site: VideoSite, settings: MediaSettings) -> None:
    page = add_page_with_tracks(video_site, "undecodable", {"zh.srt": bytes(range(256)) * 4, "en.vtt": UTF16_VTT})
    warnings: list[str] = []

    probe = media.probe(page, settings, allow_private=True)
    transcript = media.fetch_subtitles(probe, settings, allow_private=True, on_warning=warnings.append)

    assert [t.language for t in probe.subtitles] == ["zh", "en"]
    assert transcript is not None and transcript.language == "en"  # the next track, not U+FFFD
    assert len(warnings) == 1 and warnings[0].startswith("subtitle track zh (srt) skipped: not UTF-8")


@pytest.mark.slow
def test_service_reads_gbk_and_utf16_tracks_without_asr(service_factory: Any, video_site: VideoSite) -> None:
    service = service_factory()
    pages = {  # page -> (its words, what the task says about the track)
        add_page_with_tracks(video_site, "svc-gbk", {"zh.srt": GBK_SRT}): (CHINESE_TEXT, ["gb18030"]),
        add_page_with_tracks(video_site, "svc-utf16", {"en.vtt": UTF16_VTT}): (SPEECH_EN_TEXT, []),
    }

    expected = {service.submit(page).json()["task_id"]: want for page, want in pages.items()}
    views = service.wait_finished(list(expected))

    for task_id, (text, warned) in expected.items():
        view = views[task_id]
        assert (view["status"], view["source"], view["transcript"]) == ("done", "subtitles", text)
        assert "\ufffd" not in view["transcript"]
        assert [w for w in warned if any(w in warning for warning in view["warnings"])] == warned
    assert video_site.requested("/media/svc-gbk.mp4") == video_site.requested("/media/svc-utf16.mp4") == 0
