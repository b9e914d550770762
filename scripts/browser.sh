#!/usr/bin/env bash
# Tools of the end-to-end browser tests (tests/it/browser.rs drives tests/browser/e2e.mjs):
#   scripts/browser.sh install   Debian's chromium and npm (apt-get, when missing)
#                                and playwright-core and axe-core (the accessibility checks)
#                                from npm into $UPDRAFT_CACHE/browser (npm's
#                                own cache in $UPDRAFT_CACHE/npm, not ~/.npm)
#   scripts/browser.sh path      prints the node_modules folder to use as NODE_PATH
# playwright-core is the library only: it downloads no browser, it drives Debian's.
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
DIR="$UPDRAFT_CACHE/browser"
# Pinned so a rerun never re-resolves; bump deliberately.
PLAYWRIGHT_VERSION=1.56.1
AXE_VERSION=4.14.1

install() {
  if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "browser.sh: /usr/bin/chromium is missing: run 'apt-get install chromium' as root" >&2
      exit 1
    fi
    echo "browser.sh: installing chromium from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  fi
  if ! command -v npm >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "browser.sh: npm is missing: run 'apt-get install npm' as root" >&2
      exit 1
    fi
    echo "browser.sh: installing npm (and Node.js) from Debian"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
  fi
  if [[ ! -f $DIR/node_modules/playwright-core/package.json ]] ||
    ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$DIR/node_modules/playwright-core/package.json"; then
    echo "browser.sh: installing playwright-core $PLAYWRIGHT_VERSION from npm"
    mkdir -p "$DIR"
    npm install --silent --no-audit --no-fund --cache "$UPDRAFT_CACHE/npm" --prefix "$DIR" \
      "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
  fi
  if [[ ! -f $DIR/node_modules/axe-core/package.json ]] ||
    ! grep -q "\"version\": \"$AXE_VERSION\"" "$DIR/node_modules/axe-core/package.json"; then
    echo "browser.sh: installing axe-core $AXE_VERSION from npm"
    mkdir -p "$DIR"
    npm install --silent --no-audit --no-fund --cache "$UPDRAFT_CACHE/npm" --prefix "$DIR" \
      "playwright-core@$PLAYWRIGHT_VERSION" "axe-core@$AXE_VERSION" >/dev/null
  fi
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/node_modules" ;;
  *)
    echo "usage: scripts/browser.sh install|path" >&2
    exit 2
    ;;
esac
