"""`python -m cli …` runs `lorag`; launchers need a module: `accelerate launch … -m cli train …`."""

from cli.app import app

app(prog_name="lorag")
