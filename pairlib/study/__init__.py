"""The cross-paper study: the papers' numbers, the verdict rules, per-paper claims, report, frontier, runner
(pairlib/README.md maps the modules)."""
