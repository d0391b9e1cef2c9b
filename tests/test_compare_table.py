"""scripts/compare_table.py: one row per (method, rule), n/a without retrieval."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_table.py"


def _mod():
    spec = importlib.util.spec_from_file_location("compare_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(method, metric, mean, std=0.01, n=3):
    return {"method": method, "metric": metric, "mean": str(mean), "std": str(std), "n": str(n)}


def test_rows_and_not_applicable(tmp_path, capsys):
    mod = _mod()
    rows = [_row("keys", "adapted.retrieval_last", 0.5), _row("keys", "adapted.ci_last", 0.4),
            _row("keys", "adapted.retrieval_aia", 0.6, n=3),
            _row("keys", "adapted.retrieval_forgetting", 0.125, std=0.0),
            _row("keys", "shared.ci_last", 0.45), _row("keys", "keys.retrieval_last", 0.75),
            _row("keys", "keys.ci_last", 0.55), _row("ranpac", "merged.ci_last", 0.6),
            _row("ranpac", "merged.ci_forgetting", 0.02)]
    text = mod.table(rows, from_keys=True).splitlines()
    assert text[0].count("|") == text[1].count("|") == 11
    assert text[2].startswith("| proteus | adapted | 3 | 50.0 ± 1.0 | 60.0 ± 1.0 | 12.5 ± 0.0 "
                              "| 40.0 ± 1.0 | - |")
    assert text[3].startswith("| proteus | shared | 3 | - | - | - | 45.0 ± 1.0 |")
    assert text[4].startswith("| keys | keys | 3 | 75.0 ± 1.0 | - | - | 55.0 ± 1.0 |")
    assert text[5] == "| ranpac | n/a | 3 | n/a | n/a | n/a | 60.0 ± 1.0 | - | 2.0 ± 1.0 | - |"
    assert len(text) == 6 and "proteus" not in mod.table(rows)
    other = [_row("lora", "adapted.ci_last", 0.3), _row("k2", "adapted.ci_last", 0.4),
             _row("k2", "k2.retrieval_last", 0.7), _row("k2", "k2.ci_last", 0.5)]
    text = mod.table(other).splitlines()  # a rule registered under another name: its row
    assert text[2].startswith("| lora | adapted | 3 | - | - | - | 30.0 ± 1.0 |")
    assert text[3].startswith("| k2 | k2 | 3 | 70.0 ± 1.0 | - | - | 50.0 ± 1.0 |")
    assert len(text) == 4
    assert mod.main([str(tmp_path)]) == 2
    assert "report.csv: missing" in capsys.readouterr().err


def test_backbone_label_and_method_filter():
    """``label`` adds a first column on every row (header included, one more column);
    ``methods`` keeps only those methods; ``header=False`` gives the rows alone."""
    mod = _mod()
    rows = [_row("keys", "adapted.retrieval_last", 0.5), _row("keys", "adapted.ci_last", 0.4),
            _row("inflora", "merged.ci_last", 0.7), _row("lora", "adapted.ci_last", 0.3)]
    text = mod.table(rows, from_keys=True, methods=("proteus", "inflora"),
                     label="MiniLM-L6").splitlines()
    assert text[0].startswith("| backbone | method | retrieval rule |")
    assert text[0].count("|") == text[1].count("|") == 12
    assert text[2].startswith("| MiniLM-L6 | proteus | adapted | 3 | 50.0 ± 1.0 |")
    assert text[3] == ("| MiniLM-L6 | inflora | n/a | 3 | n/a | n/a | n/a | 70.0 ± 1.0 | - | "
                       "- | - |")
    assert len(text) == 4  # keys (a learned rule's own row) and lora are filtered out
    body = mod.table(rows, methods=("lora",), label="X", header=False).splitlines()
    assert body == ["| X | lora | adapted | 3 | - | - | - | 30.0 ± 1.0 | - | - | - |"]


def test_one_table_per_preset(tmp_path, capsys):
    """A report.csv over two presets prints one table per preset, never one table that
    mixes their rows."""
    mod = _mod()
    lines = ["preset,method,metric,mean,std,n",
             "a,ranpac,merged.ci_last,0.6,0.0,1", "b,ranpac,merged.ci_last,0.2,0.0,1"]
    (tmp_path / "report.csv").write_text("\n".join(lines) + "\n")
    assert mod.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    a, b = out.split("## b")
    assert a.startswith("## a") and "| ranpac | n/a | 1 | n/a | n/a | n/a | 60.0 |" in a
    assert "20.0" not in a and "| ranpac | n/a | 1 | n/a | n/a | n/a | 20.0 |" in b
