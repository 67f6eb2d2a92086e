"""Task registry: a task name -> a `datasets.DatasetDict` with documented columns.

Every task reads the local copy under the data root first (see `data_root`), so the defaults work offline. When a
local file is missing and the Hugging Face Hub is reachable, the same task is loaded from the Hub where a public copy
with the same content exists. Where an official split is missing here (BoolQ train, RACE train, ...), a split is
derived deterministically (hash of a stable key, never a random state) and the deviation is recorded in
`Task.deviations`, which every table using the task should repeat.
"""
from __future__ import annotations

import collections
import csv
import functools
import gzip
import hashlib
import heapq
import io
import json
import math
import os
import random
import re
import shutil
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from pairlib.core.artifacts import REPO_ROOT, typed_path


class DataError(RuntimeError):
    """Raised with a message that says what is missing and how to get it."""


def data_root() -> Path:
    """The folder holding the local dataset copies: `$PAIRLIB_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get("PAIRLIB_DATA")
    if env:
        root = typed_path(env)
        if not root.is_dir():
            raise DataError(f"PAIRLIB_DATA={env!r} is not a folder. Point it at the folder holding "
                            "squad_v1.1/, boolq/, ... (see README, 'Data').")
        return root
    return REPO_ROOT.parent / "shared" / "data"


# ----------------------------------------------------------------------------------------------------------------
# Reading helpers


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """A data file opened for reading once it matches its MANIFEST entry; any failure while it is read names it."""
    verify_file(path)
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as f:
            yield f
    except (OSError, EOFError, ValueError, KeyError, IndexError, csv.Error) as e:  # BadGzipFile, JSONDecodeError, ...
        raise DataError(f"{path} cannot be read ({type(e).__name__}: {e}); it is damaged or not the file this task "
                        "expects. Copy it again (../shared/data/MANIFEST.md names its source).") from e


@functools.cache
def _manifest(folder: Path) -> dict[str, tuple[int, str]]:
    """MANIFEST.md's file tables: stored path -> (bytes, sha256 of the stored file)."""
    rows = re.findall(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", (folder / "MANIFEST.md").read_text(), re.M)
    return {rel: (int(size.replace(",", "")), sha) for rel, size, sha in rows}


_VERIFIED: set[tuple[str, int, int]] = set()


def verify_file(path: Path) -> None:
    """Check a data file against the MANIFEST.md of the data root it sits in (its size, then its sha256), once per
    process and version of the file: a copy cut short loads without an error otherwise (an AG News train file cut at
    5,000 lines gave 4,735 rows instead of 18,978). Files of a data root without a MANIFEST are not checked."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    folder = next((p for p in path.parents[:3] if (p / "MANIFEST.md").is_file()), None)
    expected = _manifest(folder).get(path.relative_to(folder).as_posix()) if folder else None
    if expected is not None:
        size, sha = expected
        if stat.st_size != size:
            raise DataError(f"{path} has {stat.st_size:,} bytes where {folder / 'MANIFEST.md'} lists {size:,}: it is "
                            "cut short or replaced. Copy it again from the source the MANIFEST names.")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha:
            raise DataError(f"{path} does not match the sha256 that {folder / 'MANIFEST.md'} lists: it is damaged "
                            "or another version. Copy it again from the source the MANIFEST names.")
    _VERIFIED.add(key)


def _read_jsonl(path: Path) -> list[dict]:
    with _open_text(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_tsv(path: Path, header: bool = True) -> list[list[str]]:
    with _open_text(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[1:] if header else rows


def _read_csv(path: Path, header: bool = True) -> list[list[str]]:
    with _open_text(path) as f:
        rows = list(csv.reader(io.StringIO(f.read().lstrip("\ufeff"))))
    return rows[1:] if header else rows


def hash_bucket(key: str, buckets: int = 100) -> int:
    """A stable bucket in [0, buckets) for a key: the same on every machine and Python, unlike `hash()`."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


def split_by_hash(rows: list[dict], key: str | Callable[[dict], str],
                  cuts: dict[str, int]) -> dict[str, datasets.Dataset]:
    """Derive splits deterministically: a row goes to the first split whose cumulative cut exceeds the hash bucket
    (0-99) of `row[key]` (or of `key(row)`); rows sharing a key (a passage title, an article) always land in the
    same split."""
    buckets = [hash_bucket(key(r) if callable(key) else r[key]) for r in rows]
    out, low = {}, 0
    for split, high in cuts.items():
        out[split] = _records([r for r, b in zip(rows, buckets) if low <= b < high])
        low = high
    return out


def _records(rows: list[dict], features: datasets.Features | None = None) -> datasets.Dataset:
    """Rows straight into Arrow: `Dataset.from_dict` encodes every value in Python, 3-7x slower on the larger
    tasks (a quarter of a million rows for squad_q2p's train), for the same table."""
    if not rows:
        raise DataError("no rows were read")
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema if features is not None else None)
    info = datasets.DatasetInfo(features=features) if features is not None else None
    return datasets.Dataset(InMemoryTable(table), info=info)


# ----------------------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Task:
    """One task: how to load it, what its columns mean, and where it departs from the official data."""

    name: str
    # span_qa | single_cls | pair_cls | multiple_choice | pair_match (query_id, query, passage_id, passage, label)
    kind: str
    language: str
    files: tuple[str, ...]  # paths under the data root that the local loader needs
    columns: dict[str, str]  # column -> meaning
    text_columns: tuple[str, ...]  # the texts a model reads, in order (for pairs: first, second)
    label_names: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()
    source: str = ""
    hub: str = ""  # Hugging Face dataset id used when the local copy is absent and the Hub answers
    load_local: Callable[[Path], datasets.DatasetDict] = field(default=None, repr=False)  # type: ignore[assignment]
    load_hub: Callable[[], datasets.DatasetDict] | None = field(default=None, repr=False)
    # set (or changed) when the local data of a split changes, so that models trained on the old data, whose folders
    # are named by their settings, are not found and reused for the new; "" for data that never changed
    data_version: str = ""


