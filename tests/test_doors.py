"""Doors for a user's own work (issue 25, item 13): another dataset or backbone from the
command line, plug-in datasets / backbones / methods through entry points, and the image
presets (``cifar100-vit``, ``imagefolder-vit``) failing in one line when the data or the
weights are missing, and running when they are there.

An *installed* plug-in is laid out as pip lays it out (a ``*.dist-info`` with
``entry_points.txt`` beside the plug-in's module), as in ``test_bounds_plugins.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_data_files import write_cifar

from cft.cli import main
from cft.config.registry import ENTRY_POINT_GROUPS, Registry
from cft.run.resolve import resolve, validate_backbone

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cft: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------ options follow the entry
def test_changing_the_dataset_starts_from_its_own_defaults() -> None:
    cfg = resolve("wordnet-minilm", ["data.name=cifar100"])  # no "unknown option 'grouping'"
    assert cfg.data.name == "cifar100" and cfg.data.options == {}
    cfg = resolve("wordnet-minilm", ["data.n_tasks=4", "data.name=cifar100",
                                     "data.label_type=coarse"])  # the user's options stay
    assert cfg.data.options == {"n_tasks": 4, "label_type": "coarse"}
    cfg = resolve("wordnet-minilm", ["data.name=wordnet", "data.n_tasks=3"])  # same entry
    assert cfg.data.options["grouping"] == "semantic" and cfg.data.options["n_tasks"] == 3
    assert cfg.backbone.options["adapt_layers"] == 2  # the other section keeps the preset's
    # an option the user set that the new entry does not take is still refused
    with pytest.raises(ValueError, match=r"^override: unknown option 'data\.grouping'"):
        resolve("wordnet-minilm", ["data.name=cifar100", "data.grouping=semantic"])
    # data.options={...} sets the whole mapping, as before
    cfg = resolve("tiny", ["data.name=synthetic", 'data.options={"n_tasks": 2}'])
    assert cfg.data.options == {"n_tasks": 2}


def test_changing_the_backbone_starts_from_its_own_defaults() -> None:
    cfg = resolve("tiny", ["backbone.name=minilm"])  # tiny-bert's vocab_size etc. dropped
    assert cfg.backbone.options == {} and cfg.backbone.batch_size == 64
    cfg = resolve("tiny", ["backbone.name=vit"])
    with pytest.raises(ValueError, match=r"^backbone\.path: required by backbone 'vit' "
                                         r"\(set backbone\.path=\.\.\.\)$"):
        validate_backbone(cfg)


def test_cli_other_dataset_fails_on_the_data_not_on_preset_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CFT_CIFAR100_DIR", raising=False)
    err = _one_line_error(capsys, ["run", "--preset", "wordnet-minilm", "--out",
                                   str(tmp_path / "r"), "data.name=cifar100"])
    assert "grouping" not in err and "CFT_CIFAR100_DIR" in err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------ the image presets
def _tiny_vit(path: Path) -> Path:
    import cft.model.backbones  # noqa: F401
    from cft.config.registry import BACKBONES

    BACKBONES.build("tiny-vit", seed=0, image_size=16, patch_size=4).model.save_pretrained(
        str(path))
    return path


def test_image_presets_name_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv("CFT_CIFAR100_DIR", raising=False)
    monkeypatch.delenv("CFT_IMAGEFOLDER_DIR", raising=False)
    for name in ("cifar100-vit", "imagefolder-vit"):
        err = _one_line_error(capsys, ["run", "--preset", name, "--out", str(tmp_path / name)])
        assert "backbone.path" in err and "hf download google/vit-base-patch16-224-in21k" in err
    err = _one_line_error(capsys, ["run", "--preset", "cifar100-vit", "--out",
                                   str(tmp_path / "x"), "backbone.path=/nonexistent/vit"])
    assert "no such folder '/nonexistent/vit'" in err
    vit = str(_tiny_vit(tmp_path / "vit"))
    err = _one_line_error(capsys, ["run", "--preset", "cifar100-vit", "--out",
                                   str(tmp_path / "x"), f"backbone.path={vit}"])
    assert "CFT_CIFAR100_DIR" in err and "cifar-100-python" in err
    err = _one_line_error(capsys, ["run", "--preset", "imagefolder-vit", "--out",
                                   str(tmp_path / "x"), f"backbone.path={vit}"])
    assert "CFT_IMAGEFOLDER_DIR" in err


def test_cifar100_vit_preset_runs_on_local_data_and_weights(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """32x32 CIFAR images resized to the (tiny, 16x16) ViT's size: the preset's path."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_cifar(tmp_path / "data")
    monkeypatch.setenv("CFT_CIFAR100_DIR", str(tmp_path / "data"))
    vit = _tiny_vit(tmp_path / "vit")
    out = tmp_path / "run"
    rc = main(["run", "--preset", "cifar100-vit", "--out", str(out), "--quiet",
               f"backbone.path={vit}", "backbone.adapt_layers=1", "backbone.batch_size=32",
               "data.n_tasks=2", "data.classes_per_task=2", "train.epochs=1",
               "signature.n_components=2", "threads=1"])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["name"] == "cifar100" and cfg["backbone"]["options"]["resize"] is True
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


