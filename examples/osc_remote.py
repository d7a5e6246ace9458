"""Play synthcli from another program over OSC (docs/osc.md), with
python-osc: a sequencer, a controller app or a game can drive it this way.

    synth play songs/demo.seq --osc 57120     # one terminal (or `osc listen 57120` in the REPL)
    python examples/osc_remote.py [PORT]      # another

It asks for replies on a port of its own, opens the pad's filter and
sweeps it with a new LFO, plays a chord on the pad's note source, makes a
typo on purpose (refused, and nothing changes), and asks for the server's
counts. Every reply is printed as it comes.
"""
import argparse
import sys
import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient


def main(port: int = 57120) -> None:
    replies = []
    stats = threading.Event()

    def heard(address, *args):
        replies.append((address, args))
        print(f"reply {address} {' '.join(map(str, args))}")
        if address == "/synth/stats":
            stats.set()

    dispatcher = Dispatcher()
    dispatcher.set_default_handler(heard)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)   # any free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    synth = SimpleUDPClient("127.0.0.1", port)

    synth.send_message("/synth/reply", server.server_address[1])
    synth.send_message("/synth/set", ["padf.cutoff", 1800.0])      # a number glides over one block
    synth.send_message("/synth/cmd", "add lfo sweep freq=0.2 amp=600")
    synth.send_message("/synth/cmd", "connect sweep padf.cutoff")
    for pitch in (60, 64, 67):                                      # PITCH VELOCITY ON
        synth.send_message("/synth/pad/note", [pitch, 100, 1])
    time.sleep(1.0)
    for pitch in (60, 64, 67):
        synth.send_message("/synth/pad/note", [pitch, 0, 0])
    synth.send_message("/synth/cmd", "set padf.cutof 300")          # a typo: /synth/error, nothing changes
    synth.send_message("/synth/cmd", "info padf")                   # what it prints comes back as /synth/result
    synth.send_message("/synth/stats", [])
    answered = stats.wait(5.0)
    server.shutdown()
    if not answered:
        sys.exit(f"no answer from synthcli on port {port}: is `synth play ... --osc {port}` running?")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", nargs="?", type=int, default=57120, help="the UDP port synth listens on")
    main(parser.parse_args().port)
