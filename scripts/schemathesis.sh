#!/usr/bin/env bash
# Schemathesis (property-based tests of the REST API against its OpenAPI document), used by
# tests/it/api_schemathesis.rs:
#   scripts/schemathesis.sh install   a venv under $UPDRAFT_CACHE/schemathesis with the pinned
#                                     version from PyPI (skipped when it is already there)
#   scripts/schemathesis.sh path      prints the `st` executable to use as UPDRAFT_TEST_SCHEMATHESIS
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
DIR="$UPDRAFT_CACHE/schemathesis"
# Pinned so a rerun never re-resolves and the CLI the test drives stays the same; bump
# deliberately (and check `st run --help` against tests/it/api_schemathesis.rs).
VERSION=4.32.5

install() {
  if [[ -x $DIR/bin/st ]] && "$DIR/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "schemathesis.sh: installing schemathesis $VERSION from PyPI into $DIR"
  command -v python3 >/dev/null || {
    echo "schemathesis.sh: python3 is missing (apt-get install python3 python3-venv)" >&2
    exit 1
  }
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "schemathesis.sh: installing python3-venv (apt-get)"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$DIR"
  python3 -m venv "$DIR"
  "$DIR/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/bin/st" ;;
  *)
    echo "usage: scripts/schemathesis.sh install|path" >&2
    exit 2
    ;;
esac
