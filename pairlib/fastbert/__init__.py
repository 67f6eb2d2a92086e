"""FastBERT (Liu et al., ACL 2020): `modeling` (a classifier after every layer, batched adaptive inference,
analytic FLOPs) and `experiment` (the two training steps, speed sweeps and ablations, what notebooks 30-33 call)."""
