"""Scoring at scale: a trained pair model applied to many pairs, each passage and query encoded once into an on-disk
store, the pairs scored from it, in-process or on Ray Data (`pairlib score`). It serves the models the papers'
packages train; nothing here trains."""
