"""Kept for old references: `python -m bench --only restart --reps REPS` (a head's death and restart without and with Redis).

    python bench/head_restart.py [REPS]        (root; default 1)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "restart", "--reps", sys.argv[1] if len(sys.argv) > 1 else "1"])
