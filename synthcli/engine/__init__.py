"""The engine: compiles a patch into a schedule and renders it block by block."""
