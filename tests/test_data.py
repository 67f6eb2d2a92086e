import hashlib
import json
import time

import datasets
import pandas as pd
import pytest

from pairlib.core import data

# Counts from ../shared/data/MANIFEST.md; derived splits are checked by their sum (see Task.deviations).
MANIFEST_COUNTS = {
    "squad": {"train": 87599, "validation": 10570},
    "boolq": {"train": 9427, "validation": 3270, "fewglue32": 32},
    "mnli": {"train": 9999, "validation": 9815},
    "qqp": {"train+validation+test": 9999},
    "race": {"train+validation": 1436, "test": 1436},
    "ag_news": {"train+validation": 20000, "test": 7600},
    "wikiqa": {"train": 20360, "validation": 2733, "test": 6165},
    "chnsenticorp": {"train": 9600, "validation": 1200, "test": 1200},
    "book_review": {"train": 20000, "validation": 10000, "test": 10000},
    "shopping": {"train": 20000, "validation": 10000, "test": 10000},
    "lcqmc": {"train": 238766, "validation": 8802, "test": 12500},
    "thucnews": {"train": 45000, "validation": 10000, "test": 10000},
    "weibo": {"train+validation+test": 23998},
    "dbpedia": {"train+validation": 10943, "test": 7600},
    "amazon_full": {"train+validation": 5000, "test": 7600},
    "yahoo": {"train+validation": 9295, "test": 2958},
    "yelp_full": {"train+validation+test": 5000, "official_test_sample": 100},
    # Yelp.F's rows of 1-4 stars (its 5-star rows dropped), relabelled by Yelp.P's rule
    "yelp_polarity": {"train+validation+test": 4020, "official_test_sample": 81},
    # the 6,375 dev.small queries outside the 600 whose passage is no evaluation candidate, x (1 + 3 negatives)
    "msmarco_q2p": {"train+validation": 25500, "test_ranked": 12000},
}
# per-class counts of the test samples (MANIFEST): every class is there, none dominates
TEST_CLASS_RANGES = {"dbpedia": (506, 583), "amazon_full": (1457, 1574), "yahoo": (291, 298)}


@pytest.fixture(scope="module")
def loaded():
    return {}


def _load(loaded, name):
    if name not in loaded:
        loaded[name] = data.load_task(name)
    return loaded[name]


@pytest.mark.parametrize("name", sorted(MANIFEST_COUNTS))
def test_task_loads_with_manifest_counts_and_documented_columns(loaded, name):
    dd = _load(loaded, name)
    for splits, n in MANIFEST_COUNTS[name].items():
        assert sum(len(dd[s]) for s in splits.split("+")) == n, splits
    task = data.get_task(name)
    for split, ds in dd.items():
        assert set(ds.column_names) == set(task.columns), (split, ds.column_names)
        if "label" in ds.column_names and task.label_names:
            assert set(ds["label"]) <= set(range(len(task.label_names)))


@pytest.mark.parametrize("name", sorted(TEST_CLASS_RANGES))
def test_topic_and_review_test_samples_have_the_manifests_class_counts(loaded, name):
    counts = pd.Series(_load(loaded, name)["test"]["label"]).value_counts()
    low, high = TEST_CLASS_RANGES[name]
    assert len(counts) == len(data.get_task(name).label_names) and low <= counts.min() and counts.max() <= high


def test_english_review_texts_read_the_official_newline_escapes_as_spaces(loaded):
    """The official CSVs escape newlines as a literal backslash-n, which a tokenizer would read as two tokens."""
    for name in ("yahoo", "yelp_full"):
        texts = [t for split in _load(loaded, name).values() for t in split["text"]]
        assert not any("\\n" in t for t in texts), name


def test_yelp_full_test_is_derived_from_train_and_disjoint(loaded):
    dd = _load(loaded, "yelp_full")
    train, validation, test = (set(dd[s]["text"]) for s in ("train", "validation", "test"))
    assert not (train & test or train & validation or validation & test)
    assert 700 <= len(test) <= 1300 and 150 <= len(validation) <= 350


def test_yelp_polarity_relabels_yelp_full_by_its_readmes_rule(loaded):
    full, polarity = _load(loaded, "yelp_full"), _load(loaded, "yelp_polarity")
    for split in ("train", "validation", "test", "official_test_sample"):
        stars = dict(zip(full[split]["text"], (label + 1 for label in full[split]["label"])))
        assert all(stars[t] != 5 and label == (stars[t] >= 3)
                   for t, label in zip(polarity[split]["text"], polarity[split]["label"])), split
        assert len(polarity[split]) == sum(s != 5 for s in stars.values()), split


