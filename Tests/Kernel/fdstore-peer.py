#!/usr/bin/env python3
"""A service manager's fd store for make kernel-test: runs COMMAND with NOTIFY_SOCKET set,
keeps the descriptors it sends with FDSTORE=1/FDNAME= (dropping them on FDSTOREREMOVE=1), and
on SIGUSR1 kills COMMAND with SIGKILL and starts it again with the kept descriptors handed
back as LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID, the way systemd does for a unit with
FileDescriptorStoreMax=. Writes COMMAND's pid to DIR/pid and what it did to DIR/log.

fdstore-peer.py DIR -- COMMAND ARGS...
"""
import array, fcntl, os, signal, socket, sys, threading, time

directory, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
os.makedirs(directory, exist_ok=True)
path = os.path.join(directory, "notify.sock")
if os.path.exists(path):
    os.unlink(path)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(path)
store, lock = {}, threading.Lock()
child = None
log = open(os.path.join(directory, "log"), "a", buffering=1)


def say(line):
    log.write(f"{time.time():.3f} {line}\n")


def receive():
    while True:
        fds = array.array("i")
        message, ancillary, _, _ = listener.recvmsg(65536, socket.CMSG_SPACE(253 * fds.itemsize))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
        fields = dict(line.split("=", 1) for line in message.decode().splitlines() if "=" in line)
        with lock:
            if fields.get("FDSTORE") == "1":
                name = fields.get("FDNAME", "stored")
                for old in store.pop(name, []):
                    os.close(old)
                store[name] = list(fds)
                say(f"kept {name} ({len(fds)} fd)")
                continue
            for fd in fds:
                os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1":
                for old in store.pop(fields.get("FDNAME", ""), []):
                    os.close(old)
                say(f"dropped {fields.get('FDNAME')}")
            if "READY" in fields or "STOPPING" in fields or "STATUS" in fields:
                say(" ".join(f"{k}={v}" for k, v in fields.items() if k != "WATCHDOG"))


def start():
    global child
    with lock:
        names = [name for name, fds in store.items() for _ in fds]
        kept = [fd for fds in store.values() for fd in fds]
    pid = os.fork()
    if pid == 0:
        lifted = [os.dup(fd) for fd in kept]              # above everything, then down to 3, 4, ...
        lifted = [fcntl_dup_high(fd, 1000) for fd in lifted]
        for index, fd in enumerate(lifted):
            os.dup2(fd, 3 + index, inheritable=True)
        environment = dict(os.environ, NOTIFY_SOCKET=path)
        if kept:
            environment.update(LISTEN_FDS=str(len(kept)), LISTEN_FDNAMES=":".join(names), LISTEN_PID=str(os.getpid()))
        os.closerange(3 + len(kept), 4096)
        os.execve(command[0], command, environment)
    child = pid
    with open(os.path.join(directory, "pid"), "w") as out:
        out.write(str(pid))
    say(f"started {pid} with {len(kept)} kept descriptor(s)")


def fcntl_dup_high(fd, floor):
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)
    os.close(fd)
    return high


def restart(signum, frame):
    os.kill(child, signal.SIGKILL)
    say(f"killed {child} with SIGKILL")


def stop(signum, frame):
    global stopping
    stopping = True
    os.kill(child, signal.SIGTERM)


stopping = False
threading.Thread(target=receive, daemon=True).start()
signal.signal(signal.SIGUSR1, restart)
signal.signal(signal.SIGTERM, stop)
start()
while True:
    pid, status = os.waitpid(child, 0)
    if stopping or not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        say(f"{pid} exited ({status})")
        sys.exit(0)
    start()
