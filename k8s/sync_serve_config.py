"""Copy ray_config.yaml into the `serveConfigV2` block of k8s/rayservice.yaml.

    python k8s/sync_serve_config.py           # rewrite the block
    python k8s/sync_serve_config.py --check   # exit 1 if the block differs from ray_config.yaml

The block is a literal copy (comments included) so that a reader of the manifest sees
exactly what Serve runs; everything else in rayservice.yaml is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAY_CONFIG = ROOT / "ray_config.yaml"
MANIFEST = ROOT / "k8s" / "rayservice.yaml"
_KEY = re.compile(r"^(?P<indent> *)serveConfigV2: \|\n", re.MULTILINE)


def render(manifest: str, serve_config: str) -> str:
    """`manifest` with its serveConfigV2 literal block replaced by `serve_config`."""
    match = _KEY.search(manifest)
    if match is None:
        raise ValueError("no `serveConfigV2: |` line in the manifest")
    inner = match.group("indent") + "  "
    lines = manifest[match.end() :].splitlines(keepends=True)
    # The old block runs while lines are blank or indented deeper than the key.
    kept = 0
    while kept < len(lines) and (not lines[kept].strip() or lines[kept].startswith(inner)):
        kept += 1
    # Trailing blank lines belong to whatever follows the block, not to it.
    while kept > 0 and not lines[kept - 1].strip():
        kept -= 1
    block = "".join(inner + line if line.strip() else "\n" for line in serve_config.splitlines(keepends=True))
    if not block.endswith("\n"):
        block += "\n"
    return manifest[: match.end()] + block + "".join(lines[kept:])


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the serveConfigV2 block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift (exit 1), change nothing")
    args = parser.parse_args(argv)
    current = MANIFEST.read_text()
    wanted = render(current, RAY_CONFIG.read_text())
    if wanted == current:
        print(f"{MANIFEST.relative_to(ROOT)}: serveConfigV2 matches ray_config.yaml")
        return 0
    if args.check:
        print(
            f"{MANIFEST.relative_to(ROOT)}: serveConfigV2 differs from ray_config.yaml; "
            "run `python k8s/sync_serve_config.py`",
            file=sys.stderr,
        )
        return 1
    MANIFEST.write_text(wanted)
    print(f"{MANIFEST.relative_to(ROOT)}: serveConfigV2 updated from ray_config.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
