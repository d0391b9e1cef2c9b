"""WordNet stream: the real dict files (if installed) and generated files in wndb(5) format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data import check_stream, same_splits

from cft.config.registry import DATASETS
from cft.data import LEXNAMES, SEMANTIC_GROUPS, WordNetStream, find_wordnet, parse_data_file

REAL = Path("/usr/share/wordnet")
needs_real = pytest.mark.skipif(not (REAL / "data.noun").is_file(),
                                reason="WordNet not installed (apt-get install wordnet-base)")

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def synset(offset: int, lexnum: int, ss: str, words: list[str], gloss: str) -> str:
    w = " ".join(f"{x} {i % 16:x}" for i, x in enumerate(words))
    return f"{offset:08d} {lexnum:02d} {ss} {len(words):02x} {w} 000 | {gloss}  \n"


def write_dict(root: Path, per_class: int = 12) -> dict[str, list[str]]:
    """Tiny data.noun / data.verb / data.adj / data.adv files; returns texts by lexname."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"noun": [5, 13, 18], "verb": [29, 38], "adj": [0], "adv": [2]}
    ss = {"noun": "n", "verb": "v", "adj": "s", "adv": "r"}
    texts: dict[str, list[str]] = {}
    for pos, lexnums in files.items():
        lines = [LICENCE, LICENCE]
        off = 100
        for lexnum in lexnums:
            name = LEXNAMES[lexnum]
            for i in range(per_class):
                words = [f"w{lexnum}_{i}"] + (["alt(a)"] if pos == "adj" else [])
                gloss = f"gloss {i} of {name}; \"example {i}\""
                lines.append(synset(off, lexnum, ss[pos], words, gloss))
                texts.setdefault(name, []).append(gloss)
                off += 1
        # a duplicate gloss in another class: only its first occurrence is kept
        if pos == "noun":
            lines.append(synset(off, lexnums[1], "n", ["dup"], texts[LEXNAMES[5]][0]))
        (root / f"data.{pos}").write_text("".join(lines))
    return texts


def test_lexnames_table() -> None:
    assert len(LEXNAMES) == 45 and len(set(LEXNAMES)) == 45
    expected = {0: "adj.all", 1: "adj.pert", 2: "adv.all", 3: "noun.Tops", 4: "noun.act",
                5: "noun.animal", 13: "noun.food", 18: "noun.person", 20: "noun.plant",
                28: "noun.time", 29: "verb.body", 38: "verb.motion", 43: "verb.weather",
                44: "adj.ppl"}
    for k, v in expected.items():
        assert LEXNAMES[k] == v
    assert all(n.startswith("noun.") for n in LEXNAMES[3:29])
    assert all(n.startswith("verb.") for n in LEXNAMES[29:44])
    groups = [c for g in SEMANTIC_GROUPS for c in g]
    assert sorted(groups) == sorted(LEXNAMES)  # every file in exactly one default task


def test_generated_dict_parse(tmp_path: Path) -> None:
    texts = write_dict(tmp_path)
    rows = parse_data_file(tmp_path / "data.adj")
    assert len(rows) == 12 and rows[0][0] == 0
    assert rows[0][1] == ("w0 0", "alt")  # underscores -> spaces, adjective marker removed
    assert rows[0][2] == texts["adj.all"][0]
    assert parse_data_file(tmp_path / "data.adj") is rows  # cached


def test_generated_stream(tmp_path: Path) -> None:
    texts = write_dict(tmp_path)
    s = WordNetStream(root=tmp_path, min_class_size=5, test_size=3, calibration_size=2)
    check_stream(s)
    assert s.modality == "text"
    assert s.class_names == ["adj.all", "adv.all", "noun.animal", "noun.food",
                             "noun.person", "verb.body", "verb.motion"]
    names = [[s.class_names[c] for c in t] for t in s.task_classes]
    assert names == [["noun.animal", "noun.food"], ["verb.motion", "verb.body"],
                     ["noun.person"], ["adj.all", "adv.all"]]
    td = s.task(0)
    for split in (td.train, td.calibration, td.test):
        for x, y in zip(split.inputs, split.labels):
            assert x in texts[s.class_names[y]]
    assert [len(td.test), len(td.calibration), len(td.train)] == [6, 4, 14]
    assert s.lexfile_ids.tolist() == [0, 2, 5, 13, 18, 29, 38]


