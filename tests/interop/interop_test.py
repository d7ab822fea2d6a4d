#!/usr/bin/python3
"""Interoperability test: a client that is not the Relais SDK speaks protocol v1 to relaisd.

PROTOCOL.md promises that any client in any language following it interoperates with the
broker. This test proves it with Python's zmq and protobuf packages only (Debian's
python3-zmq and python3-protobuf, run by Debian's /usr/bin/python3): the Python classes are
generated from proto/relais/v1/*.proto by protoc into a temporary directory at test time,
so the test always speaks the schema in the tree, never a stale copy.

It starts relaisd on an ephemeral port in insecure mode, reads the endpoint back from the
ready line, then drives raw DEALER sockets through the happy path (Hello, Submit, Deliver,
Ack, Receipt, duplicate suppression) and the protocol errors, and finally stops the broker
with SIGTERM and expects exit status 0. Every wait is a poll with a timeout; nothing sleeps
to synchronise. Each check prints as it passes or fails, and the last line reads
`interop: N passed, M failed`.

Usage: interop_test.py --relaisd PATH --proto-dir PATH [--verbose]
"""

import argparse
import collections
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ADDR_A = "staff:claire@cabinet-dupont"  # a medical assistant
ADDR_B = "rpps:10101234567"  # a nurse
ADDR_X = "rpps:10109876543"  # a third agent, for the fresh sessions used by error checks

READY_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 5.0
QUIET_WINDOW_S = 1.0  # how long "nothing more arrives" is watched for
STOP_TIMEOUT_S = 10.0


class CheckFailed(Exception):
    pass


def generate_python(proto_dir, out_dir):
    """Runs protoc --python_out over proto_dir/relais/v1/*.proto and imports the result."""
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
    from relais.v1 import relais_pb2  # noqa: E402  (generated just above)

    return relais_pb2


