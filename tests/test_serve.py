"""The batch scoring job (pairlib.serve): the cached path gives the model's own scores, bad input is refused before
any work, and a job stopped part-way resumes to the same output, on Ray as in-process."""
import numpy as np
import pandas as pd
import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.deformer.inputs import tokenize_segments
from pairlib.deformer.modeling import DeFormerForSequenceClassification
from pairlib.dipair.experiment import encode_pairs
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder
from pairlib.serve.job import ScoreJob, read_scores
from pairlib.serve.models import ServeError

LENGTHS = {"query_length": 12, "passage_length": 24, "cross_length": 32}
KINDS = ("dipair", "cosine", "deformer-k2", "deformer-k0", "cross")
PASSAGES = ["The Eiffel Tower is in Paris.", "Photosynthesis turns light into chemical energy.",
            "The Nile flows north into the Mediterranean.", "Mount Everest is the highest mountain.",
            "Python is a programming language.", "The heart pumps blood through the body."]
QUERIES = ["where is the eiffel tower", "what does photosynthesis do", "which way does the nile flow",
           "what is the highest mountain"]


def _model(kind: str):
    torch.manual_seed(0)
    if kind == "dipair":
        return DiPairModel.from_backbone("minilm-l6", query_tokens=2, passage_tokens=4, head_dim=32, head_heads=2)
    if kind == "cosine":
        return DualEncoder.from_backbone("minilm-l6", scorer="cosine")
    if kind.startswith("deformer"):  # k=2: both sides' lower layers cached; k=0: the original model, nothing cached
        return DeFormerForSequenceClassification.from_backbone("minilm-l6", split_layer=int(kind[-1]), num_labels=2)
    return CrossEncoder.from_backbone("minilm-l6", num_layers=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    pd.DataFrame({"passage_id": [f"p{i}" for i in range(6)], "text": PASSAGES}).to_parquet(root / "passages.parquet")
    pd.DataFrame({"query_id": [f"q{i}" for i in range(4)], "text": QUERIES}).to_parquet(root / "queries.parquet")
    pairs = pd.DataFrame([(f"q{q}", f"p{p}") for q in range(4) for p in range(6)], columns=["query_id", "passage_id"])
    pairs.to_parquet(root / "pairs.parquet")
    tok = load_tokenizer("minilm-l6")
    models = {}
    for kind in KINDS:
        model = _model(kind).eval()
        model.save_pretrained(root / kind)
        tok.save_pretrained(root / kind)
        models[kind] = model
    return root, pairs, models


def _job(root, kind, out, **kw):
    return ScoreJob(str(root / kind), str(root / "passages.parquet"), str(root / "queries.parquet"),
                    str(root / "pairs.parquet"), str(out), **{"engine": "local", "lengths": LENGTHS, **kw})


def _own_forward(model, pairs) -> np.ndarray:
    tok = load_tokenizer("minilm-l6")
    q = [QUERIES[int(i[1:])] for i in pairs.query_id]
    p = [PASSAGES[int(i[1:])] for i in pairs.passage_id]
    with torch.inference_mode():
        if isinstance(model, DeFormerForSequenceClassification):
            logits = model(**tokenize_segments(tok, q, p, LENGTHS["query_length"], LENGTHS["passage_length"])).logits
            return (logits[:, 1] - logits[:, 0]).numpy()
        return model(**encode_pairs(tok, q, p, **LENGTHS)).float().numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_cached_scores_equal_the_models_own_forward(inputs, tmp_path, kind):
    root, pairs, models = inputs
    job = _job(root, kind, tmp_path / "f32", dtype="float32", side_shard_size=4, pair_shard_size=7, batch_size=5)
    report = job.run(progress=False)
    scores = job.scores()
    assert report["encode_tasks_run"] == 2 + 1 and report["score_tasks_run"] == 4
    assert list(scores.query_id) == list(pairs.query_id) and list(scores.passage_id) == list(pairs.passage_id)
    np.testing.assert_allclose(scores.score, _own_forward(models[kind], pairs), atol=1e-5, rtol=1e-5)
    half = _job(root, kind, tmp_path / "f16").run(progress=False)  # the default: stores in float16
    np.testing.assert_allclose(read_scores(tmp_path / "f16").score, scores.score, atol=3e-2)
    cached = kind not in ("cross", "deformer-k0")
    assert job.served.caches_sides == cached
    assert half["store_bytes"] < report["store_bytes"] or not cached


def test_a_deformer_that_gives_no_single_pair_score_is_refused(inputs, tmp_path):
    root, _, _ = inputs
    from pairlib.deformer.modeling import DeFormerForQuestionAnswering
    DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=2).save_pretrained(root / "deformer-qa")
    DeFormerForSequenceClassification.from_backbone("minilm-l6", split_layer=2, num_labels=3).save_pretrained(
        root / "deformer-3")
    for folder in ("deformer-qa", "deformer-3"):
        with pytest.raises(ServeError, match="needs a pair classifier"):
            _job(root, folder, tmp_path / "out")


