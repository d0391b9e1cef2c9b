"""Fine-grained WordNet stream: a hand-made data.noun in wndb(5) format, and the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data import check_stream, same_splits

from cft.config.presets import FINE_TASKS
from cft.config.registry import DATASETS
from cft.data import WordNetFineStream, parse_noun_graph, select_subtrees
from cft.run.resolve import resolve

REAL = Path("/usr/share/wordnet")
needs_real = pytest.mark.skipif(not (REAL / "data.noun").is_file(),
                                reason="WordNet not installed (apt-get install wordnet-base)")

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n"

# name -> (hypernyms, instance hypernyms); offsets are assigned in this order
TREE: dict[str, tuple[list[str], list[str]]] = {
    "entity": ([], []),
    "animal": (["entity"], []),
    "dog": (["animal"], []),
    "beagle": (["dog"], []),
    "poodle": (["dog"], []),
    "hound": (["dog", "animal"], []),  # inside dog, and also a candidate of its own
    **{f"hound{i}": (["hound"], []) for i in range(4)},
    "cat": (["animal"], []),
    **{f"cat{i}": (["cat"], []) for i in range(6)},
    "bird": (["animal"], []),  # too small: no class
    "robin": (["bird"], []),
    "plant": (["entity"], []),
    "tree": (["plant"], []),
    **{f"tree{i}": (["tree"], []) for i in range(6)},
    "flower": (["plant"], []),
    **{f"flower{i}": (["flower"], []) for i in range(6)},
    "shrubby flower": (["tree", "flower"], []),  # in two classes: given to neither
    "place": (["entity"], []),
    "city": (["place"], []),
    **{f"city{i}": ([], ["city"]) for i in range(7)},  # instances
}


def offsets() -> dict[str, int]:
    return {name: 1000 + 10 * i for i, name in enumerate(TREE)}


def gloss(name: str) -> str:
    if name == "cat5":
        return gloss("cat0")  # duplicate text of cat0: kept once
    return f"gloss of {name}; \"a {name}\""


def write_noun(root: Path, tree: dict[str, tuple[list[str], list[str]]] = TREE) -> Path:
    """A data.noun with hypernym/hyponym pointers (and one verb pointer, ignored)."""
    root.mkdir(parents=True, exist_ok=True)
    off = {name: 1000 + 10 * i for i, name in enumerate(tree)}
    hypo: dict[str, list[tuple[str, str]]] = {n: [] for n in tree}
    for name, (hyper, inst) in tree.items():
        hypo.update({h: hypo[h] + [("~", name)] for h in hyper})
        hypo.update({h: hypo[h] + [("~i", name)] for h in inst})
    lines = [LICENCE, LICENCE]
    for name, (hyper, inst) in tree.items():
        ptrs = ([f"@ {off[h]:08d} n 0000" for h in hyper]
                + [f"@i {off[h]:08d} n 0000" for h in inst]
                + [f"{s} {off[c]:08d} n 0000" for s, c in hypo[name]]
                + ["+ 00001234 v 0101"])
        words = name.replace(" ", "_")
        lines.append(f"{off[name]:08d} 05 n 01 {words} 0 {len(ptrs):03d} {' '.join(ptrs)} "
                     f"| {gloss(name)}  \n")
    path = root / "data.noun"
    path.write_text("".join(lines))
    return path


def test_parse_noun_graph(tmp_path: Path) -> None:
    g = parse_noun_graph(write_noun(tmp_path))
    o = offsets()
    assert len(g) == len(TREE)
    hound = g[o["hound"]]
    assert hound.words == ("hound",) and hound.lexnum == 5
    assert hound.hypernyms == (o["dog"], o["animal"]) and hound.instance_of == ()
    assert g[o["city0"]].instance_of == (o["city"],) and g[o["city0"]].hypernyms == ()
    assert g[o["shrubby flower"]].words == ("shrubby flower",)
    assert g[o["beagle"]].gloss == 'gloss of beagle; "a beagle"'
    assert parse_noun_graph(tmp_path / "data.noun") is g  # cached


def test_parse_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a" / "data.noun"
    bad.parent.mkdir()
    bad.write_text("00001000 05 n 01 dog 0 002 @ 00000010 n 0000 | two pointers announced\n")
    with pytest.raises(ValueError, match="malformed WordNet line 1") as err:
        parse_noun_graph(bad)
    assert "\n" not in str(err.value)
    bad.write_text("00001000 05 n 01 dog 0 001 @ 00000010 n 0000 | hypernym missing\n")
    with pytest.raises(ValueError, match="missing hypernym 00000010"):
        parse_noun_graph(bad)


def test_select_subtrees(tmp_path: Path) -> None:
    g = parse_noun_graph(write_noun(tmp_path))
    o = offsets()
    name = {v: k for k, v in o.items()}
    sub = select_subtrees(g, min_size=5, max_size=8)
    got = {name[r]: sorted(name[x] for x in m) for r, m in sub.items()}
    assert set(got) == {"dog", "cat", "tree", "flower", "city"}  # hound is inside dog
    assert got["dog"] == sorted(["dog", "beagle", "poodle", "hound"]
                                + [f"hound{i}" for i in range(4)])
    assert got["tree"] == ["tree"] + [f"tree{i}" for i in range(6)]  # shared synset dropped
    assert "shrubby flower" not in got["flower"]
    assert got["city"] == ["city"] + [f"city{i}" for i in range(7)]
    members = [x for m in sub.values() for x in m]
    assert len(members) == len(set(members))  # disjoint
    # without instance links, "city" is a single synset, "place" too small
    sub2 = select_subtrees(g, min_size=5, max_size=8, instances=False)
    assert {name[r] for r in sub2} == {"dog", "cat", "tree", "flower"}
    # a bigger max keeps whole branches
    sub3 = select_subtrees(g, min_size=5, max_size=20)
    assert {name[r] for r in sub3} == {"animal", "plant", "place"}


def test_stream(tmp_path: Path) -> None:
    write_noun(tmp_path)
    s = WordNetFineStream(root=tmp_path, min_class_size=5, max_subtree=8, n_tasks=2,
                          test_size=2, calibration_size=1)
    check_stream(s)
    assert s.modality == "text" and s.name == "wordnet-fine"
    o = offsets()
    assert s.class_names == [f"{n}.{o[n]:08d}" for n in ("dog", "cat", "tree", "flower", "city")]
    assert s.class_roots.tolist() == [o[n] for n in ("dog", "cat", "tree", "flower", "city")]
    assert s.class_sizes.tolist() == [8, 6, 7, 7, 8]  # cat5 repeats cat0's gloss
    assert [len(c) for c in s.task_classes] == [3, 2]
    texts = {}
    for t in range(s.n_tasks):
        for sp in ("train", "calibration", "test"):
            data = s.task(t).split(sp)
            for x, y in zip(data.inputs, data.labels):
                texts[x] = s.class_names[y]
    assert len(texts) == 36
    assert texts['gloss of hound2; "a hound2"'].startswith("dog.")
    assert not any("shrubby" in x or "robin" in x or "entity" in x for x in texts)
    assert DATASETS.build("wordnet-fine", seed=0, root=str(tmp_path), min_class_size=5,
                          max_subtree=8, n_tasks=2).class_names == s.class_names


def test_stream_options(tmp_path: Path) -> None:
    write_noun(tmp_path)
    kw = dict(root=tmp_path, min_class_size=5, max_subtree=8, test_size=1, calibration_size=1)
    s = WordNetFineStream(n_classes=4, classes_per_task=2, with_lemmas=True,
                          with_examples=False, max_per_class=5, **kw)
    assert s.n_classes == 4 and s.n_tasks == 2
    x = s.task(0).train.inputs[0]
    assert ": gloss of" in x and '"' not in x
    assert all(len(s.task(0).split(sp)) > 0 for sp in ("train", "calibration", "test"))
    assert sum(len(s.task(0).split(sp)) for sp in ("train", "calibration", "test")) == 10
    # min_class_size also applies to distinct glosses: cat has 6
    assert "cat" not in " ".join(WordNetFineStream(**(kw | {"min_class_size": 7})).class_names)
    no_inst = WordNetFineStream(instances=False, n_tasks=1, **kw)
    assert not any(c.startswith("city.") for c in no_inst.class_names)


def test_determinism(tmp_path: Path) -> None:
    write_noun(tmp_path)
    kw = dict(root=tmp_path, min_class_size=5, max_subtree=8, n_classes=3, n_tasks=3,
              test_size=2, calibration_size=1)
    a, b = WordNetFineStream(seed=4, **kw), WordNetFineStream(seed=4, **kw)
    assert same_splits(a, b) and a.task(2).test.inputs == b.task(2).test.inputs
    orders = {tuple(WordNetFineStream(seed=k, **kw).task(0).class_names) for k in range(6)}
    assert len(orders) > 1  # the seed picks the classes and their order
    full = [WordNetFineStream(seed=k, **(kw | {"n_classes": None})) for k in (0, 1)]
    assert sorted(full[0].class_names) == sorted(full[1].class_names)  # selection is seed-free


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="apt-get install -y wordnet-base"):
        WordNetFineStream(root=tmp_path / "missing")
    write_noun(tmp_path)
    kw = dict(root=tmp_path, min_class_size=5, max_subtree=8)
    for bad, match in [(dict(n_classes=6), "n_classes: 6 requested but only 5"),
                       (dict(max_subtree=4), "max_subtree: must be >= min_class_size"),
                       (dict(min_class_size=0), "min_class_size"),
                       (dict(instances="yes"), "instances: must be a bool"),
                       (dict(min_class_size=50, max_subtree=80), "no hypernym subtree has 50"),
                       (dict(n_tasks=6), "n_tasks"), (dict(seed=-1), "seed")]:
        with pytest.raises(ValueError, match=match) as err:
            WordNetFineStream(**(kw | bad))
        assert "\n" not in str(err.value)


def test_presets() -> None:
    for n in FINE_TASKS:
        cfg = resolve(f"wordnet-fine-{n}")
        assert cfg.data.name == "wordnet-fine" and cfg.backbone.name == "minilm"
        assert cfg.data.options["n_tasks"] == n and cfg.data.options["n_classes"] == 200


@needs_real
def test_real_fine_stream() -> None:
    g = parse_noun_graph(REAL / "data.noun")
    s = WordNetFineStream(seed=0, root=REAL, n_tasks=1)
    assert len(s.class_names) == 221 and s.n_classes == 221
    assert s.class_sizes.min() >= 100 and s.class_sizes.sum() > 40000
    # disjoint: every pool synset in one class, no class root below another class's root
    assert len(set(s.pool_offsets.tolist())) == len(s.pool_offsets)
    roots = set(s.class_roots.tolist())
    for r in roots:
        stack, seen = [r], set()
        while stack:
            x = stack.pop()
            for h in g[x].hypernyms + g[x].instance_of:
                assert h not in roots, f"{r} lies below class root {h}"
                if h not in seen:
                    seen.add(h)
                    stack.append(h)
    assert "musician.10340312" in s.class_names and "orchid.12041446" in s.class_names
    for n in FINE_TASKS:
        cfg = resolve(f"wordnet-fine-{n}")
        st = DATASETS.build(cfg.data.name, seed=cfg.seed, **cfg.data.options)
        d = st.describe()["tasks"]
        assert st.n_tasks == n and st.n_classes == 200
        assert {(t["n_train"], t["n_calibration"], t["n_test"]) for t in d} == {
            (65 * 200 // n, 15 * 200 // n, 20 * 200 // n)}
    other = WordNetFineStream(seed=1, root=REAL, n_classes=200, n_tasks=50)
    first = WordNetFineStream(seed=0, root=REAL, n_classes=200, n_tasks=50)
    assert not np.array_equal(first.class_order, other.class_order)
    assert set(first.class_names) == set(other.class_names)
