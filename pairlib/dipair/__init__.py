"""DiPair (Chen et al., Findings of EMNLP 2020): `modeling` (DiPair, and the cross- and dual encoders it is compared
with), `experiment` (teacher, distillation pool, two-stage training, what notebooks 40-44 call) and `bench` (scoring
speed and amortised cost, side by side)."""
