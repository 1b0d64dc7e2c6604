"""The extension-loader hook that routes a new extension's C API calls
(PyTraceMalloc_Track/Untrack, _PyTraceMalloc_GetTraceback) to the engine.

Owns: the wrapper around importlib's ``ExtensionFileLoader.create_module``
(installed once, when the package selects its engine; never removed).

The engine's start() rewrites those calls' GOT slots in every object loaded
at that moment (python/src/capi_rebind.c).  An extension imported later,
while tracing, is opened first by ``_capi_preload`` with the interpreter's
own dlopen flags (the interpreter's dlopen then returns the same handle) and
its slots rewritten before its PyInit runs, so arrays an extension makes
while it initialises are traced too; ``_capi_rebind`` afterwards catches
anything its init loaded in turn.  Both do nothing while not tracing (the
next start() scans everything anyway) and are one counter check when no new
object was loaded.  If the engine refused rebinding (start() warned once),
they do nothing either.

Uses only what is already imported at start-up (``_frozen_importlib_external``
is the frozen importlib every interpreter has loaded), so installing the hook
imports nothing.

Threads: install() runs once at package import; the wrapper runs in any
thread that imports an extension (the C functions serialise their scans).
"""

import sys

_MARK = "_fasttracemalloc_capi_hook"


def install(engine):
    """Wrap ExtensionFileLoader.create_module (idempotent)."""
    try:
        external = sys.modules["_frozen_importlib_external"]
        loader = external.ExtensionFileLoader
    except (KeyError, AttributeError):  # an unusual importlib: no hook
        return
    if getattr(loader.create_module, _MARK, False):
        return
    original = loader.create_module
    is_tracing = engine.is_tracing
    preload = engine._capi_preload
    unload = engine._capi_unload
    rebind = engine._capi_rebind
    getflags = sys.getdlopenflags

    def create_module(self, spec):
        if not is_tracing():
            return original(self, spec)
        handle = 0
        try:
            handle = preload(self.path, getflags())
        except (TypeError, ValueError):  # a path dlopen cannot take
            pass
        try:
            module = original(self, spec)
        finally:
            if handle:
                unload(handle)
        rebind()
        return module

    create_module.__name__ = original.__name__
    create_module.__qualname__ = original.__qualname__
    create_module.__doc__ = original.__doc__
    create_module.__wrapped__ = original
    setattr(create_module, _MARK, True)
    loader.create_module = create_module
