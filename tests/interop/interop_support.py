"""Plumbing of the interoperability test (interop_test.py), which holds the checks.

Everything here speaks to relaisd the way any client in any language would, with Python's
zmq and protobuf packages only: the Python classes generated from the tree's .proto files
by protoc, CURVE keys and a territory directory written for the run, relaisd as a child
process whose ready line is read back, and raw DEALER sockets polled together so that every
session answers the broker's Ping while a check waits. Every wait is a poll with a timeout.
"""

import collections
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time

READY_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0


class CheckFailed(Exception):
    pass


def generate_python(proto_dir, out_dir):
    """Runs protoc --python_out over proto_dir/relais/v1/*.proto and imports the result:
    the modules of the frames (relais_pb2) and of the care messages (care_pb2)."""
    # Debian's protoc matches Debian's protobuf runtime; a newer protoc elsewhere on PATH
    # could emit code the 3.21/4.21 runtime refuses.
    protoc = "/usr/bin/protoc" if os.access("/usr/bin/protoc", os.X_OK) else shutil.which("protoc")
    if not protoc:
        raise CheckFailed("protoc not found (Debian package protobuf-compiler)")
    schema_dir = os.path.join(proto_dir, "relais", "v1")
    protos = sorted(
        os.path.join("relais", "v1", name)
        for name in os.listdir(schema_dir)
        if name.endswith(".proto")
    )
    if not protos:
        raise CheckFailed("no .proto files under %s" % schema_dir)
    cmd = [protoc, "-I" + proto_dir, "--python_out=" + out_dir] + protos
    res = subprocess.run(cmd, cwd=proto_dir, capture_output=True, text=True)
    if res.returncode != 0:
        raise CheckFailed("protoc failed (%d): %s" % (res.returncode, res.stderr.strip()))
    sys.path.insert(0, out_dir)
    from relais.v1 import care_pb2, relais_pb2  # noqa: E402  (generated just above)

    return relais_pb2, care_pb2