def test_bad_input_is_refused_before_any_work(inputs, tmp_path):
    root, pairs, _ = inputs
    pd.DataFrame({"passage_id": ["p0"], "body": ["x"]}).to_parquet(tmp_path / "bad_passages.parquet")
    with pytest.raises(ServeError, match=r"lacks column\(s\) \['text'\]"):
        ScoreJob(str(root / "dipair"), str(tmp_path / "bad_passages.parquet"), str(root / "queries.parquet"),
                 str(root / "pairs.parquet"), str(tmp_path / "out"), engine="local")
    pd.concat([pairs, pd.DataFrame({"query_id": ["q9"], "passage_id": ["p0"]})]).to_parquet(tmp_path / "pairs.parquet")
    with pytest.raises(ServeError, match=r"1 pair\(s\) name a query_id that --queries lacks, e.g. \['q9'\]"):
        ScoreJob(str(root / "dipair"), str(root / "passages.parquet"), str(root / "queries.parquet"),
                 str(tmp_path / "pairs.parquet"), str(tmp_path / "out"), engine="local")
    with pytest.raises(ServeError, match="not a saved model folder"):
        _job(root, "no-such-model", tmp_path / "out")
    from transformers import BertConfig, BertModel
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
              ).save_pretrained(root / "plain-bert")
    with pytest.raises(ServeError, match="type 'bert', which does not score pairs"):
        _job(root, "plain-bert", tmp_path / "out")
    with pytest.raises(ServeError, match="engine must be one of"):
        _job(root, "dipair", tmp_path / "out", engine="spark")
    assert not (tmp_path / "out").exists()  # nothing written by a refused job
    _job(root, "dipair", tmp_path / "built").run(progress=False)
    with pytest.raises(ServeError, match="was built with model="):
        _job(root, "cosine", tmp_path / "built")


def test_an_out_built_from_other_texts_lengths_or_stray_files_is_refused(inputs, tmp_path):
    """A store is reused only for the same model, texts, lengths and tokenizer; files without a manifest are not
    taken as finished work."""
    root, _, _ = inputs
    _job(root, "dipair", tmp_path / "out").run(progress=False)
    changed = pd.DataFrame({"passage_id": [f"p{i}" for i in range(6)], "text": [t + " Changed." for t in PASSAGES]})
    changed.to_parquet(tmp_path / "changed.parquet")
    with pytest.raises(ServeError, match="was built with texts="):
        ScoreJob(str(root / "dipair"), str(tmp_path / "changed.parquet"), str(root / "queries.parquet"),
                 str(root / "pairs.parquet"), str(tmp_path / "out"), engine="local", lengths=LENGTHS)
    with pytest.raises(ServeError, match="was built with length="):
        _job(root, "dipair", tmp_path / "out", lengths={**LENGTHS, "passage_length": 20})
    stray = tmp_path / "stray" / "scores"
    stray.mkdir(parents=True)
    (stray / "shard-00000.parquet").write_bytes(b"")
    with pytest.raises(ServeError, match="holds files but no manifest.json"):
        _job(root, "dipair", tmp_path / "stray")


def test_texts_and_ids_are_read_as_written_and_bad_lengths_are_refused(inputs, tmp_path):
    root, _, _ = inputs
    (tmp_path / "passages.csv").write_text("passage_id,text\n001,some text\n002,\n")
    with pytest.raises(ServeError, match=r"column 'text' is empty in row\(s\) \[1\]"):
        ScoreJob(str(root / "dipair"), str(tmp_path / "passages.csv"), str(root / "queries.parquet"),
                 str(root / "pairs.parquet"), str(tmp_path / "out"), engine="local")
    from pairlib.serve.job import read_table
    (tmp_path / "ok.csv").write_text("passage_id,text\n001,some text\n")
    assert read_table(tmp_path / "ok.csv", "passages").passage_id.tolist() == ["001"]
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(ServeError, match="cannot be read as Parquet"):
        read_table(tmp_path / "fake.parquet", "passages")
    for bad in (0, -3, 100_000):
        with pytest.raises(ServeError, match="query_length must be a whole number from 1 to 512"):
            _job(root, "dipair", tmp_path / "out", lengths={**LENGTHS, "query_length": bad})
    assert not (tmp_path / "out").exists()


