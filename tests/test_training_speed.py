"""The training-speed benchmark times both loops on the same work and reports what it promises."""
import sys
from pathlib import Path

import pytest
import torch

from pairlib.core.measure import CPU_FEATURES
from pairlib.study import training_speed

sys.path.insert(0, str(Path(__file__).parent))
from tiny_task import Tiny, dataset, mse  # noqa: E402


def _workload(rows: int = 64) -> training_speed.Workload:
    data = dataset(rows)
    tensors = {"x": torch.stack([r["x"] for r in data]), "y": torch.stack([r["y"] for r in data])}
    return training_speed.Workload("tiny", Tiny, mse, tensors, lambda model, batch: model(batch["x"]), lr=1e-2,
                                   length="4 features")


def test_both_loops_are_timed_on_the_same_work():
    table = training_speed.measure_training([_workload()], batch_size=8, steps=3, warmup=1, repeats=2)
    row = table.iloc[0]
    assert row.workload == "tiny" and row.batch == 8 and row.steps_timed == 3
    assert row.pairlib_step_ms > 0 and row.trainer_step_ms > 0 and row.forward_ms > 0
    assert row.efficiency == pytest.approx(3 * row.forward_ms / row.pairlib_step_ms)
    assert row.pairlib_over_trainer == pytest.approx(row.trainer_step_ms / row.pairlib_step_ms)
    assert row.pairlib_examples_per_s == pytest.approx(8000 / row.pairlib_step_ms)
    assert row.step_peak_mb > 0 and "threads" in row.hardware
    assert {f"cpu_{f}" for f in CPU_FEATURES} <= set(table.columns)


def test_too_few_rows_for_the_steps_is_refused_before_timing():
    with pytest.raises(ValueError, match=r"3 \+ 1 \+ 1 steps of batch 8 need 40 rows, got 16"):
        training_speed.measure_training([_workload(16)], batch_size=8, steps=3, warmup=1)


def test_each_precision_gets_its_own_row():
    table = training_speed.measure_training([_workload()], batch_size=8, steps=2, warmup=1, repeats=1,
                                   precisions=("fp32", "bf16"))
    assert list(table.precision) == ["fp32", "bf16"] and table.pairlib_step_ms.gt(0).all()


def test_step_phases_time_each_part_and_price_dropout():
    phases = training_speed.step_phases(_workload(), batch_size=8, repeats=2)
    assert set(phases) == {"train_forward_ms", "backward_ms", "clip_ms", "adamw_default_ms", "adamw_fused_ms",
                           "forward_backward_no_dropout_ms"}
    assert all(v > 0 for v in phases.values())


def test_a_workload_on_cached_teacher_outputs_carries_row_indices():
    from pairlib.core.teacher_cache import ROW_INDEX, TeacherOutputs
    w = _workload()
    w.teacher = TeacherOutputs(lambda b: {"y": b["y"]}, w.rows, progress=False)
    assert w.batch(4)[ROW_INDEX].tolist() == [0, 1, 2, 3]
    assert ROW_INDEX not in _workload().batch(4)


def test_a_bf16_trainer_run_does_not_leave_pairlib_training_in_bf16(tmp_path):
    """Trainer(bf16=True) sets Accelerate's process-wide precision; pairlib's fp32 loop must not inherit it."""
    from accelerate.state import AcceleratorState

    from pairlib.core.train import TrainConfig, train
    training_speed.time_trainer(_workload(), batch_size=8, steps=2, warmup=1, precision="bf16")
    model = Tiny()
    train(model, dataset(), None, mse, TrainConfig(output_dir=str(tmp_path), batch_size=8, max_steps=1,
                                                   progress=False))
    assert AcceleratorState().mixed_precision == "no"
