"""The ``synth`` command's entry point (and ``python -m synthcli``).

Loading typer and the command table takes about 50 ms; a Ctrl-C in that
time would print Python's traceback of the import. Until the commands are
loaded it ends the process with status 130 and nothing printed, as typer
does once a command runs; a SIGTERM, with 143, as the command line's own
handler does once it is set (nothing has started yet to be cleaned up).
"""
import os
import signal


def _interrupted(signum, frame) -> None:
    os._exit(128 + signum)


def main() -> None:
    usual = signal.getsignal(signal.SIGINT)   # ignored, in a background job of a script: left so
    if usual is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted)   # cli.main sets its own
    from .cli import main as run
    signal.signal(signal.SIGINT, usual)
    run()


if __name__ == "__main__":
    main()
