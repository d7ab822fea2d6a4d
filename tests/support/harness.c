/*
 * Test harness implementation: a real relaisd child process and a raw DEALER client.
 *
 * The broker process is common/relaisd_child.c's (shared with relais-bench and the demo):
 * started with PR_SET_PDEATHSIG so that a crashing test never leaves a broker behind, and
 * stopped through a pidfd with poll(2), so a stop has a timeout without any sleep.
 */
#include "harness.h"
#include "relaisd_child.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define RT_PING_MS 100

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The test territory: every address the tests use, with a role that fits its use. */
static const struct {
    const char *address, *role, *acts_for, *specialty, *pool;
} territory[] = {
    {"staff:claire.martin@cabinet-dupont", "medical_assistant", "rpps:10101234567", NULL, NULL},
    {"rpps:10101234567", "gp", NULL, NULL, NULL},
    {"rpps:10109876543", "nurse", NULL, NULL, "service:nurse@relais-test"},
    {"rpps:10100000001", "nurse", NULL, NULL, "service:nurse@relais-test"},
    {"rpps:10100000002", "physiotherapist", NULL, NULL, NULL},
    {"rpps:20202345678", "nurse", NULL, NULL, "service:nurse@relais-test"},
    {"finess:350000011", "hospital", NULL, NULL, NULL},
    {"finess:350000014", "hospital", NULL, NULL, NULL},
    {"rpps:10000000001", "gp", NULL, NULL, NULL},
    {"rpps:10000000002", "gp", NULL, NULL, NULL},
    {"rpps:20000000001", "nurse", NULL, NULL, NULL},
    {"rpps:20000000002", "nurse", NULL, NULL, NULL},
    {"rpps:10102345678", "physiotherapist", NULL, NULL, NULL},
    {"rpps:10103456789", "nurse", NULL, NULL, NULL},
    {"rpps:10104567890", "specialist", NULL, "cardiology", NULL},
    {"rpps:10104567891", "specialist", NULL, "cardiology", NULL},
    {"staff:coordination@relais-test", "coordinator", NULL, NULL, NULL},
};

/* Writes the test territory's directory, leaving out `skip` (may be NULL). */
static int write_directory(const rt_broker_t *b, const char *path, const char *skip)
{
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return -1;
    /* Throughput tests submit thousands a second: the test territory allows it, unless a
     * test sets its own limits. A production directory, except under a simulated clock,
     * which relaisd refuses with one. */
    const char *sim = getenv("RELAIS_SIM_CLOCK");
    fprintf(f, "territory: relais-test\nproduction: %s\nlimits: {submissions_per_second: %u",
            sim != NULL && sim[0] != '\0' ? "false" : "true",
            b->rate_limit ? b->rate_limit : 1000000);
    if (b->mailbox_limit) fprintf(f, ", pending_per_mailbox: %u", b->mailbox_limit);
    fprintf(f, "}\n");
    if (!b->default_acl) {
        fprintf(f, "acl:\n");
        for (int body = 1; body < 64; body++) {
            const char *name = relais_body_name(body);
            if (relais_body_from_name(name) == body)
                fprintf(f, "  %s: {senders: [any], recipients: [any]}\n", name);
        }
    }
    fprintf(f, "agents:\n");
    for (size_t i = 0; i < b->nkeys; i++) {
        const rt_key_t *k = &b->keys[i];
        if (skip != NULL && strcmp(k->address, skip) == 0) continue;
        fprintf(f, "  - address: \"%s\"\n    role: %s\n    public_key: \"%s\"\n", k->address,
                territory[i].role, k->pub);
        if (territory[i].specialty) fprintf(f, "    specialty: %s\n", territory[i].specialty);
        if (territory[i].acts_for) fprintf(f, "    acts_for: [\"%s\"]\n", territory[i].acts_for);
        if (territory[i].pool) fprintf(f, "    pools: [\"%s\"]\n", territory[i].pool);
    }
    fclose(f);
    return rename(tmp, path); /* the broker never reads a half-written directory */
}