def test_a_job_stopped_part_way_resumes_on_ray_to_the_same_output(inputs, tmp_path, monkeypatch, capfd):
    root, _, _ = inputs
    whole = _job(root, "dipair", tmp_path / "whole", pair_shard_size=6)
    whole.run(progress=False)
    from pairlib.serve import job as job_module
    calls = {"n": 0}
    real = job_module.ShardWorker.do

    def stops_after_two(self, task):
        calls["n"] += 1
        if task["stage"] == "score" and calls["n"] > 4:
            raise KeyboardInterrupt("killed")
        return real(self, task)
    monkeypatch.setattr(job_module.ShardWorker, "do", stops_after_two)
    with pytest.raises(KeyboardInterrupt):
        _job(root, "dipair", tmp_path / "part", pair_shard_size=6).run(progress=False)
    monkeypatch.setattr(job_module.ShardWorker, "do", real)
    done = sorted(p.name for p in (tmp_path / "part" / "scores").glob("shard-*.parquet"))
    assert 0 < len(done) < 4
    import ray
    try:
        report = _job(root, "dipair", tmp_path / "part", pair_shard_size=6, engine="ray").run(progress=False)
    finally:
        ray.shutdown()
    assert "streaming_executor" not in capfd.readouterr().err  # Ray Data's execution plans stay out of notebooks
    assert report["encode_tasks_run"] == 0 and report["score_tasks_run"] == 4 - len(done)
    pd.testing.assert_frame_equal(read_scores(tmp_path / "part"), read_scores(tmp_path / "whole"))


def test_a_model_saved_for_serving_brings_its_tokenizer_and_lengths(inputs, tmp_path):
    from pairlib.serve.models import load_served_model, save_for_serving
    root, _, models = inputs
    folder = save_for_serving(models["cosine"], load_tokenizer("minilm-l6"), tmp_path / "de-cos", **LENGTHS)
    served = load_served_model(folder)
    assert (served.query_length, served.passage_length, served.cross_length) == (12, 24, 32)
    with pytest.raises(ServeError, match="unknown length"):
        save_for_serving(models["cosine"], load_tokenizer("minilm-l6"), tmp_path / "x", query_len=3)
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_a_local_ray_start_that_times_out_is_tried_again_and_a_cluster_address_is_not(monkeypatch):
    """Ray gives its raylet a fixed 30 s to register, which a busy 2-core machine can miss once."""
    ray = pytest.importorskip("ray")
    from pairlib.serve import job as job_module

    calls = []

    def init(address=None, **_):
        calls.append(address)
        if len(calls) == 1:
            raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    job_module._start_ray(None)
    assert calls == [None, None]
    calls.clear()
    with pytest.raises(Exception, match="timed out during startup"):
        job_module._start_ray("ray://head:10001")
    assert calls == ["ray://head:10001"]


def test_a_device_the_machine_lacks_is_refused_and_the_gpu_pool_is_sized_from_the_gpus(inputs, tmp_path, monkeypatch):
    root, _, _ = inputs
    from pairlib.serve import job as job_module

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ServeError, match="torch sees no CUDA GPU here: use --device cpu"):
        _job(root, "dipair", tmp_path / "out", device="cuda")
    with pytest.raises(ServeError, match="device must be one of"):
        _job(root, "dipair", tmp_path / "out", device="tpu")
    with pytest.raises(ServeError, match=r"gpus_per_actor must be in \(0, 1\]"):
        _job(root, "dipair", tmp_path / "out", engine="ray", device="cuda", gpus_per_actor=1.5)
    assert not (tmp_path / "out").exists()
    # 2 GPUs at half a GPU each: four actors sharing 0.8 of 16 CPUs; none on a cluster without GPUs
    assert job_module.gpu_actor_plan(16, 2, 0.5) == (4, 3.2, 3)
    with pytest.raises(ServeError, match="the Ray cluster has 0 GPUs"):
        job_module.gpu_actor_plan(16, 0, 1.0)


HOLDS_ON_RAY = """
import sys, time
from pairlib.serve import cli, job
def holds(tasks, settings, address):  # Ray started as a job starts it, then the driver waits as on a long job
    job._start_ray(address)
    print("ray started", flush=True)
    time.sleep(600)
job._run_on_ray = holds
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_score_job_stopped_by_sigterm_stops_the_ray_it_started(inputs, tmp_path):
    """`kill <pid>` on the driver used to leave the local Ray's processes running; now the job ends as on Ctrl-C
    (exit 143, told how to go on) and every process it started is gone."""
    import signal
    import subprocess
    import sys

    import psutil
    pytest.importorskip("ray")
    root, _, _ = inputs
    script = tmp_path / "holds.py"
    script.write_text(HOLDS_ON_RAY)
    args = ["--model", str(root / "dipair"), "--passages", str(root / "passages.parquet"), "--queries",
            str(root / "queries.parquet"), "--pairs", str(root / "pairs.parquet"), "--out", str(tmp_path / "out"),
            "--engine", "ray"]
    driver = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert driver.stdout.readline().strip() == "ray started"
        started = psutil.Process(driver.pid).children(recursive=True)
        assert any("raylet" in " ".join(p.cmdline()) for p in started)
        driver.send_signal(signal.SIGTERM)
        _, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err and "run the same command again" in err
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]