TASKS: dict[str, Task] = {}


def _register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def list_tasks(hub_only: bool = True) -> list[str]:
    """Every registered task; `hub_only=False` leaves out those with no local copy (MS MARCO), which need a
    network."""
    return [name for name, t in TASKS.items() if hub_only or t.load_local is not None]


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_task(name: str, split: str | None = None, root: str | Path | None = None):
    """Load a task as a DatasetDict (or one split of it), from the local copy if present, else from the Hub."""
    task = get_task(name)
    root = Path(root) if root is not None else data_root()
    missing = [f for f in task.files if not (root / f).exists()]
    if task.load_local is not None and not missing:
        dd = _load_local_once(name, root, tuple(_file_identity(root / f) for f in task.files))
    elif task.load_hub is not None and hub_reachable():
        dd = task.load_hub()
    elif task.load_local is None:
        raise DataError(f"task {name!r} exists only on the Hugging Face Hub ({task.hub}), which is not reachable: "
                        "go online (and unset HF_HUB_OFFLINE), or use a task with a local copy: "
                        f"{', '.join(t.name for t in TASKS.values() if t.load_local and t.kind == task.kind)}")
    else:
        how = (f"or go online so that it loads from the Hub ({task.hub})" if task.load_hub
               else "(no Hub copy is wired up for this task)")
        raise DataError(
            f"task {name!r}: missing local file(s) {', '.join(missing)} under data root {root}. "
            f"Set PAIRLIB_DATA to the folder that holds them (see ../shared/data/MANIFEST.md) {how}.")
    if split is None:
        return dd
    if split not in dd:
        raise DataError(f"task {name!r} has no split {split!r}; its splits are: {', '.join(dd)}")
    return dd[split]


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def cache_root() -> Path | None:
    """Where built task splits are kept between processes: `$PAIRLIB_CACHE`, else `$XDG_CACHE_HOME/pairlib`, else
    `~/.cache/pairlib`; `PAIRLIB_CACHE=none` keeps nothing."""
    if (env := os.environ.get("PAIRLIB_CACHE")) is not None:
        return None if env.lower() in ("", "none", "off") else Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pairlib"


# Any change to this module (a loader, a derived split) builds every task anew.
_LOADERS_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def _load_local_once(name: str, root: Path, _files: tuple) -> datasets.DatasetDict:
    """A task's splits are built once per process (a notebook asks for a task once per split and model) and kept on
    disk for the next process: squad_q2p takes ~12 s to build and is loaded by a dozen notebooks and tests. The key
    holds the files' path, size and time and this module's digest, so a changed file or loader builds again."""
    base = cache_root()
    if base is None:
        return TASKS[name].load_local(root)
    key = hashlib.sha256(repr((name, _files, _LOADERS_DIGEST)).encode()).hexdigest()[:16]
    folder = base / "tasks" / f"{name}-{key}"
    if (folder / "dataset_dict.json").exists():
        try:  # in memory, as a freshly built task is, so that `.map` writes no cache files next to it
            return datasets.load_from_disk(str(folder), keep_in_memory=True)
        except Exception:  # a copy left broken (disk full, a kill): build it again
            shutil.rmtree(folder, ignore_errors=True)
    dd = TASKS[name].load_local(root)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a cache write is bookkeeping: its bars would land in executed notebooks
    try:
        dd.save_to_disk(str(staging))
        staging.rename(folder)  # whole or not at all; a process that got there first wins
    except OSError:
        pass  # a read-only or full disk only costs the next process the build
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not quiet:
            datasets.enable_progress_bars()
    return dd


