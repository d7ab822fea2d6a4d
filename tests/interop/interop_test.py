#!/usr/bin/python3
"""Interoperability test: a client that is not the Relais SDK speaks protocol v1 to relaisd.

PROTOCOL.md promises that any client in any language following it interoperates with the
broker. This test proves it with Python's zmq and protobuf packages only (Debian's
python3-zmq and python3-protobuf, run by Debian's /usr/bin/python3): the Python classes are
generated from proto/relais/v1/*.proto by protoc into a temporary directory at test time,
so the test always speaks the schema in the tree, never a stale copy.

The broker runs as a territory runs it, with CurveZMQ: the test generates the broker's
keypair and one per client with zmq.curve_keypair(), writes the broker's key file (mode
0600) and a production territory directory (a medical assistant acting for a GP, the GP, a
nurse and a physiotherapist; no ACL override, so the default rules of PROTOCOL.md section 6
apply), and starts relaisd with --directory and --curve-key on an ephemeral port, reading
the endpoint back from the ready line. Raw DEALER sockets with CURVE keys then drive the
happy path (Hello, Submit, Deliver, Ack, Receipt, duplicate suppression, a reply inside the
conversation) and the protocol errors; clients with an unknown key or without CURVE prove
that the handshake is refused, and a Hello or a submission claiming another identity that
it is refused. Finally the broker is stopped with SIGTERM and must exit 0. Every wait is a
poll with a timeout; nothing sleeps to synchronise. Each check prints as it passes or fails,
and the last line reads `interop: N passed, M failed`.

The plumbing (protoc, keys and directory, the broker process, raw sockets) is in
interop_support.py next to this file; the checks are here.

Usage: interop_test.py --relaisd PATH --proto-dir PATH [--verbose]
"""

import argparse
import os
import sys
import tempfile

from interop_support import (
    Broker,
    CheckFailed,
    Net,
    Territory,
    describe,
    generate_python,
    now_ms,
    summary,
    uuid7,
)

TERRITORY = "interop-test"
ADDR_A = "staff:claire.martin@cabinet-dupont"  # a medical assistant, acting for the GP
ADDR_GP = "rpps:10101234567"  # the GP (in the directory, never connected)
ADDR_B = "rpps:10109876543"  # a nurse
ADDR_X = "rpps:10100000002"  # a physiotherapist, for the fresh sessions of the error checks

# The territory directory: address, role, whom the agent may act for. The roles are what
# the default authorisation decides on: A may send an AppointmentRequest (medical
# assistant) to B (a nurse may receive one), and B may answer only inside the conversation.
MEMBERS = [
    (ADDR_A, "medical_assistant", ADDR_GP),
    (ADDR_GP, "gp", None),
    (ADDR_B, "nurse", None),
    (ADDR_X, "physiotherapist", None),
]

QUIET_WINDOW_S = 1.0  # how long "nothing more arrives" is watched for
REFUSED_WINDOW_S = 1.5  # how long a client whose handshake must fail is watched


