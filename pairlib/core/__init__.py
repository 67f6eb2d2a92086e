"""What every method shares: tasks, backbones, the training loop, losses, metrics, measurement; knows no paper."""