def subsample(ds: datasets.Dataset, n: int | None, seed: int = 0) -> datasets.Dataset:
    """The first n rows of a fixed shuffle (all rows when n is None or larger than the split)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


# ----------------------------------------------------------------------------------------------------------------
# SQuAD v1.1 and the query-to-passage task derived from it

SQUAD_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "title": datasets.Value("string"), "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": {"text": datasets.Sequence(datasets.Value("string")),
                "answer_start": datasets.Sequence(datasets.Value("int32"))},
})


def _squad_articles(path: Path) -> list[dict]:
    with _open_text(path) as f:
        return json.load(f)["data"]


def _squad_rows(articles: list[dict]) -> list[dict]:
    rows = []
    for art in articles:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                rows.append({"id": qa["id"], "title": art["title"], "context": para["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return rows


def _load_squad(root: Path) -> datasets.DatasetDict:
    return datasets.DatasetDict({
        "train": _records(_squad_rows(_squad_articles(root / "squad_v1.1/train-v1.1.reconstructed.json.gz")),
                          SQUAD_FEATURES),
        "validation": _records(_squad_rows(_squad_articles(root / "squad_v1.1/dev-v1.1.json.gz")), SQUAD_FEATURES),
    })


def _hub_squad() -> datasets.DatasetDict:
    return datasets.load_dataset("rajpurkar/squad")


_register(Task(
    name="squad", kind="span_qa", language="en",
    files=("squad_v1.1/train-v1.1.reconstructed.json.gz", "squad_v1.1/dev-v1.1.json.gz"),
    columns={"id": "question id (train ids are synthetic: recon-train-AAA-PPP-QQ)", "title": "article title",
             "context": "paragraph", "question": "question",
             "answers": "{'text': [...], 'answer_start': [...]} (train: one answer; validation: all annotators')"},
    text_columns=("question", "context"),
    deviations=("train is a reconstruction from the SQuAD explorer pages: ids synthetic, ~2% of answer_start "
                "offsets may point at another occurrence of the same answer text (validation is the official dev set)",),
    source="SQuAD v1.1 (Rajpurkar et al. 2016); see MANIFEST.md", hub="rajpurkar/squad",
    load_local=_load_squad, load_hub=_hub_squad,
))

RANKING_CANDIDATES = 10  # per question: its own paragraph and 9 negatives
BM25_K1, BM25_B = 1.5, 0.75


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class _BM25:
    """Okapi BM25 over a fixed list of texts, with an inverted index so that a query scores only the texts that
    share a word with it."""

    def __init__(self, texts: list[str]) -> None:
        self.counts = [collections.Counter(_words(t)) for t in texts]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.mean_length = sum(self.lengths) / len(self.lengths)
        self.index: dict[str, list[int]] = collections.defaultdict(list)
        for i, c in enumerate(self.counts):
            for w in c:
                self.index[w].append(i)
        n = len(texts)
        self.idf = {w: math.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5)) for w, ids in self.index.items()}

    def score(self, words: set[str], i: int) -> float:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[i] / self.mean_length)
        return sum(self.idf[w] * tf * (BM25_K1 + 1) / (tf + norm) for w in words if (tf := self.counts[i][w]))

    def scores(self, query: str, among: list[int] | None = None) -> dict[int, float]:
        """Scores of the texts `among` (or of every text sharing a word with the query)."""
        words = set(_words(query))
        if among is None:
            among = sorted({i for w in words for i in self.index.get(w, ())})
        return {i: self.score(words, i) for i in among}


def build_ranking(articles: list[dict], candidates: int = RANKING_CANDIDATES) -> list[dict]:
    """Each question against `candidates` paragraphs: its own (label 1) and the same article's other paragraphs that
    BM25 ranks closest to the question (label 0, `negative` "same article"); an article too short to supply them all
    is topped up with the closest paragraphs of other articles ("other article"). Ties go to the earlier paragraph,
    so the result depends on the articles alone."""
    passages = [(a_i, p_i, p["context"]) for a_i, a in enumerate(articles) for p_i, p in enumerate(a["paragraphs"])]
    of_article: dict[int, list[int]] = collections.defaultdict(list)
    for k, (a_i, _, _) in enumerate(passages):
        of_article[a_i].append(k)
    bm25 = _BM25([ctx for _, _, ctx in passages])
    need = candidates - 1
    rows = []
    for k, (a_i, p_i, ctx) in enumerate(passages):
        for qa in articles[a_i]["paragraphs"][p_i]["qas"]:
            scores = bm25.scores(qa["question"], of_article[a_i])
            closest = lambda j: (-scores.get(j, 0.0), j)  # noqa: E731
            picks = sorted((j for j in of_article[a_i] if j != k), key=closest)[:need]
            if len(picks) < need:  # a short article: every text sharing a word with the question competes
                scores = bm25.scores(qa["question"])
                others = (j for j in range(len(passages)) if passages[j][0] != a_i)
                picks += heapq.nsmallest(need - len(picks), others, key=closest)
            rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{p_i}",
                         "passage": ctx, "label": 1, "negative": "positive"})
            rows += [{"query_id": qa["id"], "query": qa["question"], "passage_id": f"{passages[j][0]}-{passages[j][1]}",
                      "passage": passages[j][2], "label": 0,
                      "negative": "same article" if passages[j][0] == a_i else "other article"} for j in picks]
    return rows


Q2P_NEGATIVES = {"hard": 1, "easy": 1}  # per question: 1 positive, 1 hard and 1 easy negative
Q2P_SEED = 13
Q2P_VALIDATION_BUCKETS = 5  # % of train articles held out (by title hash) as the validation split

Q2P_FEATURES = datasets.Features({
    "query_id": datasets.Value("string"), "query": datasets.Value("string"),
    "passage_id": datasets.Value("string"), "passage": datasets.Value("string"),
    "label": datasets.Value("int64"), "negative": datasets.Value("string"),
})


def build_q2p(articles: list[dict], seed: int = Q2P_SEED, negatives: dict[str, int] = Q2P_NEGATIVES) -> list[dict]:
    """Query-to-passage pairs from SQuAD articles, deterministically.

    A question with its own paragraph is positive (label 1); `negatives['hard']` paragraphs of the same article and
    `negatives['easy']` paragraphs of other articles are negatives (label 0). The only randomness is a
    `random.Random` seeded per question id, so the result depends on nothing but the input and the seed.
    """
    passages = [(a_i, p_i, p["context"]) for a_i, a in enumerate(articles) for p_i, p in enumerate(a["paragraphs"])]
    rows = []
    for a_i, art in enumerate(articles):
        n_par = len(art["paragraphs"])
        for p_i, para in enumerate(art["paragraphs"]):
            for qa in para["qas"]:
                rng = random.Random(f"{seed}:{qa['id']}")
                rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{p_i}",
                             "passage": para["context"], "label": 1, "negative": "positive"})
                others = [j for j in range(n_par) if j != p_i]
                for j in rng.sample(others, min(negatives.get("hard", 0), len(others))):
                    rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{j}",
                                 "passage": art["paragraphs"][j]["context"], "label": 0, "negative": "hard"})
                for _ in range(negatives.get("easy", 0)):
                    while True:
                        b_i, q_j, ctx = passages[rng.randrange(len(passages))]
                        if b_i != a_i:
                            break
                    rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{b_i}-{q_j}",
                                 "passage": ctx, "label": 0, "negative": "easy"})
    return rows


def _load_squad_q2p(root: Path) -> datasets.DatasetDict:
    train_articles = _squad_articles(root / "squad_v1.1/train-v1.1.reconstructed.json.gz")
    held = [hash_bucket(a["title"]) < Q2P_VALIDATION_BUCKETS for a in train_articles]
    dev = _squad_articles(root / "squad_v1.1/dev-v1.1.json.gz")
    return datasets.DatasetDict({
        "train": _records(build_q2p([a for a, h in zip(train_articles, held) if not h]), Q2P_FEATURES),
        "validation": _records(build_q2p([a for a, h in zip(train_articles, held) if h]), Q2P_FEATURES),
        "test": _records(build_q2p(dev), Q2P_FEATURES),
        "test_ranked": _records(build_ranking(dev), Q2P_FEATURES),
    })


_register(Task(
    name="squad_q2p", kind="pair_match", language="en",
    files=("squad_v1.1/train-v1.1.reconstructed.json.gz", "squad_v1.1/dev-v1.1.json.gz"),
    columns={"query_id": "SQuAD question id", "query": "question", "passage_id": "article-paragraph index",
             "passage": "paragraph", "label": "1 if the paragraph is the question's own, else 0",
             "negative": "positive | hard (same article) | easy (other article); in test_ranked: positive | same "
                         "article | other article"},
    text_columns=("query", "passage"), label_names=("no_match", "match"),
    deviations=("stands in for DiPair's Q2P-MAT (MS MARCO based), which cannot be obtained here",
                "built from SQuAD v1.1: per question 1 positive, 1 hard negative (same article), 1 easy negative "
                f"(other article), seed {Q2P_SEED}; test = the official dev set; validation = {Q2P_VALIDATION_BUCKETS}% "
                "of the (reconstructed) train articles by title hash; train = the rest",
                "test_ranked: each official dev question against 10 paragraphs, its own and the 9 of its article "
                f"that BM25 (k1 {BM25_K1}, b {BM25_B}) ranks closest to it (short articles topped up from other "
                "articles); a ranking where chance MRR@10 is 0.293, against about 0.61 on test's 3 candidates"),
    source="derived from SQuAD v1.1", load_local=_load_squad_q2p,
))

# ----------------------------------------------------------------------------------------------------------------
# BoolQ and RACE (DeFormer); their train splits are derived

def _boolq_rows(items: list[dict]) -> list[dict]:
    return [{"question": r["question"], "passage": r["passage"], "title": r.get("title", ""),
             "label": int(r["answer"] if "answer" in r else r["label"])} for r in items]


def _load_boolq(root: Path) -> datasets.DatasetDict:
    return datasets.DatasetDict({
        "train": _records(_boolq_rows(_read_jsonl(root / "boolq/train.jsonl.gz"))),
        "validation": _records(_boolq_rows(_read_jsonl(root / "boolq/dev.jsonl.gz"))),
        "fewglue32": _records(_boolq_rows(_read_jsonl(root / "boolq/fewglue_train32.jsonl.gz"))),
    })


def _hub_boolq() -> datasets.DatasetDict:
    dd = datasets.load_dataset("google/boolq")
    return dd.map(lambda r: {"label": int(r["answer"])}, remove_columns=["answer"])


_register(Task(
    name="boolq", kind="pair_cls", language="en",
    files=("boolq/train.jsonl.gz", "boolq/dev.jsonl.gz", "boolq/fewglue_train32.jsonl.gz"),
    columns={"question": "yes/no question", "passage": "Wikipedia passage", "title": "passage title",
             "label": "1 = yes (True), 0 = no (False)"},
    text_columns=("question", "passage"), label_names=("false", "true"),
    deviations=("train is the official train set (9,427) rebuilt byte-identical from a PyPI package's copy (see "
                "MANIFEST.md); validation is the official dev set (3,270), the split the paper reports on",
                "fewglue32 holds the 32 FewGLUE train examples (all of them in train), for reference only"),
    source="BoolQ (Clark et al. 2019)", hub="google/boolq", load_local=_load_boolq, load_hub=_hub_boolq,
    data_version="official-train",  # before: train and validation derived from the dev set
))

MNLI_LABELS = ("entailment", "neutral", "contradiction")  # GLUE's label ids 0, 1, 2


def _read_json_samples(path: Path) -> list[dict]:
    """The GLUE train samples' format: one JSON object {"<i>": {"text_a", "text_b", "label"}}, in key order."""
    with _open_text(path) as f:
        rows = json.load(f)
    return [rows[k] for k in sorted(rows, key=int)]


