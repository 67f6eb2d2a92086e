"""Files shaped like a user's, written from the study's real datasets: the examples of docs/your-data.md (notebook
50) and the tests of `pairlib train` start from them, so that each reads exactly as a user's own file would."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pairlib.core import data


def answered_queries(task: str, split: str, queries: int) -> pd.DataFrame:
    """The rows of the first `queries` queries of a ranking task with at least one relevant candidate (a query
    without one gives a ranking nothing to find)."""
    rows = data.load_task(task, split).to_pandas()
    answered = rows.groupby("query_id", sort=False).label.max()
    keep = answered[answered == 1].index[:queries]
    return rows[rows.query_id.isin(keep)][["query_id", "query", "passage", "label"]].reset_index(drop=True)


def write_example_files(folder: str | Path, train_rows: int, validation_rows: int) -> dict[str, Path]:
    """Three tasks as a user might hold them, in two formats each: QQP question pairs (CSV train, Parquet
    validation), WikiQA questions with candidate answers (Parquet train, CSV validation; about ten candidates a
    question, so rows / 10 questions), ChnSentiCorp reviews (CSV). Returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pair_cols = ["question1", "question2", "label"]
    tables = {
        "pairs_train.csv": data.load_task("qqp", "train").select(range(train_rows)).to_pandas()[pair_cols],
        "pairs_validation.parquet": data.load_task("qqp", "validation").select(range(validation_rows)).to_pandas()[
            pair_cols],
        "ranking_train.parquet": answered_queries("wikiqa", "train", max(2, train_rows // 10)),
        "ranking_validation.csv": answered_queries("wikiqa", "validation", max(2, validation_rows // 10)),
        "reviews_train.csv": data.load_task("chnsenticorp", "train").select(range(train_rows)).to_pandas(),
        "reviews_validation.csv": data.load_task("chnsenticorp", "validation").select(
            range(validation_rows)).to_pandas(),
    }
    paths = {}
    for name, table in tables.items():
        path = folder / name
        if name.endswith(".csv"):
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        paths[name.split(".")[0]] = path
    return paths
