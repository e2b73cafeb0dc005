"""`python -m repro.report RESULTS_DIR ...` is `python -m repro report RESULTS_DIR ...`."""
import sys

from repro.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