def _load_mnli(root: Path) -> datasets.DatasetDict:
    def pairs(items: list[dict], first: str, second: str, label: str) -> list[dict]:
        return [{"premise": r[first], "hypothesis": r[second], "label": MNLI_LABELS.index(r[label])} for r in items]

    train = [*_read_json_samples(root / "mnli/train_sample_a8999.json.gz"),
             *_read_json_samples(root / "mnli/train_sample_b1000.json.gz")]
    return datasets.DatasetDict({
        "train": _records(pairs(train, "text_a", "text_b", "label")),
        "validation": _records(pairs(_read_jsonl(root / "mnli/dev_matched.jsonl.gz"), "premise", "hypothesis",
                                     "label")),
    })


def _hub_glue(config: str, validation: str = "validation") -> Callable[[], datasets.DatasetDict]:
    """GLUE's train and dev splits from the Hub, without GLUE's row index (the local files have none)."""
    def load() -> datasets.DatasetDict:
        dd = datasets.load_dataset("nyu-mll/glue", config)
        return datasets.DatasetDict({"train": dd["train"].remove_columns(["idx"]),
                                     "validation": dd[validation].remove_columns(["idx"])})
    return load


_register(Task(
    name="mnli", kind="pair_cls", language="en",
    files=("mnli/train_sample_a8999.json.gz", "mnli/train_sample_b1000.json.gz", "mnli/dev_matched.jsonl.gz"),
    columns={"premise": "premise sentence", "hypothesis": "hypothesis sentence",
             "label": "0 entailment, 1 neutral, 2 contradiction (GLUE's ids)"},
    text_columns=("premise", "hypothesis"), label_names=MNLI_LABELS,
    deviations=("train is a random sample of 9,999 of the 392,702 official train pairs (its seed is not recorded); "
                "validation is the official dev_matched set (9,815); dev_mismatched is not available",),
    source="MultiNLI (Williams et al. 2018), GLUE", hub="nyu-mll/glue", load_local=_load_mnli,
    load_hub=_hub_glue("mnli", validation="validation_matched"),
))