def test_msmarco_q2p_keeps_the_evaluation_queries_and_candidates_out_of_training(loaded):
    dd = _load(loaded, "msmarco_q2p")
    ranked = dd["test_ranked"].to_pandas()
    assert ranked.groupby("query_id").size().eq(20).all() and ranked.query_id.nunique() == 600
    assert ranked.groupby("query_id").label.sum().value_counts().to_dict() == {1: 540, 0: 60}  # MANIFEST
    candidates = set(ranked.passage)
    for split in ("train", "validation"):
        side = dd[split].to_pandas()
        assert not set(side.query_id) & set(ranked.query_id), split
        assert not any(p.endswith(c) for p in set(side.passage) for c in candidates if p[-40:] == c[-40:]), split
        per_query = side.groupby("query_id")
        assert per_query.size().eq(4).all() and per_query.label.sum().eq(1).all(), split
        # the no-title mark (1,935 of the titled file's passages) is stripped; a text that itself begins "- " keeps it
        assert side.passage.str.startswith("- ").sum() <= 2, split
    assert not set(dd["train"].to_pandas().query_id) & set(dd["validation"].to_pandas().query_id)


def test_every_registered_task_has_a_count_check():
    assert set(data.list_tasks(offline=True)) == set(MANIFEST_COUNTS) | {"squad_q2p"}
    assert set(data.list_tasks()) - set(data.list_tasks(offline=True)) == {"ms_marco"}


def test_a_hub_only_task_offline_says_what_to_do():
    with pytest.raises(data.DataError, match="only on the Hugging Face Hub.*squad_q2p, wikiqa"):
        data.load_task("ms_marco")


def test_glue_tasks_from_the_hub_keep_the_dev_set_the_local_files_have_and_drop_glues_row_index(monkeypatch):
    import datasets

    def glue(path: str, config: str) -> datasets.DatasetDict:  # each split says which it is
        return datasets.DatasetDict({name: datasets.Dataset.from_dict({"idx": [0], "label": [1], "split": [name]})
                                     for name in ("train", "validation", "validation_matched",
                                                  "validation_mismatched")})

    monkeypatch.setattr(data.datasets, "load_dataset", glue)
    for task, dev in (("mnli", "validation_matched"), ("qqp", "validation")):
        dd = data.get_task(task).load_hub()
        assert set(dd) == {"train", "validation"} and dd["validation"].column_names == ["label", "split"]
        assert dd["train"]["split"] == ["train"] and dd["validation"]["split"] == [dev]


def test_ms_marco_rows_become_candidates():
    rows = [{"query_id": 7, "query": "q", "passages": {"passage_text": ["a", "b"], "is_selected": [0, 1]}}]
    assert data.ms_marco_candidates(rows) == [
        {"query_id": "7", "query": "q", "passage_id": "7-0", "passage": "a", "label": 0},
        {"query_id": "7", "query": "q", "passage_id": "7-1", "passage": "b", "label": 1}]


def test_boolq_is_the_official_train_and_dev(loaded):
    boolq = _load(loaded, "boolq")
    assert sum(boolq["train"]["label"]) == 5874 and sum(boolq["validation"]["label"]) == 2033  # MANIFEST's counts
    train = set(zip(boolq["train"]["question"], boolq["train"]["passage"]))
    fewglue = {(q, p.split(" -- ", 1)[1]) for q, p in zip(boolq["fewglue32"]["question"],
                                                          boolq["fewglue32"]["passage"])}
    assert len(fewglue) == 32 and fewglue <= train  # FewGLUE's passages are "<title> -- <passage>"
    assert not train & set(zip(boolq["validation"]["question"], boolq["validation"]["passage"]))


def test_mnli_labels_are_glue_ids_with_the_official_dev_counts(loaded):
    mnli = _load(loaded, "mnli")
    counts = pd.Series(mnli["validation"]["label"]).value_counts().to_dict()
    assert counts == {0: 3479, 1: 3123, 2: 3213}  # entailment, neutral, contradiction: MANIFEST's (and GLUE's)
    assert not set(zip(mnli["train"]["premise"], mnli["train"]["hypothesis"])) & set(
        zip(mnli["validation"]["premise"], mnli["validation"]["hypothesis"]))


