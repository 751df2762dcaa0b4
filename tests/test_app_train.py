"""The Train page (issue 25) under AppTest: an uploaded zip is read and described before anything trains, a
job trains in its own process and shows its progress and curve, a reloaded page still shows it, Stop keeps
the best weights, and the kept model is listed for generation under its name."""

from __future__ import annotations

import io
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.model_cache import available_models
from genmodels.infer.sampling import Sampler, Settings
from genmodels.learn.jobs import JobQueue

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(tmp_path, monkeypatch, tiny_text_ckpt):
    """A server whose shipped text model is the tiny one (so a fine-tune takes seconds) and whose jobs and
    models live in the test's folder."""
    models = tmp_path / "models"
    shutil.copytree(tiny_text_ckpt, models / "text-gru")
    monkeypatch.setenv("GENMODELS_CHECKPOINTS", str(models))
    monkeypatch.setenv("GENMODELS_JOBS", str(tmp_path / "jobs"))
    return JobQueue(tmp_path / "jobs", models)


def train_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app/pages/train.py").run()
    assert not at.exception, at.exception
    return at


def upload_zip(small_text_dir: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted((small_text_dir / "train").glob("*.txt")):
            z.writestr(f"mine/{f.name}", f.read_text()[:20_000])
        z.writestr("mine/photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    return buf.getvalue()


def wait(at: AppTest, queue: JobQueue, ok, timeout: float = 180) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        jobs = queue.jobs()
        if jobs and ok(jobs[0]):
            return jobs[0]
        assert not jobs or jobs[0]["status"] != "failed", queue.log_tail(jobs[0])
        time.sleep(0.5)
    raise AssertionError(queue.jobs())


def test_upload_train_reload_stop_keep_and_generate(server, small_text_dir):
    at = train_page()
    at.file_uploader(key="tr_upload").upload("mine.zip", upload_zip(small_text_dir), "application/zip").run()
    assert not at.exception, at.exception
    shown = re.sub(r"\\(.)", r"\1", " ".join(w.value for w in [*at.warning, *at.markdown]))
    assert "photo.txt" in shown and "binary" in shown and "characters" in shown
    assert any("passes" in i.value for i in at.info)  # the estimate, before anything trains
    at.text_input(key="tr_name").input("text-gru").run()
    at.button(key="tr_go").click().run()
    assert "exists already" in " ".join(e.value for e in at.error) and not server.jobs()
    at.text_input(key="tr_name").input("my-verse").run()
    at.button(key="tr_go").click().run()
    assert not at.exception and len(server.jobs()) == 1
    wait(at, server, lambda j: server.progress(j).get("history"))
    at = train_page()  # a reload: the job is read from disk
    assert any("my-verse" in re.sub(r"\\(.)", r"\1", e.label) for e in at.expander)
    assert at.get("vega_lite_chart") and at.get("progress")  # the curve and the bar
    assert at.code  # a sample from the weights saved so far
    job = server.jobs()[0]
    at.button(key=f"tr_stop_{job['id']}").click().run()
    wait(at, server, lambda j: j["status"] == "stopped")
    at = train_page()
    at.button(key=f"tr_keep_{job['id']}").click().run()
    assert server.job(job["id"])["status"] == "done"
    model = {m.name: m for m in available_models("text")}["my-verse"]
    text = Sampler(model.path).complete("The ", length=10, settings=Settings(seed=1))[0].continuation
    assert text


def test_a_fine_tunes_card_says_where_it_started():
    from app.cards import summary

    card = {"metric": "bits_per_char", "valid": 2.01, "parent_valid": 2.32, "commands": [{"model": "text-gru"}]}
    s = re.sub(r"\\(.)", r"\1", summary(card, "mine"))
    assert "Before fine-tuning, text-gru scored 2.32" in s and "2.01" in s


def test_a_full_disk_is_said_and_loses_nothing(server, small_text_dir, monkeypatch):
    """Writing the material when the disk is full: a message, no job, and the upload still there to retry."""
    import genmodels.learn.material as material

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    at = train_page()
    at.file_uploader(key="tr_upload").upload("mine.zip", upload_zip(small_text_dir), "application/zip").run()
    monkeypatch.setattr(material, "write_corpus", full)
    monkeypatch.setattr("app.pages.train.write_corpus", full, raising=False)
    at.text_input(key="tr_name").input("my-verse").run()
    at.button(key="tr_go").click().run()
    assert not at.exception, at.exception
    assert "No space left on device" in " ".join(e.value for e in at.error)
    assert not server.jobs() and not list((server.root / ".incoming").glob("*/train/*"))
    monkeypatch.undo()
    monkeypatch.setenv("GENMODELS_CHECKPOINTS", str(server.models_root))
    monkeypatch.setenv("GENMODELS_JOBS", str(server.root))
    at.run()  # space again (the button's callback is the one of the last run)
    at.button(key="tr_go").click().run()  # the upload and the name are still there: it trains now
    assert not at.exception and len(server.jobs()) == 1, [e.value for e in at.error]
    server.stop(server.jobs()[0]["id"])
