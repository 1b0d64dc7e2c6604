"""Classic program: generators and comprehensions.

Owns: lazy pipelines (generator functions chained together, generator
expressions, itertools) feeding list, dict and set comprehensions: an
incremental prime generator, sliding windows, grouping and a word-frequency
pass.  Allocation profile: generator frames, tuples per yielded item, small
containers built and dropped.  Single-threaded; deterministic.
"""

import itertools


def primes():
    composites = {}
    for n in itertools.count(2):
        factor = composites.pop(n, None)
        if factor is None:
            composites[n * n] = n
            yield n
        else:
            nxt = n + factor
            while nxt in composites:
                nxt += factor
            composites[nxt] = factor


def windows(iterable, width):
    window = ()
    for item in iterable:
        window = (window + (item,))[-width:]
        if len(window) == width:
            yield window


def gaps(limit):
    return (b - a for a, b in windows(itertools.islice(primes(), limit), 2))


def one_pass(limit):
    gap_list = list(gaps(limit))
    histogram = {g: gap_list.count(g) for g in set(gap_list)}
    triples = [w for w in windows(gap_list, 3) if sum(w) % 6 == 0]
    words = [f"w{g % 17}" for g in gap_list]
    freq = {}
    for w in (x.upper() for x in words if not x.endswith("3")):
        freq[w] = freq.get(w, 0) + 1
    squares = {n: n * n for n in range(len(triples))}
    return len(histogram) + len(triples) + sum(freq.values()) + len(squares)


def run(scale):
    total = 0
    for k in range(int(20 * scale) + 1):
        total += one_pass(2000 + k)
    return total
