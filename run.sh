#!/usr/bin/env bash
# The two set-up commands of README.md:
#   ./run.sh serve [--host H] [--port P]   install everything, run the service
#   ./run.sh test  [pytest args]           install everything, run lint, types and tests
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VIDSCRIBE_VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[test]"
}

cmd=${1:-}
shift || true
case "$cmd" in
  serve)
    install
    exec "$VENV/bin/vidscribe" serve "$@"
    ;;
  test)
    install
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/pytest" "$@"
    ;;
  *)
    echo "usage: ./run.sh serve [--host H] [--port P] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
