"""Live audio: the engine process, its output ring and the audio device."""
