"""`vidscribe doctor`: check what a first task needs, one line per check, each failure with its fix.

Each check is a small function of a `Checkup` (the settings and the flags) that returns a
`Finding`; `CHECKS` runs them in the order a task meets them. A warning leaves the exit
status 0; a FAIL (something a task needs is broken) makes it 1. Every line is scrubbed of
the LLM key, the API tokens and webhook keys before it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import imageio_ffmpeg
import openai
from pydantic import ValidationError

from actors.delivery.redact import redact
from actors.delivery.wecom import ERR_BAD_WEBHOOK, ERR_RATE_LIMITED, WeComClient, webhook_key
from actors.domain.errors import DeliveryError, TranscriptionError
from actors.llm.failures import server_reason
from actors.llm.probe import Probe, probe
from actors.speech.bundled_model import DEFAULT_MODEL_NAME, DEFAULT_MODEL_SHA256, ensure_default_model
from actors.speech.models import resolve_model
from actors.storage.schema import SCHEMA_VERSION
from actors.storage.store import STORE_FILE
from serve_app.cli.doctor_bot import wecom_bot_verdict
from serve_app.settings import Settings

MIN_FREE_BYTES = 300 * 1024**2  # the assembled model (145 MB) and a short video
YTDLP_MAX_AGE_DAYS = 60  # sites change weekly: an old yt-dlp is the usual cause of failed downloads
PROBE_TIMEOUT_S = 30.0  # one ffmpeg run, one LLM request
RAY_CONNECT_TIMEOUT_S = 30.0  # ray.init(address=...) retries for minutes when nobody answers
RAY_START_TIMEOUT_S = 180.0
WEBHOOK_PATH = "/cgi-bin/webhook/send"
WEBHOOK_FIX = "copy it from the group robot's settings: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
TEST_MESSAGE = "【状态】vidscribe doctor: test message; delivery to this group works."

# Run in a child process: a cluster that never answers costs a timeout, not a hung doctor,
# and the doctor itself never holds a Ray connection.
_RAY_PROBE = """
import logging, ray
ray.init(logging_level=logging.ERROR)
ray.get(ray.remote(num_cpus=0)(lambda: None).remote(), timeout=60)
nodes = sum(1 for node in ray.nodes() if node["Alive"])
resources = ray.cluster_resources()
print(f"{nodes} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs")
"""


class Status(StrEnum):
    """A check's verdict; only FAIL makes the exit status non-zero."""

    OK = "ok"
    WARN = "warn"  # worth knowing; the service still works
    FAIL = "FAIL"  # a task will fail until it is fixed


@dataclass(frozen=True)
class Finding:
    """What one check found and, unless it is ok, what to do about it."""

    status: Status
    detail: str
    fix: str = ""


def ok(detail: str) -> Finding:
    return Finding(Status.OK, detail)


def warn(detail: str, fix: str) -> Finding:
    return Finding(Status.WARN, detail, fix)


def fail(detail: str, fix: str) -> Finding:
    return Finding(Status.FAIL, detail, fix)


@dataclass(frozen=True)
class Checkup:
    """What the checks read: the settings and the command's flags."""

    settings: Settings
    send_test: bool = False
    start_ray: bool = False


Check = Callable[[Checkup], Finding]


# -- the checks ---------------------------------------------------------------------------


def check_ffmpeg(checkup: Checkup) -> Finding:
    """The ffmpeg yt-dlp is given (actors/media/ytdlp.py): IMAGEIO_FFMPEG_EXE, else imageio-ffmpeg's own, else PATH."""
    chosen = os.environ.get("IMAGEIO_FFMPEG_EXE")
    fix = (
        f"IMAGEIO_FFMPEG_EXE={chosen} names no working ffmpeg: fix or unset it"
        if chosen
        else "reinstall imageio-ffmpeg (`pip install --force-reinstall imageio-ffmpeg`) or install ffmpeg on PATH"
    )
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return fail("no ffmpeg: neither imageio-ffmpeg's own binary nor one on PATH", fix)
    try:
        run = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return fail(f"cannot run {exe!r}: {getattr(e, 'strerror', None) or e}", fix)
    if run.returncode != 0:
        return fail(f"`{exe} -version` exited with status {run.returncode}", fix)
    version = run.stdout.partition("\n")[0].partition(" Copyright")[0]
    return ok(f"{version} ({exe})")


