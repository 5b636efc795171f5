"""The `vidscribe` command line: one argparse subcommand per verb, each registered below."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError
from tqdm import tqdm

from actors.domain.errors import InvalidURL, VidscribeError
from actors.domain.formats import FORMATS, render
from actors.domain.video import Transcript
from actors.speech.hints import PageHints
from actors.speech.recognizer import SpeechRecognizer
from serve_app.cli.backup import add_backup_commands
from serve_app.cli.client import add_status_command, add_submit_command, add_task_action_commands
from serve_app.cli.doctor import add_doctor_command
from serve_app.cli.models import add_models_command
from serve_app.cli.serve import add_serve_command
from serve_app.settings import Settings

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a vidscribe error, 2 usage)."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except VidscribeError as e:
        print(f"vidscribe: error: {e.message} [{e.code}]", file=sys.stderr)
        return 1
    except ValidationError as e:  # bad VIDSCRIBE_* environment
        print(f"vidscribe: invalid settings: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="vidscribe", description="Video link -> transcript, proofread and summary, sent to WeCom."
    )
    parser.add_argument("--version", action="version", version=f"vidscribe {version('vidscribe')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


# ---------------------------------------------------------------------------------------
# vidscribe transcribe URL_OR_FILE
# ---------------------------------------------------------------------------------------


def add_transcribe_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe transcribe`."""
    p = commands.add_parser(
        "transcribe",
        help="transcribe a video link or a local media file, without the service",
        description="Print the transcript of a link (platform subtitles first, else speech "
        "recognition) or of a local audio/video file.",
    )
    p.add_argument("source", metavar="URL_OR_FILE", help="http(s) video link or local media file")
    p.add_argument("-f", "--format", choices=FORMATS, default="txt", help="output format (default: txt)")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    p.add_argument("--model", help="faster-whisper model name or path (default: settings, 'base' bundled)")
    p.add_argument("--language", help="force the spoken language, e.g. 'zh' or 'en' (default: detect)")
    p.set_defaults(handler=run_transcribe)


def run_transcribe(args: argparse.Namespace) -> int:
    """Transcribe one source and write the rendered transcript."""
    settings = _with_overrides(Settings(), model=args.model, language=args.language)
    source: str = args.source
    if Path(source).is_file():
        transcript = _transcribe_file(Path(source), settings)
    elif urlsplit(source).scheme in ("http", "https"):
        transcript = _transcribe_url(source, settings)
    else:
        raise InvalidURL(f"{source!r} is neither an existing file nor an http(s) URL")
    text = render(transcript, args.format)
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"vidscribe: wrote {args.output} ({transcript.source.value})", file=sys.stderr)
    return 0


def _with_overrides(settings: Settings, *, model: str | None, language: str | None) -> Settings:
    asr = settings.asr
    media_settings = settings.media
    if model:
        asr = asr.model_copy(update={"model": model})
    if language:
        asr = asr.model_copy(update={"language": language})
        # Subtitles in the asked language beat any other track.
        languages = [language, *(lang for lang in media_settings.subtitle_languages if lang != language)]
        media_settings = media_settings.model_copy(update={"subtitle_languages": languages})
    return settings.model_copy(update={"asr": asr, "media": media_settings})


def _transcribe_file(audio: Path, settings: Settings, hints: PageHints | None = None) -> Transcript:
    recognizer = SpeechRecognizer(settings.asr, settings.data_dir)
    with _Progress("transcribing", unit="s") as progress:
        return recognizer.transcribe(audio, hints=hints, on_progress=progress, on_warning=_warn)


def _warn(text: str) -> None:
    print(f"vidscribe: {text}", file=sys.stderr)


def _transcribe_url(url: str, settings: Settings) -> Transcript:
    # Imported here: yt-dlp is slow to import and a local file never needs it.
    from actors import media

    private = settings.allow_private_urls
    probe = media.probe(url, settings.media, allow_private=private)
    if probe.subtitles:
        subtitles = media.fetch_subtitles(probe, settings.media, allow_private=private)
        if subtitles is not None:
            return subtitles
    workdir_base = settings.data_dir / "tmp"
    workdir_base.mkdir(parents=True, exist_ok=True)
    with media.media_workdir(workdir_base) as workdir:
        with _Progress("downloading", unit="B", unit_scale=True) as progress:
            audio = media.download_audio(probe, workdir, settings.media, on_progress=progress, allow_private=private)
        return _transcribe_file(Path(audio), settings, PageHints.of(probe.video))


class _Progress:
    """A tqdm bar on stderr fed with absolute `(done, total)` reports, as the workers give them."""

    def __init__(self, desc: str, *, unit: str, unit_scale: bool = False) -> None:
        self._bar = tqdm(desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: float, total: float | None) -> None:
        # Whole units: tqdm would print seconds as 12.399999999.
        if total and self._bar.total != round(total):
            self._bar.total = round(total)
        self._bar.update(round(done) - self._bar.n)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    add_transcribe_command,
    add_serve_command,  # serve_app/cli/serve.py
    add_submit_command,  # serve_app/cli/client.py
    add_status_command,
    add_task_action_commands,  # cancel, retry, redeliver
    add_doctor_command,
    add_backup_commands,  # serve_app/cli/backup.py: backup, restore
    add_models_command,  # serve_app/cli/models.py: models pull, models list
]


if __name__ == "__main__":
    sys.exit(main())
