"""A frozen teacher's outputs on every training row, computed once and then read back by row.

Distillation runs the teacher's forward inside every training step. When several students learn from one teacher on
the same rows (DeFormer's loss ablation trains four; a second epoch sees every row again), that forward is repeated on
identical inputs. `TeacherOutputs` computes it once, on first use, and hands each step the stored outputs of its
rows: the step then costs the student's forward and backward only. It stands in for the teacher module wherever a
loss function takes one (`train.train(..., teacher=TeacherOutputs(...))`); the rows must carry their index under
`ROW_INDEX` (`TensorDictDataset(..., index=True)`).

Outputs are kept in memory, on the CPU, in the dtype the teacher produced them in (bf16 under bf16 autocast, as the
live teacher would give inside such a step). Size them before use: DeFormer's two upper-layer states of a SQuAD
window (192 tokens, hidden 384) take 0.6 MB in fp32.
"""
from __future__ import annotations

from typing import Callable

import torch

from pairlib.core.progress import bar

ROW_INDEX = "row_index"


class TeacherOutputs:
    """`outputs_of(batch) -> {name: tensor with one row per batch row}` evaluated over all `rows` once, on first call,
    in chunks of `batch_size`; a call returns those of the batch's rows (by `batch[ROW_INDEX]`) on the batch's
    device."""

    def __init__(self, outputs_of: Callable[[dict], dict[str, torch.Tensor]], rows: dict[str, torch.Tensor],
                 batch_size: int = 64, progress: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.outputs_of, self.rows, self.batch_size, self.progress = outputs_of, rows, batch_size, progress
        self.outputs: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(next(iter(self.rows.values())))

    def compute(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        if self.outputs is None:
            chunks: dict[str, list[torch.Tensor]] = {}
            with torch.no_grad():
                for lo in bar(range(0, len(self), self.batch_size), desc="teacher outputs", show=self.progress):
                    batch = {k: v[lo:lo + self.batch_size].to(device) for k, v in self.rows.items()}
                    for name, value in self.outputs_of(batch).items():
                        chunks.setdefault(name, []).append(value.detach().cpu())
            self.outputs = {name: torch.cat(parts) for name, parts in chunks.items()}
        return self.outputs

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        if ROW_INDEX not in batch:
            raise KeyError(f"cached teacher outputs are looked up by row: the batch needs {ROW_INDEX!r} "
                           "(build the dataset with TensorDictDataset(..., index=True))")
        index = batch[ROW_INDEX]
        outputs = self.compute(index.device)
        rows = index.cpu()
        return {name: value[rows].to(index.device) for name, value in outputs.items()}
