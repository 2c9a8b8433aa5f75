#!/usr/bin/python3
"""TCP listener for the test role: accepts and closes connections until killed.

listen.py PORT [--warmup SECONDS] [--stamp FILE]
  --warmup: wait this long before listening (a database that takes a while to come up), so a tcp
            check fails until then and the next tier must wait for it.
  --stamp:  write the CLOCK_REALTIME (ns) at which it started listening to FILE.
"""
import argparse
import socket
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--warmup", type=float, default=0.0)
parser.add_argument("--stamp")
args = parser.parse_args()

if args.warmup > 0:
    time.sleep(args.warmup)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", args.port))
s.listen(16)
if args.stamp:
    with open(args.stamp + ".tmp", "w") as f:
        f.write(str(time.time_ns()))
    import os
    os.replace(args.stamp + ".tmp", args.stamp)
print(f"listening on {args.port}", flush=True)
while True:
    conn, _ = s.accept()
    conn.close()
