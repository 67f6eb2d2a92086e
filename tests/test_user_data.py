"""A task from a user's own files (`pairlib.core.data.user`): every format, the checks that name file, row and
column, and a method training on it by name. The rows are real: tiny subsets of QQP and WikiQA."""
import pandas as pd
import pytest

from pairlib.core import data
from pairlib.core.data import DataError
from pairlib.core.data.user import from_files


@pytest.fixture(scope="module")
def qqp_rows():
    rows = data.load_task("qqp", "train").select(range(80)).to_pandas()
    return rows.rename(columns={"question1": "first", "question2": "second", "label": "duplicate"})[
        ["first", "second", "duplicate"]]


PAIR = {"text_a": "first", "text_b": "second", "label": "duplicate"}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "dataset"])
def test_every_format_gives_the_same_task(qqp_rows, tmp_path, fmt):
    from datasets import Dataset
    path = tmp_path / f"pairs.{fmt}"
    if fmt == "csv":
        qqp_rows.to_csv(path, index=False)
    elif fmt == "tsv":
        qqp_rows.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        qqp_rows.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        qqp_rows.to_parquet(path)
    source = Dataset.from_pandas(qqp_rows) if fmt == "dataset" else path
    task = from_files("my_pairs", "pair_cls", source, columns=PAIR)
    dd = data.load_task("my_pairs")
    assert set(dd) == {"train", "validation"} and len(dd["train"]) + len(dd["validation"]) == 80
    assert task.label_names == ("0", "1") and task.text_columns == ("text_a", "text_b")
    assert set(dd["train"].column_names) == {"text_a", "text_b", "label"}
    assert task.data_version == from_files("my_pairs", "pair_cls", source, columns=PAIR).data_version


@pytest.mark.parametrize("change, message", [
    (lambda d, p: d.drop(columns="second").to_csv(p, index=False), "no column 'second'"),
    (lambda d, p: p.write_text(""), "is empty"),
    (lambda d, p: d.assign(duplicate=1).to_csv(p, index=False), "at least two classes"),
    (lambda d, p: d.assign(second=range(len(d))).to_csv(p, index=False), "holds only numbers"),
    (lambda d, p: d.assign(first=[""] + list(d["first"][1:])).to_csv(p, index=False), "row 1: column 'first'"),
    (lambda d, p: p.write_bytes(b"PAR1 not really parquet"), "not a readable"),
])
def test_bad_input_is_a_clear_error(qqp_rows, tmp_path, change, message):
    path = tmp_path / ("pairs.parquet" if "readable" in message else "pairs.csv")
    change(qqp_rows, path)
    with pytest.raises(DataError, match=message):
        from_files("bad_pairs", "pair_cls", path, columns=PAIR)


def test_labels_outside_the_declared_classes_and_repeated_ids_name_their_row(qqp_rows, tmp_path):
    path = tmp_path / "pairs.csv"
    qqp_rows.assign(duplicate=["same" if x else "different" for x in qqp_rows.duplicate]).to_csv(path, index=False)
    task = from_files("named", "pair_cls", path, columns=PAIR, label_names=["different", "same"])
    assert task.label_names == ("different", "same")
    with pytest.raises(DataError, match=r"row 1: label 'different' is not one of the classes \(no, yes\)"):
        from_files("named", "pair_cls", path, columns=PAIR, label_names=["no", "yes"])
    qqp_rows.assign(pair_id=[1, 1] + list(range(2, len(qqp_rows)))).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 2: id '1'"):
        from_files("named", "pair_cls", path, columns={**PAIR, "id": "pair_id"})
    with pytest.raises(DataError, match="built-in task"):
        from_files("qqp", "pair_cls", path, columns=PAIR)


def test_a_method_trains_on_a_users_task_by_name(qqp_rows, tmp_path):
    from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe
    qqp_rows.to_parquet(tmp_path / "pairs.parquet")
    from_files("my_trained_pairs", "pair_cls", tmp_path / "pairs.parquet", columns=PAIR)
    recipe = FastBertRecipe(task="my_trained_pairs", max_length=32, eval_split="validation", epochs=1,
                            distill_epochs=1, batch_size=16)
    exp = FastBertExperiment(recipe, "minilm-l6", tmp_path / "out", progress=False)
    model = exp.distilled()
    accuracy = exp.speed_sweep(model, [0.0]).accuracy.iloc[0]
    assert 0 <= accuracy <= 1 and model.config.num_labels == 2


def test_pair_match_groups_a_querys_candidates(tmp_path):
    rows = data.load_task("wikiqa", "validation").select(range(60)).to_pandas()
    task = from_files("my_ranking", "pair_match", pd.DataFrame(rows), validation=pd.DataFrame(rows),
                      columns={"query": "query", "passage": "passage", "label": "label", "query_id": "query_id"})
    train = data.load_task("my_ranking", "train").to_pandas()
    assert task.kind == "pair_match" and list(train.passage_id[:2]) == [f"{train.query_id[0]}-0",
                                                                         f"{train.query_id[0]}-1"]


def test_deformer_reads_a_users_pairs_caching_the_second_text(qqp_rows, tmp_path):
    from pairlib.core.backbone import load_tokenizer
    from pairlib.deformer.tasks import PairTask, deformer_task, pair_columns
    from_files("my_deformer_pairs", "pair_cls", qqp_rows, columns=PAIR)
    task = deformer_task("my_deformer_pairs", load_tokenizer("minilm-l6"), 16, 24)
    assert isinstance(task, PairTask) and pair_columns("my_deformer_pairs") == ("text_a", "text_b")
    segments = task.segments(task.load("train", 8), train=True)
    assert len(segments) == 8 and segments.tensors["passage_input_ids"].shape == (8, 24)