/* Generates the broker's and every test agent's keys and writes the directory. */
static int make_territory(rt_broker_t *b, char *dir_path, size_t dir_len, char *key_path,
                          size_t key_len)
{
    char sec[41];
    if (zmq_curve_keypair(b->server_pub, sec) != 0) return -1;
    snprintf(key_path, key_len, "%s/broker.key", b->data_dir);
    if (relaisd_child_write_keyfile(key_path, b->server_pub, sec, "test") < 0) return -1;
    snprintf(b->server_pub_path, sizeof(b->server_pub_path), "%s/broker.pub", b->data_dir);
    FILE *pubf = fopen(b->server_pub_path, "w");
    if (pubf == NULL) return -1;
    fprintf(pubf, "%s\n", b->server_pub);
    fclose(pubf);
    b->nkeys = 0;
    for (size_t i = 0; i < sizeof(territory) / sizeof(territory[0]); i++) {
        rt_key_t *k = &b->keys[b->nkeys++];
        snprintf(k->address, sizeof(k->address), "%s", territory[i].address);
        if (zmq_curve_keypair(k->pub, k->sec) != 0) return -1;
        snprintf(k->path, sizeof(k->path), "%s/agent-%zu.key", b->data_dir, i);
        if (relaisd_child_write_keyfile(k->path, k->pub, k->sec, "test") < 0) return -1;
    }
    snprintf(dir_path, dir_len, "%s/territory.yaml", b->data_dir);
    return write_directory(b, dir_path, NULL);
}

/* Rewrites the test territory without `skip` (NULL: every agent), sends SIGHUP and waits
 * for one more reload line than the log held before. */
static int rewrite_territory(rt_broker_t *b, const char *skip, int timeout_ms)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/territory.yaml", b->data_dir);
    unsigned before = rt_broker_log_count(b, "directory reloaded");
    if (write_directory(b, path, skip) < 0 || kill(b->pid, SIGHUP) < 0) return -1;
    return rt_broker_wait_log_count(b, "directory reloaded", before + 1, timeout_ms);
}

int rt_territory_revoke(rt_broker_t *b, const char *address, int timeout_ms)
{
    return rewrite_territory(b, address, timeout_ms);
}

int rt_territory_enrol_all(rt_broker_t *b, int timeout_ms)
{
    return rewrite_territory(b, NULL, timeout_ms);
}

const rt_key_t *rt_key_for(const rt_broker_t *b, const char *address)
{
    for (size_t i = 0; i < b->nkeys; i++)
        if (strcmp(b->keys[i].address, address) == 0) return &b->keys[i];
    return NULL;
}

int rt_broker_start(rt_broker_t *b, const char *const *extra_args, int timeout_ms)
{
    char err[512];
    if (b->data_dir[0] == '\0' && relaisd_child_mkdata(b->data_dir, sizeof(b->data_dir),
                                                       "relais-test", err, sizeof(err)) < 0) {
        fprintf(stderr, "harness: %s\n", err);
        return -1;
    }
    snprintf(b->log_path, sizeof(b->log_path), "%s/relaisd.log", b->data_dir);
    const char *bind = b->endpoint[0] ? b->endpoint : "tcp://127.0.0.1:0";
    char bind_copy[128];
    snprintf(bind_copy, sizeof(bind_copy), "%s", bind);

    const char *argv[64];
    int argc = 0;
    /* RELAIS_TEST_RELAISD runs the suite against another build (an older commit's, to see
     * a new test fail before its fix). */
    const char *relaisd = getenv("RELAIS_TEST_RELAISD");
    argv[argc++] = relaisd && relaisd[0] ? relaisd : RELAISD_PATH;
    argv[argc++] = "--bind";
    argv[argc++] = bind_copy;
    argv[argc++] = "--data";
    argv[argc++] = b->data_dir;
    char dir_path[300], key_path[300];
    if (b->insecure) {
        argv[argc++] = "--insecure";
    } else {
        snprintf(dir_path, sizeof(dir_path), "%s/territory.yaml", b->data_dir);
        snprintf(key_path, sizeof(key_path), "%s/broker.key", b->data_dir);
        if (b->server_pub[0] == '\0' &&
            make_territory(b, dir_path, sizeof(dir_path), key_path, sizeof(key_path)) < 0) {
            perror("harness: cannot write the test territory");
            return -1;
        }
        argv[argc++] = "--directory";
        argv[argc++] = b->directory ? b->directory : dir_path;
        argv[argc++] = "--curve-key";
        argv[argc++] = key_path;
    }
    for (int i = 0; extra_args && extra_args[i] && argc < 62; i++) argv[argc++] = extra_args[i];
    argv[argc] = NULL;

    relaisd_ready_t ready;
    if (relaisd_child_start(argv, b->log_path, timeout_ms, &b->pid, &b->stdout_fd, &ready, err,
                            sizeof(err)) < 0) {
        fprintf(stderr, "harness: %s\n", err);
        b->stdout_fd = 0;
        return -1;
    }
    snprintf(b->endpoint, sizeof(b->endpoint), "%s", ready.endpoint);
    return 0;
}

