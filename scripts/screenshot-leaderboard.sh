#!/usr/bin/env bash
# Look at the leaderboard as a reader would: build the site strictly, serve it on 127.0.0.1 and
# render one leaderboard page in headless Chromium at a phone's 390 px and a desktop's 1,400 px.
#   scripts/screenshot-leaderboard.sh [PAGE] [OUT_DIR]
# PAGE: a path under the site (default leaderboard/flo/); OUT_DIR: where the PNGs go (default
# build/screenshots). Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
page="${1:-leaderboard/flo/}"
out="${2:-build/screenshots}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  echo "screenshot-leaderboard: chromium is not installed (apt-get install chromium)" >&2
  exit 2
fi
python="${PYTHON:-.venv/bin/python}"
export NO_MKDOCS_2_WARNING=1
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$python" -m mkdocs build --strict --quiet --site-dir "$work/site"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$python" -m http.server "$port" --bind 127.0.0.1 --directory "$work/site" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
  "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
  sleep 0.1
done
mkdir -p "$out"
name="$(echo "$page" | tr -c 'a-zA-Z0-9\n' '-' | sed 's/-*$//')"
for width in 390 1400; do
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$width" --hide-scrollbars --window-size="$width,${HEIGHT:-2200}" \
    --screenshot="$out/$name-$width.png" "http://127.0.0.1:$port/$page" 2>/dev/null
  echo "$out/$name-$width.png"
done
