"""The genres stream and its corpus loaders: real-format fixtures (tests/fixtures/genres)
with the parsed texts pinned, and the installed corpora when present (skipped otherwise,
with the installer's name)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_data import check_stream, same_splits

from cft.config.registry import DATASETS
from cft.data.aptdesc import description_text, load_aptdesc, section_label
from cft.data.corpus import INSTALLER, finish
from cft.data.fortunes import load_fortunes, parse_fortune_file
from cft.data.gcide import load_gcide
from cft.data.genres import (
    DEFAULT_SOURCES,
    LOADERS,
    GenresStream,
    provenance,
    select_classes,
)
from cft.data.manpages import load_manpages, parse_man, unescape
from cft.data.pydocs import first_paragraph, load_pydocs

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "genres"

SCIENCE = [
    "1 + 1 = 3, for large values of 1.",
    "(1) A sheet of paper is an ink-lined plane. (2) An inclined plane is a slope up. (3) A "
    "slow pup is a lazy dog. QED: A sheet of paper is a lazy dog. -- Willard Espy, \"An "
    "Almanac of Words at Play\"",
    "(1) Never draw what you can copy. (2) Never copy what you can trace. (3) Never trace "
    "what you can cut out and paste down.",
]
FOOD = [
    "A couple of kids tried using pickles instead of paddles for a Ping-Pong game. They had "
    "the volley of the Dills.",
    "A farm in the country side had several turkeys, it was known as the house of seven "
    "gobbles.",
    "A gourmet who thinks of calories is like a tart that looks at her watch. -- James Beard",
]
GCIDE = [
    ("Zool", "An edentate mammal, of the genus Orycteropus (Orycteropus afer), somewhat "
     "resembling a pig, common in some parts of Southern Africa. It is a nocturnal ungulate, "
     "burrows in the ground with its powerful claws, and feeds entirely on ants and termites, "
     "which it catches with its long, extensile, slimy tongue. It is the sole extant "
     "representative of the order Tubulidentata. [Spelled also Aard-vark.]"),
    ("Zool", "A carnivorous, striped, quadruped mammal (Proteles cristata, formerly Proteles "
     "Lalandii), of South Africa, resembling the fox and hyena. It feeds chiefly on insects. "
     "See Proteles."),
    ("Arch", "A rod with one serpent twined around it, thus differing from the caduceus of "
     "Mercury, which has two."),
    ("Bot", "A plant with a tall flowering stem; esp. the great mullein, or hag-taper, and the "
     "golden-rod."),
    ("Zool", "a large, marine, univalve shell, esp. Cassis cameo, Cassis rua, and allied "
     "species, used for cutting cameos. See Quern conch."),
    ("Mus", "A kind of castanet used by the Corybantes."),
    ("Mus", "A time note, with a stem, having one fourth the value of a semibreve, one half "
     "that of a minim, and twice that of a quaver; a quarter note."),
    ("Fort", "An indentation in the glacis of the covered way, at a point where a traverse is "
     "placed."),
    ("Mil", "The arrangement of a body of troops, either forward or rearward, so as to form a "
     "line nearly perpendicular to the general line of battle."),
    ("Print", "A bracket. See Bracket."),
    ("Med", "An instrument of a hooked form, used in certain cases in the extraction of a "
     "fetus."),
    ("Zool", "The springbuck."),
    ("Zool", "The pronghorn."),
    ("Zool", "A small shark, of many species, of the genera Mustelus, Scyllium, Spinax, etc."),
    ("Zool", "The bowfin (Amia calva). See Bowfin."),
    ("Zool", "The burbot of Lake Erie."),
]
MAN = [
    ("1", "ssh-argv0 - replaces the old ssh command-name as hostname handling. ssh-argv0 "
     "replaces the old ssh command-name as hostname handling. If you link to this script "
     "with a hostname then executing the link is equivalent to having executed ssh with that "
     "hostname as an argument. All other arguments are passed to ssh and will be processed "
     "normally."),
    ("1", "pl2pm - Rough tool to translate Perl4 .pl files to Perl5 .pm modules. pl2pm is a "
     "tool to aid in the conversion of Perl4-style .pl library files to Perl5-style library "
     "modules. Usually, your old .pl file will still work fine and you should only use this "
     "tool if you plan to update your library to use some of the newer Perl 5 features, "
     "such as AutoLoading."),
    ("3", "strtod, strtof, strtold - convert ASCII string to floating-point number. The "
     "strtod(), strtof(), and strtold() functions convert the initial portion of the string "
     "pointed to by nptr to double, float, and long double representation, respectively."),
]


def one_line_installer_error(exc: pytest.ExceptionInfo[ValueError]) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and INSTALLER in msg, msg


# ------------------------------------------------------------------ shared rules
def test_finish_cleans_filters_and_dedups() -> None:
    pairs = [("a  b\n c", "x"), ("shrt", "x"), ("a b c", "y"), ("d" * 30, "y"), ("e f g", "z")]
    assert finish(pairs, min_chars=5, max_chars=10) == (["a b c", "e f g"], ["x", "z"])
    with pytest.raises(ValueError, match="max_chars"):
        finish(pairs, min_chars=5, max_chars=4)


def test_select_classes_largest_first_ties_by_name() -> None:
    labels = ["b"] * 3 + ["a"] * 3 + ["c"] * 5 + ["d"]
    assert select_classes(labels, 2, 2) == ["c", "a"]
    assert select_classes(labels, 9, 3) == ["c", "a", "b"]


# ------------------------------------------------------------------ fortunes
def test_fortunes_fixture() -> None:
    texts, labels = load_fortunes(FIX / "fortunes")
    assert texts == FOOD + SCIENCE  # files in name order; cookie (catch-all) not read
    assert labels == ["food"] * 3 + ["science"] * 3
    texts, labels = load_fortunes(FIX / "fortunes", skip_files=())
    assert Counter(labels) == {"cookie": 2, "food": 3, "science": 3}
    assert load_fortunes(FIX / "fortunes", min_chars=40)[0] == FOOD + SCIENCE[1:]
    assert load_fortunes(FIX / "fortunes", max_chars=100)[0] == [FOOD[1], FOOD[2], SCIENCE[0]]
    raw = parse_fortune_file(FIX / "fortunes" / "science")
    assert len(raw) == 3 and raw[0] == "1 + 1 = 3, for large values of 1.\n"


def test_fortunes_skips_index_links_offensive_and_duplicates(tmp_path: Path) -> None:
    d = tmp_path / "fortunes"
    shutil.copytree(FIX / "fortunes", d)
    (d / "science.dat").write_bytes(b"\x00\x00\x00\x02binary index")
    (d / "science.u8").symlink_to("science")
    (d / "off").mkdir()
    (d / "off" / "racism").write_text("an offensive item, never read\n%\n")
    (d / "people").write_text(SCIENCE[0] + "\n%\nA new item about people, long enough.\n%\n")
    texts, labels = load_fortunes(d)
    assert len(texts) == len(set(texts)) == 7
    assert labels.count("people") == 2 and labels.count("science") == 2  # first file wins
    assert not any("offensive" in t or "binary" in t for t in texts)


def test_fortunes_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        load_fortunes(tmp_path / "nowhere")
    one_line_installer_error(exc)


# ------------------------------------------------------------------ apt descriptions
def test_apt_fixture() -> None:
    texts, labels = load_aptdesc(FIX / "apt")
    assert labels == ["utils", "games", "math"]  # libzstd1 (libs) skipped
    assert texts[0] == (
        "converts between different systems of units. GNU 'units' program converts "
        "quantities expressed in various scales to their equivalents in other scales. The "
        "'units' program can only handle multiplicative scale changes directly. It uses a "
        "functional notation for non-proportional conversions such a Fahrenheit temperature "
        "to Celsius temperature. This package includes the units_cur script to update "
        "currency conversion information; this script requires a Python 3 interpreter and "
        "the python3-requests library.")
    # fortune-mod's stanza carries its long description itself (no Translation-en entry)
    assert texts[1].startswith("provides fortune cookies on demand. The fortune program ")
    assert texts[2].startswith("Command-line driven interactive plotting program. No-X "
                               "package. Gnuplot is a portable")
    # the contrib/ stanza (written for this test) has no long description: 29 characters
    texts, labels = load_aptdesc(FIX / "apt", min_chars=1, skip_sections=())
    assert labels == ["utils", "games", "libs", "math", "games"]
    assert texts[2] == ("fast lossless compression algorithm. Zstd, short for Zstandard, is a "
                        "fast lossless compression algorithm, targeting real-time compression "
                        "scenarios at zlib-level compression ratio. This package contains the "
                        "shared library.")
    assert texts[4] == "Installer for game data files"


def test_apt_helpers() -> None:
    assert section_label("contrib/games") == "games"
    assert section_label("non-free/science") == "science"
    assert section_label("non-free-firmware/kernel") == "kernel"
    assert description_text("short\n one\n two\n .\n three") == "short. one two\n\nthree"
    assert description_text("ends with a colon:\n x") == "ends with a colon: x"


def test_apt_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        load_aptdesc(tmp_path)
    one_line_installer_error(exc)


# ------------------------------------------------------------------ man pages
def test_man_fixture() -> None:
    texts, labels = load_manpages(FIX / "man")
    assert sorted(zip(labels, texts)) == sorted(MAN)  # strtof.3 is a .so alias: skipped


def test_man_roff() -> None:
    assert unescape(r"\fBls\fR \- list \(em \[aq]x\[aq] \*(C`y\*(C' \s-1SMALL\s0") == \
        "ls - list — 'x' y SMALL"
    assert unescape(r"a\&b \e \[u00E9] \" a comment") == "ab \\ é "
    page = (".TH X 7\n.SH NAME\nx \\- the x\n.SH DESCRIPTION\n.PP\n.B x\nis\n.IR bold ,\n"
            "and more.\n.TP\nnext paragraph\n")
    assert parse_man(page) == ("x - the x", "x is bold, and more.")
    assert parse_man(".so man3/other.3\n") is None
    assert parse_man(".SH NAME\nx \\- no description\n") is None
    mdoc = (".Dd 2001\n.Sh NAME\n.Nm prog\n.Nd does things\n.Sh DESCRIPTION\n.Nm\nreads\n"
            ".Fl v\nand\n.Xr ssh 1 .\n.Pp\nlater\n")
    assert parse_man(mdoc) == ("prog - does things", "prog reads -v and ssh(1) .")
    two = ".Sh NAME\n.Nm foo ,\n.Nm bar\n.Nd x\n.Sh DESCRIPTION\n.Nm\nor\n.Nm bar Ns :\ny\n"
    assert parse_man(two) == ("foo , bar - x", "foo or bar: y")


def test_man_caps_links_and_labels(tmp_path: Path) -> None:
    d = tmp_path / "man"
    shutil.copytree(FIX / "man", d)
    (d / "man3" / "strtold.3.gz").symlink_to("strtod.3.gz")
    shutil.copy(d / "man3" / "strtod.3.gz", d / "man3" / "strtod.3t.gz")
    texts, labels = load_manpages(d)
    assert len(texts) == 3  # the link is skipped, the copy is a duplicate text
    _, ext = load_manpages(d, label="extension")
    assert sorted(ext) == ["1", "1", "3"]
    first = load_manpages(d, max_pages=1)
    assert Counter(first[1]) == {"1": 1, "3": 1} and first == load_manpages(d, max_pages=1)
    with pytest.raises(ValueError, match="label"):
        load_manpages(d, label="package")


def test_man_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        load_manpages(tmp_path)
    one_line_installer_error(exc)


# ------------------------------------------------------------------ GCIDE
def test_gcide_fixture(tmp_path: Path) -> None:
    texts, labels = load_gcide(FIX / "gcide" / "gcide.dict", min_chars=1)
    assert list(zip(labels, texts)) == GCIDE
    dz = tmp_path / "gcide.dict.dz"  # dictzip is gzip-compatible
    dz.write_bytes(gzip.compress((FIX / "gcide" / "gcide.dict").read_bytes(), mtime=0))
    assert load_gcide(dz, min_chars=1) == (texts, labels)
    short = [t for _, t in GCIDE if len(t) >= 20]
    assert load_gcide(dz)[0] == short


def test_gcide_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        load_gcide(tmp_path / "gcide.dict.dz")
    one_line_installer_error(exc)


# ------------------------------------------------------------------ Python docstrings
def test_pydocs_small_family() -> None:
    texts, labels = load_pydocs({"wrap": ("textwrap",), "nothing": ("no_such_module_xyz",)})
    assert set(labels) == {"wrap"}
    assert "Remove any common leading whitespace from every line in `text`." in texts
    assert len(texts) == len(set(texts)) and all(len(t) >= 30 for t in texts)
    assert first_paragraph("sub(pattern, repl) -> str\n\nReplace things.\n\nMore.") == \
        "Replace things."
    assert first_paragraph(None) is None


# ------------------------------------------------------------------ stream on fixtures
def fixture_stream(**kw: object) -> GenresStream:
    opts = {"fortunes": {"root": str(FIX / "fortunes")},
            "gcide": {"path": str(FIX / "gcide" / "gcide.dict"), "min_chars": 1}}
    args: dict[str, object] = dict(sources=["fortunes", "gcide"], classes_per_task=2,
                                   source_options=opts, min_class_size=2, max_per_class=None,
                                   test_size=1, calibration_size=0)
    args.update(kw)
    return GenresStream(**args)  # type: ignore[arg-type]


def test_stream_on_fixtures() -> None:
    s = fixture_stream()
    check_stream(s)
    assert s.task_sources == ["fortunes", "gcide"]
    assert [[s.class_names[c] for c in t] for t in s.task_classes] == [
        ["fortunes:food", "fortunes:science"], ["gcide:Zool", "gcide:Mus"]]
    assert s.task(0).test.inputs[0] in FOOD
    assert s.background_classes() == []  # the other GCIDE tags have one sense each
    assert s.dropped_classes == ["gcide:Arch", "gcide:Bot", "gcide:Fort", "gcide:Med",
                                 "gcide:Mil", "gcide:Print"]
    assert DATASETS.get("genres") is GenresStream
    d = s.describe()  # tasks.json: sources and corpus versions recorded in the run dir
    assert [t["source"] for t in d["tasks"]] == ["fortunes", "gcide"]
    assert d["sources"] == ["fortunes", "gcide"] and d["provenance"] == s.provenance()
    assert set(d["provenance"]["packages"]) == {"fortunes", "fortunes-min", "dict-gcide"}


def test_stream_options_refused() -> None:
    with pytest.raises(ValueError, match="tasks_per_source: source 'fortunes' has 2"):
        fixture_stream(tasks_per_source=2)
    with pytest.raises(ValueError, match="sources"):
        fixture_stream(sources=["fortunes", "novels"])
    with pytest.raises(ValueError, match="task_order"):
        fixture_stream(task_order="alphabetical")
    with pytest.raises(ValueError, match="source_options"):
        fixture_stream(sources=["fortunes"], classes_per_task=1)
    with pytest.raises(ValueError, match="tasks_per_source: sources"):
        fixture_stream(tasks_per_source={"man": 1})


def test_stream_orders_and_cut() -> None:
    s = fixture_stream(tasks_per_source={"fortunes": 2, "gcide": 1}, classes_per_task=1,
                       task_order="by-source")
    assert s.task_sources == ["fortunes", "fortunes", "gcide"]
    s = fixture_stream(tasks_per_source={"fortunes": 2, "gcide": 1}, classes_per_task=1)
    assert s.task_sources == ["fortunes", "gcide", "fortunes"]  # round-robin
    orders = {tuple(fixture_stream(classes_per_task=1, tasks_per_source=2, task_order="seed",
                                   seed=k).task_sources) for k in range(8)}
    assert len(orders) > 1
    cut = fixture_stream(n_tasks=1)
    assert cut.task_sources == ["fortunes"]
    assert cut.background_classes() == ["gcide:Zool", "gcide:Mus"]  # no task uses them
    bg = cut.background(10)
    assert len(bg) == 8 and set(bg) <= {t for _, t in GCIDE}  # their train splits (7 + 1)
    assert same_splits(cut, fixture_stream(n_tasks=1)) and cut.task(0).train.inputs == \
        fixture_stream().task(0).train.inputs


def test_provenance_shape() -> None:
    p = provenance(("pydoc",))
    assert p == {"python": ".".join(map(str, sys.version_info[:3])), "packages": {}}
    p = provenance(("fortunes", "gcide"))
    assert set(p["packages"]) == {"fortunes", "fortunes-min", "dict-gcide"}
    json.dumps(p)


def test_installer_without_apt(tmp_path: Path) -> None:
    """No apt-get and no cached descriptions: one line on stderr naming the installer."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "CFT_DATA_DIR": str(tmp_path)}
    res = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "ensure-genres.sh")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and INSTALLER in res.stderr, res.stderr


