"""`pairlib train` / `pairlib evaluate` on a user's own files (pairlib.apply): each method from CSV and Parquet,
its folder loaded by `from_pretrained`, scored by `pairlib score` and evaluated to the numbers its card states.
The rows are real (tiny subsets of QQP and WikiQA); two optimizer steps a model keep it quick."""
import json

import pandas as pd
import pytest

from pairlib.apply import cli

FAST = ["--set", "max_steps=2", "--set", "batch_size=8", "--no-progress"]
PAIR_COLUMNS = ["--text-a", "question1", "--text-b", "question2", "--label", "label"]
RANK_COLUMNS = ["--query", "query", "--passage", "passage", "--query-id", "query_id", "--label", "label"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from pairlib.apply.examples import write_example_files
    root = tmp_path_factory.mktemp("apply")
    write_example_files(root, train_rows=64, validation_rows=24)
    return root


CASES = {  # method: (train file, validation file, columns, method options)
    "fastbert": ("pairs_train.csv", "pairs_validation.parquet", PAIR_COLUMNS,
                 ["--speed", "0.3", "--set", "max_length=32"]),
    "deformer": ("pairs_train.csv", "pairs_validation.parquet", PAIR_COLUMNS,
                 ["--split-layer", "3", "--set", "question_length=16", "--set", "passage_length=24"]),
    "dipair": ("ranking_train.parquet", "ranking_validation.csv", RANK_COLUMNS,
               ["--set", "query_length=12", "--set", "passage_length=32", "--set", "cross_length=44",
                "--pool-queries", "4", "--pool-passages", "3", "--query-tokens", "4", "--passage-tokens", "8"]),
}


@pytest.fixture(scope="module")
def trained(files):
    folders = {}
    for method, (train, validation, columns, options) in CASES.items():
        out = files / f"{method}-model"
        assert cli.main(["train", method, "--train", str(files / train), "--validation", str(files / validation),
                         *columns, "--out", str(out), *options, *FAST]) == 0
        folders[method] = out
    return folders


@pytest.mark.parametrize("method", list(CASES))
def test_a_trained_folder_evaluates_to_its_cards_numbers(files, trained, method, capsys):
    folder = trained[method]
    record = json.loads((folder / "training.json").read_text())
    assert record["method"] == method and (folder / "README.md").read_text().startswith("---\nlibrary_name")
    capsys.readouterr()
    assert cli.main(["evaluate", "--model", str(folder), "--data", str(files / CASES[method][1]), "--json",
                     "--no-progress"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    card = {row["model"]: row for row in record["quality"]}
    for row in evaluated:  # the method's own model (DeFormer's and DiPair's cards also show their reference)
        for metric, value in row.items():
            if metric != "model":
                assert value == pytest.approx(card[row["model"]][metric], abs=1e-6), (row["model"], metric)
    if method == "fastbert":
        assert {"all layers (the teacher)", "speed 0.3"} == {r["model"] for r in evaluated}


@pytest.mark.parametrize("method", list(CASES))
def test_a_trained_folder_loads_with_from_pretrained_and_is_scored_by_pairlib_score(files, trained, method,
                                                                                     tmp_path):
    from pairlib.serve.job import ScoreJob
    from pairlib.serve.models import MODEL_CLASSES
    folder = trained[method]
    config = json.loads((folder / "config.json").read_text())
    model = MODEL_CLASSES[config["model_type"]].from_pretrained(folder)
    assert model.config.model_type == {"fastbert": "fastbert", "deformer": "deformer", "dipair": "dipair"}[method]
    texts = pd.read_parquet(files / "pairs_validation.parquet").head(5)
    pd.DataFrame({"query_id": [f"q{i}" for i in range(5)], "text": texts.question1}).to_parquet(tmp_path / "q.parquet")
    pd.DataFrame({"passage_id": [f"p{i}" for i in range(5)], "text": texts.question2}).to_parquet(tmp_path / "p.parquet")
    pd.DataFrame({"query_id": [f"q{i}" for i in range(5)], "passage_id": [f"p{i}" for i in range(5)]}).to_parquet(
        tmp_path / "pairs.parquet")
    job = ScoreJob(str(folder), str(tmp_path / "p.parquet"), str(tmp_path / "q.parquet"),
                   str(tmp_path / "pairs.parquet"), str(tmp_path / "out"), engine="local")
    job.run(progress=False)
    assert len(job.scores()) == 5 and job.scores().score.notna().all()


def test_training_again_reads_the_trained_models_back(files, trained, capsys):
    train, validation, columns, options = CASES["fastbert"]
    capsys.readouterr()
    assert cli.main(["train", "fastbert", "--train", str(files / train), "--validation", str(files / validation),
                     *columns, "--out", str(trained["fastbert"]), *options, *FAST]) == 0
    assert "train_loss" not in capsys.readouterr().out  # nothing trained: the checkpoints in OUT.work were finished


@pytest.mark.parametrize("argv, message", [
    (["train", "fastbert", "--text-a", "question1", "--text-b", "nope", "--label", "label"], "no column 'nope'"),
    (["train", "fastbert", "--text-a", "question1", "--label", "label"], "name the text columns"),
    (["train", "fastbert", "--text-a", "question1", "--text-b", "question2"], "name the label column"),
    (["train", "dipair", *PAIR_COLUMNS], "DiPair ranks a query's candidates"),
    (["train", "fastbert", *PAIR_COLUMNS, "--set", "lr"], "--set takes KEY=VALUE"),
    (["train", "fastbert", *PAIR_COLUMNS, "--set", "epochz=2"], "unknown recipe setting"),
    (["train", "fastbert", *PAIR_COLUMNS, "--speed", "1.5"], "--speed must be from 0 to 1"),
])
def test_bad_input_is_a_clear_error(files, tmp_path, argv, message, capsys):
    status = cli.main([*argv[:2], "--train", str(files / "pairs_train.csv"), *argv[2:], "--out", str(tmp_path / "m"),
                       "--no-progress"])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_evaluating_a_folder_train_did_not_finish_is_refused(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert cli.main(["evaluate", "--model", str(tmp_path / "half"), "--data", "x.csv"]) == 2
    assert "not a folder `pairlib train` finished" in capsys.readouterr().err
