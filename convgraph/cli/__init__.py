"""The command line, one module per verb; the only stage that reads the user's files and prints."""
from convgraph.cli._main import build_parser, main, parse_at  # noqa: F401
