"""Fuzz target: the start-up switch's value parser (python/fasttracemalloc/
_switch.py), i.e. every value of FASTTRACEMALLOC and -X fasttracemalloc.

Property: for any string, ``parse_nframe`` returns an int in [0; 65535] or
raises ``SwitchError`` whose message is one line of bounded length (the
switch prints it and exits 1, like the builtin's -X tracemalloc=bad); and
its verdict agrees with the builtin's rule, written here independently: C
isspace() blanks, an optional sign, ASCII digits only, the value in range.
``requested_nframe`` gives -X precedence over the environment variable;
``parse_switch`` (the number plus comma-separated options) returns a valid
number and known options or raises SwitchError with a one-line message.
"""

import sys

import atheris

with atheris.instrument_imports():
    from fasttracemalloc import _switch

C_SPACE = " \t\n\v\f\r"


def builtin_rule(text):
    body = text.lstrip(C_SPACE)
    if body == "":
        return 0
    sign, digits = (body[0], body[1:]) if body[0] in "+-" else ("", body)
    if not digits or any(c not in "0123456789" for c in digits):
        return None
    value = int(digits.lstrip("0") or "0") if len(
        digits.lstrip("0")) < 10 else 10 ** 9
    value = -value if sign == "-" else value
    return value if 0 <= value <= _switch.MAX_NFRAME else None


def TestOneInput(data):
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 6000))
    try:
        got = _switch.parse_nframe(text, "FASTTRACEMALLOC")
    except _switch.SwitchError as exc:
        msg = str(exc)
        assert "\n" not in msg and len(msg) < 300, msg
        got = None
    else:
        assert type(got) is int and 0 <= got <= _switch.MAX_NFRAME, got
    assert got == builtin_rule(text), (text[:80], got, builtin_rule(text))
    # The whole value: the number, then options after commas (sampled and
    # continuous mode).  Without a comma it is parse_nframe's answer.
    try:
        whole = _switch.parse_switch(text, "FASTTRACEMALLOC")
    except _switch.SwitchError as exc:
        msg = str(exc)
        assert "\n" not in msg and len(msg) < 300, msg
        whole = None
    else:
        nframe, options = whole
        assert type(nframe) is int and 0 <= nframe <= _switch.MAX_NFRAME
        assert set(options) <= set(_switch.OPTIONS), options
    if "," not in text:
        assert (whole[0] if whole else None) == got
    env = {"FASTTRACEMALLOC": "3"}
    try:
        both = _switch.requested_nframe({"fasttracemalloc": text}, env, False)
    except _switch.SwitchError:
        assert whole is None
    else:
        assert both == whole[0]


atheris.Setup(sys.argv, TestOneInput)
atheris.Fuzz()
