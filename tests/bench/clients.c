/*
 * The clients of relais-bench: producer and consumer threads, one DEALER socket each,
 * speaking the Relais protocol by hand, and the accounting that proves nothing was lost.
 *
 * A producer Hellos as staff:bench-pN@bench and submits Note envelopes round-robin to the
 * consumer addresses, keeping at most `window` submissions unanswered (closed loop) or
 * following a rate schedule of absolute deadlines (open loop). Envelopes are encoded once
 * per destination as templates; each submission patches the message id and the send time
 * in place, so the producers spend their CPU on the socket, not on protobuf. A consumer
 * Hellos as rpps:1000000000N with credit `window` and acks every Deliver PROCESSED.
 *
 * Every message id carries its producer and sequence number, and the note text carries
 * the send time (CLOCK_MONOTONIC nanoseconds, shared by every process of the machine), so
 * both latencies come from the message itself. Producers set a bit per message accepted,
 * consumers a bit per message delivered; lost = accepted and never delivered.
 *
 * Against the baseline forwarder the same threads send the same frames behind a routing
 * frame ([dst][payload]), and a producer's window is closed by the consumer's Ack coming
 * back instead of by Accepted.
 *
 * With keys (the default) every socket is a CURVE client with the keypair enrolled for its
 * address, as a production agent is; the broker then takes the identity from the key and
 * the Hello's address only has to agree with it.
 *
 * Sockets wait through ZMQ_FD with ppoll(), so a paced producer wakes at its next deadline
 * to the nanosecond and not to zmq_poll()'s millisecond.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bench.h"
#include "relais/codec.h"

#define SEQ_CAP (1u << 22)       /* messages per producer that the bitmaps can account */
#define RING (1u << 17)          /* send times kept per producer: more than any window */
#define ID_MARK 0xA5             /* placeholder bytes of the message id in a template */
#define TS_DIGITS 20
#define ANSWER_TIMEOUT_NS (30ull * 1000000000u)
#define HANDSHAKE_MS 10000
#define LATE_NS 1000000u         /* a paced send this late counts as late */
#define DRAIN_BATCH 4096

typedef struct tmpl {
    uint8_t *buf;
    size_t len;
    size_t id_off, ts_off;
} tmpl_t;

/* Start line for a group of threads: each reports ready (or failed), then waits for go. */
typedef struct gate {
    unsigned n, ready;
    bool failed, go, abort;
    uint64_t go_ns;
} gate_t;

typedef struct client {
    struct run *run;
    unsigned index;
    bool producer;
    char address[BENCH_ADDR_MAX];
    char rid[16]; /* baseline: routing id the forwarder knows it by */
    pthread_t thread;
    bool created;
    bool failed;
    tmpl_t *tmpl;            /* producer: own copy per destination (patched in place) */
    uint64_t *accepted_bits; /* producer */
    uint64_t *send_ns;       /* producer: ring of send times by sequence */
    uint64_t submitted, accepted, duplicates, rejected, errors, late;
    uint64_t first_ns, last_answer_ns;
    uint64_t delivered, redelivered, dup_deliveries, last_ack_ns; /* consumer */
    hist_t lat;              /* producer: → Accepted; consumer: → Deliver */
} client_t;

struct run {
    run_cfg_t cfg;
    char dest[BENCH_MAX_CLIENTS][BENCH_ADDR_MAX];
    tmpl_t tmpl[BENCH_MAX_CLIENTS];
    _Atomic uint64_t *delivered_bits[BENCH_MAX_CLIENTS]; /* one bitmap per producer */
    _Atomic uint64_t distinct;                           /* messages delivered at least once */
    atomic_bool stop;
    client_t *prod, *cons;
    gate_t pgate, cgate;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t consume_go_ns;
};

/* ---- Start gates ------------------------------------------------------------------- */

