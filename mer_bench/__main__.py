"""`python -m mer_bench`: the same command line as the `mer-bench` script."""

import sys

from mer_bench.benchmark.cli import main

sys.exit(main())
