"""synthcli: a real-time modular synthesizer for the terminal.

The package imports nothing heavy at the top level so that ``synth --help``
stays fast; numpy, numba and the engine load when a command needs them.
"""
__version__ = "0.1.0"