def uuid7():
    """A UUIDv7 as 16 bytes: 48-bit Unix milliseconds, version 7, RFC 4122 variant, random."""
    ms = time.time_ns() // 1_000_000
    b = bytearray(ms.to_bytes(6, "big") + secrets.token_bytes(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return bytes(b)


def now_ms():
    return time.time_ns() // 1_000_000


class Broker:
    """relaisd as a child process: ready line on stdout, stderr kept in a log file."""

    def __init__(self, path, data_dir, log_path):
        self.path = path
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.endpoint = None
        self.stdout_lines = []

    def start(self):
        log = open(self.log_path, "wb")
        argv = [
            self.path,
            "--bind", "tcp://127.0.0.1:0",
            "--data", self.data_dir,
            "--insecure",
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
        finally:
            sel.close()
        if not self.endpoint.startswith("tcp://127.0.0.1:") or self.endpoint.endswith(":0"):
            raise CheckFailed("ready line announced an unusable endpoint %r" % self.endpoint)
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
    """One raw DEALER session. Frames that arrive are queued in `pending` until expected."""

    def __init__(self, net, name):
        self.net = net
        self.name = name
        self.sock = net.ctx.socket(net.zmq.DEALER)
        self.sock.setsockopt(net.zmq.LINGER, 0)
        self.sock.setsockopt(net.zmq.HEARTBEAT_IVL, 500)
        self.sock.setsockopt(net.zmq.HEARTBEAT_TIMEOUT, 1500)
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

    def close(self):
        self.net.clients.remove(self)
        self.sock.close(0)


class Net:
    """All client sockets, polled together so that every session answers Ping meanwhile."""

    def __init__(self, zmq, pb, endpoint, verbose):
        self.zmq = zmq
        self.pb = pb
        self.endpoint = endpoint
        self.verbose = verbose
        self.ctx = zmq.Context()
        self.clients = []

    def client(self, name):
        return Client(self, name)

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


class Interop:
    def __init__(self, pb, net, broker):
        self.pb = pb
        self.net = net
        self.broker = broker
        self.a = None
        self.b = None
        self.conversation = uuid7()
        self.acked_receipts = set()

    # ---- helpers --------------------------------------------------------------------

    def hello(self, c, address, version=1):
        f = self.pb.Frame()
        f.hello.protocol_version = version
        f.hello.software = "relais-interop-python/1"
        f.hello.credit = 16
        f.hello.address = address
        c.send(f)

    def note(self, to, text, receipts=(), msg_id=None, in_reply_to=b""):
        env = self.pb.Envelope()
        env.message_id = msg_id if msg_id is not None else uuid7()
        env.to.extend(to if isinstance(to, list) else [to])
        env.conversation_id = self.conversation
        if in_reply_to:
            env.in_reply_to = in_reply_to
        env.created_at_ms = now_ms()
        env.receipts.extend(receipts)
        env.note.text = text
        return env

    def submit(self, c, env):
        f = self.pb.Frame()
        f.submit.envelope.CopyFrom(env)
        c.send(f)

    def submit_reply(self, c, env):
        """Submits env and returns the broker's answer: Accepted, Rejected or Error."""
        self.submit(c, env)
        return self.net.expect(
            c,
            "Accepted/Rejected/Error",
            lambda f: f.WhichOneof("kind") in ("accepted", "rejected", "error"),
        )

    def expect_accepted(self, c, env, duplicate=False):
        reply = self.submit_reply(c, env)
        kind = reply.WhichOneof("kind")
        if kind != "accepted":
            raise CheckFailed("expected Accepted, got %s" % describe(reply))
        if reply.accepted.message_id != env.message_id:
            raise CheckFailed(
                "Accepted.message_id %s != submitted %s"
                % (reply.accepted.message_id.hex(), env.message_id.hex())
            )
        if reply.accepted.duplicate != duplicate:
            raise CheckFailed("Accepted.duplicate is %s, expected %s" % (reply.accepted.duplicate, duplicate))
        return reply.accepted

    def expect_deliver(self, c, env, sender):
        f = self.net.expect(
            c,
            "Deliver of %s" % env.message_id.hex(),
            lambda f: f.WhichOneof("kind") == "deliver"
            and f.deliver.envelope.message_id == env.message_id,
        )
        d = f.deliver
        problems = []
        if d.envelope.sender != sender:
            problems.append("sender %r, expected %r" % (d.envelope.sender, sender))
        if d.attempt != 1:
            problems.append("attempt %d, expected 1" % d.attempt)
        if list(d.envelope.to) != list(env.to):
            problems.append("to %s, expected %s" % (list(d.envelope.to), list(env.to)))
        if d.envelope.WhichOneof("body") != "note" or d.envelope.note.text != env.note.text:
            problems.append("body changed in transit")
        if d.envelope.conversation_id != env.conversation_id:
            problems.append("conversation_id changed in transit")
        if problems:
            raise CheckFailed("Deliver: " + "; ".join(problems))
        return d

    def ack(self, c, msg_id, outcome):
        f = self.pb.Frame()
        f.ack.message_id = msg_id
        f.ack.outcome = outcome
        c.send(f)

    def ack_receipt(self, c, receipt):
        f = self.pb.Frame()
        f.ack.receipt_id = receipt.receipt_id
        f.ack.outcome = self.pb.Ack.Outcome.PROCESSED
        c.send(f)
        self.acked_receipts.add(receipt.receipt_id)

    def await_processed_receipt(self, c, msg_id, recipient):
        """Takes c's receipts for msg_id until PROCESSED, acknowledging each; their statuses."""
        R = self.pb.Receipt.Status
        seen = []
        while R.PROCESSED not in seen:
            f = self.net.expect(
                c,
                "Receipt PROCESSED for %s" % msg_id.hex(),
                lambda f: f.WhichOneof("kind") == "receipt" and f.receipt.message_id == msg_id,
            )
            r = f.receipt
            if r.recipient != recipient:
                raise CheckFailed("Receipt.recipient %r, expected %r" % (r.recipient, recipient))
            if r.status not in (R.DELIVERED, R.PROCESSED):
                raise CheckFailed("Receipt.status %s, expected DELIVERED or PROCESSED" % R.Name(r.status))
            if r.receipt_id == 0:
                raise CheckFailed("Receipt %s carries no receipt_id to acknowledge" % R.Name(r.status))
            self.ack_receipt(c, r)
            seen.append(r.status)
        return [R.Name(s) for s in seen]

    def fresh_error(self, what, send, code):
        """Opens a fresh session, sends what send(client) sends, expects Error{code}."""
        c = self.net.client(what)
        try:
            send(c)
            f = self.net.next_frame(c)
            if f.WhichOneof("kind") != "error":
                raise CheckFailed("expected Error, got %s" % describe(f))
            E = self.pb.Error.ErrorCode
            if f.error.code != code:
                raise CheckFailed(
                    "Error code %s, expected %s (reason %r)"
                    % (E.Name(f.error.code), E.Name(code), f.error.reason)
                )
            if not f.error.reason:
                raise CheckFailed("Error %s has no human-readable reason" % E.Name(code))
            return "reason: %s" % f.error.reason
        finally:
            c.close()

    def expect_rejected(self, env, code):
        reply = self.submit_reply(self.a, env)
        if reply.WhichOneof("kind") != "rejected":
            raise CheckFailed("expected Rejected, got %s" % describe(reply))
        E = self.pb.Error.ErrorCode
        r = reply.rejected
        if r.code != code:
            raise CheckFailed("Rejected code %s, expected %s (reason %r)" % (E.Name(r.code), E.Name(code), r.reason))
        if not r.reason:
            raise CheckFailed("Rejected without a human-readable reason")
        return r

    # ---- checks, in order -------------------------------------------------------------

    def check_hello_a(self):
        self.a = self.net.client("A")
        return self._welcome(self.a, ADDR_A)

    def check_hello_b(self):
        self.b = self.net.client("B")
        return self._welcome(self.b, ADDR_B)

    def _welcome(self, c, address):
        self.hello(c, address)
        f = self.net.next_frame(c)
        if f.WhichOneof("kind") != "welcome":
            raise CheckFailed("expected Welcome, got %s" % describe(f))
        w = f.welcome
        if w.address != address:
            raise CheckFailed("Welcome.address %r, expected %r" % (w.address, address))
        c.address = w.address
        if w.heartbeat_ms:
            c.heartbeat_s = w.heartbeat_ms / 1000.0
        return "heartbeat_ms=%d max_frame_bytes=%d broker_id=%s" % (
            w.heartbeat_ms, w.max_frame_bytes, w.broker_id or "-")

    def check_submit(self):
        R = self.pb.Receipt.Status
        self.first = self.note(ADDR_B, "Bonjour, pansement J+2 pour Mme Martin ?",
                               receipts=[R.DELIVERED, R.PROCESSED])
        acc = self.expect_accepted(self.a, self.first)
        return "message_id=%s accepted_at_ms=%d" % (self.first.message_id.hex(), acc.accepted_at_ms)

    def check_deliver(self):
        self.expect_deliver(self.b, self.first, ADDR_A)
        return "sender=%s" % ADDR_A

    def check_receipts(self):
        self.ack(self.b, self.first.message_id, self.pb.Ack.Outcome.PROCESSED)
        seen = self.await_processed_receipt(self.a, self.first.message_id, ADDR_B)
        return "receipts %s, each acknowledged by receipt_id" % "+".join(seen)

    def check_duplicate(self):
        self.expect_accepted(self.a, self.first, duplicate=True)
        self.net.watch(QUIET_WINDOW_S)
        again = [f for f in self.b.pending if f.WhichOneof("kind") == "deliver"
                 and f.deliver.envelope.message_id == self.first.message_id]
        if again:
            raise CheckFailed("duplicate delivered again to B: %s" % describe(again[0]))
        receipts = [f for f in self.a.pending if f.WhichOneof("kind") == "receipt"
                    and f.receipt.message_id == self.first.message_id]
        for f in receipts:
            if f.receipt.receipt_id in self.acked_receipts:
                raise CheckFailed("an acknowledged receipt was sent again: %s" % describe(f))
            # A late receipt of the first exchange: acknowledge it so it is not redelivered.
            self.a.pending.remove(f)
            self.ack_receipt(self.a, f.receipt)
        return "no second Deliver within %.1f s" % QUIET_WINDOW_S

    def check_no_session(self):
        env = self.note(ADDR_B, "before hello")
        f = self.pb.Frame()
        f.submit.envelope.CopyFrom(env)
        return self.fresh_error("no-hello", lambda c: c.send(f), self.pb.Error.ErrorCode.NO_SESSION)

    def check_bad_version(self):
        return self.fresh_error("hello-v2", lambda c: self.hello(c, ADDR_X, version=2),
                                self.pb.Error.ErrorCode.UNSUPPORTED_VERSION)

    def check_garbage(self):
        garbage = b"\xff\xff\xff\xff\x0fnot a relais frame\x00\x01"
        return self.fresh_error("garbage", lambda c: c.send_raw([garbage]),
                                self.pb.Error.ErrorCode.BAD_FRAME)

    def check_multipart(self):
        f = self.pb.Frame()
        f.hello.protocol_version = 1
        f.hello.address = ADDR_X
        data = f.SerializeToString()
        return self.fresh_error("two-part", lambda c: c.send_raw([data, data]),
                                self.pb.Error.ErrorCode.BAD_FRAME)

    def check_short_id(self):
        env = self.note(ADDR_B, "short id", msg_id=b"\x01\x02\x03")
        r = self.expect_rejected(env, self.pb.Error.ErrorCode.INVALID_ENVELOPE)
        return "reason: %s" % r.reason

    def check_bad_address(self):
        env = self.note("rpps:123", "to nobody")
        r = self.expect_rejected(env, self.pb.Error.ErrorCode.INVALID_ENVELOPE)
        if r.message_id != env.message_id:
            raise CheckFailed("Rejected.message_id %s, expected %s" % (r.message_id.hex(), env.message_id.hex()))
        return "reason: %s" % r.reason

    def check_spoofed_sender(self):
        env = self.note(ADDR_B, "who am I?")
        env.sender = "rpps:19999999999"
        reply = self.submit_reply(self.a, env)
        kind = reply.WhichOneof("kind")
        if kind == "rejected":
            E = self.pb.Error.ErrorCode
            return "refused: Rejected %s, %s" % (E.Name(reply.rejected.code), reply.rejected.reason)
        if kind == "error":
            return "refused: Error %s, %s" % (self.pb.Error.ErrorCode.Name(reply.error.code), reply.error.reason)
        if reply.accepted.message_id != env.message_id:
            raise CheckFailed("Accepted for another message_id: %s" % describe(reply))
        d = self.expect_deliver(self.b, env, ADDR_A)
        self.ack(self.b, env.message_id, self.pb.Ack.Outcome.PROCESSED)
        return "ignored: delivered with sender=%s" % d.envelope.sender

    def check_still_working(self):
        R = self.pb.Receipt.Status
        outcome = self.pb.Ack.Outcome.PROCESSED
        there = self.note(ADDR_B, "Et pour jeudi ?", receipts=[R.PROCESSED])
        self.expect_accepted(self.a, there)
        self.expect_deliver(self.b, there, ADDR_A)
        self.ack(self.b, there.message_id, outcome)
        self.await_processed_receipt(self.a, there.message_id, ADDR_B)
        back = self.note(ADDR_A, "Oui, jeudi 9 h.", receipts=[R.PROCESSED],
                         in_reply_to=there.message_id)
        self.expect_accepted(self.b, back)
        d = self.expect_deliver(self.a, back, ADDR_B)
        if d.envelope.in_reply_to != there.message_id:
            raise CheckFailed("in_reply_to changed in transit")
        self.ack(self.a, back.message_id, outcome)
        self.await_processed_receipt(self.b, back.message_id, ADDR_A)
        return "A→B and B→A each delivered, processed and receipted"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--relaisd", required=True, help="path to the relaisd binary")
    ap.add_argument("--proto-dir", required=True, help="directory holding relais/v1/*.proto")
    ap.add_argument("--verbose", action="store_true", help="print every frame received")
    args = ap.parse_args()

    passed = 0
    failed = 0

    def run(name, fn):
        nonlocal passed, failed
        try:
            detail = fn()
        except CheckFailed as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            return False
        except Exception as e:  # a crash of the test itself still counts, and is shown
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            return False
        passed += 1
        print("ok   %s%s" % (name, " (%s)" % detail if detail else ""), flush=True)
        return True

    import zmq
    import google.protobuf

    print("interop: python %s, pyzmq %s, libzmq %s, protobuf %s" % (
        sys.version.split()[0], zmq.__version__, zmq.zmq_version(), google.protobuf.__version__),
        flush=True)

    with tempfile.TemporaryDirectory(prefix="relais-interop-") as tmp:
        gen_dir = os.path.join(tmp, "gen")
        data_dir = os.path.join(tmp, "data")
        os.mkdir(gen_dir)
        os.mkdir(data_dir)
        holder = {}

        def gen():
            holder["pb"] = generate_python(os.path.abspath(args.proto_dir), gen_dir)
            return "protoc --python_out into %s" % gen_dir

        if not run("Python classes generated from the .proto files", gen):
            print("interop: %d passed, %d failed" % (passed, failed))
            return 1
        pb = holder["pb"]

        broker = Broker(os.path.abspath(args.relaisd), data_dir, os.path.join(tmp, "relaisd.log"))
        net = None
        try:
            def start():
                broker.start()
                return "endpoint=%s" % broker.endpoint

            if run("relaisd starts and announces its endpoint", start):
                net = Net(zmq, pb, broker.endpoint, args.verbose)
                t = Interop(pb, net, broker)
                steps = [
                    ("Hello -> Welcome for %s" % ADDR_A, t.check_hello_a),
                    ("Hello -> Welcome for %s" % ADDR_B, t.check_hello_b),
                    ("Submit -> Accepted with the same message_id", t.check_submit),
                    ("B gets Deliver, sender stamped by the broker, attempt 1", t.check_deliver),
                    ("Ack PROCESSED -> A gets Receipt(s) for B and acks them", t.check_receipts),
                    ("same message_id again -> Accepted{duplicate}, no 2nd Deliver", t.check_duplicate),
                    ("Submit before Hello -> Error NO_SESSION", t.check_no_session),
                    ("Hello protocol_version 2 -> Error UNSUPPORTED_VERSION", t.check_bad_version),
                    ("undecodable bytes -> Error BAD_FRAME", t.check_garbage),
                    ("two-part message -> Error BAD_FRAME", t.check_multipart),
                    ("3-byte message_id -> Rejected INVALID_ENVELOPE", t.check_short_id),
                    ("address rpps:123 -> Rejected INVALID_ENVELOPE", t.check_bad_address),
                    ("a sender written by the agent is not trusted", t.check_spoofed_sender),
                    ("after the errors A and B still work (round-trip both ways)", t.check_still_working),
                ]
                for name, fn in steps:
                    run(name, fn)
                net.close()
                net = None

                def stop():
                    code = broker.stop()
                    if code != 0:
                        raise CheckFailed("exit status %d, expected 0" % code)
                    return "exit status 0"

                run("SIGTERM -> relaisd exits with status 0", stop)
        finally:
            if net is not None:
                net.close()
            broker.kill()
            if failed:
                tail = broker.log_tail()
                if tail:
                    print("---- last lines of relaisd's stderr ----")
                    for line in tail:
                        print("  " + line)
                    print("----")

    print("interop: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
