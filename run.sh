#!/usr/bin/env bash
# The two set-up commands of README.md:
#   ./run.sh serve [--host H] [--port P]   install everything, run the service
#   ./run.sh test  [pytest args]           install everything, run lint, types and tests
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VIDSCRIBE_VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# The page tests drive Debian's Chromium (never a downloaded browser build); the CJK font
# makes their screenshots readable. Installed only when missing and only as root.
install_browser() {
  local packages="chromium chromium-driver fonts-liberation fonts-wqy-microhei"
  if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei"; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "run.sh: not root: the browser tests skip without /usr/bin/chromium" >&2
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $packages >/dev/null; } \
    || echo "run.sh: could not install chromium: the browser tests will skip" >&2
}

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
    # Not exec'd, so that a failed start can point at the doctor; a SIGTERM or Ctrl-C to this
    # script (docker stop, systemd, a terminal) is passed on, so the service stops cleanly.
    "$VENV/bin/vidscribe" serve "$@" &
    server=$!
    stopping=
    trap 'stopping=1; kill -TERM "$server" 2>/dev/null' TERM INT
    status=0
    wait "$server" || status=$?
    while [ -n "$stopping" ] && kill -0 "$server" 2>/dev/null; do
      status=0   # the signal ended the wait early: wait on for the service's own exit
      wait "$server" || status=$?
    done
    if [ "$status" != 0 ] && [ -z "$stopping" ]; then
      echo "vidscribe: start-up failed (exit status $status); run \`$VENV/bin/vidscribe doctor\` to see why" >&2
    fi
    exit "$status"
    ;;
  test)
    install
    install_browser
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
