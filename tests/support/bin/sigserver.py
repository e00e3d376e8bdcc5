"""A stand-in server for serve's tests: records the signals it gets and behaves as told.

Usage: sigserver.py LOGFILE [--db PATH] [--write-every SECONDS] [--on-term exit:N|ignore]
       [--exit-after SECONDS] [--exit-code N] [--orphan]

Each received signal's name is appended to LOGFILE, then "ready" is written once
started. With --db it inserts a row every --write-every seconds until stopped, appending
the committed count to LOGFILE.count.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("log")
p.add_argument("--db")
p.add_argument("--write-every", type=float, default=0.005)
p.add_argument("--on-term", default="exit:0")
p.add_argument("--exit-after", type=float)
p.add_argument("--exit-code", type=int, default=0)
p.add_argument("--orphan", action="store_true")
args = p.parse_args()

stop = False


def record(name):
    with open(args.log, "a") as f:
        f.write(name + "\n")


def on_signal(signum, frame):
    global stop
    record(signal.Signals(signum).name)
    if signum in (signal.SIGTERM, signal.SIGINT):
        if args.on_term == "ignore":
            return
        stop = True


for sig in (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
    signal.SIGQUIT,
):
    signal.signal(sig, on_signal)

if args.orphan:
    # A child that leaves a grandchild behind: the grandchild is re-parented to the
    # nearest subreaper (serve) and must be reaped there when it exits.
    subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys; subprocess.Popen([sys.executable,'-c',"
            "'import time; time.sleep(0.5)']); print('spawned')",
        ]
    ).wait()

conn = None
count = 0
if args.db:
    conn = sqlite3.connect(args.db, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT)")
record("ready")
started = time.monotonic()
while not stop:
    if args.exit_after is not None and time.monotonic() - started > args.exit_after:
        break
    if conn is not None:
        conn.execute("INSERT INTO rows (v) VALUES (?)", ("x" * 40,))
        count += 1
        with open(args.log + ".count.tmp", "w") as f:
            f.write(str(count))
        os.replace(args.log + ".count.tmp", args.log + ".count")  # never seen half-written
        time.sleep(args.write_every)
    else:
        time.sleep(0.01)

if stop and args.on_term.startswith("exit:"):
    sys.exit(int(args.on_term.split(":")[1]))
sys.exit(args.exit_code)
