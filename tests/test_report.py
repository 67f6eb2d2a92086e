import json

import pandas as pd
import pytest

from pairlib.study import plots, report


def test_save_table_writes_csv_markdown_and_stamp(tmp_path):
    df = pd.DataFrame({"model": ["a", "b"], "f1": [88.5, 87.1]})
    path = report.save_table(df, "t", tmp_path, "smoke", notes=["derived split"])
    assert pd.read_csv(path).equals(df)
    meta = json.loads((tmp_path / "tables" / "t.meta.json").read_text())
    assert meta["profile"] == "smoke" and meta["commit"] and meta["hardware"] and "torch" in meta["versions"]
    md = (tmp_path / "tables" / "t.md").read_text()
    assert "| model" in md and "profile smoke" in md and "derived split" in md


def test_count_columns_with_gaps_are_shown_as_whole_numbers(tmp_path):
    df = pd.DataFrame({"pool_pairs": [4800.0, 19200.0, None], "auc_roc": [0.61, 0.6875, 0.8673]})
    path = report.save_table(df, "t", tmp_path, "smoke")
    md = (tmp_path / "tables" / "t.md").read_text()
    assert "19200 |" in md and "e+04" not in md
    assert "0.6875" in md and "nan" not in md.split("_profile")[0]
    assert pd.read_csv(path).pool_pairs.iloc[1] == 19200  # the CSV keeps the numbers as they are


