"""Classic program: richards-like cooperative task scheduling on an object graph.

Owns: a tiny operating-system simulation.  Tasks (an idle task, two workers,
two handlers, two devices) are objects in a priority-ordered list;
work packets are objects passed between them through per-task queues.  A task
can be running, waiting for a packet, or held.  The scheduler repeatedly runs
the highest-priority task that is ready.  Cycle: workers send work to
handlers and hold themselves every 4 packets; handlers split it into device
requests; the idle task (lowest priority, runs only when nothing else is
ready) spends one unit of budget per step waking a device, which drains its
queue and then releases its worker.  Allocation profile: many small
short-lived objects (packets, queue nodes) and heavy attribute traffic.
Single-threaded; deterministic.
"""

IDLE, WORKER_A, WORKER_B, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(7)


class Packet:
    def __init__(self, origin, kind, payload):
        self.origin = origin
        self.kind = kind
        self.payload = payload
        self.hops = 0


class Task:
    def __init__(self, ident, priority, system):
        self.ident = ident
        self.priority = priority
        self.system = system
        self.inbox = []
        self.held = False
        self.waiting = False

    def ready(self):
        if self.held:
            return False
        return not self.waiting or bool(self.inbox)

    def step(self):
        raise NotImplementedError


class IdleTask(Task):
    """Drives the simulation: wakes devices in a pseudo-random order."""

    def __init__(self, ident, priority, system, budget):
        super().__init__(ident, priority, system)
        self.budget = budget
        self.seed = 1

    def step(self):
        self.budget -= 1
        if self.budget <= 0:
            self.system.finished = True
            return
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        target = DEVICE_A if self.seed & 1 else DEVICE_B
        self.system.release(target)


class WorkerTask(Task):
    """Creates packets filled with data and sends them to a handler."""

    def __init__(self, ident, priority, system, handler):
        super().__init__(ident, priority, system)
        self.handler = handler
        self.counter = 0

    def step(self):
        if self.inbox:
            packet = self.inbox.pop(0)
            packet.hops += 1
            self.system.checksum += packet.hops
        self.counter += 1
        payload = [self.counter + k for k in range(4)]
        self.system.send(Packet(self.ident, "work", payload), self.handler)
        if self.counter % 4 == 0:
            self.system.hold(self.ident)  # until its device completes


class HandlerTask(Task):
    """Splits work packets into device requests, returns them to a worker."""

    def __init__(self, ident, priority, system, device, worker):
        super().__init__(ident, priority, system)
        self.device = device
        self.worker = worker
        self.waiting = True

    def step(self):
        if not self.inbox:
            self.waiting = True
            return
        packet = self.inbox.pop(0)
        for value in packet.payload:
            self.system.send(Packet(self.ident, "io", (value, value * 2)),
                             self.device)
        packet.hops += 1
        self.system.send(packet, self.worker)


class DeviceTask(Task):
    """Consumes device requests; held until the idle task wakes it.  When its
    queue runs dry it holds itself and releases its worker (completion)."""

    def __init__(self, ident, priority, system, worker):
        super().__init__(ident, priority, system)
        self.worker = worker
        self.processed = 0

    def step(self):
        if self.inbox:
            packet = self.inbox.pop(0)
            self.processed += packet.payload[1] & 0xFF
            self.system.checksum ^= self.processed
        else:
            self.system.hold(self.ident)
            self.system.release(self.worker)


class System:
    def __init__(self, budget):
        self.finished = False
        self.checksum = 0
        self.tasks = [None] * 7
        self.tasks[IDLE] = IdleTask(IDLE, 0, self, budget)
        self.tasks[WORKER_A] = WorkerTask(WORKER_A, 1000, self, HANDLER_A)
        self.tasks[WORKER_B] = WorkerTask(WORKER_B, 1000, self, HANDLER_B)
        self.tasks[HANDLER_A] = HandlerTask(HANDLER_A, 2000, self, DEVICE_A,
                                            WORKER_A)
        self.tasks[HANDLER_B] = HandlerTask(HANDLER_B, 2000, self, DEVICE_B,
                                            WORKER_B)
        self.tasks[DEVICE_A] = DeviceTask(DEVICE_A, 4000, self, WORKER_A)
        self.tasks[DEVICE_B] = DeviceTask(DEVICE_B, 5000, self, WORKER_B)
        self.order = sorted(self.tasks, key=lambda t: -t.priority)

    def send(self, packet, target):
        task = self.tasks[target]
        task.inbox.append(packet)
        if task.waiting:
            task.waiting = False

    def hold(self, ident):
        self.tasks[ident].held = True

    def release(self, ident):
        self.tasks[ident].held = False

    def schedule(self):
        steps = 0
        while not self.finished:
            for task in self.order:
                if task.ready():
                    task.step()
                    steps += 1
                    break
        return steps


def run(scale):
    system = System(budget=int(6000 * scale) + 1)
    steps = system.schedule()
    return steps * 31 + system.checksum