static void gate_report(run_t *r, gate_t *g, bool ok)
{
    pthread_mutex_lock(&r->mu);
    g->ready++;
    if (!ok) g->failed = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static bool gate_wait(run_t *r, gate_t *g)
{
    pthread_mutex_lock(&r->mu);
    while (!g->go && !g->abort) pthread_cond_wait(&r->cv, &r->mu);
    bool go = g->go;
    pthread_mutex_unlock(&r->mu);
    return go;
}

/* Main thread: waits for every thread of the gate, then opens it (or aborts it). */
static bool gate_open(run_t *r, gate_t *g)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += HANDSHAKE_MS / 1000 + 1;
    pthread_mutex_lock(&r->mu);
    while (g->ready < g->n && !g->failed)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) break;
    bool ok = g->ready == g->n && !g->failed;
    g->go_ns = bench_now_ns();
    if (ok) g->go = true;
    else g->abort = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!ok) fprintf(stderr, "relais-bench: %u of %u clients ready\n", g->ready, g->n);
    return ok;
}

/* ---- Sockets ----------------------------------------------------------------------- */

static void *client_socket(run_t *r, client_t *c, int *fd)
{
    void *s = zmq_socket(r->cfg.zctx, ZMQ_DEALER);
    if (s == NULL) return NULL;
    int zero = 0, linger = 200;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero));
    if (r->cfg.target == TARGET_BASELINE)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, c->rid, strlen(c->rid));
    if (r->cfg.keys != NULL) {
        const bench_keypair_t *kp =
            c->producer ? &r->cfg.keys->producer[c->index] : &r->cfg.keys->consumer[c->index];
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, r->cfg.keys->broker.pub, 40) < 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp->pub, 40) < 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->sec, 40) < 0) {
            zmq_close(s);
            return NULL;
        }
    }
    size_t len = sizeof(*fd);
    if (zmq_connect(s, r->cfg.endpoint) < 0 || zmq_getsockopt(s, ZMQ_FD, fd, &len) < 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* True when a message can be read now or arrives before deadline_ns. ZMQ_FD only says
 * that the socket's state changed, so ZMQ_EVENTS is asked before and after the wait. */
static bool wait_in(void *s, int fd, uint64_t deadline_ns)
{
    int ev = 0;
    size_t len = sizeof(ev);
    zmq_getsockopt(s, ZMQ_EVENTS, &ev, &len);
    if (ev & ZMQ_POLLIN) return true;
    uint64_t now = bench_now_ns();
    if (now >= deadline_ns) return false;
    uint64_t left = deadline_ns - now;
    struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                          .tv_nsec = (long)(left % 1000000000u)};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ppoll(&p, 1, &ts, NULL);
    len = sizeof(ev);
    zmq_getsockopt(s, ZMQ_EVENTS, &ev, &len);
    return (ev & ZMQ_POLLIN) != 0;
}

static int send_frame(void *s, const Relais__V1__Frame *f, const char *dst)
{
    uint8_t buf[512];
    size_t n = relais__v1__frame__get_packed_size(f);
    if (n > sizeof(buf)) return -1;
    relais__v1__frame__pack(f, buf);
    if (dst != NULL && zmq_send(s, dst, strlen(dst), ZMQ_SNDMORE) < 0) return -1;
    return zmq_send(s, buf, n, 0) < 0 ? -1 : 0;
}

/* Hello → Welcome (Relais) or a one-part echo (baseline), within HANDSHAKE_MS. */
static bool handshake(run_t *r, client_t *c, void *s, int fd)
{
    if (r->cfg.target == TARGET_BASELINE) {
        if (zmq_send(s, "hi", 2, 0) < 0) return false;
    } else {
        Relais__V1__Hello h = RELAIS__V1__HELLO__INIT;
        h.protocol_version = RELAIS_PROTOCOL_VERSION;
        h.software = "relais-bench";
        h.credit = c->producer ? 0 : r->cfg.window;
        h.address = c->address;
        Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
        f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
        f.hello = &h;
        if (send_frame(s, &f, NULL) < 0) return false;
    }
    uint64_t deadline = bench_now_ns() + (uint64_t)HANDSHAKE_MS * 1000000u;
    while (wait_in(s, fd, deadline)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        bool ok = r->cfg.target == TARGET_BASELINE;
        if (!ok) {
            Relais__V1__Frame *f = NULL;
            if (relais_frame_decode(zmq_msg_data(&m), zmq_msg_size(&m), 64u << 20, &f, NULL,
                                    0) == 0) {
                ok = f->kind_case == RELAIS__V1__FRAME__KIND_WELCOME;
                if (f->kind_case == RELAIS__V1__FRAME__KIND_ERROR)
                    fprintf(stderr, "relais-bench: %s refused: %s\n", c->address, f->error->reason);
                relais_frame_free(&f);
            }
        }
        zmq_msg_close(&m);
        if (ok) return true;
    }
    fprintf(stderr, "relais-bench: %s got no Welcome\n", c->address);
    return false;
}