def check_data_dir(checkup: Checkup) -> Finding:
    """VIDSCRIBE_DATA_DIR exists (or is created now), takes a file, and has room."""
    data_dir = checkup.settings.data_dir
    existed = data_dir.is_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as e:
        return fail(
            f"{data_dir} cannot be created or written: {e.strerror or e}",
            "set VIDSCRIBE_DATA_DIR to a folder this user can write",
        )
    free = shutil.disk_usage(data_dir).free
    where = f"{data_dir}{'' if existed else ' (created)'}: {_gib(free)} free"
    if free < MIN_FREE_BYTES:
        return fail(where, "free some space, or set VIDSCRIBE_DATA_DIR to a larger disk")
    largest = checkup.settings.media.max_download_bytes
    if free < largest:
        return warn(
            f"{where}, less than the largest download accepted ({_gib(largest)})",
            "free some space, or lower VIDSCRIBE_MEDIA__MAX_DOWNLOAD_BYTES",
        )
    return ok(f"{where}, writable")


def check_model(checkup: Checkup) -> Finding:
    """The bundled Whisper model is assembled (now, if need be) and its model.bin matches the checksum."""
    settings = checkup.settings
    if settings.asr.model != DEFAULT_MODEL_NAME:
        return _check_own_model(settings)
    try:
        target = ensure_default_model(settings.data_dir)
    except TranscriptionError as e:  # its message is "what is wrong; what to do"
        detail, _, fix = e.message.partition("; ")
        return fail(detail, fix)
    except OSError as e:
        return fail(
            f"cannot assemble it under {settings.data_dir}: {e.strerror or e}", "fix the data dir (see its line)"
        )
    # ensure_default_model trusts its marker (sizes and times); the doctor reads every byte.
    with (target / "model.bin").open("rb") as model:
        if hashlib.file_digest(model, "sha256").hexdigest() != DEFAULT_MODEL_SHA256:
            return fail(f"{target}/model.bin is corrupt (wrong sha256)", f"delete {target}: the next start rebuilds it")
    return ok(f"bundled Whisper base in {target}, sha256 verified")


def _check_own_model(settings: Settings) -> Finding:
    try:
        folder = resolve_model(settings.asr, settings.data_dir)
    except TranscriptionError as e:  # "what is missing; what to run"
        detail, _, fix = e.message.partition("; ")
        return fail(detail, fix or "set VIDSCRIBE_ASR__MODEL to a model folder, or to 'base' for the bundled one")
    if not (Path(folder) / "model.bin").is_file():
        return fail(f"{folder} holds no model.bin", "pull the model again: vidscribe models pull NAME")
    return ok(f"{settings.asr.model} in {folder}")


def check_store(checkup: Checkup) -> Finding:
    """The Store's SQLite file opens and has a schema this vidscribe knows (read only: nothing is migrated)."""
    path = checkup.settings.data_dir / STORE_FILE
    if not path.exists():
        if not path.parent.is_dir():
            return warn(f"{path}: not checked, the data dir is unusable", "fix the data dir (see its line)")
        return ok(f"{path} will be created at the first start")
    try:
        # Only reads. Not mode=ro: a read-only connection leaves the WAL files behind.
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=5)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tasks = db.execute("SELECT count(*) FROM tasks").fetchone()[0] if version else 0
    except sqlite3.Error as e:
        return fail(
            f"{path} cannot be read: {e}",
            "check its permissions, or move it aside (the next start creates an empty store)",
        )
    if version > SCHEMA_VERSION:
        return fail(
            f"{path} has schema {version}, newer than this vidscribe knows ({SCHEMA_VERSION})",
            "upgrade vidscribe, or set VIDSCRIBE_DATA_DIR to another folder",
        )
    if version < SCHEMA_VERSION:
        return ok(f"{path}: schema {version}, migrated to {SCHEMA_VERSION} at the next start")
    return ok(f"{path}: schema {version}, {tasks} tasks")


