"""Kept for old references: `python -m bench --only head --reps REPS` (the head's start (marker, ready, stop, RSS, CLI latency; the raylet's 1 s socket retry)).

    python bench/head_start.py [REPS]        (root; default 5)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "head", "--reps", sys.argv[1] if len(sys.argv) > 1 else "5"])
