#!/usr/bin/env python3
"""MER-Bench command line (see README.md): a thin shim over mer_bench.benchmark.cli, the same
as the `mer-bench` script."""

import sys

from mer_bench.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