def check_ytdlp(checkup: Checkup) -> Finding:
    """yt-dlp's version is a release date: older than YTDLP_MAX_AGE_DAYS is a warning."""
    from yt_dlp.version import __version__  # here: importing yt-dlp takes a while

    upgrade = f"upgrade it: {sys.executable} -m pip install -U yt-dlp"
    age = ytdlp_age_days(__version__, dt.date.today())
    if age is None:
        return warn(f"yt-dlp {__version__}: not a date, its age is unknown", upgrade)
    if age > YTDLP_MAX_AGE_DAYS:
        return warn(f"yt-dlp {__version__} is {age} days old; sites change weekly", upgrade)
    return ok(f"yt-dlp {__version__} ({age} days old)")


def ytdlp_age_days(version: str, today: dt.date) -> int | None:
    """Days since the release `version` (2025.10.22, nightlies 2025.10.22.123456); None if not a date."""
    try:
        year, month, day = (int(part) for part in version.split(".")[:3])
        return (today - dt.date(year, month, day)).days
    except ValueError:
        return None


def check_llm(checkup: Checkup) -> Finding:
    """The configured models exist (when the server lists its models) and each answers one tiny request."""
    llm = checkup.settings.llm
    if not llm.base_url:
        return warn(
            "no LLM: raw transcripts are delivered",
            "for proofreading and summaries set VIDSCRIBE_LLM__BASE_URL (and VIDSCRIBE_LLM__API_KEY)",
        )
    key = llm.api_key.get_secret_value() if llm.api_key else ""
    models = list(dict.fromkeys([llm.proofread_model, llm.summary_model]))
    try:
        # The service's own start-up check (actors/llm/probe.py), plus one tiny request per model.
        found = asyncio.run(_probe_llm(llm.base_url, key, min(llm.timeout_s, PROBE_TIMEOUT_S), models))
    except openai.AuthenticationError as e:
        return fail(
            f"key refused by {llm.base_url} (HTTP 401): {server_reason(e, key)}", "check VIDSCRIBE_LLM__API_KEY"
        )
    except openai.APIConnectionError as e:  # timeouts included
        return fail(
            f"cannot reach {llm.base_url}: {e.__cause__ or e}",
            "check VIDSCRIBE_LLM__BASE_URL (most servers' URLs end in /v1) and that the server is up",
        )
    except openai.RateLimitError as e:
        if e.code == "insufficient_quota":
            return fail(f"{llm.base_url}: quota used up (HTTP 429)", "top up the account or use another key")
        return warn(f"{llm.base_url} is rate limiting this key now (HTTP 429)", "the service retries; check the plan")
    except openai.APIStatusError as e:
        return fail(
            f"{llm.base_url} refused a test request: HTTP {e.status_code} {server_reason(e, key)}",
            "check VIDSCRIBE_LLM__BASE_URL, the key's permissions and the model names",
        )
    if found.missing:
        choices = ", ".join(sorted(found.listed or ())[:8]) or "none"
        return fail(
            f"{llm.base_url} has no model {', '.join(found.missing)}",
            f"set VIDSCRIBE_LLM__PROOFREAD_MODEL / __SUMMARY_MODEL to one it lists: {choices}",
        )
    listed = "listed and answered" if found.listed is not None else "answered (the server lists no models)"
    return ok(f"{llm.base_url}: key accepted, {', '.join(models)} {listed}")


async def _probe_llm(base_url: str, key: str, timeout_s: float, models: list[str]) -> Probe:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key or "none", timeout=timeout_s, max_retries=0)
    try:
        return await probe(client, models, ask=True)
    finally:
        await client.close()