int rt_broker_stop(rt_broker_t *b, int timeout_ms)
{
    if (b->pid <= 0) return -1;
    int rc = relaisd_child_stop(&b->pid, &b->stdout_fd, SIGTERM, timeout_ms, NULL);
    b->stdout_fd = 0;
    return rc;
}

void rt_broker_kill9(rt_broker_t *b)
{
    if (b->pid <= 0) return;
    relaisd_child_stop(&b->pid, &b->stdout_fd, SIGKILL, 10000, NULL);
    b->stdout_fd = 0;
}

/* Lines of the file at path containing needle, counting up to `enough` of them. */
static unsigned log_count(const char *path, const char *needle, unsigned enough)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[4096];
    unsigned n = 0;
    while (n < enough && fgets(line, sizeof(line), f)) n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

unsigned rt_broker_log_count(const rt_broker_t *b, const char *needle)
{
    return log_count(b->log_path, needle, UINT_MAX);
}

int rt_broker_wait_log(rt_broker_t *b, const char *needle, int timeout_ms)
{
    return rt_broker_wait_log_count(b, needle, 1, timeout_ms);
}

int rt_broker_wait_log_count(rt_broker_t *b, const char *needle, unsigned count, int timeout_ms)
{
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in < 0) return -1;
    inotify_add_watch(in, b->log_path, IN_MODIFY);
    int64_t deadline = mono_ms() + timeout_ms;
    int rc = -1;
    for (;;) {
        if (log_count(b->log_path, needle, count) >= count) {
            rc = 0;
            break;
        }
        int left = (int)(deadline - mono_ms());
        if (left <= 0) break;
        struct pollfd p = {.fd = in, .events = POLLIN};
        if (poll(&p, 1, left) > 0) {
            char ev[4096];
            while (read(in, ev, sizeof(ev)) > 0) continue;
        }
    }
    close(in);
    return rc;
}

void rt_broker_cleanup(rt_broker_t *b)
{
    relaisd_child_rmdata(b->data_dir);
    b->data_dir[0] = 0;
}

/* ---- Raw client -------------------------------------------------------------------- */

int rt_client_open_as(rt_client_t *c, const rt_broker_t *b, const char *address)
{
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
    if (!b->insecure) {
        const rt_key_t *k = rt_key_for(b, address);
        if (k == NULL) {
            fprintf(stderr, "harness: %s is not in the test territory\n", address);
            return -1;
        }
        zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, b->server_pub, 41);
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, k->pub, 41);
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, k->sec, 41);
    }
    return zmq_connect(c->sock, b->endpoint) == 0 ? 0 : -1;
}

int rt_client_open_as_rid(rt_client_t *c, const rt_broker_t *b, const char *address,
                          const char *routing_id)
{
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    const rt_key_t *k = b->insecure ? NULL : rt_key_for(b, address);
    if (!b->insecure && k == NULL) return -1;
    if (k != NULL) {
        zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, b->server_pub, 41);
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, k->pub, 41);
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, k->sec, 41);
    }
    return zmq_connect(c->sock, b->endpoint) == 0 ? 0 : -1;
}

int rt_client_open(rt_client_t *c, const char *endpoint)
{
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
    return zmq_connect(c->sock, endpoint) == 0 ? 0 : -1;
}

void rt_client_close(rt_client_t *c)
{
    if (c->sock) zmq_close(c->sock);
    if (c->ctx) zmq_ctx_term(c->ctx);
    c->sock = c->ctx = NULL;
}

int rt_client_send_raw(rt_client_t *c, const void *data, size_t len, bool more)
{
    return zmq_send(c->sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

int rt_client_send(rt_client_t *c, const Relais__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    if (relais_frame_encode(f, &buf, &len) < 0) return -1;
    int rc = rt_client_send_raw(c, buf, len, false);
    free(buf);
    return rc;
}

int rt_client_recv(rt_client_t *c, int timeout_ms, Relais__V1__Frame **out)
{
    *out = NULL;
    if (timeout_ms < 0) timeout_ms = 0; /* zmq_poll would wait forever */
    zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return -1;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    int rc = relais_frame_decode(zmq_msg_data(&m), zmq_msg_size(&m), 64 << 20, out, NULL, 0);
    zmq_msg_close(&m);
    return rc < 0 ? -1 : 0;
}

static void send_ping(rt_client_t *c)
{
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    p.at_ms = relais_now_ms();
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_PING;
    f.ping = &p;
    rt_client_send(c, &f);
}

int rt_client_expect(rt_client_t *c, int kind, int timeout_ms, Relais__V1__Frame **out)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mono_ms());
        if (left <= 0) return -1;
        Relais__V1__Frame *f;
        /* Wait in slices, pinging between them, so that a long wait never looks like a
         * silent (dead) session to a broker with a short heartbeat. */
        if (rt_client_recv(c, left < RT_PING_MS ? left : RT_PING_MS, &f) < 0) {
            if (kind != RELAIS__V1__FRAME__KIND_PONG) send_ping(c);
            continue;
        }
        if (f->kind_case == RELAIS__V1__FRAME__KIND_PONG && kind != RELAIS__V1__FRAME__KIND_PONG) {
            relais_frame_free(&f);
            continue;
        }
        if ((int)f->kind_case == kind) {
            *out = f;
            return 0;
        }
        if (f->kind_case == RELAIS__V1__FRAME__KIND_PING) {
            Relais__V1__Pong p = RELAIS__V1__PONG__INIT;
            Relais__V1__Frame r = RELAIS__V1__FRAME__INIT;
            r.kind_case = RELAIS__V1__FRAME__KIND_PONG;
            r.pong = &p;
            rt_client_send(c, &r);
        }
        relais_frame_free(&f);
    }
}

