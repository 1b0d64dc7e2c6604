"""Classic program: float-heavy class instances.

Owns: a cloud of 3-D point objects built with trigonometry, normalised in
place and folded into a running maximum.  Unlike nbody, tens of thousands of
points (each with a managed __dict__ and three floats) are alive at once, so
the float free list overflows and nearly every float goes through the
allocator -- the case where the builtin tracemalloc costs the most.
Single-threaded; deterministic.
"""

import math


class Point:
    def __init__(self, i):
        self.x = x = math.sin(i)
        self.y = math.cos(i) * 3
        self.z = (x * x) / 2

    def normalize(self):
        norm = math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)
        self.x /= norm
        self.y /= norm
        self.z /= norm

    def maximize(self, other):
        self.x = self.x if self.x > other.x else other.x
        self.y = self.y if self.y > other.y else other.y
        self.z = self.z if self.z > other.z else other.z
        return self


def run(scale):
    count = int(80000 * scale) + 1
    points = [Point(i) for i in range(count)]
    for p in points:
        p.normalize()
    best = points[0]
    for p in points[1:]:
        best = best.maximize(p)
    return int((best.x + best.y + best.z) * 1e6)
