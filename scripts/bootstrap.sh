#!/usr/bin/env bash
# Set up everything sscard needs on Debian 12: system packages (as root), a virtual
# environment in .venv, and the project installed into it. Safe to run again: it only does
# what is missing.  Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-run}

# System packages: the PC/SC stack for real and virtual readers; PostgreSQL for the tests.
apt_pkgs=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc socat tmux gcc python3-dev)
if [ "$purpose" = test ]; then
  apt_pkgs+=(postgresql)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: these Debian packages are missing; install them as root with:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "bootstrap: continuing; tests that need them will say so." >&2
  fi
fi

# Python: a virtual environment reused between runs; reinstall only when pyproject changes.
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$py" -m venv .venv
fi
stamp=".venv/.sscard-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing sscard into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  extras="test,bench"
  if [ -f /usr/include/PCSC/winscard.h ] || [ -f /usr/include/winscard.h ]; then
    extras="test,bench,pcsc"
  else
    echo "bootstrap: libpcsclite-dev is missing, so pyscard (PC/SC) is not installed" >&2
  fi
  .venv/bin/python -m pip install -q -e ".[$extras]"
  rm -f .venv/.sscard-*
  touch "$stamp"
fi
