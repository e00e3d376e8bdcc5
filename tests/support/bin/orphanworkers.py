"""A stand-in server whose workers ignore their master's death (named as such).

Usage: orphanworkers.py PORT DB [WORKERS]

The master listens on 127.0.0.1:PORT, forks WORKERS (2) processes that share the listening
socket and answer ``POST /insert`` with the id of a row each inserts into DB (autocommit:
the answer is an acknowledged write), then waits. The workers never look at their master:
killed, it leaves them serving, which is what a real server does for a while (gunicorn's
workers notice within about a second) and what serve must stop before its final sync.
"""

import os
import signal
import socket
import sqlite3
import sys

port, db = int(sys.argv[1]), sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 2

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)


def work() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("CREATE TABLE IF NOT EXISTS acks (id INTEGER PRIMARY KEY, v TEXT)")
    while True:
        client, _ = listener.accept()
        with client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    break
                request += chunk
            row = conn.execute("INSERT INTO acks (v) VALUES ('x') RETURNING id").fetchone()[0]
            body = str(row).encode()
            client.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )


for _ in range(count):
    if os.fork() == 0:
        try:
            work()
        finally:
            os._exit(1)
listener.close()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