int rt_client_hello(rt_client_t *c, const char *address, unsigned credit, int timeout_ms)
{
    Relais__V1__Hello h = RELAIS__V1__HELLO__INIT;
    h.protocol_version = RELAIS_PROTOCOL_VERSION;
    h.software = "relais-test";
    h.credit = credit;
    h.address = (char *)address;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    if (rt_client_send(c, &f) < 0) return -1;
    Relais__V1__Frame *w;
    if (rt_client_expect(c, RELAIS__V1__FRAME__KIND_WELCOME, timeout_ms, &w) < 0) return -1;
    relais_frame_free(&w);
    return 0;
}

void rt_env_note(rt_env_t *e, const char *to, const char *text)
{
    memset(e, 0, sizeof(*e));
    relais__v1__envelope__init(&e->env);
    relais__v1__note__init(&e->note);
    relais_uuid7(e->id);
    snprintf(e->text, sizeof(e->text), "%s", text);
    e->note.text = e->text;
    e->to[0] = (char *)to;
    e->env.message_id.data = e->id;
    e->env.message_id.len = RELAIS_MESSAGE_ID_LEN;
    e->env.n_to = 1;
    e->env.to = e->to;
    e->env.created_at_ms = relais_now_ms();
    e->env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    e->env.note = &e->note;
}

int rt_client_submit(rt_client_t *c, rt_env_t *e, int timeout_ms)
{
    Relais__V1__Submit s = RELAIS__V1__SUBMIT__INIT;
    s.envelope = &e->env;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &s;
    if (rt_client_send(c, &f) < 0) return -1;
    Relais__V1__Frame *r;
    if (rt_client_recv(c, timeout_ms, &r) < 0) return -1;
    while (r->kind_case == RELAIS__V1__FRAME__KIND_PONG) {
        relais_frame_free(&r);
        if (rt_client_recv(c, timeout_ms, &r) < 0) return -1;
    }
    int ok = r->kind_case == RELAIS__V1__FRAME__KIND_ACCEPTED &&
             r->accepted->message_id.len == RELAIS_MESSAGE_ID_LEN &&
             memcmp(r->accepted->message_id.data, e->id, RELAIS_MESSAGE_ID_LEN) == 0;
    relais_frame_free(&r);
    return ok ? 0 : -1;
}

int rt_client_ack(rt_client_t *c, const uint8_t *message_id, int outcome, const char *reason)
{
    Relais__V1__Ack a = RELAIS__V1__ACK__INIT;
    a.message_id.data = (uint8_t *)message_id;
    a.message_id.len = RELAIS_MESSAGE_ID_LEN;
    a.outcome = outcome;
    a.reason = (char *)(reason ? reason : "");
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_ACK;
    f.ack = &a;
    return rt_client_send(c, &f);
}

int rt_client_ack_receipt(rt_client_t *c, uint64_t receipt_id)
{
    Relais__V1__Ack a = RELAIS__V1__ACK__INIT;
    a.receipt_id = receipt_id;
    a.outcome = RELAIS__V1__ACK__OUTCOME__PROCESSED;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_ACK;
    f.ack = &a;
    return rt_client_send(c, &f);
}

