#!/usr/bin/env bash
# fastavro, the independent Avro implementation the wire-format tests check Updraft against
# (tests/it/streaming_avro.rs, through tests/it/support/avro_peer.py):
#   scripts/fastavro.sh install   a venv under $UPDRAFT_CACHE/fastavro with the pinned version
#                                 from PyPI (skipped when it is already there)
#   scripts/fastavro.sh path      prints the venv's python to use as UPDRAFT_TEST_FASTAVRO
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
DIR="$UPDRAFT_CACHE/fastavro"
# Pinned so the peer the tests compare with never changes under them; bump deliberately.
VERSION=1.12.2

install() {
  if [[ -x $DIR/bin/python ]] && "$DIR/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('fastavro') != '$VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "fastavro.sh: installing fastavro $VERSION from PyPI into $DIR"
  command -v python3 >/dev/null || {
    echo "fastavro.sh: python3 is missing (apt-get install python3 python3-venv)" >&2
    exit 1
  }
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "fastavro.sh: installing python3-venv (apt-get)"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$DIR"
  python3 -m venv "$DIR"
  "$DIR/bin/pip" install --quiet --disable-pip-version-check "fastavro==$VERSION"
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/bin/python" ;;
  *)
    echo "usage: scripts/fastavro.sh install|path" >&2
    exit 2
    ;;
esac