static void say_bye(run_t *r, void *s)
{
    if (r->cfg.target != TARGET_RELAIS) return;
    Relais__V1__Bye b = RELAIS__V1__BYE__INIT;
    b.reason = "benchmark done";
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_BYE;
    f.bye = &b;
    send_frame(s, &f, NULL);
}

/* ---- Message ids and templates ----------------------------------------------------- */

/* UUIDv7 layout (RFC 9562) with the random bits replaced by who and which. */
static void make_id(uint8_t id[16], unsigned tag, unsigned producer, uint32_t seq)
{
    uint64_t ms = (uint64_t)relais_now_ms();
    for (int i = 0; i < 6; i++) id[i] = (uint8_t)(ms >> (40 - 8 * i));
    id[6] = (uint8_t)(0x70 | (tag & 0x0f));
    id[7] = (uint8_t)(tag >> 4);
    id[8] = (uint8_t)(0x80 | (producer & 0x3f));
    id[9] = id[10] = id[11] = 0;
    id[12] = (uint8_t)(seq >> 24);
    id[13] = (uint8_t)(seq >> 16);
    id[14] = (uint8_t)(seq >> 8);
    id[15] = (uint8_t)seq;
}

static bool id_parse(const uint8_t *id, size_t len, unsigned *producer, uint32_t *seq)
{
    if (len != RELAIS_MESSAGE_ID_LEN) return false;
    *producer = id[8] & 0x3f;
    *seq = (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 | (uint32_t)id[14] << 8 | id[15];
    return true;
}

static void put_digits(uint8_t *p, uint64_t v)
{
    for (int i = TS_DIGITS - 1; i >= 0; i--) {
        p[i] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
}

/* A Submit frame to dest whose encoding is `size` bytes (or as near as the varints let
 * it be), with a placeholder id and time to patch. 0 or -1. */
static int build_template(run_t *r, unsigned dest, tmpl_t *t)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    memset(id, ID_MARK, sizeof(id));
    size_t cap = r->cfg.size + 64;
    char *text = malloc(cap);
    if (text == NULL) return -1;
    char *to[1] = {r->dest[dest]};
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id.data = id;
    env.message_id.len = sizeof(id);
    env.n_to = 1;
    env.to = to;
    env.created_at_ms = relais_now_ms();
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    Relais__V1__Submit sub = RELAIS__V1__SUBMIT__INIT;
    sub.envelope = &env;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &sub;
    size_t pad = 0, n = 0;
    for (int iter = 0; iter < 8; iter++) {
        int w = snprintf(text, cap, "t=%0*d ", TS_DIGITS, 0);
        size_t p = pad < cap - (size_t)w - 1 ? pad : cap - (size_t)w - 1;
        memset(text + w, 'x', p);
        text[(size_t)w + p] = '\0';
        note.text = text;
        n = relais__v1__frame__get_packed_size(&f);
        if (n == r->cfg.size) break;
        if (n < r->cfg.size) pad += r->cfg.size - n;
        else pad = pad > n - r->cfg.size ? pad - (n - r->cfg.size) : 0;
    }
    t->buf = malloc(n);
    if (t->buf == NULL) {
        free(text);
        return -1;
    }
    t->len = n;
    relais__v1__frame__pack(&f, t->buf);
    free(text);
    uint8_t *idp = memmem(t->buf, n, id, sizeof(id));
    uint8_t *tsp = memmem(t->buf, n, "t=0000", 6);
    if (idp == NULL || tsp == NULL) return -1;
    t->id_off = (size_t)(idp - t->buf);
    t->ts_off = (size_t)(tsp - t->buf) + 2;
    return 0;
}

/* ---- Producer ---------------------------------------------------------------------- */

static int send_submit(run_t *r, client_t *c, void *s, uint64_t seq, uint64_t t_ns)
{
    unsigned dest = (unsigned)((seq + c->index) % r->cfg.destinations);
    tmpl_t *t = &c->tmpl[dest];
    make_id(t->buf + t->id_off, r->cfg.tag, c->index, (uint32_t)seq);
    put_digits(t->buf + t->ts_off, t_ns);
    if (r->cfg.target == TARGET_BASELINE) {
        char dst[16];
        snprintf(dst, sizeof(dst), "c%u", dest);
        if (zmq_send(s, dst, strlen(dst), ZMQ_SNDMORE) < 0) return -1;
    }
    return zmq_send(s, t->buf, t->len, 0) < 0 ? -1 : 0;
}

/* One answer: Accepted/Rejected/Error from relaisd, a forwarded Ack from the baseline.
 * Returns 1 when it closed a slot of the window, else 0. */
static int on_answer(run_t *r, client_t *c, const void *data, size_t len, uint64_t now)
{
    Relais__V1__Frame *f = NULL;
    if (relais_frame_decode(data, len, 64u << 20, &f, NULL, 0) < 0) {
        c->errors++;
        return 0;
    }
    const ProtobufCBinaryData *id = NULL;
    bool accepted = false;
    switch (f->kind_case) {
    case RELAIS__V1__FRAME__KIND_ACCEPTED:
        id = &f->accepted->message_id;
        accepted = true;
        if (f->accepted->duplicate) c->duplicates++;
        break;
    case RELAIS__V1__FRAME__KIND_ACK:
        id = &f->ack->message_id;
        accepted = true;
        break;
    case RELAIS__V1__FRAME__KIND_REJECTED:
        id = &f->rejected->message_id;
        if (c->rejected++ < 3)
            fprintf(stderr, "relais-bench: %s rejected: %s\n", c->address, f->rejected->reason);
        break;
    case RELAIS__V1__FRAME__KIND_ERROR:
        id = &f->error->message_id;
        if (c->errors++ < 3)
            fprintf(stderr, "relais-bench: %s error: %s\n", c->address, f->error->reason);
        break;
    default:
        break;
    }
    unsigned producer;
    uint32_t seq;
    int closed = 0;
    if (id != NULL && id_parse(id->data, id->len, &producer, &seq) && producer == c->index &&
        seq < c->submitted) {
        uint64_t bit = 1ull << (seq & 63);
        if (!(c->accepted_bits[seq >> 6] & bit)) {
            closed = 1;
            if (accepted) {
                c->accepted_bits[seq >> 6] |= bit;
                c->accepted++;
                hist_add(&c->lat, now - c->send_ns[seq & (RING - 1)]);
            }
            c->last_answer_ns = now;
        }
    }
    relais_frame_free(&f);
    return closed;
}

/* Reads every answer waiting. Returns how many window slots closed. */
static unsigned drain_answers(run_t *r, client_t *c, void *s)
{
    unsigned closed = 0;
    for (int i = 0; i < DRAIN_BATCH; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        if (r->cfg.target == TARGET_BASELINE && zmq_msg_more(&m)) { /* [src] routing frame */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
        }
        closed += (unsigned)on_answer(r, c, zmq_msg_data(&m), zmq_msg_size(&m), bench_now_ns());
        zmq_msg_close(&m);
    }
    return closed;
}

static void *producer_main(void *arg)
{
    client_t *c = arg;
    run_t *r = c->run;
    const run_cfg_t *cfg = &r->cfg;
    int fd = -1;
    void *s = client_socket(r, c, &fd);
    bool ok = s != NULL && handshake(r, c, s, fd);
    gate_report(r, &r->pgate, ok);
    if (!ok || !gate_wait(r, &r->pgate)) {
        c->failed = !ok;
        goto out;
    }
    uint64_t start = r->pgate.go_ns;
    uint64_t end = cfg->duration_s > 0 ? start + (uint64_t)(cfg->duration_s * 1e9) : UINT64_MAX;
    uint64_t limit = cfg->quota && cfg->quota < SEQ_CAP ? cfg->quota : SEQ_CAP;
    uint64_t interval = cfg->rate > 0 ? (uint64_t)(1e9 * cfg->producers / cfg->rate) : 0;
    uint64_t next_due = start + (interval ? interval * c->index / cfg->producers : 0);
    uint64_t inflight = 0;
    c->last_answer_ns = start;
    for (;;) {
        uint64_t now = bench_now_ns();
        bool done_sending = now >= end || c->submitted >= limit;
        if (done_sending && inflight == 0) break;
        while (!done_sending && inflight < cfg->window) {
            uint64_t t = now;
            if (interval) {
                if (now < next_due) break;
                t = next_due;
                next_due += interval;
                if (now - t > LATE_NS) c->late++;
            }
            c->send_ns[c->submitted & (RING - 1)] = t;
            if (send_submit(r, c, s, c->submitted, t) < 0) {
                fprintf(stderr, "relais-bench: send failed: %s\n", zmq_strerror(errno));
                c->failed = true;
                goto out;
            }
            if (c->submitted == 0) c->first_ns = t;
            c->submitted++;
            inflight++;
            now = bench_now_ns();
            done_sending = now >= end || c->submitted >= limit;
        }
        unsigned closed = drain_answers(r, c, s);
        if (closed > 0) {
            inflight -= closed < inflight ? closed : inflight;
            continue;
        }
        now = bench_now_ns();
        if (inflight > 0 && now - c->last_answer_ns > ANSWER_TIMEOUT_NS) {
            fprintf(stderr, "relais-bench: %s: no answer for 30 s with %llu unanswered\n",
                    c->address, (unsigned long long)inflight);
            c->failed = true;
            break;
        }
        bool can_send = !done_sending && inflight < cfg->window;
        wait_in(s, fd, can_send && interval ? next_due : now + 100000000u);
    }
out:
    if (s != NULL) {
        say_bye(r, s);
        zmq_close(s);
    }
    return NULL;
}

/* ---- Consumer ---------------------------------------------------------------------- */

static void on_delivery(run_t *r, client_t *c, void *s, const char *src, const void *data,
                        size_t len, uint64_t now)
{
    Relais__V1__Frame *f = NULL;
    if (relais_frame_decode(data, len, 64u << 20, &f, NULL, 0) < 0) return;
    const Relais__V1__Envelope *env = NULL;
    if (f->kind_case == RELAIS__V1__FRAME__KIND_DELIVER) {
        env = f->deliver->envelope;
        if (f->deliver->attempt > 1) c->redelivered++;
    } else if (f->kind_case == RELAIS__V1__FRAME__KIND_SUBMIT) {
        env = f->submit->envelope;
    } else if (f->kind_case == RELAIS__V1__FRAME__KIND_ERROR) {
        fprintf(stderr, "relais-bench: %s error: %s\n", c->address, f->error->reason);
    }
    unsigned producer;
    uint32_t seq;
    if (env != NULL && id_parse(env->message_id.data, env->message_id.len, &producer, &seq) &&
        producer < r->cfg.producers && seq < SEQ_CAP) {
        if (env->body_case == RELAIS__V1__ENVELOPE__BODY_NOTE && env->note->text != NULL &&
            strncmp(env->note->text, "t=", 2) == 0) {
            uint64_t t = strtoull(env->note->text + 2, NULL, 10);
            if (t <= now) hist_add(&c->lat, now - t);
        }
        uint64_t bit = 1ull << (seq & 63);
        uint64_t old = atomic_fetch_or(&r->delivered_bits[producer][seq >> 6], bit);
        if (old & bit) {
            c->dup_deliveries++;
        } else {
            c->delivered++;
            atomic_fetch_add(&r->distinct, 1);
        }
        Relais__V1__Ack a = RELAIS__V1__ACK__INIT;
        a.message_id = env->message_id;
        a.outcome = RELAIS__V1__ACK__OUTCOME__PROCESSED;
        Relais__V1__Frame af = RELAIS__V1__FRAME__INIT;
        af.kind_case = RELAIS__V1__FRAME__KIND_ACK;
        af.ack = &a;
        if (send_frame(s, &af, src) == 0) c->last_ack_ns = bench_now_ns();
    }
    relais_frame_free(&f);
}

static unsigned drain_deliveries(run_t *r, client_t *c, void *s)
{
    unsigned n = 0;
    for (; n < DRAIN_BATCH; n++) {
        zmq_msg_t m;
        char src[16] = "";
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        if (r->cfg.target == TARGET_BASELINE && zmq_msg_more(&m)) {
            snprintf(src, sizeof(src), "%.*s", (int)zmq_msg_size(&m), (char *)zmq_msg_data(&m));
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
        }
        on_delivery(r, c, s, src[0] ? src : NULL, zmq_msg_data(&m), zmq_msg_size(&m),
                    bench_now_ns());
        zmq_msg_close(&m);
    }
    return n;
}

static void *consumer_main(void *arg)
{
    client_t *c = arg;
    run_t *r = c->run;
    int fd = -1;
    void *s = client_socket(r, c, &fd);
    bool ok = s != NULL && handshake(r, c, s, fd);
    gate_report(r, &r->cgate, ok);
    if (!ok || !gate_wait(r, &r->cgate)) {
        c->failed = !ok;
        goto out;
    }
    for (;;) {
        if (drain_deliveries(r, c, s) > 0) continue;
        if (atomic_load(&r->stop)) break;
        wait_in(s, fd, bench_now_ns() + 50000000u);
    }
out:
    if (s != NULL) {
        say_bye(r, s);
        zmq_close(s);
    }
    return NULL;
}

/* ---- Runs -------------------------------------------------------------------------- */

int run_new(run_t **out, const run_cfg_t *cfg)
{
    if (cfg->producers == 0 || cfg->producers > BENCH_MAX_CLIENTS || cfg->destinations == 0 ||
        cfg->destinations > BENCH_MAX_CLIENTS || cfg->consumers > cfg->destinations ||
        cfg->window == 0 || cfg->window >= RING / 2)
        return -1;
    run_t *r = calloc(1, sizeof(*r));
    if (r == NULL) return -1;
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->prod = calloc(cfg->producers, sizeof(client_t));
    r->cons = calloc(cfg->destinations, sizeof(client_t));
    if (r->prod == NULL || r->cons == NULL) goto err;
    for (unsigned d = 0; d < cfg->destinations; d++) {
        bench_consumer_address(d, r->dest[d]);
        if (build_template(r, d, &r->tmpl[d]) < 0) goto err;
        client_t *c = &r->cons[d];
        c->run = r;
        c->index = d;
        snprintf(c->address, sizeof(c->address), "%s", r->dest[d]);
        snprintf(c->rid, sizeof(c->rid), "c%u", d);
    }
    for (unsigned p = 0; p < cfg->producers; p++) {
        client_t *c = &r->prod[p];
        c->run = r;
        c->index = p;
        c->producer = true;
        bench_producer_address(p, c->address);
        snprintf(c->rid, sizeof(c->rid), "p%u", p);
        c->tmpl = calloc(cfg->destinations, sizeof(tmpl_t));
        c->accepted_bits = calloc(SEQ_CAP / 64, sizeof(uint64_t));
        c->send_ns = calloc(RING, sizeof(uint64_t));
        r->delivered_bits[p] = calloc(SEQ_CAP / 64, sizeof(uint64_t));
        if (c->tmpl == NULL || c->accepted_bits == NULL || c->send_ns == NULL ||
            r->delivered_bits[p] == NULL)
            goto err;
        for (unsigned d = 0; d < cfg->destinations; d++) {
            c->tmpl[d] = r->tmpl[d];
            c->tmpl[d].buf = malloc(r->tmpl[d].len);
            if (c->tmpl[d].buf == NULL) goto err;
            memcpy(c->tmpl[d].buf, r->tmpl[d].buf, r->tmpl[d].len);
        }
    }
    *out = r;
    return 0;
err:
    run_free(&r);
    return -1;
}

static void join_all(client_t *cs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (cs[i].created) {
            pthread_join(cs[i].thread, NULL);
            cs[i].created = false;
        }
}

static int start_group(run_t *r, client_t *cs, unsigned n, gate_t *g, void *(*fn)(void *))
{
    g->n = n;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&cs[i].thread, NULL, fn, &cs[i]) != 0) {
            g->n = i;
            break;
        }
        cs[i].created = true;
    }
    if (g->n != n) gate_report(r, g, false);
    return gate_open(r, g) ? 0 : -1;
}

