"""Classic program: regular expressions and string building.

Owns: a synthetic web-server log generator, a regex parser of its lines,
and a report built with f-strings, str.join, re.sub and str methods.
Allocation profile: many strings of various lengths, match objects, lists.
Single-threaded; deterministic.
"""

import re

LINE = re.compile(
    r'(?P<ip>\d+\.\d+\.\d+\.\d+) - - \[(?P<day>\d+)/(?P<mon>\w+)/(?P<year>\d+)'
    r':(?P<time>[\d:]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" '
    r'(?P<status>\d{3}) (?P<size>\d+)')
WORD = re.compile(r"[a-z]+")
DIGITS = re.compile(r"\d+")
METHODS = ("GET", "POST", "PUT", "DELETE")
PATHS = ("/index.html", "/api/v1/items/{}", "/static/app.{}.js",
         "/users/{}/profile", "/search?q=term{}")


def make_log(count):
    out = []
    for n in range(count):
        path = PATHS[n % len(PATHS)].format(n % 1000)
        out.append(f"10.{n % 256}.{n // 256 % 256}.{n % 7} - - "
                   f"[{n % 28 + 1}/Mar/2024:{n % 24:02}:{n % 60:02}:00] "
                   f'"{METHODS[n % 4]} {path} HTTP/1.1" '
                   f"{(200, 404, 500, 301)[n % 4]} {n * 37 % 5000}")
    return out


def analyse(lines):
    by_status = {}
    words = {}
    report = []
    for line in lines:
        m = LINE.match(line)
        if m is None:
            continue
        status = m.group("status")
        by_status[status] = by_status.get(status, 0) + int(m.group("size"))
        for w in WORD.findall(m.group("path")):
            words[w] = words.get(w, 0) + 1
        masked = DIGITS.sub("#", m.group("path"))
        report.append(f"{m.group('method'):<6}{masked.upper():<30}"
                      f"{status}".replace("#", "N"))
    summary = "\n".join(f"{k}: {v}" for k, v in sorted(by_status.items()))
    top = ",".join(sorted(words, key=words.get)[:5])
    return len("\n".join(report)) + len(summary) + len(top)


def run(scale):
    lines = make_log(2000)
    total = 0
    for _ in range(int(8 * scale) + 1):
        total += analyse(lines)
    return total