def test_qqp_splits_are_deterministic_and_disjoint(loaded):
    qqp = _load(loaded, "qqp")
    again = data.get_task("qqp").load_local(data.data_root())
    pairs = {}
    for split in ("train", "validation", "test"):
        assert qqp[split]["question1"] == again[split]["question1"], split
        pairs[split] = set(zip(qqp[split]["question1"], qqp[split]["question2"]))
    assert not pairs["train"] & pairs["validation"] and not pairs["train"] & pairs["test"]
    assert not pairs["validation"] & pairs["test"]
    assert sum(sum(qqp[s]["label"]) for s in pairs) == 3252 + 377  # MANIFEST's duplicates in the two files


def test_derived_splits_do_not_share_passages(loaded):
    race = _load(loaded, "race")
    assert not set(race["train"]["example_id"]) & set(race["validation"]["example_id"])


def test_squad_q2p_is_deterministic_and_pinned():
    articles = data._squad_articles(data.data_root() / "squad_v1.1/dev-v1.1.json.gz")[:3]
    a, b = data.build_q2p(articles), data.build_q2p(articles)
    assert a == b
    per_query = {}
    for r in a:
        per_query.setdefault(r["query_id"], []).append(r["negative"])
    assert all(sorted(v) == ["easy", "hard", "positive"] for v in per_query.values())
    digest = hashlib.md5(json.dumps(a, sort_keys=True).encode()).hexdigest()
    assert digest == Q2P_PINNED_DIGEST, "squad_q2p changed: bump the pin only on purpose, and say so in its deviations"


RANKING_PINNED_DIGESTS = ("6e8cb22d421f2dc1a8f0399c171dc059", "ce8f32d5fae2191742d3256bde2a6049")  # the first 3 dev articles; the same cut to 4 paragraphs


def test_ranked_candidates_are_deterministic_and_pinned():
    articles = data._squad_articles(data.data_root() / "squad_v1.1/dev-v1.1.json.gz")[:3]
    short = [dict(a, paragraphs=a["paragraphs"][:4]) for a in articles]  # too short: topped up from other articles
    for arts, pinned in zip((articles, short), RANKING_PINNED_DIGESTS):
        rows = data.build_ranking(arts)
        assert rows == data.build_ranking(arts)
        assert hashlib.md5(json.dumps(rows, sort_keys=True).encode()).hexdigest() == pinned, \
            "test_ranked changed: bump the pin only on purpose, and say so in squad_q2p's deviations"
    assert {r["negative"] for r in data.build_ranking(short)} == {"positive", "same article", "other article"}


def test_ranked_test_split_has_each_dev_question_with_its_own_paragraph_and_nine_others(loaded):
    dd = _load(loaded, "squad_q2p")
    ranked = dd["test_ranked"].to_pandas()
    per_query = ranked.groupby("query_id")
    assert per_query.ngroups == 10570 and (per_query.size() == 10).all()
    assert (per_query.label.sum() == 1).all() and (per_query.passage_id.nunique() == 10).all()
    own = ranked[ranked.label == 1].set_index("query_id").passage_id
    test = dd["test"].to_pandas()
    assert own.equals(test[test.label == 1].set_index("query_id").passage_id.loc[own.index]), "the same positives"
    for split in ("train", "validation"):  # what a model trains or selects on never reaches this split
        assert not set(ranked.query_id) & set(dd[split]["query_id"])
        assert not set(ranked.passage) & set(dd[split]["passage"])
    # six generic questions ("What does AC stand for?") are asked in train too, about other articles
    assert len(set(ranked["query"]) & set(dd["train"]["query"])) == 6


def test_squad_q2p_splits(loaded):
    dd = _load(loaded, "squad_q2p")
    assert len(dd["test"]) == 3 * 10570
    assert sum(dd["test"]["label"]) == 10570
    assert not set(dd["train"]["query_id"]) & set(dd["validation"]["query_id"])


