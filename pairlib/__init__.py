"""pairlib: reproducing DeFormer, FastBERT and DiPair with one small library and numbered notebooks.

Modules, in the order data flows: data (tasks) -> backbone -> methods -> train -> metrics / measure -> report;
run is the papermill runner.
"""
__version__ = "0.1.0"
