"""The tracing modes the overhead suite compares, and how to start each.

Owns: the list of modes (untraced; builtin tracemalloc at nframe 1 and 25;
fasttracemalloc at nframe 1 and 25 through its start-up switch, and in its
sampled mode at nframe 25 with a 512 KiB mean (issue 12 part 2) through the
same switch, ``FASTTRACEMALLOC=25,sample=512k``; memray with
--trace-python-allocators), the command line and environment that start a
fresh interpreter in each, the availability probe (a mode whose tool is not
installed, or whose switch does not actually start tracing, is reported as
"n/a (why)" -- never silently measured as something else), and the check of
a finished run's reported tracer state against what the mode promised.
Used only by the runner's main thread.
"""

import os
import subprocess
from dataclasses import dataclass, field

# fasttracemalloc's start-up switch (issue 3): FASTTRACEMALLOC=N in the
# environment, read by the .pth file the package installs.
FTM_ENV = "FASTTRACEMALLOC"

# Variables that would change what a child process traces: removed from
# every child's environment, then set again only by the mode that wants them.
SCRUBBED_ENV = ("PYTHONTRACEMALLOC", FTM_ENV, "PYTHONMALLOC", "PYTHONDEVMODE",
                "PYTHONPROFILEIMPORTTIME", "PYTHONINSPECT")


@dataclass
class Mode:
    key: str              # "untraced", "builtin@1", "ftm@25", "memray"
    label: str            # for tables and the chart
    kind: str             # "none" | "builtin" | "ftm" | "ftm-sampled"
    #                       | "memray"
    nframe: int = 0
    sample: int = 0       # ftm-sampled: mean bytes between samples
    merger: str = ""      # ftm: "inline" = no merger thread (merger=)
    available: bool = True
    why: str = ""         # reason when not available
    notes: list = field(default_factory=list)

    def command(self, python, target, tmpdir, serial=0):
        """argv and env that run ``target`` in a fresh process in this mode.

        ``target`` is ``[script, arg...]`` or ``["-c", code]``.
        """
        env = child_env()
        if self.kind == "none":
            argv = [python, *target]
        elif self.kind == "builtin":
            argv = [python, "-X", f"tracemalloc={self.nframe}", *target]
        elif self.kind in ("ftm", "ftm-sampled"):
            env[FTM_ENV] = self.switch_value()
            argv = [python, *target]
        elif self.kind == "memray":
            out = os.path.join(tmpdir, f"memray-{os.getpid()}-{serial}.bin")
            # --no-compress: skip the lz4 pass at exit (outside every timed
            # region except start-up, and it only adds wall time to the suite)
            argv = [python, "-m", "memray", "run", "--trace-python-allocators",
                    "-q", "-f", "--no-compress", "-o", out, *target]
        else:
            raise ValueError(self.kind)
        return argv, env

    def switch_value(self):
        """The FASTTRACEMALLOC value that starts this mode ("25",
        "25,sample=512k")."""
        if self.kind != "ftm-sampled":
            extra = f",merger={self.merger}" if self.merger else ""
            return f"{self.nframe}{extra}"
        mean = self.sample
        text = f"{mean // 1024}k" if mean % 1024 == 0 else str(mean)
        return f"{self.nframe},sample={text}"

    def check(self, tracer):
        """Return None if the run's reported tracer state matches the mode,
        else a one-line description of the mismatch."""
        builtin = tracer.get("builtin")
        ftm = tracer.get("ftm")
        if tracer.get("ftm_error"):
            return "fasttracemalloc.is_tracing() raised " + tracer["ftm_error"]
        if self.kind == "none":
            if builtin or ftm or tracer.get("memray"):
                return f"expected no tracer, got {tracer}"
        elif self.kind == "builtin":
            if not builtin or tracer.get("builtin_nframe") != self.nframe:
                return f"builtin not tracing at nframe {self.nframe}: {tracer}"
        elif self.kind in ("ftm", "ftm-sampled"):
            if not ftm or tracer.get("ftm_nframe") != self.nframe:
                return (f"fasttracemalloc not tracing at nframe {self.nframe}: "
                        f"{tracer}")
            # exact modes must not sample; the sampled one must sample at
            # its mean (a report without the field is one that did not say)
            if tracer.get("ftm_sampling", 0 if self.sample == 0 else None) \
                    != self.sample:
                return (f"fasttracemalloc sampling "
                        f"{tracer.get('ftm_sampling')!r}, expected "
                        f"{self.sample}: {tracer}")
            if self.merger == "inline" and \
                    tracer.get("ftm_merger_thread", 0) != 0:
                return f"fasttracemalloc ran a merger thread: {tracer}"
            if builtin:
                return "the builtin tracemalloc is tracing too"
        elif self.kind == "memray":
            if not tracer.get("memray"):
                return "memray not loaded in the process"
        return None


