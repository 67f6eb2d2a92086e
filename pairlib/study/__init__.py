"""The cross-paper study: which notebook tests which claim (`claims`), stamped tables, figures and verdicts
(`report`), every method on one task (`frontier`), DeFormer's
classification claims (`deformer_claims`), the speed comparisons on other hardware (`hardware_speed`), and
the papermill runner behind the `pairlib` command (`run`)."""
