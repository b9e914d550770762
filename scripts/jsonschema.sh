#!/usr/bin/env bash
# The reference JSON Schema validator (Python's jsonschema), which tests/it/lineage.rs uses to
# check Updraft's OpenLineage events against the OpenLineage schemas in tests/data/openlineage
# (through tests/it/support/openlineage_check.py):
#   scripts/jsonschema.sh install   a venv under $UPDRAFT_CACHE/jsonschema with the pinned
#                                   version from PyPI (skipped when it is already there)
#   scripts/jsonschema.sh path      prints the venv's python to use as UPDRAFT_TEST_JSONSCHEMA
set -euo pipefail

UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
# shellcheck source=scripts/lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"
DIR="$UPDRAFT_CACHE/jsonschema"
# Pinned so the validator never changes under the tests; bump deliberately.
VERSION=4.26.0

install() {
  venv_install "$DIR" jsonschema "$VERSION" python
}

case "${1:-}" in
  install) install ;;
  path) echo "$DIR/bin/python" ;;
  *)
    echo "usage: scripts/jsonschema.sh install|path" >&2
    exit 2
    ;;
esac