def check_wecom(checkup: Checkup) -> Finding:
    """Every configured webhook is a robot URL; with --send-test each group gets one test message."""
    settings = checkup.settings
    webhooks = configured_webhooks(settings)
    if not webhooks:
        return warn(
            "no webhook: results are kept in the store, not delivered",
            f"set VIDSCRIBE_WECOM__WEBHOOK_URL; {WEBHOOK_FIX}",
        )
    problems = [f"{name} {problem}" for name, url in webhooks.items() if (problem := webhook_problem(url))]
    if problems:
        return fail("; ".join(problems), WEBHOOK_FIX)
    shown = ", ".join(redact(url) for url in webhooks.values())
    if checkup.send_test:
        refused = asyncio.run(_send_test_messages(settings, list(webhooks.values())))
        if refused is not None:
            return fail(f"test message to {shown} refused: {refused.message}", _delivery_fix(refused))
        shown += ": test message delivered"
    else:
        shown += " (`--send-test` sends a test message)"
    plain = [name for name, url in webhooks.items() if urlsplit(url).scheme == "http"]
    if plain:
        return warn(
            f"{shown}; {', '.join(plain)} is plain http: the robot key travels unencrypted",
            "use https, unless it is a relay on a network you trust",
        )
    return ok(shown)


def configured_webhooks(settings: Settings) -> dict[str, str]:
    """The operator's webhooks by the variable that sets them."""
    webhooks = {}
    if settings.wecom.webhook_url is not None:
        webhooks["VIDSCRIBE_WECOM__WEBHOOK_URL"] = settings.wecom.webhook_url.get_secret_value()
    for name, client in settings.clients.items():
        if client.webhook_url is not None:
            webhooks[f"VIDSCRIBE_CLIENTS__{name.upper()}__WEBHOOK_URL"] = client.webhook_url.get_secret_value()
    return webhooks


def webhook_problem(url: str) -> str | None:
    """What keeps `url` from being a group robot's webhook URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not an https URL"
    if not parts.path.endswith(WEBHOOK_PATH):
        return f"has the path {parts.path or '/'!r}, not {WEBHOOK_PATH}"
    if not parse_qs(parts.query).get("key"):
        return "has no key=… in its query"
    return None


async def _send_test_messages(settings: Settings, webhooks: list[str]) -> DeliveryError | None:
    # One attempt: the doctor reports what WeCom answers now rather than wait out a minute of retries.
    wecom = WeComClient(
        settings.wecom.model_copy(update={"max_attempts": 1}), trusted_webhooks=settings.operator_webhooks()
    )
    try:
        for webhook in webhooks:
            await wecom.send(webhook, TEST_MESSAGE)
    except DeliveryError as e:
        return e
    finally:
        await wecom.aclose()
    return None


def _delivery_fix(error: DeliveryError) -> str:
    if error.errcode == ERR_BAD_WEBHOOK:
        return f"the key is unknown or the robot was removed; {WEBHOOK_FIX}"
    if error.errcode == ERR_RATE_LIMITED:
        return "the robot's 20 messages a minute are used up: try again in a minute"
    return "check that this machine reaches the webhook's host (proxy, firewall)"


def check_wecom_bot(checkup: Checkup) -> Finding:
    """The smart robot: off, or WeCom's long-connection server reachable (no subscribe)."""
    status, detail, fix = wecom_bot_verdict(checkup.settings.wecom_bot, checkup.settings.public_url)
    return Finding(Status(status), detail, fix)


def check_ray(checkup: Checkup) -> Finding:
    """Ray imports; the cluster at RAY_ADDRESS answers; with --ray a local Ray starts."""
    try:
        import ray
    except ImportError as e:
        return fail(f"cannot import ray: {e}", "reinstall vidscribe: pip install --force-reinstall vidscribe")
    address = os.environ.get("RAY_ADDRESS", "")
    remote = address not in ("", "local")
    if not remote and not checkup.start_ray:
        return ok(f"Ray {ray.__version__}: `vidscribe serve` starts a local Ray (`--ray` tries it now)")
    if remote:
        where, timeout_s = f"the cluster at RAY_ADDRESS={address}", RAY_CONNECT_TIMEOUT_S
        fix = "start it (`ray start --head`), correct RAY_ADDRESS, or unset it to use a local Ray"
    else:
        where, timeout_s = "a local Ray", RAY_START_TIMEOUT_S
        fix = "run `ray start --head` to see why Ray does not start (shared memory, /tmp space, ports)"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _RAY_PROBE], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return fail(f"{where}: no answer within {timeout_s:g} s", fix)
    if probe.returncode != 0:
        return fail(f"{where}: {_last_error(probe.stderr)}", fix)
    return ok(f"{where}: {probe.stdout.strip()}")