def test_pair_match_tasks_share_one_schema_and_group_candidates_by_query(loaded):
    """DiPair's experiment reads any pair_match task; its pool draws hard negatives from a passage id's group."""
    for name in [t for t in data.list_tasks() if data.get_task(t).kind == "pair_match"]:
        assert {"query_id", "query", "passage_id", "passage", "label"} <= set(data.get_task(name).columns), name
    test = _load(loaded, "wikiqa")["test"]
    assert all(p.split("-")[0] == q for q, p in zip(test["query_id"], test["passage_id"]))
    assert len(set(test["passage_id"])) == len(test) and len(set(test["query_id"])) == 633


def test_unknown_task_lists_valid_ones():
    with pytest.raises(data.DataError, match="unknown task 'sqaud'.*squad"):
        data.load_task("sqaud")


def test_missing_split_is_named():
    with pytest.raises(data.DataError, match="no split 'test'.*train, validation"):
        data.load_task("squad", split="test")


def test_missing_local_file_offline_says_what_to_do(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(data.DataError, match="missing local file.*boolq/dev.jsonl.gz.*PAIRLIB_DATA"):
        data.load_task("boolq", root=tmp_path)
    assert time.perf_counter() - t0 < 5


def test_bad_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRLIB_DATA", str(tmp_path / "nope"))
    with pytest.raises(data.DataError, match="PAIRLIB_DATA"):
        data.data_root()


def test_subsample_is_a_fixed_sample(loaded):
    ds = _load(loaded, "boolq")["validation"]
    assert data.subsample(ds, 10)["question"] == data.subsample(ds, 10)["question"]
    assert len(data.subsample(ds, None)) == len(ds)

Q2P_PINNED_DIGEST = "5600c6661f7d514867f61961dd9d5bf1"


def _copy_root(tmp_path, *files, manifest=True):
    """A data root holding copies of some real files (and the real MANIFEST.md)."""
    src = data.data_root()
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes((src / f).read_bytes())
    if manifest:
        (tmp_path / "MANIFEST.md").write_bytes((src / "MANIFEST.md").read_bytes())
    return tmp_path


def test_a_file_cut_short_is_refused_by_its_manifest_size(tmp_path):
    import gzip
    root = _copy_root(tmp_path, "ag_news/train_subset20000.csv.gz", "ag_news/test.csv.gz")
    train = root / "ag_news/train_subset20000.csv.gz"
    lines = gzip.decompress(train.read_bytes()).split(b"\n")[:5000]
    train.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(data.DataError, match=r"train_subset20000.csv.gz has [\d,]+ bytes where .*MANIFEST.md lists"):
        data.load_task("ag_news", root=root)


def test_a_damaged_file_of_the_right_size_is_refused_by_its_hash(tmp_path):
    root = _copy_root(tmp_path, "boolq/dev.jsonl.gz", "boolq/fewglue_train32.jsonl.gz", "boolq/train.jsonl.gz")
    dev = root / "boolq/dev.jsonl.gz"
    raw = bytearray(dev.read_bytes())
    raw[1000] ^= 0xFF
    dev.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=r"dev.jsonl.gz does not match the sha256"):
        data.load_task("boolq", root=root)


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00garbage", b"not gzip at all", None])
def test_an_unreadable_file_names_itself_without_a_manifest(tmp_path, content, monkeypatch):
    import gzip
    monkeypatch.setenv("PAIRLIB_DATA_UNCHECKED", "1")  # the user's own copy, which no MANIFEST lists
    root = _copy_root(tmp_path, "boolq/dev.jsonl.gz", "boolq/fewglue_train32.jsonl.gz", "boolq/train.jsonl.gz",
                      manifest=False)
    dev = root / "boolq/dev.jsonl.gz"
    dev.write_bytes(content if content is not None else gzip.compress(b'{"question": "cut in the mid'))
    with pytest.raises(data.DataError, match=r"boolq/dev.jsonl.gz cannot be read \("):
        data.load_task("boolq", root=root)


def test_a_task_is_built_once_per_process_until_its_files_change(tmp_path, monkeypatch):
    import os
    import shutil

    monkeypatch.setenv("PAIRLIB_CACHE", "none")  # a copy under tmp_path: nothing of it belongs in the user's cache
    monkeypatch.setenv("PAIRLIB_DATA_UNCHECKED", "1")  # copies without the MANIFEST

    task = data.get_task("chnsenticorp")
    for f in task.files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.data_root() / f, tmp_path / f)
    first = data.load_task("chnsenticorp", root=tmp_path)
    assert data.load_task("chnsenticorp", root=tmp_path) is first
    changed = tmp_path / task.files[-1]
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = data.load_task("chnsenticorp", root=tmp_path)
    assert again is not first and again["test"].to_list() == first["test"].to_list()


