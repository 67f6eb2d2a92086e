"""Which paper claims each notebook tests: the list the claims table is checked against.

A notebook that writes claims must write every claim listed for it here (so a claim can't silently drop out of
the table), and the committed `outputs/cpu/claims.csv` must hold a row for every claim listed (tests/test_claims.py).
A claim whose notebook has not run in a profile yet gets a placeholder row marked `not run`, written by
`90_report`, so a gap shows in the table instead of a missing line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from pairlib.core import data

CHINESE_TASKS = tuple(name for name, task in data.TASKS.items() if task.language == "zh")
FASTBERT_ENGLISH = ("dbpedia", "amazon_full", "yahoo", "yelp_full", "yelp_p")  # beside AG News (31)
FASTBERT_SPEEDS = (0.1, 0.5, 0.8)
PAPERS = {"deformer": "DeFormer", "fastbert": "FastBERT", "dipair": "DiPair"}

NOTEBOOK_CLAIMS: dict[str, tuple[str, ...]] = {
    "20_deformer_squad": ("deformer.squad.speedup", "deformer.squad.memory_reduction"),
    "21_deformer_boolq": ("deformer.boolq.acc_drop", "deformer.boolq.speedup"),
    "22_deformer_race": ("deformer.race.acc_drop", "deformer.race.speedup"),
    "23_deformer_split_sweep": ("deformer.sweep.speedup_at_k",),
    # judged at the largest training budget, with the drop at every budget (20 and 24 judged them at 2,000 questions)
    "25_deformer_budget": ("deformer.squad.f1_drop", "deformer.ablation.no_aux", "deformer.ablation.kd_only",
                           "deformer.ablation.kd_lrs"),
    "26_deformer_pairs": ("deformer.mnli.acc_drop", "deformer.mnli.speedup", "deformer.qqp.acc_drop",
                          "deformer.qqp.speedup"),
    "31_fastbert_speed_accuracy": (*(f"fastbert.agnews.{m}@{s}" for m in ("acc", "flops_speedup")
                                     for s in (0.1, 0.5, 0.8)), "fastbert.agnews.wallclock_speedup@0.5"),
    "32_fastbert_exits": ("fastbert.exit_mean@0.8", "fastbert.luha"),
    "33_fastbert_ablation": ("fastbert.ablation.self_distillation", "fastbert.ablation.adaptive"),
    "35_fastbert_chinese": tuple(f"fastbert.{t}.acc@{s}" for t in CHINESE_TASKS for s in FASTBERT_SPEEDS),
    "36_fastbert_english": tuple(f"fastbert.{t}.acc@{s}" for t in FASTBERT_ENGLISH for s in FASTBERT_SPEEDS),
    "41_dipair_train": ("dipair.two_stage.gain",),
    "42_dipair_results": ("dipair.q2p.speedup_vs_teacher", "dipair.vs_small_cross.speedup_ratio"),
    # judged at the largest distillation pool, with the gap at every pool size (42 judged them at the smallest)
    "45_dipair_pool_curve": ("dipair.q2p.auc_delta_vs_teacher", "dipair.vs_small_cross.auc_delta",
                             "dipair.de_cos.auc_delta"),
}
PLACEHOLDER = "not run yet: "


def listed() -> dict[str, str]:
    """claim id -> the notebook that tests it."""
    return {cid: nb for nb, ids in NOTEBOOK_CLAIMS.items() for cid in ids}


def paper_of(claim_id: str) -> str:
    return PAPERS[claim_id.split(".", 1)[0]]


def check_written(claim_ids: Iterable[str], evidence: Iterable[str]) -> None:
    """Refuse a notebook's claims unless they are exactly the ones listed for it (notebooks not listed here, such
    as a user's own, are not checked)."""
    written: dict[str, set[str]] = {}
    for cid, nb in zip(claim_ids, evidence):
        written.setdefault(nb, set()).add(cid)
    for nb, ids in written.items():
        if nb not in NOTEBOOK_CLAIMS:
            continue
        expected = set(NOTEBOOK_CLAIMS[nb])
        if ids - expected:
            raise ValueError(f"{nb} wrote claims not listed for it: {sorted(ids - expected)}; "
                             "add them to pairlib/study/claims.py NOTEBOOK_CLAIMS")
        if expected - ids:
            raise ValueError(f"{nb} lists claims it did not write: {sorted(expected - ids)}; a claim that cannot be "
                             "tested still needs a row (verdict 'not run', saying why)")


def missing(table: pd.DataFrame) -> dict[str, str]:
    """Listed claims without a row from their notebook in the claims table: claim id -> notebook. A row written by
    the notebook that tested a claim before it moved to another counts as missing: its placeholder then names the
    notebook to run."""
    present = dict(zip(table.claim_id, table.evidence))
    return {cid: nb for cid, nb in listed().items() if present.get(cid) != nb}


def is_placeholder(ours: str) -> bool:
    return str(ours).startswith(PLACEHOLDER)


def placeholder_rows(table: pd.DataFrame, profile: str) -> list[dict[str, str]]:
    """A `not run` row for each listed claim the table lacks, naming the notebook to run. A claim that moved to
    another notebook keeps its description and what the notebook that judged it before measured, so a reader
    still sees the last number while the new judge has not run."""
    earlier = {r["claim_id"]: r for r in table.to_dict("records")}
    rows = []
    for cid, nb in sorted(missing(table).items()):
        todo = f"{PLACEHOLDER}run `pairlib run --profile {profile} --only {nb}`"
        row = {"claim_id": cid, "paper": paper_of(cid), "description": f"listed by {nb}", "paper_value": f"see {nb}",
               "ours": todo, "unit": "", "verdict": "not run", "evidence": nb}
        old = earlier.get(cid)
        if old is not None and not is_placeholder(old["ours"]) and old["verdict"] != "not run":
            row.update(description=old["description"], paper_value=old["paper_value"], unit=old["unit"],
                       ours=f"{todo}; {old['evidence']} measured {old['ours']} ({old['verdict']} there)")
        rows.append(row)
    return rows


def stale_placeholders(table: pd.DataFrame, out_dir: str | Path) -> list[str]:
    """Placeholder rows whose notebook has in fact run (its executed copy is in `out_dir`): they should have been
    replaced by the notebook's own rows."""
    return [r.claim_id for r in table.itertuples() if is_placeholder(r.ours)
            and (Path(out_dir) / f"{r.evidence}.ipynb").exists()]