CHECKS: list[tuple[str, Check]] = [
    ("ffmpeg", check_ffmpeg),
    ("data dir", check_data_dir),
    ("speech model", check_model),
    ("store", check_store),
    ("yt-dlp", check_ytdlp),
    ("LLM", check_llm),
    ("WeCom", check_wecom),
    ("smart robot", check_wecom_bot),
    ("Ray", check_ray),
]


# -- the command --------------------------------------------------------------------------


def add_doctor_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe doctor`."""
    p = commands.add_parser(
        "doctor",
        help="check the set-up (ffmpeg, model, data dir, store, yt-dlp, LLM, WeCom, Ray) and say what to fix",
        description="Check everything a first task needs, one line per check; exit status 1 when something "
        "needed is broken (warnings alone leave it 0).",
    )
    p.add_argument("--send-test", action="store_true", help="send one test message to each configured WeCom group")
    p.add_argument("--ray", action="store_true", help="start a local Ray to prove it starts (takes a while)")
    p.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Print one line per check as it finishes, then a summary; 1 when any check failed."""
    try:
        settings = Settings()
    except ValidationError as e:
        findings: Iterable[tuple[str, Finding]] = [("settings", settings_failure(e))]
        secrets: list[str] = []
    else:
        findings = diagnose(Checkup(settings, send_test=args.send_test, start_ray=args.ray))
        secrets = secrets_of(settings)
    counts = dict.fromkeys(Status, 0)
    for name, finding in findings:
        counts[finding.status] += 1
        print(scrub(format_line(name, finding), secrets), flush=True)
    failed, warned = counts[Status.FAIL], counts[Status.WARN]
    verdict = f"{failed} failed" if failed else "all needed parts work"
    print(f"vidscribe doctor: {verdict}, {warned} warning{'s' * (warned != 1)}", flush=True)
    return 1 if failed else 0


def diagnose(checkup: Checkup) -> Iterator[tuple[str, Finding]]:
    """Every check's finding, named, in order; a check that raises is a FAIL, not the end."""
    yield "settings", ok("the VIDSCRIBE_* environment is valid")
    for name, check in CHECKS:
        try:
            yield name, check(checkup)
        except Exception as e:
            yield name, fail(f"the check itself failed: {type(e).__name__}: {e}", "please report this line")


def settings_failure(error: ValidationError) -> Finding:
    """One line naming each invalid variable (never its value: it may be a secret)."""
    problems = ["VIDSCRIBE_" + "__".join(map(str, e["loc"])).upper() + f": {e['msg']}" for e in error.errors()]
    return fail("invalid environment: " + "; ".join(problems), "correct or unset these variables")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings: tokens, the LLM key, the robot keys of the webhooks."""
    values = [token.get_secret_value() for token in settings.api_tokens]
    values += [webhook_key(url) for url in configured_webhooks(settings).values()]
    values += [client.token.get_secret_value() for client in settings.clients.values()]
    if settings.llm.api_key is not None:
        values.append(settings.llm.api_key.get_secret_value())
    if settings.wecom_bot.secret is not None:
        values.append(settings.wecom_bot.secret.get_secret_value())
    return [value for value in values if value]


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced (the checks print webhooks `redact`ed; this catches the rest)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def format_line(name: str, finding: Finding) -> str:
    line = f"{finding.status.value:<4}  {name:<12}  {finding.detail}"
    return f"{line}  -> {finding.fix}" if finding.fix else line


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _last_error(stderr: str) -> str:
    """The line of a Ray child's stderr that says why (Ray logs a lot before it)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return _short((errors or lines or ["exited without a message"])[-1])