QQP_SPLIT_BUCKETS = (80, 90)  # train / validation / test cuts of the train sample, by hash of the question pair


def _qqp_pair(row: dict) -> str:
    return row["question1"] + "\t" + row["question2"]


def _load_qqp(root: Path) -> datasets.DatasetDict:
    rows = [{"question1": r["text_a"], "question2": r["text_b"], "label": int(r["label"])}
            for name in ("train_sample_a8999.json.gz", "train_sample_b1000.json.gz")
            for r in _read_json_samples(root / "qqp" / name)]
    lo, hi = QQP_SPLIT_BUCKETS
    return datasets.DatasetDict(split_by_hash(rows, _qqp_pair, {"train": lo, "validation": hi, "test": 100}))


_register(Task(
    name="qqp", kind="pair_cls", language="en",
    files=("qqp/train_sample_a8999.json.gz", "qqp/train_sample_b1000.json.gz"),
    columns={"question1": "Quora question", "question2": "Quora question",
             "label": "1 if the two ask the same thing (duplicate), else 0"},
    text_columns=("question1", "question2"), label_names=("different", "duplicate"),
    deviations=("only a random sample of 9,999 of the 363,846 official train pairs is available (no dev set): "
                f"train / validation / test are derived from it {QQP_SPLIT_BUCKETS[0]}/"
                f"{QQP_SPLIT_BUCKETS[1] - QQP_SPLIT_BUCKETS[0]}/{100 - QQP_SPLIT_BUCKETS[1]} by a hash of the "
                "question pair; a question asked in two pairs can fall in two splits",),
    source="Quora Question Pairs, GLUE", hub="nyu-mll/glue", load_local=_load_qqp, load_hub=_hub_glue("qqp"),
))

RACE_TRAIN_BUCKETS = 80  # % of RACE-M dev articles used for the derived train split


def _race_rows(items: list[dict]) -> list[dict]:
    return [{"example_id": r["example_id"], "article": r["article"], "question": r["question"],
             "options": list(r["options"]), "label": "ABCD".index(r["answer"])} for r in items]


def _load_race(root: Path) -> datasets.DatasetDict:
    dev = _race_rows(_read_jsonl(root / "race/middle_dev.jsonl.gz"))
    return datasets.DatasetDict({
        **split_by_hash(dev, "example_id", {"train": RACE_TRAIN_BUCKETS, "validation": 100}),
        "test": _records(_race_rows(_read_jsonl(root / "race/middle_test.jsonl.gz"))),
    })


def _hub_race() -> datasets.DatasetDict:
    dd = datasets.load_dataset("ehovy/race", "middle")
    return dd.map(lambda r: {"label": "ABCD".index(r["answer"])}, remove_columns=["answer"])


_register(Task(
    name="race", kind="multiple_choice", language="en",
    files=("race/middle_dev.jsonl.gz", "race/middle_test.jsonl.gz"),
    columns={"example_id": "article file name", "article": "passage", "question": "question (may contain _ blanks)",
             "options": "4 answer options", "label": "index of the correct option (0-3)"},
    text_columns=("question", "article"), label_names=("A", "B", "C", "D"),
    deviations=("RACE-M only (RACE-H and the official train set are not available offline)",
                f"train and validation are derived from the official RACE-M dev set, split by article "
                f"({RACE_TRAIN_BUCKETS}% to train); test is the official RACE-M test set"),
    source="RACE (Lai et al. 2017)", hub="ehovy/race", load_local=_load_race, load_hub=_hub_race,
))

# ----------------------------------------------------------------------------------------------------------------
# English classification and matching


AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
AG_NEWS_VALIDATION_BUCKETS = 5


def _ag_rows(rows: list[list[str]]) -> list[dict]:
    return [{"text": f"{t} {d}".replace("\\", " "), "title": t, "description": d, "label": int(c) - 1}
            for c, t, d in rows]


def _load_ag_news(root: Path) -> datasets.DatasetDict:
    train = _ag_rows(_read_csv(root / "ag_news/train_subset20000.csv.gz", header=True))
    held = split_by_hash(train, "text", {"validation": AG_NEWS_VALIDATION_BUCKETS, "train": 100})
    return datasets.DatasetDict({
        "train": held["train"], "validation": held["validation"],
        "test": _records(_ag_rows(_read_csv(root / "ag_news/test.csv.gz", header=False))),
    })


def _hub_ag_news() -> datasets.DatasetDict:
    return datasets.load_dataset("fancyzhx/ag_news")


