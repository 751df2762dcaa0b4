"""The benchmark runs and prints its table (it asserts nothing about time)."""

import shutil

from genmodels.eval.bench import main


def test_bench_prints_a_row_per_model(tiny_text_ckpt, tmp_path, capsys):
    shutil.copytree(tiny_text_ckpt, tmp_path / "tiny")
    rows = main(quick=True, root=str(tmp_path))
    out = capsys.readouterr().out
    assert len(rows) == 1 and "| tiny |" in out and "resident memory" in out
    r = rows[0]
    assert r["bound_ms"] > 0 and r["step_ms"] > 0 and r["train_tok_s"] > 0 and r["plain_tok_s"] > 0


def test_the_typing_script_ships_so_latency_is_measured_on_a_fresh_clone():
    """The latency script reads a file tracked in git, not the prepared corpus (absent on a fresh clone)."""
    import subprocess

    from genmodels.core.paths import REPO_ROOT
    from genmodels.infer.suggest import TYPING_SCRIPT, typing_script

    before, typed = typing_script()
    assert typed.startswith("To be, or not to be") and len(typed) == 400
    assert len(before) == 2000 and before.rstrip().endswith("Ham.")
    ignored = subprocess.run(["git", "check-ignore", "-q", TYPING_SCRIPT], cwd=REPO_ROOT)
    assert ignored.returncode == 1, f"{TYPING_SCRIPT} must be tracked, not ignored"
