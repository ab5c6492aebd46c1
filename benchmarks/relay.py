"""A simulated network link between a master and a local slave.

    popen//python=<python> benchmarks/relay.py --delay 0.010 --rate 12500000 -- <slave python>

execnet (and mitogen) start the slave as ``<python command> -c <bootstrap>``;
this program is that command. It starts the real interpreter with pipes and
copies both byte streams, holding each chunk for ``--delay`` seconds (one
way) and pacing it to ``--rate`` bytes per second. netem would do this in
the kernel; these kernels do not have it.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue

CHUNK = 65536


def read_into(source, pending):
    """Timestamp every chunk as it arrives; None marks the end."""
    while True:
        try:
            data = os.read(source, CHUNK)
        except OSError:
            data = b""
        pending.put((time.time(), data or None))
        if not data:
            return


def write_out(pending, target, delay, rate):
    """Release each chunk ``delay`` after it arrived, no faster than ``rate``."""
    free_at = 0.0  # when the simulated wire is free again
    while True:
        arrived, data = pending.get()
        if data is None:
            os.close(target)
            return
        start = max(arrived + delay, free_at)
        if rate:
            free_at = start + len(data) / float(rate)
        wait = (free_at if rate else start) - time.time()
        if wait > 0:
            time.sleep(wait)
        try:
            while data:
                data = data[os.write(target, data):]
        except OSError:
            return


def pump(source, target, delay, rate):
    pending = queue.Queue()
    threads = [threading.Thread(target=read_into, args=(source, pending)),
               threading.Thread(target=write_out, args=(pending, target, delay, rate))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    return threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay, seconds")
    parser.add_argument("--rate", type=float, default=0.0, help="bytes per second, 0: no cap")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             bufsize=0)
    pump(sys.stdin.fileno(), child.stdin.fileno(), args.delay, args.rate)
    outgoing = pump(child.stdout.fileno(), sys.stdout.fileno(), args.delay, args.rate)
    code = child.wait()
    for thread in outgoing:
        thread.join(5 + args.delay)
    return code


if __name__ == "__main__":
    sys.exit(main())
