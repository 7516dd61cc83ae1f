#!/usr/bin/env python3
"""Plays systemd's part for Type=notify without systemd: runs a command as the child of a process named "systemd"
(which is how Microsoft.Extensions.Hosting.Systemd recognises a service) with NOTIFY_SOCKET pointing at a datagram
socket, and prints every message it receives, one per line, prefixed with the seconds since the start.

  tools/notify-listen.py [--watchdog-usec N] [--seconds S] [--until MESSAGE] -- COMMAND [ARGS...]

It stops the command with SIGTERM after S seconds (default 5), or as soon as a message containing MESSAGE arrived
(then it waits for the command to exit and prints what else came, such as STOPPING=1). Exit status: the command's.
"""
import ctypes, os, signal, socket, subprocess, sys, tempfile, time

def main(argv):
    usec, seconds, until = None, 5.0, None
    while argv and argv[0] != "--":
        a = argv.pop(0)
        if a == "--watchdog-usec": usec = argv.pop(0)
        elif a == "--seconds": seconds = float(argv.pop(0))
        elif a == "--until": until = argv.pop(0)
        else: sys.exit(f"notify-listen: unknown argument {a}")
    if not argv or len(argv) < 2: sys.exit("notify-listen: -- COMMAND missing")
    cmd = argv[1:]
    d = tempfile.mkdtemp(prefix="vsn-")
    path = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.1)
    # The child checks /proc/PPID/comm == "systemd".
    ctypes.CDLL(None, use_errno=True).prctl(15, b"systemd", 0, 0, 0)  # PR_SET_NAME
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop("WATCHDOG_USEC", None); env.pop("WATCHDOG_PID", None)
    if usec: env["WATCHDOG_USEC"] = usec
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env)
    termed = False
    try:
        while True:
            now = time.monotonic() - start
            if not termed and now > seconds:
                p.send_signal(signal.SIGTERM); termed = True
            try:
                msg = s.recv(4096).decode(errors="replace")
                print(f"{time.monotonic() - start:7.3f} {msg.strip()}", flush=True)
                if until and until in msg and not termed:
                    p.send_signal(signal.SIGTERM); termed = True
            except socket.timeout:
                if p.poll() is not None: break
            if now > seconds + 30:
                p.kill(); break
    finally:
        s.close(); os.unlink(path); os.rmdir(d)
    return p.wait()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
