#!/usr/bin/env bash
# Make the corpora of the `genres` stream (cft/data/genres.py) available offline:
#   fortunes, fortunes-min -> /usr/share/games/fortunes/<category>   (cft/data/fortunes.py)
#   manpages, manpages-dev -> /usr/share/man/man<N>/*.gz              (cft/data/manpages.py)
#   dict-gcide             -> /usr/share/dictd/gcide.dict.dz          (cft/data/gcide.py)
#   package descriptions   -> $GENRES/apt-dumpavail.txt + apt-translation-en.txt (cft/data/aptdesc.py)
# where GENRES=${CFT_DATA_DIR:-$HOME/.cache/cft-bounds}/genres. The apt files are cached
# because Debian's Packages indices hold only the short description (the long one is in
# the Translation-en index, which Docker images do not download) and a later plain
# `apt-get update` removes the Translation-en index again. Both are written atomically.
# Python docstrings come from the interpreter (nothing to install); WordNet has its own
# scripts/ensure-wordnet.sh. Does nothing when everything is already there.
set -eu
GENRES="${CFT_DATA_DIR:-$HOME/.cache/cft-bounds}/genres"
DUMP="$GENRES/apt-dumpavail.txt"
TRANS="$GENRES/apt-translation-en.txt"
PKGS="fortunes fortunes-min manpages manpages-dev dict-gcide"

have_debs() {
  [ -f /usr/share/games/fortunes/people ] && [ -f /usr/share/games/fortunes/fortunes ] &&
    [ -f /usr/share/man/man7/man.7.gz ] && [ -f /usr/share/man/man2/open.2.gz ] &&
    [ -f /usr/share/dictd/gcide.dict.dz ]
}
if have_debs && [ -s "$DUMP" ] && [ -s "$TRANS" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the genres corpora are missing and apt-get is not available: run scripts/ensure-genres.sh on Debian/Ubuntu (it installs $PKGS and caches package descriptions in $GENRES), or copy those files here" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Translation-en indices (long descriptions) are fetched with every update below
LANG_OPT="-o Acquire::Languages=en"
if ! have_debs; then
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q $PKGS >/dev/null 2>&1 || {
    $SUDO apt-get update -q $LANG_OPT >/dev/null && $SUDO apt-get install -y -q $PKGS >/dev/null
  }
fi
if [ ! -s "$DUMP" ] || [ ! -s "$TRANS" ]; then
  mkdir -p "$GENRES"
  trans_files() {
    # shellcheck disable=SC2086
    apt-get indextargets $LANG_OPT --format '$(FILENAME)' 'Identifier: Translations' 2>/dev/null |
      while read -r f; do [ -f "$f" ] && echo "$f"; done
  }
  if [ -z "$(trans_files)" ] || [ -z "$(apt-cache dumpavail 2>/dev/null | head -c 1)" ]; then
    # shellcheck disable=SC2086
    $SUDO apt-get update -q $LANG_OPT >/dev/null
  fi
  tmp="$DUMP.tmp.$$"
  # keep only the fields the loader reads (package, section, description, its md5)
  apt-cache dumpavail | awk '
    /^$/ {print ""; keep = 0; next}
    /^[^ \t]/ {keep = ($0 ~ /^(Package|Section|Description|Description-md5):/)}
    keep' >"$tmp"
  [ -s "$tmp" ] || { rm -f "$tmp"; echo "apt-cache dumpavail printed nothing: run apt-get update, then scripts/ensure-genres.sh" >&2; exit 1; }
  mv -f "$tmp" "$DUMP"
  tmp="$TRANS.tmp.$$"
  trans_files | while read -r f; do /usr/lib/apt/apt-helper cat-file "$f"; echo; done >"$tmp"
  [ -s "$tmp" ] || { rm -f "$tmp"; echo "no Translation-en index after apt-get update $LANG_OPT: package descriptions stay short" >&2; exit 1; }
  mv -f "$tmp" "$TRANS"
fi
have_debs && [ -s "$DUMP" ] && [ -s "$TRANS" ] &&
  echo "installed the genres corpora ($PKGS) and cached package descriptions under $GENRES"
