"""FastBERT (Liu et al., ACL 2020): a classifier after every layer, self-distilled; samples exit when certain."""
