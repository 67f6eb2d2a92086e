"""Scoring at scale: a trained pair model applied to many pairs, each text encoded once (`pairlib score`)."""