int run_consume_start(run_t *r)
{
    atomic_store(&r->stop, false);
    if (start_group(r, r->cons, r->cfg.consumers, &r->cgate, consumer_main) < 0) {
        join_all(r->cons, r->cfg.consumers);
        return -1;
    }
    r->consume_go_ns = r->cgate.go_ns;
    return 0;
}

int run_produce(run_t *r)
{
    int rc = start_group(r, r->prod, r->cfg.producers, &r->pgate, producer_main);
    join_all(r->prod, r->cfg.producers);
    for (unsigned p = 0; p < r->cfg.producers; p++)
        if (r->prod[p].failed) rc = -1;
    return rc;
}

int run_consume_wait(run_t *r, int idle_ms, void (*sample)(void *ud), void *ud)
{
    uint64_t expected = 0;
    for (unsigned p = 0; p < r->cfg.producers; p++) expected += r->prod[p].accepted;
    uint64_t last = atomic_load(&r->distinct), last_change = bench_now_ns(), next_sample = 0;
    int rc = 0;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (sample != NULL && now >= next_sample) {
            sample(ud);
            next_sample = now + 50000000u;
        }
        uint64_t got = atomic_load(&r->distinct);
        if (got >= expected) break;
        if (got != last) {
            last = got;
            last_change = now;
        } else if (now - last_change > (uint64_t)idle_ms * 1000000u) {
            fprintf(stderr, "relais-bench: deliveries stopped at %llu of %llu\n",
                    (unsigned long long)got, (unsigned long long)expected);
            rc = -1;
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
        nanosleep(&ts, NULL); /* a monitor's poll interval, not a synchronisation */
    }
    if (sample != NULL) sample(ud);
    atomic_store(&r->stop, true);
    join_all(r->cons, r->cfg.consumers);
    for (unsigned i = 0; i < r->cfg.consumers; i++)
        if (r->cons[i].failed) rc = -1;
    return rc;
}

