import pandas as pd
import pytest
import torch

from pairlib.core.backbone import load_backbone
from pairlib.study import hardware_speed


@pytest.fixture
def tiny_shape(monkeypatch):
    """A 2-layer, 32-wide backbone and short inputs, so that every comparison runs in seconds."""
    for key, value in dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64).items():
        monkeypatch.setitem(hardware_speed.MINILM_SHAPE, key, value)
    monkeypatch.setitem(hardware_speed.DEFORMER, "split_layer", 1)
    monkeypatch.setitem(hardware_speed.DEFORMER, "passage_length", 24)
    monkeypatch.setitem(hardware_speed.FASTBERT, "max_length", 16)
    monkeypatch.setitem(hardware_speed.DIPAIR, "head", dict(query_tokens=2, passage_tokens=4, head_dim=16,
                                                            head_layers=1, head_heads=2))


def test_the_shape_is_the_backbones():
    config = load_backbone("minilm-l6")[0].config
    assert {k: getattr(config, k) for k in hardware_speed.MINILM_SHAPE} == hardware_speed.MINILM_SHAPE


def test_every_model_is_timed_against_its_methods_baseline(tiny_shape):
    table = hardware_speed.measure_devices("cpu", batch_sizes=(1, 2), repeats=1)
    assert set(table.method) == set(hardware_speed.METHODS)
    assert set(table.batch) == {1, 2}
    for (method, batch), g in table.groupby(["method", "batch"]):
        baseline = g[g.model == g.baseline.iloc[0]]
        assert len(baseline) == 1 and baseline.speedup.iloc[0] == 1.0, (method, batch)
        assert len(g) >= 2 and (g.ms_per_example > 0).all()
        assert baseline.flops_ratio.iloc[0] == 1.0
    head = table[table.model == "dipair-tsf"].iloc[0]
    assert 1 < head.flops_ratio < float("inf")  # the head's own matmuls are counted, not hidden by a fused kernel
    assert set(table.columns) == set(hardware_speed.COLUMNS)


def test_speedups_and_summary_leave_the_baselines_out():
    speedups = [(1, "teacher", 1.0), (1, "head", 3.0), (8, "teacher", 1.0), (8, "head", 30.0)]
    table = pd.DataFrame([dict(hardware="cpu, 2 threads", dtype="float32", method="dipair", batch=b, model=m,
                               baseline="teacher", speedup=s) for b, m, s in speedups])
    wide = hardware_speed.speedup_table(table)
    assert list(wide.model) == ["head"]
    assert list(wide.columns[2:]) == ["cpu, 2 threads float32 b1", "cpu, 2 threads float32 b8"]
    named = hardware_speed.speedup_table(table.assign(machine="laptop"))
    assert list(named.columns[2:]) == ["laptop float32 b1", "laptop float32 b8"]
    assert hardware_speed.summary_lines(table) == [
        "dipair on cpu, 2 threads (float32): head 3.0x at batch 1, 30.0x at batch 8"]


def test_other_hardware_reads_one_folder_per_machine(tmp_path):
    assert hardware_speed.other_hardware(tmp_path).empty
    row = pd.DataFrame([dict(hardware="H100 GPU", dtype="float32", method="dipair", batch=1, model="teacher",
                             baseline="teacher", speedup=1.0)])
    (tmp_path / "h100").mkdir()
    row.to_csv(tmp_path / "h100" / "hardware_speed.csv", index=False)
    assert list(hardware_speed.other_hardware(tmp_path).machine) == ["h100"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error():
    with pytest.raises(ValueError, match="no GPU"):
        hardware_speed.measure_devices("cuda")


def test_the_figure_tells_every_machine_and_model_apart():
    import matplotlib
    matplotlib.use("Agg")
    rows = [{"hardware": hw, "machine": m, "dtype": "float32", "method": "fastbert", "batch": b, "model": model,
             "baseline": "teacher", "speedup": s}
            for m, hw in (("a", "CPU A"), ("b", "CPU B")) for b in (1, 32)
            for model, s in (("teacher", 1.0), ("exit 1", 4.0), ("exit 3", 2.0))]
    fig = hardware_speed.plot_speedups(pd.DataFrame(rows), "t")
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() not in ("None", "", None)]
    assert len(lines) == 4  # two machines x two models, the baseline left out
    assert len({(ln.get_color(), ln.get_marker()) for ln in lines}) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "32"]