_register(Task(
    name="ag_news", kind="single_cls", language="en",
    files=("ag_news/train_subset20000.csv.gz", "ag_news/test.csv.gz"),
    columns={"text": "title + ' ' + description", "title": "headline", "description": "lead",
             "label": "0 World, 1 Sports, 2 Business, 3 Sci/Tech"},
    text_columns=("text",), label_names=AG_NEWS_LABELS,
    deviations=("train is a 20,000-row balanced subset of the official 120,000 (sampling undocumented by its source)",
                f"validation = {AG_NEWS_VALIDATION_BUCKETS}% of that subset by text hash; test is the official 7,600"),
    source="AG News (Zhang et al. 2015)", hub="fancyzhx/ag_news", load_local=_load_ag_news, load_hub=_hub_ag_news,
))


# DBpedia, Amazon.F, Yahoo and Yelp.F: samples of the official splits from a continual-learning benchmark (MANIFEST),
# which keeps the official files' literal "\n" escapes; a model reads them as spaces, as AG News's backslashes.
TOPIC_VALIDATION_BUCKETS = 5
YELP_FULL_SPLIT_BUCKETS = (5, 25)  # hash bucket < 5 -> validation, < 25 -> test, else train
DBPEDIA_LABELS = ("Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder", "MeanOfTransportation",
                  "Building", "NaturalPlace", "Village", "Animal", "Plant", "Album", "Film", "WrittenWork")
YAHOO_LABELS = ("Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
                "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
                "Family & Relationships", "Politics & Government")
STARS = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")


def _unescaped(*fields: str) -> str:
    return " ".join(fields).replace("\\n", " ")


def _titled_rows(rows: list[list[str]], body: str) -> list[dict]:
    return [{"text": _unescaped(t, b.strip()), "title": t, body: b, "label": int(c) - 1} for c, t, b in rows]


def _held_out_validation(train: list[dict], test: list[dict]) -> datasets.DatasetDict:
    held = split_by_hash(train, "text", {"validation": TOPIC_VALIDATION_BUCKETS, "train": 100})
    return datasets.DatasetDict({"train": held["train"], "validation": held["validation"], "test": _records(test)})


def _load_dbpedia(root: Path) -> datasets.DatasetDict:
    return _held_out_validation(_titled_rows(_read_csv(root / "dbpedia/train_subset10943.csv.gz", False), "content"),
                                _titled_rows(_read_csv(root / "dbpedia/test_sample7600.csv.gz", False), "content"))


def _load_amazon_full(root: Path) -> datasets.DatasetDict:
    folder = root / "amazon_review_full"
    return _held_out_validation(_titled_rows(_read_csv(folder / "train_subset5000.csv.gz", False), "review"),
                                _titled_rows(_read_csv(folder / "test_sample7600.csv.gz", False), "review"))


def _load_yahoo(root: Path) -> datasets.DatasetDict:
    # the test sample holds title, question and answer joined by spaces as one field; train is joined the same way
    train = [{"text": _unescaped(t, q, a), "label": int(c) - 1}
             for c, t, q, a in _read_csv(root / "yahoo_answers/train_subset9295.csv.gz", False)]
    test = [{"text": _unescaped(t), "label": int(c) - 1}
            for c, t in _read_csv(root / "yahoo_answers/test_sample2958.csv.gz", False)]
    return _held_out_validation(train, test)


def _load_yelp_full(root: Path) -> datasets.DatasetDict:
    def rows(name):
        return [{"text": _unescaped(t), "label": int(c) - 1}
                for c, t in _read_csv(root / f"yelp_review_full/{name}.csv.gz", False)]
    low, high = YELP_FULL_SPLIT_BUCKETS
    dd = datasets.DatasetDict(split_by_hash(rows("train_subset5000"),
                                            "text", {"validation": low, "test": high, "train": 100}))
    dd["official_test_sample"] = _records(rows("test_sample100"))
    return dd


def _hub_dbpedia() -> datasets.DatasetDict:
    return datasets.load_dataset("fancyzhx/dbpedia_14").map(
        lambda r: {"text": f"{r['title']} {r['content'].strip()}"})


def _hub_yahoo() -> datasets.DatasetDict:
    return datasets.load_dataset("community-datasets/yahoo_answers_topics").map(
        lambda r: {"text": _unescaped(r["question_title"], r["question_content"], r["best_answer"]),
                   "label": r["topic"]})


def _hub_yelp_full() -> datasets.DatasetDict:
    return datasets.load_dataset("Yelp/yelp_review_full")


_SAMPLED = "train and test are samples of the official splits (MANIFEST); their row order is not the official one"
_VALIDATION = f"validation = {TOPIC_VALIDATION_BUCKETS}% of the train sample by text hash"

_register(Task(
    name="dbpedia", kind="single_cls", language="en",
    files=("dbpedia/train_subset10943.csv.gz", "dbpedia/test_sample7600.csv.gz"),
    columns={"text": "title + ' ' + content", "title": "article title", "content": "article abstract",
             "label": "class id 0-13 (see label_names)"},
    text_columns=("text",), label_names=DBPEDIA_LABELS,
    deviations=(_SAMPLED + ": train 10,943 of 560,000, test 7,600 of 70,000", _VALIDATION),
    source="DBpedia ontology classification (Zhang et al. 2015)", hub="fancyzhx/dbpedia_14",
    load_local=_load_dbpedia, load_hub=_hub_dbpedia,
))

