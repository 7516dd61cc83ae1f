#!/usr/bin/env python3
"""Plays systemd's part for Type=notify without systemd: runs a command as the child of a process named "systemd"
(which is how Microsoft.Extensions.Hosting.Systemd recognises a service) with NOTIFY_SOCKET pointing at a datagram
socket, and prints every message it receives, one per line, prefixed with the seconds since the start.

  tools/notify-listen.py [--watchdog-usec N] [--seconds S] [--until MESSAGE] [--follow-mainpid] -- COMMAND [ARGS...]

It stops the command with SIGTERM after S seconds (default 5), or as soon as a message containing MESSAGE arrived
(then it waits for the command to exit and prints what else came, such as STOPPING=1). Exit status: the command's.

--follow-mainpid does what systemd does for a service whose main process changes (vswitchd's hitless restart): it
becomes a child subreaper (so the new main process, orphaned when the old one exits, is its child, as under PID 1),
takes MAINPID=N as the service's main process from then on (SIGTERM goes to it, and the listener ends when it exits),
and adds the sender's PID to each line ("[pid N]", from SO_PASSCRED). Exit status: the last main process's.
"""
import ctypes, os, signal, socket, struct, subprocess, sys, tempfile, time

def main(argv):
    usec, seconds, until, follow = None, 5.0, None, False
    while argv and argv[0] != "--":
        a = argv.pop(0)
        if a == "--watchdog-usec": usec = argv.pop(0)
        elif a == "--seconds": seconds = float(argv.pop(0))
        elif a == "--until": until = argv.pop(0)
        elif a == "--follow-mainpid": follow = True
        else: sys.exit(f"notify-listen: unknown argument {a}")
    if not argv or len(argv) < 2: sys.exit("notify-listen: -- COMMAND missing")
    cmd = argv[1:]
    d = tempfile.mkdtemp(prefix="vsn-")
    path = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.1)
    libc = ctypes.CDLL(None, use_errno=True)
    # The child checks /proc/PPID/comm == "systemd".
    libc.prctl(15, b"systemd", 0, 0, 0)  # PR_SET_NAME
    if follow:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop("WATCHDOG_USEC", None); env.pop("WATCHDOG_PID", None)
    if usec: env["WATCHDOG_USEC"] = usec
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env)
    main_pid, main_status = p.pid, None
    termed = False

    def main_alive():
        nonlocal main_status
        if main_pid == p.pid:
            return p.poll() is None
        try:
            pid, status = os.waitpid(main_pid, os.WNOHANG)
        except ChildProcessError:  # not our child (no subreaper): look at /proc
            try: return open(f"/proc/{main_pid}/stat").read().split(") ")[1][0] != "Z"
            except OSError: return False
        if pid == 0: return True
        main_status = os.waitstatus_to_exitcode(status)
        return False

    try:
        while True:
            now = time.monotonic() - start
            if not termed and now > seconds:
                os.kill(main_pid, signal.SIGTERM); termed = True
            try:
                if follow:
                    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
                    sender = next((struct.unpack("3i", c[2][:12])[0] for c in anc
                                   if c[0] == socket.SOL_SOCKET and c[1] == socket.SCM_CREDENTIALS), 0)
                    msg = data.decode(errors="replace")
                    print(f"{time.monotonic() - start:7.3f} {msg.strip()} [pid {sender}]", flush=True)
                    for line in msg.split("\n"):
                        if line.startswith("MAINPID="): main_pid = int(line[8:])
                else:
                    msg = s.recv(4096).decode(errors="replace")
                    print(f"{time.monotonic() - start:7.3f} {msg.strip()}", flush=True)
                if until and until in msg and not termed:
                    os.kill(main_pid, signal.SIGTERM); termed = True
            except socket.timeout:
                if p.poll() is not None and not (follow and main_pid != p.pid and main_alive()): break
            if now > seconds + 30:
                os.kill(main_pid, signal.SIGKILL); p.kill(); break
    finally:
        s.close(); os.unlink(path); os.rmdir(d)
    code = p.wait()
    return main_status if follow and main_pid != p.pid and main_status is not None else code

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
