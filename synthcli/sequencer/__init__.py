"""Patterns and songs: the mini-notation of steps per cycle, and what plays it."""