# Issue 12 part 2's production mode: nframe 25, a sample every 512 KiB on
# average (fasttracemalloc.start_sampled's default mean).
SAMPLED_KEY = "ftm-sampled@25"


def child_env():
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONHASHSEED"] = "0"  # same dict/set orders, same work, every mode
    return env


def all_modes():
    return [
        Mode("untraced", "untraced", "none"),
        Mode("builtin@1", "builtin nframe=1", "builtin", 1),
        Mode("builtin@25", "builtin nframe=25", "builtin", 25),
        Mode("ftm@1", "fasttracemalloc nframe=1", "ftm", 1),
        Mode("ftm@25", "fasttracemalloc nframe=25", "ftm", 25),
        Mode(SAMPLED_KEY, "fasttracemalloc sampled nframe=25, 512 KiB",
             "ftm-sampled", 25, sample=512 * 1024),
        Mode("memray", "memray --trace-python-allocators", "memray"),
    ]


def extra_modes():
    """Modes run only when --modes names them."""
    return [
        # issue 8: exact mode without a merger thread
        # (set_merger_thread(False): producers whose rings fill up merge),
        # to compare with ftm@25 where the allocating threads fill the cores
        Mode("ftm-inline@25", "fasttracemalloc nframe=25, no merger thread",
             "ftm", 25, merger="inline"),
    ]


def _probe(python, code, env, timeout=60):
    try:
        # cwd: the workloads' directory, where the children run too (never
        # a directory whose packages could shadow the installed ones)
        proc = subprocess.run([python, "-c", code], env=env, timeout=timeout,
                              capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)))
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit %d" %
                                                     proc.returncode])[-1]
        return None, last
    return proc.stdout.strip(), ""


_FTM_SWITCH_PROBE = """
import sys, _tracemalloc
m = sys.modules.get('fasttracemalloc')
on = m is not None and bool(m.is_tracing())
print(on, m.get_traceback_limit() if on else 0,
      bool(_tracemalloc.is_tracing()),
      m.get_sampling() if on and hasattr(m, 'get_sampling') else 0)
"""


def detect(modes, python):
    """Mark the modes that cannot run with this interpreter as unavailable."""
    for mode in modes:
        if mode.kind in ("ftm", "ftm-sampled"):
            out, err = _probe(python, "import fasttracemalloc", child_env())
            if out is None:
                mode.available = False
                mode.why = "n/a (not installed)"
                mode.notes.append(f"import fasttracemalloc: {err}")
                continue
            env = child_env()
            env[FTM_ENV] = mode.switch_value()
            out, err = _probe(python, _FTM_SWITCH_PROBE, env)
            # tracing, at the mode's depth, builtin off, sampling exactly at
            # the mode's mean (0: exact)
            expected = f"True {mode.nframe} False {mode.sample}"
            if out != expected:
                mode.available = False
                mode.why = (f"n/a (switch {FTM_ENV}={mode.switch_value()} "
                            "not working)")
                mode.notes.append(f"probe printed {out!r}, expected "
                                  f"{expected!r} {err}".strip())
        elif mode.kind == "memray":
            out, err = _probe(python, "import memray", child_env())
            if out is None:
                mode.available = False
                mode.why = "n/a (memray not installed)"
                mode.notes.append(err)
    return modes