def test_generated_options(tmp_path: Path) -> None:
    write_dict(tmp_path, per_class=20)
    s = WordNetStream(root=tmp_path, pos=("noun",), min_class_size=5, with_lemmas=True,
                      with_examples=False, max_per_class=10, grouping="seed",
                      classes_per_task=2)
    assert s.class_names == ["noun.animal", "noun.food", "noun.person"]
    assert [len(t) for t in s.task_classes] == [2, 1]
    td = s.task(0)
    x = td.train.inputs[0]
    assert ": gloss" in x and "example" not in x and x.startswith("w")
    total = sum(len(td.split(sp)) for sp in ("train", "calibration", "test"))
    assert total == 20  # two classes capped at 10
    # the duplicate gloss (first seen in noun.animal) is not repeated in noun.food
    full = WordNetStream(root=tmp_path, pos=["noun"], min_class_size=20, grouping="seed",
                         n_tasks=1)
    food = full.class_names.index("noun.food")
    assert sum(int((full.task(0).split(sp).labels == food).sum())
               for sp in ("train", "calibration", "test")) == 20
    # small classes dropped and reported
    with open(tmp_path / "data.noun", "a") as fh:
        for i in range(5):
            fh.write(synset(900 + i, 18, "n", [f"extra{i}"], f"extra person {i}"))
    s2 = WordNetStream(root=tmp_path, pos=["noun", "verb"], min_class_size=21)
    assert s2.class_names == ["noun.person"]
    assert s2.dropped_classes == ["noun.animal", "noun.food", "verb.body", "verb.motion"]
    with pytest.raises(ValueError, match="min_class_size"):
        WordNetStream(root=tmp_path, min_class_size=100)


def test_generated_determinism(tmp_path: Path) -> None:
    write_dict(tmp_path, per_class=15)
    kw = dict(root=tmp_path, min_class_size=5, grouping="seed", classes_per_task=3)
    a, b = WordNetStream(seed=0, **kw), WordNetStream(seed=0, **kw)
    assert same_splits(a, b) and a.task(1).test.inputs == b.task(1).test.inputs
    orders = {tuple(WordNetStream(seed=k, **kw).class_order.tolist()) for k in range(4)}
    assert len(orders) > 1
    sem = [WordNetStream(seed=k, root=tmp_path, min_class_size=5) for k in (0, 1)]
    assert np.array_equal(sem[0].class_order, sem[1].class_order)  # fixed grouping
    assert not same_splits(*sem)  # but the seed moves the splits


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="apt-get install -y wordnet-base") as err:
        WordNetStream(root=tmp_path / "missing")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("CFT_WORDNET_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="CFT_WORDNET_DIR"):
        find_wordnet()
    write_dict(tmp_path)
    for kw in [dict(pos=("noun", "pron")), dict(pos=()), dict(grouping="alpha"),
               dict(with_lemmas=1), dict(min_class_size=0), dict(classes_per_task=2),
               dict(grouping="seed", n_tasks=50, min_class_size=5), dict(n_tasks=9)]:
        with pytest.raises(ValueError) as err:
            WordNetStream(root=tmp_path, **({"min_class_size": 5} | kw))
        assert "\n" not in str(err.value)
    (tmp_path / "data.verb").write_text("00000100 38 v zz word 0 | bad count\n")
    with pytest.raises(ValueError, match="malformed"):
        WordNetStream(root=tmp_path, min_class_size=5)


@needs_real
def test_real_wordnet_parse() -> None:
    rows = parse_data_file(REAL / "data.noun")  # its speed is a benchmark's, not a test's
    assert len(rows) == 82115  # WordNet 3.0 noun synsets
    assert rows[0] == (3, ("entity",), rows[0][2]) and rows[0][2].startswith("that which is")
    counts = np.bincount([r[0] for r in rows], minlength=45)
    assert counts[LEXNAMES.index("noun.animal")] == 7509
    assert counts[LEXNAMES.index("noun.plant")] == 8030
    assert counts[:3].sum() == 0 and counts[29:].sum() == 0
    dog = [r for r in rows if "domestic dog" in r[1]]
    assert len(dog) == 1 and LEXNAMES[dog[0][0]] == "noun.animal"
    assert dog[0][2].startswith("a member of the genus Canis")
    adj = parse_data_file(REAL / "data.adj")
    assert {LEXNAMES[r[0]] for r in adj} == {"adj.all", "adj.pert", "adj.ppl"}


@needs_real
def test_real_wordnet_stream() -> None:
    s = DATASETS.build("wordnet", seed=0, root=str(REAL))
    assert s.n_tasks == 9 and s.n_classes == 41
    assert sorted(s.dropped_classes) == ["adj.ppl", "noun.Tops", "noun.motive", "verb.weather"]
    assert [s.class_names[c] for c in s.task_classes[0]] == list(SEMANTIC_GROUPS[0])
    d = s.describe()
    assert sum(sum(t[f"n_{sp}"] for sp in ("train", "calibration", "test"))
               for t in d["tasks"]) > 100000
    td = s.task(0)
    assert isinstance(td.train.inputs[0], str)
    assert len(set(td.test.inputs) & set(td.train.inputs)) == 0
    assert len(set(td.test.inputs) & set(td.calibration.inputs)) == 0
    small = WordNetStream(seed=1, grouping="seed", classes_per_task=4, max_per_class=60)
    check_stream(small)
    assert small.n_tasks == 11 and len(small.task(0).test) == 4 * 12
    other = WordNetStream(seed=2, grouping="seed", classes_per_task=4, max_per_class=60)
    assert not np.array_equal(small.class_order, other.class_order)
