"""Task registry: a task name -> a `datasets.DatasetDict` with documented columns.

Every task reads the local copy under the data root first (see `data_root`), so the defaults work offline. When a
local file is missing and the Hugging Face Hub is reachable, the same task is loaded from the Hub where a public copy
with the same content exists. Where an official split is missing here (BoolQ train, RACE train, ...), a split is
derived deterministically (hash of a stable key, never a random state) and the deviation is recorded in
`Task.deviations`, which every table using the task should repeat.

One module per family of datasets (`squad`, `pairs`, `english`, `chinese`, `msmarco`), each registering its tasks,
and `user`, which registers a task from a user's own files (`data.user.from_files`); `files`
reads and checks the data, `registry` loads a task by name.
"""
import datasets  # noqa: F401  (tests replace datasets.load_dataset through here)

from pairlib.core.data import squad, pairs, english, chinese, msmarco, user  # noqa: F401, I001  (each registers its tasks, in this order)
from pairlib.core.data.english import ms_marco_candidates
from pairlib.core.data.files import DataError, data_root, hash_bucket, manifest_entries, split_by_hash, verify_file
from pairlib.core.data.registry import (
    TASKS,
    Task,
    _load_local_once,
    cache_root,
    get_task,
    hub_reachable,
    list_tasks,
    load_task,
    subsample,
)
from pairlib.core.data.squad import _squad_articles, build_q2p, build_ranking

__all__ = ["DataError", "TASKS", "Task", "_load_local_once", "_squad_articles", "build_q2p", "build_ranking",
           "cache_root", "data_root", "get_task", "hash_bucket", "hub_reachable", "list_tasks", "load_task",
           "manifest_entries", "ms_marco_candidates", "split_by_hash", "subsample", "verify_file"]
