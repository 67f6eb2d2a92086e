"""A tiny synthetic regression task for the training-loop tests (and the two-process launch)."""
import sys

import torch

from pairlib.core.train import TrainConfig, train


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x))).squeeze(-1)


def dataset(n: int = 64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    return [{"x": a, "y": b} for a, b in zip(x, y)]


def collate(rows):
    return {"x": torch.stack([r["x"] for r in rows]), "y": torch.stack([r["y"] for r in rows])}


def mse(model, batch, teacher):
    return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])


def evaluate(model):
    data = collate(dataset())
    with torch.no_grad():
        return {"mse": float(torch.nn.functional.mse_loss(model(data["x"]), data["y"]))}


if __name__ == "__main__":  # run under `accelerate launch`: each rank writes how many processes it saw
    from accelerate import PartialState
    out = sys.argv[1]
    result = train(Tiny(), dataset(), collate, mse, TrainConfig(output_dir=out, epochs=2, batch_size=8, lr=1e-2,
                                                                 progress=False))
    state = PartialState()
    with open(f"{out}/rank{state.process_index}.txt", "w") as f:
        f.write(f"{state.num_processes} {state.distributed_type} {result.global_step}")