# ------------------------------------------------------------------ installed corpora
def real(source: str) -> tuple[list[str], list[str]]:
    try:
        return LOADERS[source]()
    except ValueError as e:
        pytest.skip(f"{source} corpus not installed: {e}")


@pytest.mark.parametrize("source,n_classes", [("fortunes", 10), ("apt", 10), ("man", 5),
                                               ("gcide", 10), ("pydoc", 10)])
def test_real_corpus(source: str, n_classes: int) -> None:
    texts, labels = real(source)
    assert len(texts) == len(set(texts)) == len(labels)
    assert len(select_classes(labels, 99, 100)) >= n_classes


GENRES_10 = ["fortunes", "apt", "gcide", "pydoc", "wordnet"]


def genres(n: int, seed: int = 0) -> GenresStream:
    """The recommended ``genres-5`` / ``genres-10`` streams (skip when a corpus is missing)."""
    for src in DEFAULT_SOURCES if n == 5 else GENRES_10:
        real(src)
    if n == 5:
        return GenresStream(seed=seed)
    return GenresStream(seed=seed, sources=GENRES_10, tasks_per_source=2)


def test_real_genres_5() -> None:
    s = genres(5)
    assert s.n_tasks == 5 and s.task_sources == list(DEFAULT_SOURCES)
    for t, classes in enumerate(s.task_classes):
        names = [s.class_names[c] for c in classes]
        assert len(names) == 5 and {n.split(":")[0] for n in names} == {s.task_sources[t]}
    check_stream(s)
    again = genres(5)
    assert same_splits(s, again) and s.task(3).test.inputs == again.task(3).test.inputs
    other = genres(5, seed=1)
    assert other.class_names == s.class_names and not same_splits(s, other)


def test_real_genres_10() -> None:
    s = genres(10)
    assert s.n_tasks == 10
    assert s.task_sources == GENRES_10 * 2
    per_source: dict[str, set[int]] = {}
    for t, classes in enumerate(s.task_classes):
        src = s.task_sources[t]
        assert len(classes) == 5
        assert not per_source.get(src, set()) & set(classes.tolist())
        per_source.setdefault(src, set()).update(classes.tolist())
    assert np.unique(s.class_order).size == 50
    bg = set(s.background_classes())
    assert len(bg) > 50 and not bg & {s.class_names[c] for c in s.class_order}
    assert len(s.background(1000)) == 1000
    splits = [set(s.split_index(t, sp).tolist()) for t in range(10)
              for sp in ("train", "calibration", "test")]
    assert sum(map(len, splits)) == len(set().union(*splits))
    json.dumps(s.provenance())
    if os.path.exists("/usr/bin/dpkg-query"):
        assert s.provenance()["packages"]["wordnet-base"] is not None
