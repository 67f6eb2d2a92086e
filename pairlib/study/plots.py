"""Helpers that keep the study's figures readable: plain labels on log axes, point labels that do not overlap."""
from __future__ import annotations

import math
from typing import Iterable


def plain_log_ticks(axis, leads: tuple[int, ...] | None = None) -> None:
    """Label a log axis (`ax.xaxis` or `ax.yaxis`) in plain numbers at `leads` times each power of ten (by default
    1, 2 and 5 over up to two decades, powers of ten alone over more, so that labels never run into each other).
    Over less than a decade or two matplotlib labels every minor tick as 2x10^1, 3x10^1, ..., which collide."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos) -> str:
        if value <= 0:
            return ""
        low, high = sorted(axis.get_view_interval())
        wide = low > 0 and math.log10(high / low) > 2
        chosen = leads or ((1,) if wide else (1, 2, 5))
        lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
        return f"{value:,.6g}" if any(math.isclose(lead, k, rel_tol=1e-6) for k in chosen) else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def label_points(ax, xs: Iterable[float], ys: Iterable[float], labels: Iterable[str], fontsize: float = 6,
                 marker_points: float = 9) -> None:
    """Each point's label beside it, readable however the points cluster: a label goes right of its point, or left
    where that fits better or the right would run past the axes, and moves down (with a line back to its point)
    until it covers neither a label already placed nor another point's marker (`marker_points` wide), or up where
    down would leave the axes. Placement is computed in screen space, so call it after the axes' limits, scales and
    the figure's layout are set: a later `tight_layout` moves the points and not the labels' offsets, and clusters
    overlap again."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # settles the axes' limits, which positions on screen depend on
    renderer = fig.canvas.get_renderer()
    to_points = 72 / fig.dpi
    frame = ax.get_window_extent(renderer)
    points = sorted(zip(xs, ys, labels), key=lambda t: (-t[1], t[0]))  # top first, then left
    half = marker_points / to_points / 2
    screen = [ax.transData.transform((x, y)) for x, y, _ in points]
    markers = [Bbox.from_extents(px - half, py - half, px + half, py + half) for px, py in screen]
    placed: list = []
    for i, (x, y, label) in enumerate(points):
        obstacles = placed + markers[:i] + markers[i + 1:]
        best = None
        clear = marker_points / 2 + 1  # the label starts clear of its own marker
        for dx, ha in ((clear, "left"), (-clear, "right")):  # right of the point first
            text = ax.annotate(label, (x, y), xytext=(dx, 3), textcoords="offset points", fontsize=fontsize, ha=ha)
            box = text.get_window_extent(renderer)
            text.remove()
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1
            for step in (2, -2):  # down first; up where down would leave the axes (points near the bottom)
                drop = 0.0
                while any(box.translated(0, -drop).overlaps(b) for b in obstacles) and abs(drop) < frame.height:
                    drop += step
                moved = box.translated(0, -drop)
                key = (not inside, not (frame.y0 <= moved.y0 and moved.y1 <= frame.y1), step < 0, abs(drop))
                if best is None or key < best[0]:
                    best = (key, dx, ha, drop, box)
        _, dx, ha, drop, box = best
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkB": 2} if drop else None
        ax.annotate(label, (x, y), xytext=(dx, 3 - drop * to_points), textcoords="offset points", fontsize=fontsize,
                    ha=ha, arrowprops=arrow)
        placed.append(box.translated(0, -drop))


FRONTIER_MARKERS = {"cross-encoder": "s", "small cross-encoder": "D", "DeFormer": "^", "FastBERT": "o", "DiPair": "*",
                    "dual encoder": "v"}


def frontier_figure(table, batches: tuple[int, ...], title: str, near_best: float = 0.03, fewest: int = 3):
    """Quality against milliseconds per pair, one column per batch size, each model a point by method and the
    Pareto frontier as a step line (`table` as `frontier.measure_frontier` gives it). The bottom row enlarges the
    best models (those within `near_best` AUC of the best, and at least the `fewest` best), which crowd one corner
    of the full view; each is labelled there, the rest in the full view."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cut = min(table.auc_roc.max() - near_best, table.auc_roc.nlargest(min(fewest, len(table))).min())
    near = table.auc_roc >= cut
    fig, grid = plt.subplots(2, len(batches), figsize=(6.5 * len(batches), 8.4), squeeze=False,
                             gridspec_kw={"height_ratios": (3, 2)})
    for col, b in enumerate(batches):
        x = f"ms_per_pair_batch{b}"
        front = table[table[f"frontier_batch{b}"]].sort_values(x)
        for ax in grid[:, col]:
            for method, g in table.groupby("method"):
                ax.scatter(g[x], g.auc_roc, marker=FRONTIER_MARKERS.get(method, "o"), s=50, label=method)
            ax.step(front[x], front.auc_roc, where="post", color="0.3", lw=1, ls="--", label="Pareto frontier")
            ax.set_ylabel("AUC-ROC")
        full, zoom = grid[:, col]
        full.set_xscale("log")
        full.set_xlabel(f"ms per pair at batch {b} (log)")
        plain_log_ticks(full.xaxis)
        zoom.set_xlabel(f"ms per pair at batch {b}")  # linear: the enlarged span is under a decade
        xs, ys = table.loc[near, x], table.loc[near, "auc_roc"]
        span_x, span_y = max(xs.max() - xs.min(), 0.2 * xs.max()) * 0.1, max(ys.max() - ys.min(), 0.002) * 0.15
        box = (xs.min() - span_x, ys.min() - span_y, xs.max() + 4 * span_x, ys.max() + span_y)  # room for labels
        zoom.set_xlim(box[0], box[2])
        zoom.set_ylim(box[1], box[3])
        full.set_title(f"batch {b}", fontsize=9)
        zoom.set_title(f"batch {b}, enlarged: the {int(near.sum())} best models (AUC {ys.min():.3f} to "
                       f"{ys.max():.3f}; the dotted box above)", fontsize=9)
        full.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, lw=0.6,
                                 color="0.5", ls=":"))
    handles, names = grid[0, 0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=9)
    fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.965))
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # the title and the legend above the panels
    labels = table.model.str.replace("cross-encoder", "CE")
    for col, b in enumerate(batches):  # after the layout: labels are placed apart where the points are on screen
        x = table[f"ms_per_pair_batch{b}"]
        label_points(grid[0, col], x[~near], table.auc_roc[~near], labels[~near])
        label_points(grid[1, col], x[near], table.auc_roc[near], labels[near])
    return fig
