"""pairlib: reproducing DeFormer, FastBERT and DiPair with one small library and numbered notebooks.

Layers, each importing only those above it (tests/test_layout.py checks it):

    core       data (tasks) -> backbone -> train (the loop), teacher_cache, losses, metrics, measure, artifacts
    deformer   modeling -> inputs -> experiment (training) -> bench (measurement)      } one package per paper;
    fastbert   modeling -> experiment                                                    } none imports another
    dipair     modeling -> experiment -> bench                                           }
    study      claims, report, frontier, hardware_speed (across the papers), run (the notebook runner)

See pairlib/README.md for what lives where.
"""
__version__ = "0.1.0"
