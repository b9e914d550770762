#!/usr/bin/env bash
# Schemathesis (property-based tests of the REST API against its OpenAPI document), used by
# tests/it/api_schemathesis.rs:
#   scripts/schemathesis.sh install   a venv under $UPDRAFT_CACHE/schemathesis with the pinned
#                                     version from PyPI (skipped when it is already there)
#   scripts/schemathesis.sh path      prints the `st` executable to use as UPDRAFT_TEST_SCHEMATHESIS
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
# shellcheck source=scripts/lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"
DIR="$UPDRAFT_CACHE/schemathesis"
# Pinned so a rerun never re-resolves and the CLI the test drives stays the same; bump
# deliberately (and check `st run --help` against tests/it/api_schemathesis.rs).
VERSION=4.32.5

install() {
  venv_install "$DIR" schemathesis "$VERSION" st
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/bin/st" ;;
  *)
    echo "usage: scripts/schemathesis.sh install|path" >&2
    exit 2
    ;;
esac
