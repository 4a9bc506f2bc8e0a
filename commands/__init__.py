"""Command-line tools behind the Makefile targets (run as `python -m commands.<name>`)."""
