"""``python -m synthcli.repl``: the same command as ``synth repl``."""
from ..cli import _terminate   # first: it asks typer for plain help before typer loads
from .command import repl

if __name__ == "__main__":
    import signal

    import typer
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    typer.run(repl)
