import os

# The repository's root, for tests at any depth below tests/ (tests/unit/<subpackage>/ mirrors seedcore_boot/).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
