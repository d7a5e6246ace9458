"""Imported by the forkserver that makes replacement workers: loading every
kernel here (installed plugins' too), once, means each worker it forks can
run a block at once instead of loading JIT code while the music waits."""
from ..plugins import load_registry
from .processes import warm_up

warm_up(load_registry(), 48000, 256)
