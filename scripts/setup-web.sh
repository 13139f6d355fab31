#!/usr/bin/env bash
# Set up the web page and its browser tests (idempotent; make test calls it):
#   1. Debian's Chromium for playwright-core (Playwright's own browser download does not work here);
#   2. the pinned Node packages in web/ (npm ci; skipped while package-lock.json is unchanged);
#   3. the page's bundle web/public/app.js (esbuild).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-web: Node.js 20+ and npm are required (firebase@12 and firebase-tools run on Node 20)." >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-web: /usr/bin/chromium is missing; run as root or: sudo apt-get install -y chromium" >&2
    exit 1
  fi
  echo "setup-web: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

stamp=web/node_modules/.setup-web.sha256
want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup-web: npm ci in web/ (firebase, firebase-tools, esbuild, playwright-core)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

(cd web && node_modules/.bin/esbuild src/app.js --bundle --format=esm --target=es2020 --minify \
  --sourcemap --log-level=warning --outfile=public/app.js)
echo "setup-web: ready (web/public/app.js, $(node web/node_modules/firebase-tools/lib/bin/firebase.js --version 2>/dev/null | tail -1) firebase-tools, $(/usr/bin/chromium --version 2>/dev/null | head -1))"
