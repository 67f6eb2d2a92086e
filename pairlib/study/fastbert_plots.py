"""FastBERT's Table 2 as a figure (notebooks 35 and 36): accuracy lost against the share of the FLOPs limit
reached, ours beside the paper's, one colour per dataset."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from pairlib.study.fastbert_claims import SPEEDS, paper_points


def table2_figure(results: pd.DataFrame, tasks: list[str], backbone: str):
    """`results`: `speed_rows` for every task with its `flops_limit` (accuracy in %). The x axis is the share of
    the most FLOPs exiting can save, so a 6-layer and a 12-layer backbone compare; the y axis the accuracy lost
    against each one's own backbone."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    colours = dict(zip(tasks, plt.cm.tab10.colors))
    for task in tasks:
        ours = results[(results.task == task) & (results.speed > 0)]
        backbone_acc = results[(results.task == task) & (results.speed == 0)].accuracy.iloc[0]
        name, paper_share, paper_drop = paper_points(task)
        ax.plot(100 * ours.flops_speedup / ours.flops_limit, backbone_acc - ours.accuracy, "o-", color=colours[task],
                label=f"{name}: ours ({backbone})")
        ax.plot(paper_share, paper_drop, "x--", color=colours[task], alpha=0.6, label=f"{name}: paper (BERT-base)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("FLOPs speedup, % of the most exiting can save")
    ax.set_ylabel("accuracy lost vs the backbone (points)")
    ax.set_title(f"speeds {', '.join(map(str, SPEEDS))}: ours (o, {backbone}) and the paper's (x, BERT-base)",
                 fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig
