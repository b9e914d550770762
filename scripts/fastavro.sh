#!/usr/bin/env bash
# fastavro, the independent Avro implementation the wire-format tests check Updraft against
# (tests/it/streaming_avro.rs, through tests/it/support/avro_peer.py):
#   scripts/fastavro.sh install   a venv under $UPDRAFT_CACHE/fastavro with the pinned version
#                                 from PyPI (skipped when it is already there)
#   scripts/fastavro.sh path      prints the venv's python to use as UPDRAFT_TEST_FASTAVRO
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
# shellcheck source=scripts/lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"
DIR="$UPDRAFT_CACHE/fastavro"
# Pinned so the peer the tests compare with never changes under them; bump deliberately.
VERSION=1.12.2

install() {
  venv_install "$DIR" fastavro "$VERSION" python
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/bin/python" ;;
  *)
    echo "usage: scripts/fastavro.sh install|path" >&2
    exit 2
    ;;
esac