_register(Task(
    name="amazon_full", kind="single_cls", language="en",
    files=("amazon_review_full/train_subset5000.csv.gz", "amazon_review_full/test_sample7600.csv.gz"),
    columns={"text": "title + ' ' + review", "title": "review title", "review": "review text",
             "label": "stars - 1 (0-4)"},
    text_columns=("text",), label_names=STARS,
    deviations=(_SAMPLED + ": train 5,000 of 3,000,000, test 7,600 of 650,000", _VALIDATION),
    source="Amazon Review Full (Zhang et al. 2015)", load_local=_load_amazon_full,
))

_register(Task(
    name="yahoo", kind="single_cls", language="en",
    files=("yahoo_answers/train_subset9295.csv.gz", "yahoo_answers/test_sample2958.csv.gz"),
    columns={"text": "question title + ' ' + question content + ' ' + best answer",
             "label": "class id 0-9 (see label_names)"},
    text_columns=("text",), label_names=YAHOO_LABELS,
    deviations=(_SAMPLED + ": train 9,295 of 1,400,000, test 2,958 of 60,000", _VALIDATION,
                "the test sample holds the three fields joined, so train is joined the same way"),
    source="Yahoo! Answers topics (Zhang et al. 2015)", hub="community-datasets/yahoo_answers_topics",
    load_local=_load_yahoo, load_hub=_hub_yahoo,
))

_register(Task(
    name="yelp_full", kind="single_cls", language="en",
    files=("yelp_review_full/train_subset5000.csv.gz", "yelp_review_full/test_sample100.csv.gz"),
    columns={"text": "review text", "label": "stars - 1 (0-4)"},
    text_columns=("text",), label_names=STARS,
    deviations=("train is a 5,000-row sample of the official 650,000",
                "only 100 official test rows are available (kept as split official_test_sample); validation and "
                f"test are derived from the train sample by text hash: {YELP_FULL_SPLIT_BUCKETS[0]}% and "
                f"{YELP_FULL_SPLIT_BUCKETS[1] - YELP_FULL_SPLIT_BUCKETS[0]}%"),
    source="Yelp Review Full (Zhang et al. 2015)", hub="Yelp/yelp_review_full",
    load_local=_load_yelp_full, load_hub=_hub_yelp_full,
))


def _as_candidates(rows: list[tuple[str, str, str, str]]) -> list[dict]:
    """WikiQA rows (question id, question, sentence, label) in the pair_match schema. A sentence's passage id is
    `<question id>-<n>`: the group before the dash holds the candidates that compete for one question, as a SQuAD
    article's paragraphs do in squad_q2p (DiPair's distillation pool draws hard negatives from it)."""
    seen: dict[str, int] = {}
    out = []
    for qid, question, sentence, label in rows:
        n = seen[qid] = seen.get(qid, -1) + 1
        out.append({"query_id": qid, "query": question, "passage_id": f"{qid}-{n}", "passage": sentence,
                    "label": int(label)})
    return out


def _wikiqa_untokenised(path: Path) -> list[dict]:
    return _as_candidates([(q, qt, s, lab) for q, qt, _d, _dt, _sid, s, lab in _read_tsv(path)])


def _wikiqa_tokenised(path: Path) -> list[dict]:
    ids: dict[str, str] = {}
    return _as_candidates([(ids.setdefault(qt, f"T{len(ids)}"), qt, s, lab)
                           for qt, s, lab in _read_tsv(path, header=False)])


def _load_wikiqa(root: Path) -> datasets.DatasetDict:
    return datasets.DatasetDict({
        "train": _records(_wikiqa_tokenised(root / "wikiqa/WikiQASent-train.txt.gz")),
        "validation": _records(_wikiqa_untokenised(root / "wikiqa/WikiQA-dev.tsv.gz")),
        "test": _records(_wikiqa_untokenised(root / "wikiqa/WikiQA-test.tsv.gz")),
    })


def _hub_wikiqa() -> datasets.DatasetDict:
    dd = datasets.load_dataset("microsoft/wiki_qa")
    return datasets.DatasetDict({
        split: _records(_as_candidates(list(zip(ds["question_id"], ds["question"], ds["answer"], ds["label"]))))
        for split, ds in dd.items()})


_register(Task(
    name="wikiqa", kind="pair_match", language="en",
    files=("wikiqa/WikiQASent-train.txt.gz", "wikiqa/WikiQA-dev.tsv.gz", "wikiqa/WikiQA-test.tsv.gz"),
    columns={"query_id": "WikiQA question id (train: T<n>, assigned in file order)", "query": "question",
             "passage_id": "<query_id>-<n>: the question's n-th candidate sentence",
             "passage": "candidate answer sentence", "label": "1 if the sentence answers the question"},
    text_columns=("query", "passage"), label_names=("no", "yes"),
    deviations=("train is the official tokenised WikiQASent file (PTB-style spacing, no question ids); "
                "validation and test are the official untokenised files",),
    source="WikiQA (Yang et al. 2015)", hub="microsoft/wiki_qa", load_local=_load_wikiqa, load_hub=_hub_wikiqa,
))

def ms_marco_candidates(ds) -> list[dict]:
    """MS MARCO v1.1 rows (a query with its ~10 retrieved passages and their is_selected flags) as pair_match rows."""
    rows = []
    for r in ds:
        rows += _as_candidates([(str(r["query_id"]), r["query"], text, sel) for text, sel in
                                zip(r["passages"]["passage_text"], r["passages"]["is_selected"])])
    return rows


def _hub_ms_marco() -> datasets.DatasetDict:
    dd = datasets.load_dataset("microsoft/ms_marco", "v1.1")
    return datasets.DatasetDict({split: _records(ms_marco_candidates(dd[split])) for split in ("train", "validation")})


