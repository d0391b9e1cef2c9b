#!/usr/bin/env bash
# Make WordNet 3.0 available: Debian's wordnet-base installs the dict files under
# /usr/share/wordnet. Does nothing if WordNet is already there (or CFT_WORDNET_DIR is set).
set -eu
for d in "${CFT_WORDNET_DIR:-}" /usr/share/wordnet; do
  if [ -n "$d" ] && [ -f "$d/data.noun" ]; then exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "WordNet is missing and apt-get is not available: install Debian's wordnet-base or set CFT_WORDNET_DIR to a WordNet 3.0 dict directory" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q wordnet-base >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q wordnet-base >/dev/null
}
test -f /usr/share/wordnet/data.noun && echo "installed WordNet 3.0 (wordnet-base) under /usr/share/wordnet"
