"""What every method shares: the task registry, the backbone, the one training loop, losses, metrics, how speed,
FLOPs and memory are measured, and where trained models are kept. Nothing here knows about a paper or the study."""