void run_result(run_t *r, run_result_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t first = UINT64_MAX, last_answer = 0, last_ack = 0;
    for (unsigned p = 0; p < r->cfg.producers; p++) {
        client_t *c = &r->prod[p];
        out->submitted += c->submitted;
        out->accepted += c->accepted;
        out->duplicates += c->duplicates;
        out->rejected += c->rejected;
        out->errors += c->errors;
        out->late_sends += c->late;
        if (c->submitted && c->first_ns < first) first = c->first_ns;
        if (c->last_answer_ns > last_answer) last_answer = c->last_answer_ns;
        hist_merge(&out->accepted_lat, &c->lat);
        for (uint64_t w = 0; w < SEQ_CAP / 64; w++)
            out->lost += (uint64_t)__builtin_popcountll(
                c->accepted_bits[w] & ~atomic_load(&r->delivered_bits[p][w]));
    }
    for (unsigned i = 0; i < r->cfg.consumers; i++) {
        client_t *c = &r->cons[i];
        out->delivered += c->delivered;
        out->redelivered += c->redelivered;
        out->dup_deliveries += c->dup_deliveries;
        if (c->last_ack_ns > last_ack) last_ack = c->last_ack_ns;
        hist_merge(&out->delivered_lat, &c->lat);
    }
    if (first != UINT64_MAX) {
        if (last_answer > first) out->produce_s = (double)(last_answer - first) / 1e9;
        if (last_ack > first) out->e2e_s = (double)(last_ack - first) / 1e9;
    }
    if (r->consume_go_ns && last_ack > r->consume_go_ns)
        out->consume_s = (double)(last_ack - r->consume_go_ns) / 1e9;
}

void run_free(run_t **rp)
{
    if (rp == NULL || *rp == NULL) return;
    run_t *r = *rp;
    for (unsigned d = 0; d < BENCH_MAX_CLIENTS; d++) free(r->tmpl[d].buf);
    for (unsigned p = 0; r->prod != NULL && p < r->cfg.producers; p++) {
        client_t *c = &r->prod[p];
        for (unsigned d = 0; c->tmpl != NULL && d < r->cfg.destinations; d++) free(c->tmpl[d].buf);
        free(c->tmpl);
        free(c->accepted_bits);
        free(c->send_ns);
        free((void *)r->delivered_bits[p]);
    }
    free(r->prod);
    free(r->cons);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    *rp = NULL;
}
