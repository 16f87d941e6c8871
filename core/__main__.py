"""`python -m core …` runs the `lorag` CLI: launchers such as `accelerate launch -m core train …` need a module."""

from core.cli import app

app(prog_name="lorag")
