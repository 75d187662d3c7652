"""``python -m bench.detection``: run the whole suite."""

from bench.detection.run import main

main()
