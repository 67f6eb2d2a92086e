"""DeFormer (Cao et al., ACL 2020): `modeling` (the model and its passage cache), `inputs` (question and passage
segments, SQuAD windows and spans), `experiment` (the paper's training recipe and evaluation, what notebooks 20-24
call), `bench` (its cost against the original model, side by side)."""
