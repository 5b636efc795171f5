"""`vidscribe models pull NAME` and `vidscribe models list`: speech models fetched once.

The service never downloads a model while it serves (actors/speech/models.py); this is the
one place that does, on a machine with the internet, or from a folder copied by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.speech.bundled_model import DEFAULT_MODEL_NAME, MODEL_DIRNAME
from actors.speech.models import model_roots, pull, pulled_models
from serve_app.settings import Settings


def add_models_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe models pull|list`."""
    p = commands.add_parser(
        "models",
        help="fetch a faster-whisper model once (pull), or list the models on this machine",
        description="Speech models other than the bundled base are fetched once with `pull`, never while serving.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pull_p = actions.add_parser(
        "pull",
        help="fetch a model into the data dir (or --to DIR) and check that it loads",
        description="Fetch a faster-whisper model (tiny, base, small, medium, large-v3-turbo, large-v3, ..., or a "
        "Hugging Face id of a CTranslate2 Whisper model) from Hugging Face, or copy it from --from DIR, into "
        "<data_dir>/models/faster-whisper-NAME; then set VIDSCRIBE_ASR__MODEL=NAME.",
    )
    pull_p.add_argument("name", metavar="NAME", help="model name or Hugging Face id")
    pull_p.add_argument("--to", type=Path, metavar="DIR", help="models folder (default: <data_dir>/models)")
    pull_p.add_argument(
        "--from", dest="source", type=Path, metavar="DIR", help="copy from this model folder instead of downloading"
    )
    pull_p.set_defaults(handler=run_pull)
    list_p = actions.add_parser("list", help="the models a Transcriber here can load by name")
    list_p.set_defaults(handler=run_list)


def run_pull(args: argparse.Namespace) -> int:
    root = args.to if args.to is not None else Settings().data_dir / "models"
    where = f"from {args.source}" if args.source else "from Hugging Face"
    print(f"vidscribe: fetching {args.name} {where} into {root} ...", file=sys.stderr)
    try:
        folder = pull(args.name, root, source=args.source)
    except ValueError as e:
        print(f"vidscribe: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # network, disk, a model that does not load: nothing half-written is left
        print(f"vidscribe: error: could not fetch {args.name}: {e}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    print(f"vidscribe: {args.name} is in {folder} ({size / 2**20:.0f} MiB)")
    print(f"vidscribe: use it with VIDSCRIBE_ASR__MODEL={args.name}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    settings = Settings()
    bundled = settings.data_dir / "models" / MODEL_DIRNAME
    print(f"{DEFAULT_MODEL_NAME}\t(bundled; assembled in {bundled} on first use)")
    for name, folder, size in pulled_models(model_roots(settings.asr, settings.data_dir)):
        print(f"{name}\t{folder}\t{size / 2**20:.0f} MiB")
    return 0
