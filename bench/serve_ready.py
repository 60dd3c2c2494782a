"""Kept for old references: `python -m bench --only serve --reps REPS` (the first 200 from the sample Serve app against doing it by hand).

    python bench/serve_ready.py [REPS]        (root; default 3)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "serve", "--reps", sys.argv[1] if len(sys.argv) > 1 else "3"])
