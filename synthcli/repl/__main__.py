"""``python -m synthcli.repl``: the same command as ``synth repl``."""
from ..cli import handle_signals   # first: it asks typer for plain help before typer loads
from .cli import repl

if __name__ == "__main__":
    import typer
    handle_signals()
    typer.run(repl)
