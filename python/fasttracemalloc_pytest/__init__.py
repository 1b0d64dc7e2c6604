"""The fasttracemalloc pytest plugin's package (the plugin is ``.plugin``).

A top-level package of its own, not ``fasttracemalloc.pytest_plugin``:
pytest imports every ``pytest11`` entry point at start-up, and importing
anything under ``fasttracemalloc`` loads the engine extension (which also
wraps importlib's extension loader).  Importing this package loads nothing
but the standard library and pytest; the engine is imported only when a
test is measured (see plugin.py).
"""
