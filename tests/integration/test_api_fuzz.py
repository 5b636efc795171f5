"""Fuzz the live HTTP API from its own OpenAPI schema with schemathesis: no 5xx, ever.

Against the app deployed on real Ray Serve (proxy, Gateway replica, Store), not an
in-process ASGI app: the Gateway's own routes (submit, task) are methods of the Serve
ingress class and only exist inside a replica, so ASGI-only fuzzing would skip the code
that matters most.

schemathesis runs as its own CLI (`schemathesis run`), the runner its authors maintain:
its pytest loader for schemas that exist only at run time (`from_fixture`) breaks on
pytest 9 (it reads `request.node._nodeid`). Phases examples, coverage (boundary values)
and fuzzing, positive and negative data, at most MAX_EXAMPLES per operation; every
request carries a valid token so it gets past authorization into the route
(tests/integration/test_bad_input.py covers bad tokens). The HAR report of every exchange tells what
the fuzzing reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.service import TOKEN, Service

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30
TIME_LIMIT_S = 240  # the run takes ~1 min here; the bound keeps a hang from eating CI


@pytest.fixture(scope="module")
def fuzzed_service(module_service_factory: Callable[..., Service]) -> Service:
    # As production runs it (no private hosts), with a small queue: accepted junk links
    # fail in the worker and a full queue answers 429. The per-token limit is off here so
    # the fuzzer reaches the routes (tests/integration/test_bad_input.py proves the limit).
    return module_service_factory(allow_private_urls=False, max_queued_tasks=20, rate_limit_per_minute=0)


def test_no_server_error_from_schema_driven_fuzzing(fuzzed_service: Service, tmp_path: Path) -> None:
    har = tmp_path / "fuzz.har"
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "run",
        f"{fuzzed_service.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261128",  # the same requests every run: a failure reproduces
        "--workers",
        "2",
        "--request-timeout",
        "15",
        "--wait-for-schema",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        "--no-color",
    ]

    run = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_S, cwd=tmp_path)

    assert run.returncode == 0, f"schemathesis found failures:\n{run.stdout[-20000:]}\n{run.stderr[-5000:]}"
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    operations = {(e["request"]["method"], e["request"]["url"].split("?")[0]) for e in entries}
    assert all(status < 500 for status in statuses), statuses
    # It got past validation into the routes' own answers: the submit route's URL guard
    # (400) and task lookups (404), not only schema rejections (422). Generated strings
    # are never a link the guard accepts, so 202 is not expected.
    assert statuses[400] >= 1 and statuses[404] >= 1 and statuses[422] >= 1, statuses
    assert any(method == "POST" and url.endswith("/api/transcribe") for method, url in operations)
    assert any(method == "GET" and "/api/task/" in url for method, url in operations)
    assert httpx.get(f"{fuzzed_service.base_url}/healthz", timeout=30).status_code == 200
    print(f"schemathesis: {len(entries)} requests on {len(operations)} URLs, statuses {dict(sorted(statuses.items()))}")