_register(Task(
    name="ms_marco", kind="pair_match", language="en", files=(),
    columns={"query_id": "MS MARCO query id", "query": "Bing query",
             "passage_id": "<query_id>-<n>: the query's n-th retrieved passage", "passage": "passage text",
             "label": "is_selected: 1 if an annotator used the passage to answer"},
    text_columns=("query", "passage"), label_names=("no", "yes"),
    deviations=("online only (Hub copy, v1.1); the closest public relative of DiPair's Q2P-MAT, which is built "
                "from MS MARCO; its test split has no labels, so evaluate on validation (eval_split)",),
    source="MS MARCO v1.1 (Nguyen et al. 2016)", hub="microsoft/ms_marco", load_hub=_hub_ms_marco,
))

# ----------------------------------------------------------------------------------------------------------------
# Chinese tasks (FastBERT). They need a Chinese backbone; no pretrained one is available offline, so notebook 34
# pretrains a small one here.

_ZH_NOTE = ("Chinese: needs a Chinese backbone; offline, `zh-mini`, a small BERT pretrained here on the Chinese "
            "tasks' train splits (notebook 34); online, e.g. bert-base-chinese from the Hub")


def _label_text_tsv(root: Path, folder: str) -> datasets.DatasetDict:
    def rows(split):
        return [{"text": t, "label": int(lab)} for lab, t in _read_tsv(root / f"{folder}/{split}.tsv.gz")]
    return datasets.DatasetDict({"train": _records(rows("train")), "validation": _records(rows("dev")),
                                 "test": _records(rows("test"))})


def _zh_sentiment(name: str, folder: str, source: str, extra: tuple[str, ...] = ()) -> Task:
    return _register(Task(
        name=name, kind="single_cls", language="zh",
        files=tuple(f"{folder}/{s}.tsv.gz" for s in ("train", "dev", "test")),
        columns={"text": "review text", "label": "1 positive, 0 negative"},
        text_columns=("text",), label_names=("negative", "positive"), deviations=(_ZH_NOTE, *extra),
        source=source, load_local=lambda root: _label_text_tsv(root, folder),
    ))


_zh_sentiment("chnsenticorp", "chnsenticorp", "ChnSentiCorp (ERNIE/UER version used by FastBERT)")
_zh_sentiment("book_review", "douban_book_review", "Douban book review, as shipped by the FastBERT authors")
_zh_sentiment("shopping", "shopping", "Shopping review, UER-py's split used by FastBERT")


def _load_lcqmc(root: Path) -> datasets.DatasetDict:
    def rows(split):
        return [{"text_a": a, "text_b": b, "label": int(lab)} for a, b, lab in _read_tsv(root / f"lcqmc/{split}.tsv.gz")]
    return datasets.DatasetDict({"train": _records(rows("train")), "validation": _records(rows("dev")),
                                 "test": _records(rows("test"))})


_register(Task(
    name="lcqmc", kind="pair_cls", language="zh",
    files=("lcqmc/train.tsv.gz", "lcqmc/dev.tsv.gz", "lcqmc/test.tsv.gz"),
    columns={"text_a": "question 1", "text_b": "question 2", "label": "1 same intent, 0 different"},
    text_columns=("text_a", "text_b"), label_names=("different", "same"), deviations=(_ZH_NOTE,),
    source="LCQMC (Liu et al. 2018)", load_local=_load_lcqmc,
))

THUCNEWS_LABELS = ("finance", "realty", "stocks", "education", "science", "society", "politics", "sports", "game",
                   "entertainment")


def _load_thucnews(root: Path) -> datasets.DatasetDict:
    def rows(fname):
        return [{"text": t, "label": int(lab)} for t, lab in _read_tsv(root / f"thucnews_titles/{fname}", header=False)]
    return datasets.DatasetDict({"train": _records(rows("train_first45000.txt.gz")),
                                 "validation": _records(rows("dev.txt.gz")), "test": _records(rows("test.txt.gz"))})


_register(Task(
    name="thucnews", kind="single_cls", language="zh",
    files=("thucnews_titles/train_first45000.txt.gz", "thucnews_titles/dev.txt.gz", "thucnews_titles/test.txt.gz"),
    columns={"text": "news title", "label": "class id 0-9 (see label_names)"},
    text_columns=("text",), label_names=THUCNEWS_LABELS,
    deviations=(_ZH_NOTE, "the news-title subset (train: first 45,000 of 180,000 lines), not the full-article "
                "cnews split FastBERT probably used"),
    source="THUCNews titles (649453932/Chinese-Text-Classification-Pytorch)", load_local=_load_thucnews,
))

WEIBO_SPLIT_BUCKETS = (80, 90)  # hash bucket < 80 -> train, < 90 -> validation, else test


def _load_weibo(root: Path) -> datasets.DatasetDict:
    rows = [{"text": t, "label": int(lab)} for lab, t in _read_csv(root / "weibo_senti_100k/test_split_23998.csv.gz")]
    lo, hi = WEIBO_SPLIT_BUCKETS
    return datasets.DatasetDict(split_by_hash(rows, "text", {"train": lo, "validation": hi, "test": 100}))


_register(Task(
    name="weibo", kind="single_cls", language="zh",
    files=("weibo_senti_100k/test_split_23998.csv.gz",),
    columns={"text": "Weibo post", "label": "1 positive, 0 negative"},
    text_columns=("text",), label_names=("negative", "positive"),
    deviations=(_ZH_NOTE, "only 23,998 of weibo_senti_100k's 119,988 rows are available; train/validation/test are "
                "derived from them 80/10/10 by text hash"),
    source="weibo_senti_100k (SophonPlus)", load_local=_load_weibo,
))
