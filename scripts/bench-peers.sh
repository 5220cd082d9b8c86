#!/usr/bin/env bash
# Peers for `make bench` (not needed by the tests): torch from Debian
# (python3-torch, seen by the venv through system site-packages).  optax/jax
# have no Debian package; the bench uses them when importable, else skips them.
# Best effort: the bench runs without its peers, and says so.
set -uo pipefail
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "bench-peers: skipped (not Debian); torch is used if importable"; exit 0
fi
if dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q 'install ok installed'; then
  echo "bench-peers: skipped: python3-torch already installed"; exit 0
fi
sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
echo "bench-peers: installing python3-torch (the bench's torch peer)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends python3-torch \
  >/dev/null || echo "bench-peers: could not install python3-torch; the bench runs without torch"
exit 0
