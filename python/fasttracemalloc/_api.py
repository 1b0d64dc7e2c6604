"""The Python-level half of the tracemalloc API, bound to the engine.

Owns: ``take_snapshot`` and ``get_object_traceback`` as module-level
functions of fasttracemalloc (the stdlib defines these two in Python on top
of ``_get_traces``/``_get_object_traceback``; here they call the engine
directly, whatever the stdlib module is bound to).

Invariants: same signatures, exceptions and answers as the stdlib's
functions of the same name.  Threads: any (the engine serialises queries).
"""

import tracemalloc as _tm

from . import _backend
from ._snapshot import take_snapshot_from

_engine = _backend.engine


def take_snapshot():
    """
    Take a snapshot of traces of memory blocks allocated by Python.
    """
    return take_snapshot_from(_engine)


def get_object_traceback(obj):
    """
    Get the traceback where the Python object *obj* was allocated.
    Return a Traceback instance.

    Return None if the tracemalloc module is not tracing memory allocations or
    did not trace the allocation of the object.
    """
    frames = _engine._get_object_traceback(obj)
    if frames is not None:
        return _tm.Traceback(frames)
    else:
        return None