def test_a_built_task_is_kept_on_disk_for_the_next_process_until_its_files_change(tmp_path, monkeypatch, capfd):
    import dataclasses
    import os
    import shutil

    task = data.get_task("race")
    root = tmp_path / "data"
    for f in task.files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.data_root() / f, root / f)
    monkeypatch.setenv("PAIRLIB_DATA_UNCHECKED", "1")  # copies without the MANIFEST
    monkeypatch.setenv("PAIRLIB_CACHE", str(tmp_path / "cache"))
    first = data.load_task("race", root=root)
    assert len(list((tmp_path / "cache" / "tasks").glob("race-*"))) == 1
    assert "Saving the dataset" not in capfd.readouterr().err  # the write shows no bar (it landed in notebooks)
    assert not datasets.are_progress_bars_disabled()  # and leaves the user's setting as it was
    data._load_local_once.cache_clear()  # as a new process finds it

    def unbuildable(_root):
        raise AssertionError("built again")
    monkeypatch.setitem(data.TASKS, "race", dataclasses.replace(task, load_local=unbuildable))
    again = data.load_task("race", root=root)
    assert again is not first and again["test"].to_list() == first["test"].to_list()
    assert again["test"].features == first["test"].features
    changed = root / task.files[-1]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="built again"):
        data.load_task("race", root=root)
    monkeypatch.setenv("PAIRLIB_CACHE", "none")
    data._load_local_once.cache_clear()
    with pytest.raises(AssertionError, match="built again"):
        data.load_task("race", root=root)


def test_a_comment_or_docstring_edit_rebuilds_no_task_but_a_code_edit_does(tmp_path):
    from pairlib.core.data.registry import code_digest
    module = tmp_path / "family.py"
    module.write_text('"""Loaders."""\n\n\ndef load(root):\n    """Rows."""\n    return [1, 2]  # two rows\n')
    before = code_digest(str(module))
    module.write_text('"""Loaders, described anew."""\n\n\ndef load(root):\n    """The rows."""\n'
                      '    # a new comment\n    return [1, 2]\n')
    code_digest.cache_clear()
    assert code_digest(str(module)) == before
    module.write_text('"""Loaders."""\n\n\ndef load(root):\n    """Rows."""\n    return [1, 2, 3]\n')
    code_digest.cache_clear()
    assert code_digest(str(module)) != before


def test_files_no_manifest_lists_are_refused_unless_said_to_be_the_users_own(tmp_path, monkeypatch):
    """A data root copied without its MANIFEST.md: a file cut short at a line end would load fewer rows silently."""
    import gzip
    root = _copy_root(tmp_path, "ag_news/train_subset20000.csv.gz", "ag_news/test.csv.gz", manifest=False)
    train = root / "ag_news/train_subset20000.csv.gz"
    train.write_bytes(gzip.compress(b"\n".join(gzip.decompress(train.read_bytes()).split(b"\n")[:5000])))
    monkeypatch.setenv("PAIRLIB_CACHE", "none")
    with pytest.raises(data.DataError, match="no MANIFEST.md lies in its data root.*PAIRLIB_DATA_UNCHECKED=1"):
        data.load_task("ag_news", root=root)
    monkeypatch.setenv("PAIRLIB_DATA_UNCHECKED", "1")
    assert len(data.load_task("ag_news", "train", root=root)) < 5000


def test_a_kept_task_cut_short_is_built_again(tmp_path, monkeypatch):
    """The Arrow copy of a built task is counted against the rows it was built with."""
    import shutil
    monkeypatch.setenv("PAIRLIB_CACHE", str(tmp_path / "cache"))
    data._load_local_once.cache_clear()
    full = data.load_task("race")
    data._load_local_once.cache_clear()
    arrow = next((tmp_path / "cache" / "tasks").glob("race-*/test/*.arrow"))
    full["test"].select(range(5)).save_to_disk(str(tmp_path / "cut"))  # a valid Arrow file of the first rows only
    shutil.copyfile(next((tmp_path / "cut").glob("*.arrow")), arrow)
    again = data.load_task("race")
    assert len(again["test"]) == len(full["test"])
    data._load_local_once.cache_clear()
