"""The cross-paper study: which notebook tests which claim (`claims`), stamped tables, figures and verdicts
(`report`), every method on one task (`frontier`), DeFormer's classification claims (`deformer_claims`) and its
SQuAD claims against the training budget (`deformer_budget`), DiPair's accuracy claims against the distillation pool
(`dipair_claims`), the log2 line those budget curves are read with (`trend`), the speed comparisons on other hardware
(`hardware_speed`), and the papermill runner behind the `pairlib` command (`run`)."""