def test_the_stamp_names_the_commit_the_run_started_at(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRLIB_COMMIT", "0123abcd4567")  # what `pairlib run` passes to the kernel
    report.save_table(pd.DataFrame({"a": [1]}), "t", tmp_path, "smoke")
    assert json.loads((tmp_path / "tables" / "t.meta.json").read_text())["commit"] == "0123abcd4567"


def _claim(cid, ours="1", verdict="partly"):
    return report.Claim(cid, "DeFormer", "d", "3.2", ours, "x", verdict, "20_some_notebook")


def test_claims_are_added_and_replaced_by_id(tmp_path):
    report.write_claims([_claim("a.x"), _claim("b.y")], tmp_path)
    report.write_claims([_claim("a.x", ours="2")], tmp_path)
    claims = report.read_claims(tmp_path)
    assert list(claims.columns) == list(report.CLAIM_COLUMNS)
    assert claims.set_index("claim_id").loc["a.x", "ours"] == "2"
    assert len(claims) == 2


def test_bad_verdict_and_missing_evidence_are_refused():
    with pytest.raises(ValueError, match="verdict must be one of"):
        _claim("a", verdict="sort of")
    with pytest.raises(ValueError, match="evidence"):
        report.Claim("a", "p", "d", "1", "1", "x", "partly", "")


def test_output_dir_honours_the_test_override(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRLIB_OUTPUTS", str(tmp_path))
    assert report.output_dir("cpu") == tmp_path / "cpu"
    assert report.output_dir("cpu", tmp_path / "x") == tmp_path / "x"


@pytest.mark.parametrize("tight", [True, False])  # without tight_layout the x label reaches below the figure
def test_a_figures_stamp_lies_below_every_axis_label(tmp_path, tight):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax in axes:
        ax.plot([1, 2], [3, 4])
        ax.set_xlabel("a label with some length")
    if tight:
        fig.tight_layout()
    assert report.save_figure(fig, "f", tmp_path, "smoke") is None  # a cell ending with it shows no path
    from PIL import Image
    assert Image.open(tmp_path / "figures" / "f.png").text["Description"] == fig.texts[-1].get_text()
    renderer = fig.canvas.get_renderer()
    stamp = fig.texts[-1].get_window_extent(renderer)
    assert all(stamp.y1 < ax.get_tightbbox(renderer).y0 for ax in axes)
    plt.close(fig)


def test_labels_of_a_cluster_of_points_overlap_neither_each_other_nor_other_points_and_stay_inside_the_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, ax = plt.subplots(figsize=(5, 3))
    xs, ys = [20, 20.5, 21, 21.2, 21.5, 22, 5, 19], [0.96, 0.965, 0.962, 0.97, 0.966, 0.964, 0.5, 0.955]
    names = ["FastBERT speed 0.5", "FastBERT speed 0.3", "teacher", "original", "FastBERT speed 0.1", "DeFormer k=2",
             "alone", "DeFormer k=4"]
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    fig.tight_layout()
    plots.label_points(ax, xs, ys, names)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = {t.get_text(): Text.get_window_extent(t, renderer) for t in ax.texts}  # the words, not the lines back
    assert len(boxes) == 8
    words = list(boxes.values())
    assert not any(a.overlaps(b) for i, a in enumerate(words) for b in words[i + 1:])
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in words)
    for name, x, y in zip(names, xs, ys):  # no label covers another point's centre
        px, py = ax.transData.transform((x, y))
        assert not any(b.contains(px, py) for other, b in boxes.items() if other != name)
    plt.close(fig)


def test_point_labels_near_the_bottom_move_up_rather_than_out_of_the_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, ax = plt.subplots(figsize=(5, 3))
    xs, ys = [2000, 16000, 16000, 16000], [21.0, 25.0, 1.34, 1.40]  # two points at one spot on the bottom edge
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    fig.tight_layout()
    plots.label_points(ax, xs[2:], ys[2:], ["k=1, task loss only", "k=2, task loss only"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    first, second = (Text.get_window_extent(t, renderer) for t in ax.texts)
    frame = ax.get_window_extent(renderer)
    assert not first.overlaps(second)
    assert all(frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in (first, second))
    plt.close(fig)


def test_the_frontier_figure_enlarges_the_models_near_the_best_and_labels_each_model_once():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    models = ["CE", "FastBERT speed 0.1", "FastBERT speed 0.5", "DeFormer k=2", "DE-Cos", "CE, 1 layer(s)"]
    auc = [0.876, 0.882, 0.867, 0.859, 0.815, 0.50]
    table = pd.DataFrame({"model": models, "method": ["cross-encoder", "FastBERT", "FastBERT", "DeFormer",
                                                      "dual encoder", "small cross-encoder"], "auc_roc": auc,
                          "ms_per_pair_batch1": [36.0, 42.0, 35.0, 29.0, 14.0, 6.0],
                          "ms_per_pair_batch8": [24.0, 27.0, 22.0, 18.0, 4.0, 3.5]})
    for b in (1, 8):
        table[f"frontier_batch{b}"] = [False, True, True, True, True, True]
    fig = plots.frontier_figure(table, (1, 8), "title")
    full, zoom = fig.axes[0], fig.axes[2]  # the first column: full view above, the enlarged corner below
    assert sorted(t.get_text() for t in zoom.texts) == sorted(models[:4])  # within 0.03 AUC of 0.882
    assert sorted(t.get_text() for t in full.texts) == sorted(models[4:])
    low, high = zoom.get_ylim()
    assert low < 0.859 and 0.882 < high < 0.9
    plt.close(fig)


def test_plain_log_ticks_label_one_two_and_five_of_each_decade_only():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.scatter([15, 25, 60, 180], [1, 2, 3, 4])
    ax.set_xscale("log")
    plots.plain_log_ticks(ax.xaxis)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True) if t.get_text()]
    assert set(shown) <= {"10", "20", "50", "100", "200", "500", "1,000"} and {"20", "50", "200"} <= set(shown)
    plt.close(fig)


def test_the_commit_stamp_is_dirty_for_changed_code_but_not_for_changed_prose_or_outputs(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for name, text in {"model.py": "x = 1\n", "README.md": "# r\n", "docs/a.md": "a\n", "outputs/t.csv": "1\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    for name in ("README.md", "docs/a.md", "outputs/t.csv"):
        (tmp_path / name).write_text("changed\n")
    assert not report.git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "model.py").write_text("x = 2\n")
    assert report.git_commit(tmp_path).endswith("-dirty")


def test_a_column_that_repeats_one_hardware_label_is_said_once_under_the_markdown(tmp_path):
    df = pd.DataFrame({"hardware": ["AMD EPYC, 2 threads"] * 3, "batch": [1, 8, 32], "ms": [1.5, 0.5, 0.25]})
    report.save_table(df, "t", tmp_path, "smoke")
    md = (tmp_path / "tables" / "t.md").read_text()
    assert "| hardware" not in md and "- hardware: AMD EPYC, 2 threads" in md
    assert list(pd.read_csv(tmp_path / "tables" / "t.csv").columns) == ["hardware", "batch", "ms"]  # data kept
