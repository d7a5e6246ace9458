"""The bottom toolbar: the song's place, and the engine's health at a
glance (CPU, xruns, output level, quarantined modules).

It is drawn from what the session and the meter thread already hold, so
redrawing it four times a second costs no round trip to the engine.
"""
from __future__ import annotations

import math

from ..modules.dynamics import CLIPPED

#: The output meter: this many cells over METER_DB decibels below full scale.
CELLS = 8
METER_DB = 48.0
EIGHTHS = " ▏▎▍▌▋▊▉█"


#: Peaks below this read "silent": under a 16-bit file's smallest step,
#: where a reverb's dying tail (-600 dB and lower) is only arithmetic, and
#: the label stays six characters wide.
SILENT_DB = -99.0


def level_meter(peak: float) -> str:
    """``[█████▍  ] -9 dB``: a peak level in eighths of a cell, in decibels
    so that quiet and loud both show; CLIP once the master's soft clip has
    caught a mix over full scale."""
    db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if db < SILENT_DB:
        return f"[{' ' * CELLS}] silent"
    filled = max(0.0, min(1.0, 1 + db / METER_DB)) * CELLS
    whole = int(filled)
    cells = "█" * whole + (EIGHTHS[int((filled - whole) * 8)] if whole < CELLS else "")
    label = "CLIP" if peak > CLIPPED else f"{min(0, round(db))} dB"
    return f"[{cells.ljust(CELLS)}] {label:>6}"


class Toolbar:
    """Formatted text for prompt_toolkit's ``bottom_toolbar``."""

    def __init__(self, session, sound, clock) -> None:
        self.session, self.sound, self.clock = session, sound, clock
        self._song = None     # the stopped song, rebuilt only when its text changes

    def __call__(self) -> list[tuple[str, str]]:
        return (self.song_part() + self.link_part() + self.engine_part() + self.record_part()
                + self.render_part() + self.remote_part())

    def link_part(self) -> list[tuple[str, str]]:
        """Ableton Link's peers and session tempo, while Link is on."""
        news = getattr(self.sound, "link_news", None)
        if not news:
            return []
        from ..link import toolbar_text
        return [("class:toolbar.note", f" {toolbar_text(news)} ")]

    def song_part(self) -> list[tuple[str, str]]:
        session = self.session
        transport = session.transport
        if transport.playing:
            now = self.clock()
            bar, beat = transport.position(now)
            tempo, meter = transport.tempo(now)
            return [("class:toolbar.play", f" ▶ {float(tempo):g} BPM {meter[0]}/{meter[1]}  bar {bar}:{beat} ")]
        if not session.timeline:
            return [("class:toolbar.stop", " ■ patch ")]
        text = session.song_text
        if self._song is None or self._song.text != text:
            from ..sequencer.song import Song
            self._song = Song(session.registry, text)
        tempo, meter = self._song.tempo_at(0), self._song.meter_at(0)
        return [("class:toolbar.stop", f" ■ {float(tempo):g} BPM {meter[0]}/{meter[1]} ")]

    def engine_part(self) -> list[tuple[str, str]]:
        meters = self.sound.meters
        if not meters:
            return [("class:toolbar.note", f" {self.sound.status} ")]
        cpu = max(meters["cpu"].values(), default=0.0)
        xruns = meters["xruns"]
        parts = [("", f" cpu {100 * cpu:3.0f}% "),
                 ("class:toolbar.alarm" if xruns else "", f" xruns {xruns} "),
                 ("", f" out {level_meter(max(meters['peak']))} ")]
        quarantined = [name for name, m in meters["modules"].items() if m["quarantined"]]
        if quarantined:
            parts.append(("class:toolbar.alarm", f" quarantined: {', '.join(quarantined)} "))
        return parts

    def record_part(self) -> list[tuple[str, str]]:
        """A take being recorded, and how long it is: a musician must see
        that the mistakes are being kept."""
        take = self.sound.recording()
        if take is None:
            return []
        minutes, seconds = divmod(int(take.seconds), 60)
        return [("class:toolbar.alarm", f" ● rec {minutes}:{seconds:02d} ")]

    def render_part(self) -> list[tuple[str, str]]:
        """A render running beside the prompt, and how far it is."""
        rendering = self.session.rendering
        if rendering is None or not rendering.running:
            return []
        return [("class:toolbar.note", f" render {100 * rendering.fraction:.0f}% ")]

    def remote_part(self) -> list[tuple[str, str]]:
        """Where commands may also come from, so edits that appear by
        themselves have a visible cause."""
        control = self.session.control
        osc = control.osc if control is not None else None
        return [("", f" osc :{osc.port} ")] if osc is not None else []
