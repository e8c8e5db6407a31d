#!/usr/bin/env python3
"""MER-Bench command line (see README.md); a thin shim over benchmark.cli."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
