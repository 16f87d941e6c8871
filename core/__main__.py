"""`python -m core ...` runs the `lorag` CLI; launchers need a module: `accelerate launch -m core train`."""

from core.cli import app

app(prog_name="lorag")
