"""The classic programs of workload 2 (one module each, written for this suite).

Every module exposes ``run(scale) -> int``: it does an amount of work
proportional to ``scale`` (1.0 is the full run's size, ~0.1-0.3 s untraced on
the reference 2-core machine) and returns a checksum so the work cannot be
optimised away or silently change.  Each program has a different allocation
profile; PROGRAMS lists them in report order.  Single-threaded.
"""

PROGRAMS = (
    "scheduler",      # object graph, richards-like task scheduling
    "nbody",          # float arithmetic on lists
    "gametree",       # recursive game-tree search, tuples per move
    "jsoncodec",      # json encode/decode of nested documents
    "deepcopy_nested",  # copy.deepcopy of nested containers and instances
    "regex_text",     # regular expressions and string building
    "pipelines",      # generators and comprehensions
    "exprparser",     # pure-Python tokenizer + recursive-descent parser
    "points",         # float-heavy class instances (builtin's worst case)
)
