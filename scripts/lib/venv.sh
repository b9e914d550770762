# shellcheck shell=bash
# Sourced by scripts/fastavro.sh, scripts/jsonschema.sh and scripts/schemathesis.sh: one Python
# tool from PyPI, pinned, in a venv of its own under the cache.
#
#   venv_install DIR PACKAGE VERSION EXE   installs PACKAGE==VERSION into the venv DIR unless
#                                          DIR/bin/EXE exists and the installed version is
#                                          VERSION; installs python3-venv with apt when missing
#
# Invariant: a venv is either the pinned version or made again from nothing (never upgraded in
# place), so a test's peer never changes under it.

venv_install() {
  local dir="$1" package="$2" version="$3" exe="$4" me
  me="$(basename "$0")"
  if [[ -x $dir/bin/$exe ]] && "$dir/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
    return 0
  fi
  echo "$me: installing $package $version from PyPI into $dir"
  command -v python3 >/dev/null || {
    echo "$me: python3 is missing (apt-get install python3 python3-venv)" >&2
    exit 1
  }
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "$me: installing python3-venv (apt-get)"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
}
