"""Kept for old references: `python -m bench --only join --reps REPS` (a worker's join after the head's GCS is up).

    python bench/worker_join.py [REPS]        (root; default 3)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "join", "--reps", sys.argv[1] if len(sys.argv) > 1 else "3"])
