"""Classic program: copy.deepcopy of nested containers and class instances.

Owns: a nested configuration-like structure (dicts of lists of tuples, sets,
strings and small class instances, with shared references so the memo is
exercised) deep-copied repeatedly.  Allocation profile: pure-Python recursion
in the copy module, a memo dict per copy, and a full duplicate of the tree.
Single-threaded; deterministic.
"""

import copy


class Node:
    def __init__(self, name, weight, children):
        self.name = name
        self.weight = weight
        self.children = children


def build():
    shared = ["shared", 1, 2.5]
    tree = {}
    for g in range(12):
        group = []
        for k in range(8):
            leaf = Node(f"n{g}.{k}", k * 0.5, [(k, str(k)), shared])
            group.append({"id": (g, k), "tags": {f"t{k % 3}", "x"},
                          "node": leaf, "values": list(range(k))})
        tree[f"group{g}"] = group
    tree["root"] = Node("root", 0.0, [tree["group0"][0]["node"], shared])
    return tree


def count(obj):
    if isinstance(obj, dict):
        return 1 + sum(count(v) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return 1 + sum(count(v) for v in obj)
    if isinstance(obj, Node):
        return 1 + count(obj.children)
    return 1


def run(scale):
    tree = build()
    total = 0
    for _ in range(int(80 * scale) + 1):
        clone = copy.deepcopy(tree)
        total += len(clone)
    return total * 1000 + count(clone)