class Interop:
    def __init__(self, zmq, pb, care, net, broker, territory):
        self.zmq = zmq
        self.pb = pb
        self.care = care
        self.net = net
        self.broker = broker
        self.territory = territory
        self.a = None
        self.b = None
        self.acked_receipts = set()

    # ---- helpers --------------------------------------------------------------------

    def hello(self, c, address, version=1):
        f = self.pb.Frame()
        f.hello.protocol_version = version
        f.hello.software = "relais-interop-python/1"
        f.hello.credit = 16
        f.hello.address = address
        c.send(f)

    def keyed_client(self, name, address, monitor=False):
        return self.net.client(name, self.territory.keys[address], monitor)

    def envelope(self, to, receipts=(), msg_id=None, conversation=None, in_reply_to=b""):
        """An envelope without a body; conversation defaults to its own message_id."""
        env = self.pb.Envelope()
        env.message_id = msg_id if msg_id is not None else uuid7()
        env.to.extend(to if isinstance(to, list) else [to])
        env.conversation_id = conversation if conversation is not None else env.message_id
        if in_reply_to:
            env.in_reply_to = in_reply_to
        env.created_at_ms = now_ms()
        env.receipts.extend(receipts)
        return env

    def request(self, to, reason, receipts=(), msg_id=None):
        """An AppointmentRequest from A for the GP: it opens its own conversation."""
        env = self.envelope(to, receipts, msg_id)
        env.on_behalf_of = ADDR_GP
        req = env.appointment_request
        req.request_id = "interop-" + env.message_id.hex()[-12:]
        req.patient.local_id = "INTEROP-0001"  # fictitious, provisional identity
        req.patient.identity_status = self.care.PatientRef.IdentityStatus.PROVISIONAL
        req.requested_role = "nurse"
        req.urgency = self.care.AppointmentRequest.Urgency.ROUTINE
        req.window.not_before_ms = now_ms()
        req.window.due_by_ms = now_ms() + 7 * 24 * 3600 * 1000
        req.preferred_mode = self.care.Slot.Mode.HOME
        req.reason = reason
        return env

    def offer(self, request, receipts=()):
        """B's AppointmentOffer answering request, inside request's conversation."""
        env = self.envelope(request.sender or ADDR_A, receipts,
                            conversation=request.conversation_id,
                            in_reply_to=request.message_id)
        o = env.appointment_offer
        o.request_id = request.appointment_request.request_id
        slot = o.slots.add()
        slot.slot_id = "slot-01"
        slot.start_ms = now_ms() + 24 * 3600 * 1000
        slot.end_ms = slot.start_ms + 45 * 60 * 1000
        slot.practitioner = ADDR_B
        slot.mode = self.care.Slot.Mode.HOME
        o.held_until_ms = now_ms() + 3600 * 1000
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
        body = env.WhichOneof("body")
        if d.envelope.WhichOneof("body") != body or (
            getattr(d.envelope, body).SerializeToString(deterministic=True)
            != getattr(env, body).SerializeToString(deterministic=True)
        ):
            problems.append("body changed in transit")
        if d.envelope.conversation_id != env.conversation_id:
            problems.append("conversation_id changed in transit")
        if d.envelope.in_reply_to != env.in_reply_to:
            problems.append("in_reply_to changed in transit")
        if d.envelope.on_behalf_of != env.on_behalf_of:
            problems.append("on_behalf_of %r, expected %r" % (d.envelope.on_behalf_of, env.on_behalf_of))
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
        """Opens a fresh session with X's key, sends what send(client) sends, expects Error{code}."""
        c = self.keyed_client(what, ADDR_X)
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

    def refused_handshake(self, what, keys):
        """A client that must never get a session: its Hello goes unanswered for
        REFUSED_WINDOW_S, and its socket reports failed handshakes, never a successful one
        (so the silence is a refusal, not a connection that never happened)."""
        c = self.net.client(what, keys, monitor=True)
        try:
            self.hello(c, ADDR_X)
            self.net.watch(REFUSED_WINDOW_S)
            if c.pending:
                raise CheckFailed("it received %s" % summary(c.pending))
            events = c.events()
            if "EVENT_HANDSHAKE_SUCCEEDED" in events:
                raise CheckFailed("its handshake succeeded (events: %s)" % ", ".join(events))
            failures = sorted({e for e in events if e.startswith("EVENT_HANDSHAKE_FAILED")})
            if not failures:
                raise CheckFailed("its socket reported no failed handshake (events: %s)"
                                  % (", ".join(events) or "none"))
            return "nothing within %.1f s; socket reported %s" % (REFUSED_WINDOW_S, ", ".join(failures))
        finally:
            c.close()

    def expect_rejected(self, c, env, code):
        reply = self.submit_reply(c, env)
        if reply.WhichOneof("kind") != "rejected":
            raise CheckFailed("expected Rejected, got %s" % describe(reply))
        E = self.pb.Error.ErrorCode
        r = reply.rejected
        if r.code != code:
            raise CheckFailed("Rejected code %s, expected %s (reason %r)" % (E.Name(r.code), E.Name(code), r.reason))
        if not r.reason:
            raise CheckFailed("Rejected without a human-readable reason")
        if r.message_id != env.message_id:
            raise CheckFailed("Rejected.message_id %s, expected %s" % (r.message_id.hex(), env.message_id.hex()))
        return r

    def expect_no_deliver(self, c, env):
        """Nothing of env reaches c within QUIET_WINDOW_S."""
        self.net.watch(QUIET_WINDOW_S)
        got = [f for f in c.pending if not isinstance(f, tuple) and f.WhichOneof("kind") == "deliver"
               and f.deliver.envelope.message_id == env.message_id]
        if got:
            raise CheckFailed("it was delivered anyway: %s" % describe(got[0]))

    # ---- checks, in order -------------------------------------------------------------

    def check_hello_a(self):
        # No address in Hello: with CURVE the broker knows A by its key alone.
        self.a = self.keyed_client("A", ADDR_A)
        return self._welcome(self.a, "", ADDR_A)

    def check_hello_b(self):
        self.b = self.keyed_client("B", ADDR_B)
        return self._welcome(self.b, ADDR_B, ADDR_B)

    def _welcome(self, c, declared, address):
        self.hello(c, declared)
        f = self.net.next_frame(c)
        if f.WhichOneof("kind") != "welcome":
            raise CheckFailed("expected Welcome, got %s" % describe(f))
        w = f.welcome
        if w.address != address:
            raise CheckFailed("Welcome.address %r, expected the key's address %r" % (w.address, address))
        c.address = w.address
        if w.heartbeat_ms:
            c.heartbeat_s = w.heartbeat_ms / 1000.0
        return "Hello.address=%r; heartbeat_ms=%d max_frame_bytes=%d broker_id=%s" % (
            declared, w.heartbeat_ms, w.max_frame_bytes, w.broker_id or "-")

    def check_submit(self):
        R = self.pb.Receipt.Status
        self.first = self.request(ADDR_B, "pansement J+2 à domicile",
                                  receipts=[R.DELIVERED, R.PROCESSED])
        acc = self.expect_accepted(self.a, self.first)
        return "message_id=%s accepted_at_ms=%d" % (self.first.message_id.hex(), acc.accepted_at_ms)

    def check_deliver(self):
        self.expect_deliver(self.b, self.first, ADDR_A)
        return "sender=%s on_behalf_of=%s" % (ADDR_A, ADDR_GP)

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
        env = self.request(ADDR_B, "before hello")
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
        env = self.request(ADDR_B, "short id", msg_id=b"\x01\x02\x03")
        env.conversation_id = uuid7()
        r = self.expect_rejected(self.a, env, self.pb.Error.ErrorCode.INVALID_ENVELOPE)
        return "reason: %s" % r.reason

    def check_bad_address(self):
        env = self.request("rpps:123", "to nobody")
        r = self.expect_rejected(self.a, env, self.pb.Error.ErrorCode.INVALID_ENVELOPE)
        return "reason: %s" % r.reason

    def check_unknown_key(self):
        keys = self.zmq.curve_keypair()  # valid, but in no directory
        return self.refused_handshake("unknown-key", keys)

    def check_no_curve(self):
        # libzmq reports the mechanism mismatch as FAILED_PROTOCOL or, when the broker
        # closes first, FAILED_NO_DETAIL: either is a refusal.
        return self.refused_handshake("no-curve", None)

    def check_hello_other_address(self):
        def send(c):
            self.hello(c, ADDR_B)  # X's key, B's address

        return self.fresh_error("hello-as-B", send, self.pb.Error.ErrorCode.FORBIDDEN)

    def check_spoofed_sender(self):
        env = self.request(ADDR_B, "who am I?")
        env.sender = ADDR_GP  # the assistant writes the GP as the sender
        r = self.expect_rejected(self.a, env, self.pb.Error.ErrorCode.FORBIDDEN)
        self.expect_no_deliver(self.b, env)
        return "reason: %s" % r.reason

    def check_rule_violation(self):
        # A nurse may not send an AppointmentRequest under the default rules.
        env = self.envelope(ADDR_A)
        req = env.appointment_request
        req.request_id = "interop-forbidden"
        req.patient.local_id = "INTEROP-0001"
        req.requested_role = "gp"
        r = self.expect_rejected(self.b, env, self.pb.Error.ErrorCode.FORBIDDEN)
        words = r.reason.lower().replace("_", "")
        if "appointmentrequest" not in words or "nurse" not in words:
            raise CheckFailed("the reason does not name the rule (body type and role): %r" % r.reason)
        self.expect_no_deliver(self.a, env)
        return "reason: %s" % r.reason

    def check_still_working(self):
        R = self.pb.Receipt.Status
        outcome = self.pb.Ack.Outcome.PROCESSED
        there = self.request(ADDR_B, "et pour jeudi ?", receipts=[R.PROCESSED])
        self.expect_accepted(self.a, there)
        d = self.expect_deliver(self.b, there, ADDR_A)
        self.ack(self.b, there.message_id, outcome)
        self.await_processed_receipt(self.a, there.message_id, ADDR_B)
        back = self.offer(d.envelope, receipts=[R.PROCESSED])
        self.expect_accepted(self.b, back)
        self.expect_deliver(self.a, back, ADDR_B)
        self.ack(self.a, back.message_id, outcome)
        self.await_processed_receipt(self.b, back.message_id, ADDR_A)
        return "AppointmentRequest A→B and AppointmentOffer B→A in its conversation, each " \
               "delivered, processed and receipted"


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
            holder["pb"], holder["care"] = generate_python(os.path.abspath(args.proto_dir), gen_dir)
            return "protoc --python_out into %s" % gen_dir

        if not run("Python classes generated from the .proto files", gen):
            print("interop: %d passed, %d failed" % (passed, failed))
            return 1
        pb = holder["pb"]

        def keys():
            holder["territory"] = Territory(zmq, tmp, TERRITORY, MEMBERS)
            return "broker key (0600) and directory of %d agents in %s" % (len(MEMBERS), tmp)

        if not run("CURVE keys from zmq.curve_keypair() and a territory directory", keys):
            print("interop: %d passed, %d failed" % (passed, failed))
            return 1
        territory = holder["territory"]

        broker = Broker(os.path.abspath(args.relaisd), data_dir, os.path.join(tmp, "relaisd.log"),
                        territory)
        net = None
        try:
            def start():
                broker.start()
                return "endpoint=%s mode=curve" % broker.endpoint

            if run("relaisd starts with CurveZMQ and announces its endpoint", start):
                net = Net(zmq, pb, broker.endpoint, territory.server_public, args.verbose)
                t = Interop(zmq, pb, holder["care"], net, broker, territory)
                steps = [
                    ("Hello without address -> Welcome for the key's %s" % ADDR_A, t.check_hello_a),
                    ("Hello -> Welcome for %s" % ADDR_B, t.check_hello_b),
                    ("AppointmentRequest A->B -> Accepted with the same message_id", t.check_submit),
                    ("B gets Deliver, sender stamped by the broker, attempt 1", t.check_deliver),
                    ("Ack PROCESSED -> A gets Receipt(s) for B and acks them", t.check_receipts),
                    ("same message_id again -> Accepted{duplicate}, no 2nd Deliver", t.check_duplicate),
                    ("Submit before Hello -> Error NO_SESSION", t.check_no_session),
                    ("Hello protocol_version 2 -> Error UNSUPPORTED_VERSION", t.check_bad_version),
                    ("undecodable bytes -> Error BAD_FRAME", t.check_garbage),
                    ("two-part message -> Error BAD_FRAME", t.check_multipart),
                    ("3-byte message_id -> Rejected INVALID_ENVELOPE", t.check_short_id),
                    ("address rpps:123 -> Rejected INVALID_ENVELOPE", t.check_bad_address),
                    ("a key not in the directory -> handshake refused, no Welcome", t.check_unknown_key),
                    ("a client without CURVE -> handshake refused, no Welcome", t.check_no_curve),
                    ("Hello declaring another address than the key's -> Error FORBIDDEN",
                     t.check_hello_other_address),
                    ("envelope.sender naming someone else -> Rejected FORBIDDEN", t.check_spoofed_sender),
                    ("a nurse's AppointmentRequest -> Rejected FORBIDDEN naming the rule",
                     t.check_rule_violation),
                    ("after the errors A and B still work (request and offer in one conversation)",
                     t.check_still_working),
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
