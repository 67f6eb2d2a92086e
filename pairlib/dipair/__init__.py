"""DiPair (Chen et al., Findings of EMNLP 2020): dual encoders' truncated outputs scored by a tiny transformer head."""
