"""cft.config: presets, typed key=value overrides, method bundles, round trips."""

from __future__ import annotations

import json

import pytest

from cft.config import (
    PRESETS,
    Config,
    apply_overrides,
    config_diff,
    from_dict,
    preset,
    primary_kind,
    to_dict,
)
from cft.run.resolve import resolve


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_resolve_and_round_trip(name):
    cfg = resolve(name)
    assert cfg.preset == name
    d = to_dict(cfg)
    json.dumps(d, allow_nan=False)
    assert from_dict(d) == cfg
    assert to_dict(from_dict(json.loads(json.dumps(d)))) == d


def test_expected_presets():
    assert {"wordnet-minilm", "synthetic", "tiny"} <= set(PRESETS)
    wn = preset("wordnet-minilm")
    assert wn.backbone.name == "minilm" and wn.data.name == "wordnet"
    assert wn.backbone.options["adapt_layers"] == 2
    assert preset("tiny").backbone.name == "tiny-bert"
    assert preset("tiny").data.name == "tokens"
    assert preset("synthetic").backbone.name == "identity"


def test_typed_overrides():
    cfg = resolve("tiny", ["train.epochs=5", "train.lr=1e-2", "signature.family=kmeans",
                           "eval.sketch_rank=none", "output.progress=yes", "seed=7",
                           "head.shrinkage=0.25", "module.lora_alpha=16"])
    assert cfg.train.epochs == 5 and isinstance(cfg.train.epochs, int)
    assert cfg.train.lr == 0.01 and isinstance(cfg.train.lr, float)
    assert cfg.signature.family == "kmeans"
    assert cfg.eval.sketch_rank is None
    assert cfg.output.progress is True
    assert cfg.seed == 7
    assert cfg.head.shrinkage == 0.25
    assert cfg.module.lora_alpha == 16.0
    assert primary_kind(cfg) == "centroid"
    assert primary_kind(resolve("tiny")) == "nll"
    # "auto" stays a string for the float | str field
    assert resolve("tiny", ["head.shrinkage=auto"]).head.shrinkage == "auto"


def test_integer_literal_accepted_for_float():
    assert resolve("tiny", ["train.lr=1"]).train.lr == 1.0


def test_dataset_and_backbone_options():
    cfg = resolve("tiny", ["data.n_tasks=2", "data.options.n_per_class=50",
                           "backbone.hidden_size=16", "data.class_order=natural"])
    assert cfg.data.options["n_tasks"] == 2
    assert cfg.data.options["n_per_class"] == 50
    assert cfg.data.options["class_order"] == "natural"
    assert cfg.backbone.options["hidden_size"] == 16
    cfg = resolve("wordnet-minilm", ['data.pos=["noun","verb"]'])
    assert cfg.data.options["pos"] == ["noun", "verb"]