int rt_client_expect_code(rt_client_t *c, bool rejected, int wire_code, int timeout_ms,
                          char *reason_out)
{
    Relais__V1__Frame *f;
    int64_t deadline = mono_ms() + timeout_ms;
    do {
        if (rt_client_recv(c, (int)(deadline - mono_ms()), &f) < 0) {
            fprintf(stderr, "harness: no answer within %d ms\n", timeout_ms);
            return -1;
        }
        if (f->kind_case != RELAIS__V1__FRAME__KIND_PONG) break;
        relais_frame_free(&f);
    } while (1);
    int code = -1;
    const char *reason = "";
    if (rejected && f->kind_case == RELAIS__V1__FRAME__KIND_REJECTED) {
        code = f->rejected->code;
        reason = f->rejected->reason;
    } else if (!rejected && f->kind_case == RELAIS__V1__FRAME__KIND_ERROR) {
        code = f->error->code;
        reason = f->error->reason;
    } else {
        fprintf(stderr, "harness: expected %s, got %s\n", rejected ? "rejected" : "error",
                relais_frame_kind_name(f->kind_case));
    }
    if (reason_out) snprintf(reason_out, RELAIS_REASON_MAX, "%s", reason);
    if (code != wire_code && code != -1)
        fprintf(stderr, "harness: expected code %d, got %d (%s)\n", wire_code, code, reason);
    relais_frame_free(&f);
    return code == wire_code ? 0 : -1;
}

int rt_client_submit_nowait(rt_client_t *c, rt_env_t *e)
{
    Relais__V1__Submit s = RELAIS__V1__SUBMIT__INIT;
    s.envelope = &e->env;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &s;
    return rt_client_send(c, &f);
}

void rt_suite_start(rt_broker_t *b, const char *const *extra_args)
{
    bool insecure = b->insecure;
    memset(b, 0, sizeof(*b));
    b->insecure = insecure;
    cr_assert_eq(rt_broker_start(b, extra_args, 10000), 0, "relaisd must start");
}

void rt_suite_stop(rt_broker_t *b)
{
    int rc = rt_broker_stop(b, 10000);
    rt_broker_cleanup(b);
    cr_assert_eq(rc, 0, "relaisd must exit 0 after SIGTERM, got %d", rc);
}

rt_client_t rt_session(const rt_broker_t *b, const char *address, unsigned credit)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open_as(&c, b, address), 0);
    cr_assert_eq(rt_client_hello(&c, address, credit, 5000), 0, "Hello as %s", address);
    return c;
}

Relais__V1__Frame *rt_expect_note(rt_client_t *c, const char *text, int timeout_ms)
{
    Relais__V1__Frame *d;
    cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_DELIVER, timeout_ms, &d), 0,
                 "expected delivery of '%s'", text);
    cr_assert_not_null(d->deliver->envelope->note, "a Note");
    cr_assert_str_eq(d->deliver->envelope->note->text, text);
    return d;
}

void rt_benv_init(rt_benv_t *x, int body, const char *to)
{
    memset(x, 0, sizeof(*x));
    relais__v1__envelope__init(&x->e);
    relais_uuid7(x->id);
    x->e.message_id.data = x->id;
    x->e.message_id.len = 16;
    x->to[0] = (char *)to;
    x->e.to = x->to;
    x->e.n_to = 1;
    x->e.body_case = body;
    switch (body) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        relais__v1__appointment_request__init(&x->req);
        x->req.request_id = "req-1";
        x->e.appointment_request = &x->req;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        relais__v1__appointment_offer__init(&x->offer);
        x->offer.request_id = "req-1";
        x->e.appointment_offer = &x->offer;
        break;
    default:
        relais__v1__discharge_notification__init(&x->discharge);
        x->discharge.encounter_id = "enc-1";
        x->e.discharge_notification = &x->discharge;
        break;
    }
}

int rt_submit_code(rt_client_t *c, rt_benv_t *x, char *reason)
{
    Relais__V1__Submit s = RELAIS__V1__SUBMIT__INIT;
    s.envelope = &x->e;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &s;
    cr_assert_eq(rt_client_send(c, &f), 0);
    Relais__V1__Frame *r;
    for (;;) { /* deliveries and receipts may come first: they are not the answer */
        cr_assert_eq(rt_client_recv(c, 5000, &r), 0, "an answer");
        if (r->kind_case == RELAIS__V1__FRAME__KIND_ACCEPTED ||
            r->kind_case == RELAIS__V1__FRAME__KIND_REJECTED)
            break;
        relais_frame_free(&r);
    }
    int code = 0;
    if (r->kind_case == RELAIS__V1__FRAME__KIND_REJECTED) {
        code = r->rejected->code;
        snprintf(reason, RELAIS_REASON_MAX, "%s", r->rejected->reason);
    } else {
        cr_assert_eq(r->kind_case, RELAIS__V1__FRAME__KIND_ACCEPTED, "Accepted or Rejected");
        reason[0] = 0;
    }
    relais_frame_free(&r);
    return code;
}