def uuid7():
    """A UUIDv7 as 16 bytes: 48-bit Unix milliseconds, version 7, RFC 4122 variant, random."""
    ms = time.time_ns() // 1_000_000
    b = bytearray(ms.to_bytes(6, "big") + secrets.token_bytes(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return bytes(b)


def now_ms():
    return time.time_ns() // 1_000_000


def write_keyfile(path, public, secret):
    """A keypair file as relaisctl keygen writes it, created 0600 (relaisd refuses looser)."""
    text = "# Relais CURVE keypair (interop test)\npublic-key: %s\nsecret-key: %s\n" % (
        public.decode("ascii"), secret.decode("ascii"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise CheckFailed("%s has mode %o, expected 0600" % (path, mode))


class Territory:
    """The broker's keys and a directory of members, each with a fresh keypair.

    members is a list of (address, role, acts_for or None); name is the territory's.
    """

    def __init__(self, zmq, base_dir, name, members):
        if not zmq.has("curve"):
            raise CheckFailed("this libzmq %s has no CURVE support" % zmq.zmq_version())
        self.server_public, server_secret = zmq.curve_keypair()
        self.broker_key_path = os.path.join(base_dir, "relaisd.key")
        write_keyfile(self.broker_key_path, self.server_public, server_secret)
        self.keys = {address: zmq.curve_keypair() for address, _, _ in members}
        self.directory_path = os.path.join(base_dir, "territory.yaml")
        lines = [
            "# Written by interop_test.py: fresh keys, no acl section (default rules).",
            "territory: %s" % name,
            "production: true",
            "agents:",
        ]
        for address, role, acts_for in members:
            lines.append('  - address: "%s"' % address)
            lines.append("    role: %s" % role)
            # Z85 has neither '"' nor '\\': a double-quoted YAML scalar holds any key.
            lines.append('    public_key: "%s"' % self.keys[address][0].decode("ascii"))
            if acts_for:
                lines.append('    acts_for: ["%s"]' % acts_for)
        with open(self.directory_path, "w") as f:
            f.write("\n".join(lines) + "\n")


class Broker:
    """relaisd as a child process: ready line on stdout, stderr kept in a log file."""

    def __init__(self, path, data_dir, log_path, territory):
        self.path = path
        self.data_dir = data_dir
        self.log_path = log_path
        self.territory = territory
        self.proc = None
        self.endpoint = None
        self.ready_line = None
        self.stdout_lines = []

    def start(self):
        log = open(self.log_path, "wb")
        argv = [
            self.path,
            "--bind", "tcp://127.0.0.1:0",
            "--data", self.data_dir,
            "--directory", self.territory.directory_path,
            "--curve-key", self.territory.broker_key_path,
            "--heartbeat-ms", "500",
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        try:
            while self.endpoint is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CheckFailed(
                        "no 'relaisd ready endpoint=' line on stdout within %.0f s" % READY_TIMEOUT_S
                    )
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    code = self.proc.wait(timeout=STOP_TIMEOUT_S)
                    raise CheckFailed("relaisd exited with status %s before its ready line" % code)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode("utf-8", "replace")
                    self.stdout_lines.append(text)
                    if "relaisd ready" in text and "endpoint=" in text:
                        self.endpoint = text.split("endpoint=", 1)[1].split()[0]
                        self.ready_line = text
        finally:
            sel.close()
        if not self.endpoint.startswith("tcp://127.0.0.1:") or self.endpoint.endswith(":0"):
            raise CheckFailed("ready line announced an unusable endpoint %r" % self.endpoint)
        fields = dict(w.split("=", 1) for w in self.ready_line.split() if "=" in w)
        if fields.get("mode") != "curve":
            raise CheckFailed("ready line announces mode=%s, expected curve: %r"
                              % (fields.get("mode"), self.ready_line))
        announced = fields.get("server_key")
        if announced is not None and announced != self.territory.server_public.decode("ascii"):
            raise CheckFailed("ready line announces server_key=%s, not the key given in %s"
                              % (announced, self.territory.broker_key_path))
        # Keep draining stdout so the broker never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.stdout_lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    def stop(self):
        """SIGTERM; returns the exit status, or raises if the broker does not exit in time."""
        if self.proc.poll() is not None:
            raise CheckFailed("relaisd had already exited with status %s" % self.proc.returncode)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CheckFailed("relaisd still running %.0f s after SIGTERM" % STOP_TIMEOUT_S)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return lines[-n:]


class Client:
    """One raw DEALER session. Frames that arrive are queued in `pending` until expected.

    keys is the client's CURVE (public, secret) pair, or None for a client without CURVE;
    with monitor=True the socket's events (handshake succeeded or failed) are recorded.
    """

    def __init__(self, net, name, keys, monitor=False):
        zmq = net.zmq
        self.net = net
        self.name = name
        self.sock = net.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.HEARTBEAT_IVL, 500)
        self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 1500)
        if keys is not None:
            self.sock.curve_serverkey = net.server_key
            self.sock.curve_publickey = keys[0]
            self.sock.curve_secretkey = keys[1]
        self.monitor = self.sock.get_monitor_socket() if monitor else None
        self.sock.connect(net.endpoint)
        self.pending = collections.deque()
        self.address = None
        self.heartbeat_s = None  # set by Welcome: the client then pings when idle
        self.last_sent = time.monotonic()
        net.clients.append(self)

    def send(self, frame):
        self.send_raw([frame.SerializeToString()])

    def send_raw(self, parts):
        self.sock.send_multipart(parts)
        self.last_sent = time.monotonic()

    def events(self):
        """Names of the monitor events seen so far (EVENT_HANDSHAKE_FAILED_AUTH, ...)."""
        from zmq.utils.monitor import recv_monitor_message

        zmq = self.net.zmq
        names = {getattr(zmq, n): n for n in dir(zmq)
                 if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")}
        seen = []
        while self.monitor is not None:
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            seen.append(names.get(ev["event"], "event %d" % ev["event"]))
        return seen

    def close(self):
        self.net.clients.remove(self)
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close(0)
        self.sock.close(0)


class Net:
    """All client sockets, polled together so that every session answers Ping meanwhile."""

    def __init__(self, zmq, pb, endpoint, server_key, verbose):
        self.zmq = zmq
        self.pb = pb
        self.endpoint = endpoint
        self.server_key = server_key
        self.verbose = verbose
        self.ctx = zmq.Context()
        self.clients = []

    def client(self, name, keys, monitor=False):
        return Client(self, name, keys, monitor)

    def pump(self, timeout_s):
        poller = self.zmq.Poller()
        for c in self.clients:
            poller.register(c.sock, self.zmq.POLLIN)
        for sock, _ in poller.poll(max(0, int(timeout_s * 1000))):
            c = next(c for c in self.clients if c.sock is sock)
            while True:
                try:
                    parts = sock.recv_multipart(self.zmq.NOBLOCK)
                except self.zmq.Again:
                    break
                self._take(c, parts)
        t = time.monotonic()
        for c in self.clients:
            if c.heartbeat_s and t - c.last_sent >= c.heartbeat_s:
                f = self.pb.Frame()
                f.ping.at_ms = now_ms()
                c.send(f)

    def _take(self, c, parts):
        if len(parts) != 1:
            c.pending.append(("multipart", parts))
            return
        f = self.pb.Frame()
        try:
            f.ParseFromString(parts[0])
        except Exception as e:  # the protobuf runtime raises DecodeError, a few raise others
            c.pending.append(("undecodable", "%s: %r" % (e, parts[0][:64])))
            return
        kind = f.WhichOneof("kind")
        if self.verbose:
            print("    %s <- %s" % (c.name, describe(f)), flush=True)
        if kind == "ping":
            pong = self.pb.Frame()
            pong.pong.at_ms = f.ping.at_ms
            c.send(pong)
        elif kind == "pong":
            pass
        else:
            c.pending.append(f)

    def expect(self, c, what, pred, timeout_s=REPLY_TIMEOUT_S):
        """The first frame on c for which pred(frame) holds; earlier others stay queued."""
        deadline = time.monotonic() + timeout_s
        while True:
            for item in list(c.pending):
                if not isinstance(item, tuple) and pred(item):
                    c.pending.remove(item)
                    return item
            bad = [item for item in c.pending if isinstance(item, tuple)]
            if bad:
                for item in bad:
                    c.pending.remove(item)
                raise CheckFailed("%s received a malformed message: %s" % (c.name, bad[0]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(
                    "%s: no %s within %.1f s; queued instead: %s"
                    % (c.name, what, timeout_s, summary(c.pending))
                )
            self.pump(min(left, 0.1))

    def next_frame(self, c, timeout_s=REPLY_TIMEOUT_S):
        return self.expect(c, "reply", lambda f: True, timeout_s)

    def watch(self, duration_s):
        """Pumps every socket for duration_s (used to prove that something does NOT come)."""
        deadline = time.monotonic() + duration_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.pump(min(left, 0.1))

    def close(self):
        for c in list(self.clients):
            c.close()
        self.ctx.term()


def describe(f):
    kind = f.WhichOneof("kind")
    if kind is None:
        return "<empty Frame>"
    from google.protobuf import text_format

    text = text_format.MessageToString(getattr(f, kind), as_one_line=True)
    return ("%s{%s}" % (kind, text))[:200]


def summary(items):
    if not items:
        return "nothing"
    return "; ".join(describe(i) if not isinstance(i, tuple) else str(i)[:120] for i in items)
