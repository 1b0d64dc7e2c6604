"""Entry point of ``python -m fasttracemalloc``: see fasttracemalloc._cli."""

import sys

from fasttracemalloc._cli import main

if __name__ == "__main__":
    sys.exit(main())
