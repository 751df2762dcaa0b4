"""The benchmark runs and prints its table (it asserts nothing about time)."""

import shutil

from genmodels.bench import main


def test_bench_prints_a_row_per_model(tiny_text_ckpt, tmp_path, capsys):
    shutil.copytree(tiny_text_ckpt, tmp_path / "tiny")
    rows = main(quick=True, root=str(tmp_path))
    out = capsys.readouterr().out
    assert len(rows) == 1 and "| tiny |" in out and "resident memory" in out
    r = rows[0]
    assert r["bound_ms"] > 0 and r["step_ms"] > 0 and r["train_tok_s"] > 0 and r["plain_tok_s"] > 0
