"""Training throughput, convlens vs PyTorch CPU eager: `python benchmarks/train_bench.py [--help]`.

The same benchmark runs as `convlens bench`; see convlens/bench.py and docs/performance.md.
"""

import sys

from convlens.bench import main

if __name__ == "__main__":
    sys.exit(main())
