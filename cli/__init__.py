"""`lorag`, the one command line: a Typer app split by command group, each command a thin typed function
over library calls. It sits on top of every other package (see the layers contract in pyproject.toml)."""

from cli.app import app

__all__ = ["app"]
