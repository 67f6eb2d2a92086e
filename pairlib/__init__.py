"""pairlib: reproducing DeFormer, FastBERT and DiPair with one small library and numbered notebooks.

core -> deformer / fastbert / dipair -> study / serve; pairlib/README.md is the map (tests/test_layout.py keeps it).
"""
__version__ = "0.1.0"
