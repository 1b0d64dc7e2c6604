"""Classic program: json encode/decode of nested documents.

Owns: a generator of order-like documents (nested dicts, lists, strings,
numbers, booleans, None) and a loop that encodes, decodes and re-encodes them
with the stdlib json module (C accelerator).  Allocation profile: bursts of
many containers and strings created in C code.  Single-threaded;
deterministic.
"""

import json


def document(n):
    return {
        "order": n,
        "customer": {"name": f"customer-{n % 97}", "vip": n % 5 == 0,
                     "address": {"street": f"{n % 300} Main St",
                                 "zip": f"{10000 + n % 9000}"}},
        "items": [{"sku": f"sku-{n}-{k}", "qty": k + 1,
                   "price": round(1.25 * (k + n % 7), 2),
                   "tags": ["a", "b", "c"][: k % 3 + 1],
                   "note": None}
                  for k in range(n % 6 + 2)],
        "total": n * 3.5,
    }


def run(scale):
    docs = [document(n) for n in range(200)]
    checksum = 0
    for _ in range(int(25 * scale) + 1):
        for doc in docs:
            text = json.dumps(doc)
            back = json.loads(text)
            again = json.dumps(back, sort_keys=True)
            checksum += len(again) + len(back["items"])
    return checksum