@pytest.mark.parametrize("item, match", [
    ("train.epoch=2", "unknown key 'train.epoch'"),
    ("trian.epochs=2", "unknown key 'trian'"),
    ("foo=1", "unknown key 'foo'"),
    ("train=3", "is a section"),
    ("train.epochs=2.5", "train.epochs: expected an int"),
    ("train.epochs=two", "train.epochs: expected an int"),
    ("train.lr=fast", "train.lr: expected a float"),
    ("train.lr=nan", "train.lr: expected a finite float"),
    ("output.progress=maybe", "output.progress: expected a bool"),
    ("seed=-1", "seed"),
    ("data.bogus=1", "unknown option 'data.bogus'"),
    ("signature.family=spectral", "unknown name 'spectral'"),
    ("method=nope", "unknown name 'nope'"),
    ("module.reuse_weight=2", "module.reuse_weight"),
    ("module.orth=hard", "module.orth: must be .penalty. or .project."),
    ("epochs", "expected key=value"),
])
def test_bad_overrides_are_one_line_errors(item, match):
    with pytest.raises(ValueError, match=match) as e:
        resolve("tiny", [item])
    assert "\n" not in str(e.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset: unknown preset 'nope'"):
        resolve("nope")


def test_method_bundles_and_precedence():
    lora = resolve("tiny", ["method=lora"])
    assert lora.method == "lora"
    assert lora.module.reuse_weight == 0.0
    assert lora.train.lambda_orth == 0.0 and lora.train.lambda_l1 == 0.0
    # an override that contradicts the method is refused, whatever the order on the
    # command line; one that repeats the method's value is accepted
    for items in (["train.lambda_orth=0.5", "method=lora"],
                  ["method=lora", "module.reuse_weight=1"]):
        with pytest.raises(ValueError, match=r"^override: '.*' contradicts method=lora, "
                                             r"which sets .*=0\.0; drop the override"):
            resolve("tiny", items)
    same = resolve("tiny", ["module.reuse_weight=0", "method=lora", "train.epochs=1"])
    assert same.module.reuse_weight == 0.0 and same.train.epochs == 1
    prot = resolve("tiny", ["module.reuse_weight=0.5"])
    assert prot.method == "proteus" and prot.module.reuse_weight == 0.5


def test_seed_argument():
    assert resolve("tiny", seed=3).seed == 3
    with pytest.raises(ValueError, match="seed"):
        resolve("tiny", seed=-2)


def test_from_dict_rejects_unknown_and_bad_types():
    d = to_dict(resolve("tiny"))
    d["train"]["epochs"] = "3"
    with pytest.raises(ValueError, match="train.epochs"):
        from_dict(d)
    d = to_dict(resolve("tiny"))
    d["extra"] = 1
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        from_dict(d)


def test_config_diff_ignores_output():
    a = to_dict(resolve("tiny"))
    b = to_dict(resolve("tiny", ["output.results=/tmp/x.jsonl", "output.progress=true"]))
    assert config_diff(a, b) == []
    c = to_dict(resolve("tiny", ["train.epochs=4", "data.n_tasks=2"]))
    assert config_diff(a, c) == ["data.options.n_tasks", "train.epochs"]


def test_typed_pairs():
    cfg = apply_overrides(Config(), [("train.epochs", 4), ("module.reuse_weight", 0)])
    assert cfg.train.epochs == 4 and cfg.module.reuse_weight == 0.0
    with pytest.raises(ValueError, match="train.epochs"):
        apply_overrides(Config(), [("train.epochs", 1.5)])


def test_documented_ablation_commands_resolve():
    """Every ablation command of docs/proteus.md resolves and sets what its comment names."""
    import re
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "proteus.md").read_text()
    block = re.search(r"<!-- ablations -->(.*?)<!-- /ablations -->", text, re.S)
    assert block is not None
    runs = [shlex.split(line.split("#")[0]) for line in block.group(1).splitlines()
            if line.startswith("python -m cft run")]
    assert len(runs) == 7
    base = resolve("wordnet-minilm")
    changed = []
    for argv in runs:
        i = argv.index("--preset")
        overrides = [a for a in argv[i + 2:] if "=" in a and not a.startswith("-")]
        cfg = resolve(argv[i + 1], overrides)
        changed += [(k, getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1]))
                    for k in (o.split("=")[0] for o in overrides)]
        assert cfg != base
    assert changed == [("module.reuse_weight", 0.0), ("train.lambda_orth", 0.0),
                       ("module.orth", "project"), ("signature.family", "kmeans"),
                       ("signature.family", "gmm"), ("module.reuse_weight", 0.1),
                       ("module.reuse_weight", 0.5)]
    assert (base.module.reuse_weight, base.module.orth, base.signature.family) == (
        1.0, "penalty", "dpgmm")


def test_renamed_key_of_an_older_config_json_is_read():
    """module.alpha (before it was named module.reuse_weight) still loads and compares."""
    d = to_dict(resolve("tiny", ["module.reuse_weight=0.3"]))
    old = dict(d, module={("alpha" if k == "reuse_weight" else k): v
                          for k, v in d["module"].items()})
    assert "alpha" in old["module"] and to_dict(from_dict(old)) == d
    old["signature"] = {("kind" if k == "family" else k): v for k, v in d["signature"].items()}
    assert "kind" in old["signature"] and to_dict(from_dict(old)) == d
