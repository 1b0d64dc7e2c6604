"""Classic program: float-heavy n-body gravitational simulation.

Owns: a leapfrog-style integrator over a few bodies kept as lists of floats
(position, velocity, mass).  Allocation profile: almost only float objects,
most served by the float free list, very few containers.  Single-threaded;
deterministic (fixed initial conditions).
"""


def make_bodies():
    bodies = []
    for k in range(5):
        pos = [1.5 * k - 3.0, 0.25 * k * k - 1.0, 0.1 * k]
        vel = [0.01 * (k % 3), -0.02 * k, 0.005 * (4 - k)]
        mass = 1.0 if k == 0 else 0.001 * (k + 1)
        bodies.append((pos, vel, mass))
    return bodies


def pairs(bodies):
    out = []
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            out.append((bodies[i], bodies[j]))
    return out


def advance(body_pairs, bodies, dt):
    for (p1, v1, m1), (p2, v2, m2) in body_pairs:
        dx = p1[0] - p2[0]
        dy = p1[1] - p2[1]
        dz = p1[2] - p2[2]
        dist2 = dx * dx + dy * dy + dz * dz + 1e-9
        mag = dt / (dist2 * dist2 ** 0.5)
        b1 = m1 * mag
        b2 = m2 * mag
        v1[0] -= dx * b2
        v1[1] -= dy * b2
        v1[2] -= dz * b2
        v2[0] += dx * b1
        v2[1] += dy * b1
        v2[2] += dz * b1
    for pos, vel, _mass in bodies:
        pos[0] += dt * vel[0]
        pos[1] += dt * vel[1]
        pos[2] += dt * vel[2]


def energy(bodies):
    e = 0.0
    for i, (p1, v1, m1) in enumerate(bodies):
        e += 0.5 * m1 * (v1[0] ** 2 + v1[1] ** 2 + v1[2] ** 2)
        for p2, _v2, m2 in bodies[i + 1:]:
            d = ((p1[0] - p2[0]) ** 2 + (p1[1] - p2[1]) ** 2
                 + (p1[2] - p2[2]) ** 2) ** 0.5
            e -= m1 * m2 / d
    return e


def run(scale):
    bodies = make_bodies()
    body_pairs = pairs(bodies)
    for _ in range(int(20000 * scale) + 1):
        advance(body_pairs, bodies, 0.001)
    return int(abs(energy(bodies)) * 1e6)