# ------------------------------------------------------------ entry points
def _install(site: Path, group: str, name: str, value: str, module: str = "",
             source: str = "") -> None:
    """An installed distribution ``cft_plugin_<name>`` with one entry point."""
    dist = f"cft_plugin_{name.replace('-', '_')}"
    info = site / f"{dist}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {value}\n")
    if module:
        (site / f"{module}.py").write_text(textwrap.dedent(source))


PLUGIN = """
    from cft.data.tokens import TokenStream
    from cft.methods import Method


    def small_tokens(*, seed=0, n_tasks=2):
        return TokenStream(seed=seed, n_tasks=n_tasks, classes_per_task=2, n_per_class=20,
                           vocab_size=100, seq_len=24)


    def frugal():
        return Method("frugal", "PROTEUS with rank 2", {"module.rank": 2})
"""


def test_registry_loads_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "test.cft.things", "good", "cft_plugin_mod:make", "cft_plugin_mod",
             "def make(size=1):\n    return ['thing'] * size\n")
    _install(site, "test.cft.things", "broken", "cft_plugin_missing:make")
    _install(site, "test.cft.things", "builtin", "cft_plugin_mod:make")
    _install(site, "test.cft.things", "module", "cft_plugin_mod")
    monkeypatch.syspath_prepend(str(site))
    reg = Registry("thing", "test.cft.things")

    @reg.register("builtin")
    def builtin() -> str:
        return "mine"

    with pytest.warns(UserWarning) as rec:
        assert reg.names() == ["builtin", "good"]
    assert reg.build("good", size=2) == ["thing", "thing"] and reg.build("builtin") == "mine"
    assert reg.origin["good"] == ("entry point good = cft_plugin_mod:make "
                                  "(cft_plugin_good)")
    messages = [str(w.message) for w in rec]
    assert any("thing plug-in 'broken' (cft_plugin_broken) refused: cannot load "
               "cft_plugin_missing:make: ModuleNotFoundError" in m for m in messages)
    assert any("'builtin'" in m and "already registered (built in)" in m for m in messages)
    assert any("'module'" in m and "not a factory" in m for m in messages)
    assert all("\n" not in m for m in messages)
    with pytest.raises(ValueError, match=r"unknown name 'broken' \(known: builtin, good\); "
                                         r"thing plug-in 'broken' .* refused: cannot load"):
        reg.get("broken")
    assert reg.load_plugins() == []  # loaded once: nothing new, nothing refused again


def test_cft_registries_read_their_entry_point_groups(tmp_path: Path) -> None:
    """The real ``DATASETS`` and ``METHODS`` (a fresh process): ``data.name`` and
    ``method`` reach installed plug-ins, which run like built-ins."""
    assert ENTRY_POINT_GROUPS == {"datasets": "cft_bounds.datasets",
                                  "backbones": "cft_bounds.backbones",
                                  "methods": "cft_bounds.methods"}
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "cft_bounds.datasets", "small-tokens", "cft_plugin_ds:small_tokens",
             "cft_plugin_ds", PLUGIN)
    _install(site, "cft_bounds.methods", "frugal", "cft_plugin_ds:frugal")
    _install(site, "cft_bounds.backbones", "tiny-bert", "cft_plugin_ds:frugal")  # a clash
    code = textwrap.dedent("""
        import json, warnings
        warnings.simplefilter("ignore")
        from cft.config.registry import BACKBONES, DATASETS, METHODS
        from cft.run.resolve import resolve, validate_backbone
        cfg = resolve("tiny", ["data.name=small-tokens", "data.n_tasks=3", "method=frugal"])
        validate_backbone(cfg)
        print(json.dumps({"data": [cfg.data.name, cfg.data.options], "rank": cfg.module.rank,
                          "origin": DATASETS.origin, "methods": METHODS.names(),
                          "refused": BACKBONES.plugin_errors}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.splitlines()[-1])
    assert res["data"] == ["small-tokens", {"n_tasks": 3}] and res["rank"] == 2
    assert res["origin"] == {"small-tokens": "entry point small-tokens = "
                                             "cft_plugin_ds:small_tokens (cft_plugin_small_tokens)"}
    assert "frugal" in res["methods"] and "proteus" in res["methods"]
    assert len(res["refused"]) == 1 and "'tiny-bert'" in res["refused"][0]
    # and a plug-in dataset runs end to end from the command line
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "cft", "run", "--preset", "tiny", "--out",
                           str(out), "--quiet", "data.name=small-tokens", "method=frugal",
                           "train.epochs=1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["data"]["name"] == "small-tokens"
