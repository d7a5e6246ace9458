"""The live-coding REPL: type patch and song commands while the audio runs.

Nothing heavy is imported here, so ``synth --help`` stays fast; ``app.run``
is the entry point. The parts are kept apart so that all but ``app`` and
``sound`` can be tested without a terminal or a sound card.
"""
