"""``device`` / ``precision``: validation, resolution (CUDA mocked), the autocast path on
the CPU, CPU runs unchanged; a real CUDA run only where a GPU is present."""

from __future__ import annotations

import pytest
import torch

from cft.model.backbones import build_tiny_bert
from cft.model.device import amp_dtype, check_device, configure, resolve_device
from cft.run.resolve import resolve
from cft.run.rundir import RunDir
from cft.run.runner import Runner

OVR = ["data.n_tasks=2", "train.epochs=1"]


@pytest.mark.parametrize("device, precision, needle", [
    ("gpu", "fp32", "device: must be auto, cpu, cuda or cuda:N"),
    ("cuda:x", "fp32", "device: must be"),
    ("CPU", "fp32", "device: must be"),
    ("cpu", "fp16", "precision: must be one of fp32, bf16"),
    ("cpu", "bf16", "precision: bf16 autocast is a CUDA option"),
])
def test_check_device_errors(device, precision, needle) -> None:
    with pytest.raises(ValueError, match=needle) as err:
        check_device(device, precision)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=needle.split(":")[0]):
        resolve("tiny", [f"device={device}", f"precision={precision}"])


def test_valid_values() -> None:
    for d in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        check_device(d, "fp32")
    for d in ("auto", "cuda", "cuda:1"):
        check_device(d, "bf16")
    cfg = resolve("tiny", ["device=cuda:1", "precision=bf16"])
    assert cfg.device == "cuda:1" and cfg.precision == "bf16"
    assert resolve("tiny").device == "cpu" and resolve("tiny").precision == "fp32"


def test_resolve_device_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")
    assert amp_dtype(torch.device("cpu"), "fp32") is None
    with pytest.raises(ValueError, match="bf16 autocast needs a CUDA device"):
        amp_dtype(torch.device("cpu"), "bf16")
    configure(torch.device("cpu"))  # nothing to do on the CPU


def test_resolve_device_with_mocked_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="only 2 CUDA device"):
        resolve_device("cuda:2")
    assert amp_dtype(torch.device("cuda", 1), "bf16") is torch.bfloat16


def test_autocast_path_on_cpu() -> None:
    """The bf16 plumbing of the backbone (CPU autocast stands in for CUDA here)."""
    bb = build_tiny_bert(seed=0, vocab_size=50, hidden_size=32, num_layers=2, num_heads=2,
                         intermediate_size=64, max_length=12, adapt_layers=1)
    x = torch.randint(1, 50, (10, 12)).numpy()
    ref = bb.features(x)
    assert bb.device == torch.device("cpu")
    bb.place("cpu", torch.bfloat16)
    out = bb.features(x)
    cache = bb.encode(x, batch_size=4)
    z = bb.upper_cache(cache, batch_size=4)
    assert out.dtype == z.dtype == torch.float32
    assert not torch.equal(out, ref)  # really computed in bf16
    torch.testing.assert_close(out, ref, atol=0.1, rtol=0.05)
    torch.testing.assert_close(z, out, atol=0.05, rtol=0.05)
    bb.place("cpu")
    torch.testing.assert_close(bb.features(x), ref, atol=0, rtol=0)


def test_cpu_runs_unchanged(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    a = Runner(resolve("tiny", OVR), tmp_path / "cpu", echo=lambda s: None).run()
    b = Runner(resolve("tiny", [*OVR, "device=auto"]), tmp_path / "auto",
               echo=lambda s: None).run()
    assert (tmp_path / "cpu" / "metrics.json").read_bytes() == \
        (tmp_path / "auto" / "metrics.json").read_bytes()
    assert a.metrics == b.metrics
    assert RunDir(tmp_path / "auto").info()["device"] == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available") as err:
        Runner(resolve("tiny", [*OVR, "device=cuda"]), tmp_path / "cuda").setup()
    assert "\n" not in str(err.value) and not (tmp_path / "cuda").exists()
    with pytest.raises(ValueError, match="bf16 autocast needs a CUDA device"):
        Runner(resolve("tiny", [*OVR, "device=auto", "precision=bf16"]),
               tmp_path / "bf16").setup()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_run(tmp_path) -> None:  # pragma: no cover - needs a GPU
    cpu = Runner(resolve("tiny", OVR), tmp_path / "cpu", echo=lambda s: None).run()
    runs = [Runner(resolve("tiny", [*OVR, "device=cuda"]), tmp_path / f"cuda{i}",
                   echo=lambda s: None).run() for i in range(2)]
    assert (tmp_path / "cuda0" / "metrics.json").read_bytes() == \
        (tmp_path / "cuda1" / "metrics.json").read_bytes()  # repeatable on one GPU
    assert RunDir(tmp_path / "cuda0").info()["device"] == "cuda:0"
    for mode in ("adapted", "shared"):
        got = runs[0].metrics["summary"][mode]["ci_last"]
        assert got == pytest.approx(cpu.metrics["summary"][mode]["ci_last"], abs=0.1)
    bf = Runner(resolve("tiny", [*OVR, "device=cuda", "precision=bf16"]), tmp_path / "bf16",
                echo=lambda s: None).run()
    assert bf.metrics["summary"]["task_aware"]["last"] == pytest.approx(
        cpu.metrics["summary"]["task_aware"]["last"], abs=0.15)
