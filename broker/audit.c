/*
 * The audit journal's machinery (audit.h): queueing on the callers' threads, chaining,
 * appending and syncing on one writer thread, and opening, which resumes the chain and
 * repairs a torn tail. The line format itself is audit_line.c's.
 *
 * The chain is computed by the writer thread, in queue order, so callers never contend on
 * a hash: audit_record formats the middle of the line (everything but seq, prev and hash)
 * and the writer wraps it. The writer writes whatever it finds queued as soon as it wakes,
 * and syncs at most every AUDIT_SYNC_MS, so a crash of the process loses only what sat in
 * the queue, and a power cut at most the last interval's lines. The chain state advances only when a write succeeded; a failed
 * write is cut back off the file (ftruncate to the last good size) and retried with the same
 * seq and prev, so the file never holds half a batch followed by more records. The file is
 * opened O_APPEND, which keeps it compatible with `chattr +a` for everything but the repair
 * of a torn tail.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "audit.h"
#include "relais/errors.h"
#include "relais/log.h"

#define HASH_LEN AUDIT_HASH_LEN
#define NS_PER_MS 1000000ULL

static const char *const kind_names[AUDIT_KIND_COUNT] = {
    [AUDIT_BROKER_START] = "broker.start",
    [AUDIT_BROKER_STOP] = "broker.stop",
    [AUDIT_DIRECTORY_RELOAD] = "directory.reload",
    [AUDIT_SESSION_OPEN] = "session.open",
    [AUDIT_SESSION_REFUSED] = "session.refused",
    [AUDIT_SESSION_CLOSE] = "session.close",
    [AUDIT_SUBMIT_ACCEPTED] = "submit.accepted",
    [AUDIT_SUBMIT_REJECTED] = "submit.rejected",
    [AUDIT_SUBMIT_DUPLICATE] = "submit.duplicate",
    [AUDIT_DELIVER] = "deliver",
    [AUDIT_ACK] = "ack",
    [AUDIT_EXPIRE] = "expire",
    [AUDIT_REFUSE] = "refuse",
    [AUDIT_RECEIPT] = "receipt",
    [AUDIT_LOST] = "audit.lost",
    [AUDIT_REPAIR] = "audit.repair",
    [AUDIT_SESSION_MISMATCH] = "session.mismatch",
    [AUDIT_AUTH_REFUSALS] = "auth.refusals",
    [AUDIT_REDELIVER] = "redeliver",
    [AUDIT_CLAIM] = "claim",
    [AUDIT_REPLAY] = "deadletter.replay",
    [AUDIT_PURGE] = "deadletter.purge",
    [AUDIT_ROTATE] = "audit.rotate",
    [AUDIT_RETENTION] = "audit.retention",
};

const char *audit_kind_name(audit_kind_t kind)
{
    if ((int)kind <= 0 || kind >= AUDIT_KIND_COUNT) return NULL;
    return kind_names[kind];
}

struct audit {
    char *path;
    int fd;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t wake;   /* the writer: records queued, a sync asked, or quitting */
    uv_cond_t room;   /* recorders: the queue went below its bound */
    uv_cond_t synced; /* audit_sync callers: sync_done moved */

    /* Shared, under mu. The queue holds the middles of the lines to write (everything but
     * seq, prev and hash), each ended by '\n', which an escaped record never contains: one
     * buffer rather than a node per record, so recording is a memcpy under the lock and the
     * writer takes a whole batch by swapping buffers. */
    char *queue;
    size_t queue_len, queue_cap;
    size_t queued_bytes; /* queue_len plus what the writer took and has not written */
    bool quit;
    bool writer_waiting; /* the writer sleeps on wake: a record must signal it */
    int err;             /* nonzero while records cannot be written (they wait queued) */
    bool broken;         /* a failure retrying cannot fix; lasts until the journal reopens */
    uint64_t lost;       /* events refused since the last one recorded */
    uint64_t lost_by_kind[AUDIT_KIND_COUNT];
    uint64_t sync_req, sync_done;
    int sync_result;
    uint64_t queued_records;  /* records ever queued: the position audit_position() gives */
    uint64_t durable_records; /* of those, written and fdatasync()ed */
    uint64_t durable_want;    /* a position someone waits to see durable: sync promptly */
    uv_mutex_t notify_mu;     /* held while notify runs, and to change it */
    audit_notify_fn notify;   /* called by the writer when durable_records moved */
    void *notify_ud;
    audit_notify_fn full;     /* called by the writer when a write meets a full disk */
    void *full_ud;

    /* The writer thread's own (and audit_open's, before the thread starts). */
    char *pending; /* taken from the queue, not written yet */
    size_t pending_len, pending_cap;
    char *out; /* the lines being written */
    uint64_t seq;
    uint8_t hash[HASH_LEN];
    uint64_t written_records; /* records written to the file (not necessarily synced) */
    bool disk_full;           /* the last failed write met a full disk */
    off_t rotate_bytes;       /* rotate once the file is this large (0: never) */
    off_t size; /* file size after the last good write */
    bool dirty; /* written since the last fdatasync */
    uint64_t last_sync_ns;
    uint64_t retry_at_ns; /* after a failed write: not before */
};

static void sync_dir(const char *path);

/* The writer appends lines to out and writes them whenever this much has gathered. */
#define OUT_CHUNK (1u << 20)
#define OUT_CAP (OUT_CHUNK + 2 * AUDIT_LINE_MAX)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the writer thread -------------------------------------------------------------- */

static size_t count_records(const char *text, size_t len)
{
    size_t n = 0;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++) n++;
    return n;
}

static int write_all(int fd, const char *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        off += (size_t)w;
    }
    return 0;
}

/* Chains and appends the pending records; on success the chain state moves on. On failure
 * the file is cut back to its size before the batch (when that fails too, *broken is set)
 * and the chain state is left as it was, so the retry writes the same lines. Runs without
 * the lock: only this thread touches the chain and the pending records. */
static int write_pending(audit_t *a, bool *broken)
{
    uint64_t seq = a->seq;
    uint8_t hash[HASH_LEN];
    memcpy(hash, a->hash, HASH_LEN);
    off_t written = 0;
    int rc = 0;
    audit_buf_t o = {a->out, 0, OUT_CAP, true};
    const char *p = a->pending, *end = a->pending + a->pending_len;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        audit__wrap_line(&o, ++seq, p, (size_t)(nl - p) + 1, hash);
        assert(o.ok); /* OUT_CAP leaves room for two lines past OUT_CHUNK */
        p = nl + 1;
        if (o.pos >= OUT_CHUNK || p == end) {
            rc = write_all(a->fd, o.buf, o.pos);
            written += (off_t)o.pos;
            o.pos = 0;
        }
    }
    if (rc < 0) {
        a->disk_full = rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG;
        RLOG(RELAIS_LOG_ERROR, "audit", "cannot append to %s: %s", a->path, relais_strerror(rc));
        if (ftruncate(a->fd, a->size) < 0) {
            RLOG(RELAIS_LOG_ERROR, "audit",
                 "cannot cut a failed write back off %s (%s): the journal stops until relaisd "
                 "restarts and repairs it",
                 a->path, strerror(errno));
            *broken = true;
        }
        return RELAIS_ESTORE;
    }
    a->written_records += seq - a->seq;
    a->seq = seq;
    memcpy(a->hash, hash, HASH_LEN);
    a->size += written;
    a->dirty = true;
    return 0;
}

static int sync_file(audit_t *a)
{
    a->last_sync_ns = uv_hrtime();
    if (fdatasync(a->fd) < 0) {
        /* After a failed fdatasync the kernel may have dropped the dirty pages: what was
         * written may be gone without another error. Retrying would only hide that. */
        RLOG(RELAIS_LOG_ERROR, "audit", "fdatasync of %s failed: %s; the journal stops", a->path,
             strerror(errno));
        return RELAIS_ESTORE;
    }
    a->dirty = false;
    return 0;
}

/* Under the lock: moves the queue behind the pending records (a swap when none is
 * pending, which is the rule: pending records remain only while writes fail). */
static void take_queue(audit_t *a)
{
    if (a->queue_len == 0) return;
    if (a->pending_len == 0) {
        char *t = a->pending;
        size_t tcap = a->pending_cap;
        a->pending = a->queue;
        a->pending_cap = a->queue_cap;
        a->pending_len = a->queue_len;
        a->queue = t;
        a->queue_cap = tcap;
        a->queue_len = 0;
        return;
    }
    if (a->pending_len + a->queue_len > a->pending_cap) {
        size_t ncap = a->pending_len + a->queue_len;
        char *n = realloc(a->pending, ncap);
        if (n == NULL) return; /* taken at the next turn */
        a->pending = n;
        a->pending_cap = ncap;
    }
    memcpy(a->pending + a->pending_len, a->queue, a->queue_len);
    a->pending_len += a->queue_len;
    a->queue_len = 0;
}

/*
 * Closes the current file as PATH.<last seq, 20 digits> (so that names sort as the chain
 * runs) and opens a new PATH; the chain goes on: the new file's first record has the next seq
 * and the last record's hash as its prev. Writer thread, without the lock; the file was
 * written and synced. On failure the current file stays, and rotation is tried again later.
 */
static void rotate(audit_t *a)
{
    if (sync_file(a) < 0) return;
    size_t n = strlen(a->path) + 32;
    char *old = malloc(n);
    if (old == NULL) return;
    snprintf(old, n, "%s.%020" PRIu64, a->path, a->seq);
    /* The old file keeps its descriptor until the new one is open: whatever fails, records
     * still go to a file of the chain, and no record is ever written twice. */
    int fd = -1;
    if (rename(a->path, old) == 0) {
        fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && rename(old, a->path) < 0)
            RLOG(RELAIS_LOG_ERROR, "audit", "%s is now %s", a->path, old);
    }
    if (fd < 0) {
        RLOG(RELAIS_LOG_ERROR, "audit", "cannot rotate %s: %s; it grows on", a->path,
             strerror(errno));
        free(old);
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        RLOG(RELAIS_LOG_WARN, "audit", "cannot lock the new %s: %s", a->path, strerror(errno));
    close(a->fd);
    a->fd = fd;
    a->size = 0;
    sync_dir(a->path);
    /* The new file opens with a record naming the one before: a set whose oldest file was
     * removed by retention starts at such a record, and only there may the chain start
     * mid-way (relaisctl audit verify). */
    const char *base = strrchr(old, '/');
    audit_event_t ev = {.kind = AUDIT_ROTATE, .outcome = base ? base + 1 : old};
    char text[AUDIT_LINE_MAX];
    size_t len = audit__format_event(text, sizeof(text), &ev, kind_names[AUDIT_ROTATE], wall_ms());
    if (len > 0 && a->pending_len == 0 && a->pending_cap < len) {
        char *grown = realloc(a->pending, len);
        if (grown != NULL) {
            a->pending = grown;
            a->pending_cap = len;
        }
    }
    if (len > 0 && a->pending_len == 0 && a->pending_cap >= len) {
        memcpy(a->pending, text, len);
        a->pending_len = len;
        bool broken = false;
        if (write_pending(a, &broken) == 0) {
            uv_mutex_lock(&a->mu);
            a->queued_records++; /* counted as if queued: positions stay aligned */
            uv_mutex_unlock(&a->mu);
        }
        a->pending_len = 0;
    }
    RLOG(RELAIS_LOG_INFO, "audit", "rotated: %s, the chain goes on in %s at seq %" PRIu64, old,
         a->path, a->seq + 1);
    free(old);
}

static void writer_main(void *arg)
{
    audit_t *a = arg;
    uv_mutex_lock(&a->mu);
    for (;;) {
        /* Take what is queued; a sync asked now covers exactly these. */
        take_queue(a);
        uint64_t want_sync = a->sync_req;
        bool sync_asked = want_sync > a->sync_done;
        uint64_t now = uv_hrtime();

        if (a->pending_len > 0 && !a->broken &&
            (a->err == 0 || now >= a->retry_at_ns || sync_asked || a->quit)) {
            bool broken = false;
            uv_mutex_unlock(&a->mu);
            int rc = write_pending(a, &broken);
            uv_mutex_lock(&a->mu);
            if (rc == 0) {
                a->queued_bytes -= a->pending_len;
                a->pending_len = 0;
                uv_cond_broadcast(&a->room);
                if (a->rotate_bytes > 0 && a->size >= a->rotate_bytes) {
                    uv_mutex_unlock(&a->mu);
                    rotate(a);
                    uv_mutex_lock(&a->mu);
                }
                if (a->err != 0) RLOG(RELAIS_LOG_WARN, "audit", "%s is writable again", a->path);
                a->err = 0;
            } else {
                a->err = rc;
                a->broken = broken;
                a->retry_at_ns = uv_hrtime() + AUDIT_SYNC_MS * NS_PER_MS;
                if (a->disk_full) {
                    uv_mutex_unlock(&a->mu);
                    uv_mutex_lock(&a->notify_mu);
                    if (a->full != NULL) a->full(a->full_ud);
                    uv_mutex_unlock(&a->notify_mu);
                    uv_mutex_lock(&a->mu);
                }
            }
        }
        bool waited_for = a->durable_want > a->durable_records;
        if (a->dirty && !a->broken &&
            (sync_asked || waited_for || a->quit ||
             now - a->last_sync_ns >= AUDIT_SYNC_MS * NS_PER_MS)) {
            uint64_t written = a->written_records;
            uv_mutex_unlock(&a->mu);
            int rc = sync_file(a);
            uv_mutex_lock(&a->mu);
            if (rc < 0) {
                a->err = rc;
                a->broken = true;
            } else if (written > a->durable_records) {
                a->durable_records = written;
                uv_mutex_unlock(&a->mu);
                uv_mutex_lock(&a->notify_mu);
                if (a->notify != NULL) a->notify(a->notify_ud);
                uv_mutex_unlock(&a->notify_mu);
                uv_mutex_lock(&a->mu);
            }
        }
        if (sync_asked) {
            a->sync_done = want_sync;
            a->sync_result = a->pending_len > 0 || a->broken ? a->err : 0;
            uv_cond_broadcast(&a->synced);
        }
        if (a->pending_len > 0 && (a->broken || a->quit)) {
            /* These were accepted by audit_record: say how many never reached the file. */
            RLOG(RELAIS_LOG_ERROR, "audit", "%zu audit records lost: %s cannot be written",
                 count_records(a->pending, a->pending_len), a->path);
            a->queued_bytes -= a->pending_len;
            a->pending_len = 0;
            uv_cond_broadcast(&a->room);
        }
        if (a->queue_len > 0 || a->sync_req > a->sync_done) continue;
        if (a->durable_want > a->durable_records && a->dirty && !a->broken) continue;
        if (a->quit && a->pending_len == 0 && (!a->dirty || a->broken)) break;

        uint64_t wait_ns = 0;
        now = uv_hrtime();
        if (a->pending_len > 0)
            wait_ns = a->retry_at_ns > now ? a->retry_at_ns - now : 0;
        else if (a->dirty && !a->broken)
            wait_ns = a->last_sync_ns + AUDIT_SYNC_MS * NS_PER_MS > now
                          ? a->last_sync_ns + AUDIT_SYNC_MS * NS_PER_MS - now
                          : 0;
        a->writer_waiting = true;
        if (wait_ns > 0)
            uv_cond_timedwait(&a->wake, &a->mu, wait_ns);
        else if (a->pending_len == 0 && (!a->dirty || a->broken) && !a->quit)
            uv_cond_wait(&a->wake, &a->mu);
        a->writer_waiting = false;
    }
    uv_mutex_unlock(&a->mu);
}

/* ---- recording ---------------------------------------------------------------------- */

/* Under the lock: appends one record's middle to the queue. 0 or -ENOMEM. */
static int queue_put(audit_t *a, const char *text, size_t len)
{
    if (a->queue_len + len > a->queue_cap) {
        size_t ncap = a->queue_cap ? a->queue_cap : 64 * 1024;
        while (ncap < a->queue_len + len) ncap *= 2;
        char *n = realloc(a->queue, ncap);
        if (n == NULL) return -ENOMEM;
        a->queue = n;
        a->queue_cap = ncap;
    }
    memcpy(a->queue + a->queue_len, text, len);
    a->queue_len += len;
    a->queued_bytes += len;
    return 0;
}

/* Under the lock: queues, before the next record, one naming the events that could not be
 * journaled since the last one: how many of each kind ("deliver=151 ack=101"). */
static void queue_lost(audit_t *a)
{
    char kinds[AUDIT_FIELD_MAX], text[AUDIT_LINE_MAX];
    size_t at = 0;
    kinds[0] = '\0';
    for (int k = 1; k < AUDIT_KIND_COUNT; k++) {
        if (a->lost_by_kind[k] == 0 || at >= sizeof(kinds) - 1) continue;
        int n = snprintf(kinds + at, sizeof(kinds) - at, "%s%s=%" PRIu64, at ? " " : "",
                         kind_names[k], a->lost_by_kind[k]);
        if (n > 0) at += (size_t)n;
    }
    audit_event_t ev = {
        .kind = AUDIT_LOST, .outcome = kinds, .code = RELAIS_ESTORE, .count = a->lost};
    size_t len = audit__format_event(text, sizeof(text), &ev, kind_names[AUDIT_LOST], wall_ms());
    if (queue_put(a, text, len) == 0) { /* else tried again at the next record */
        a->queued_records++;
        a->lost = 0;
        memset(a->lost_by_kind, 0, sizeof(a->lost_by_kind));
    }
}

static void log_refused(const char *name, const audit_event_t *ev, const char *why)
{
    RLOG(RELAIS_LOG_ERROR, "audit", "event not journaled: event=%s actor=%s to=%s: %s", name,
         ev->actor ? ev->actor : "-", ev->to ? ev->to : "-", why);
}

int audit_record(audit_t *a, const audit_event_t *ev)
{
    const char *name = audit_kind_name(ev->kind);
    if (name == NULL) return RELAIS_EINVALID;
    char text[AUDIT_LINE_MAX];
    size_t len =
        audit__format_event(text, sizeof(text), ev, name, ev->at_ms != 0 ? ev->at_ms : wall_ms());
    if (len == 0) return RELAIS_EINTERNAL;

    uv_mutex_lock(&a->mu);
    uint64_t deadline = 0;
    while (a->err == 0 && !a->quit && a->queued_bytes + len > AUDIT_QUEUE_MAX_BYTES) {
        uint64_t now = uv_hrtime();
        if (deadline == 0) deadline = now + AUDIT_BLOCK_MS * NS_PER_MS;
        if (now >= deadline) break;
        uv_cond_timedwait(&a->room, &a->mu, deadline - now);
    }
    /* While the file cannot be written (a full disk), records wait in the queue and the
     * writer retries: they reach the file when it can be written again. Only a full queue
     * or a journal that cannot recover loses a record, and the loss is itself recorded. */
    int rc = RELAIS_ESTORE;
    const char *why = NULL;
    if (a->broken) {
        why = "the journal cannot be written";
    } else if (a->quit) {
        why = "the journal is closing";
    } else if (a->queued_bytes + len > AUDIT_QUEUE_MAX_BYTES) {
        why = "the writer is too far behind (queue full)";
    } else {
        if (a->lost > 0) queue_lost(a);
        rc = queue_put(a, text, len);
        if (rc == 0) a->queued_records++;
        why = "out of memory";
    }
    if (rc == 0) {
        /* A writer at work takes this record with the others: waking it costs a system
         * call, which the broker loop should not pay for every record. */
        if (a->writer_waiting) {
            a->writer_waiting = false;
            uv_cond_signal(&a->wake);
        }
    } else {
        a->lost++;
        a->lost_by_kind[ev->kind]++;
    }
    uv_mutex_unlock(&a->mu);
    if (rc != 0) log_refused(name, ev, why);
    return rc;
}

uint64_t audit_position(audit_t *a)
{
    uv_mutex_lock(&a->mu);
    uint64_t pos = a->queued_records;
    uv_mutex_unlock(&a->mu);
    return pos;
}

uint64_t audit_durable(audit_t *a)
{
    uv_mutex_lock(&a->mu);
    uint64_t pos = a->durable_records;
    uv_mutex_unlock(&a->mu);
    return pos;
}

void audit_want_durable(audit_t *a, uint64_t position)
{
    uv_mutex_lock(&a->mu);
    if (position > a->durable_want) {
        a->durable_want = position;
        if (a->writer_waiting) {
            a->writer_waiting = false;
            uv_cond_signal(&a->wake);
        }
    }
    uv_mutex_unlock(&a->mu);
}

void audit_on_durable(audit_t *a, audit_notify_fn fn, void *ud)
{
    /* Under notify_mu: once this returns, no call of the previous notifier is running. */
    uv_mutex_lock(&a->notify_mu);
    a->notify = fn;
    a->notify_ud = ud;
    uv_mutex_unlock(&a->notify_mu);
}

void audit_set_rotation(audit_t *a, uint64_t bytes)
{
    uv_mutex_lock(&a->mu);
    a->rotate_bytes = (off_t)bytes;
    uv_mutex_unlock(&a->mu);
}

void audit_on_full(audit_t *a, audit_notify_fn fn, void *ud)
{
    uv_mutex_lock(&a->notify_mu);
    a->full = fn;
    a->full_ud = ud;
    uv_mutex_unlock(&a->notify_mu);
}

bool audit_healthy(audit_t *a)
{
    uv_mutex_lock(&a->mu);
    bool ok = a->err == 0 && !a->broken && a->lost == 0 &&
              a->queued_bytes < AUDIT_QUEUE_MAX_BYTES / 2;
    uv_mutex_unlock(&a->mu);
    return ok;
}

int audit_sync(audit_t *a)
{
    uv_mutex_lock(&a->mu);
    uint64_t ticket = ++a->sync_req;
    uv_cond_signal(&a->wake);
    while (a->sync_done < ticket) uv_cond_wait(&a->synced, &a->mu);
    int rc = a->sync_result;
    uv_mutex_unlock(&a->mu);
    return rc;
}

/* ---- opening ------------------------------------------------------------------------ */

static int read_at(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO; /* shorter than fstat said: someone else is at it */
        got += (size_t)r;
    }
    return 0;
}

/* The offset just past the last '\n' before end (0 if none), scanning back in chunks. */
static int find_line_end(int fd, off_t end, off_t *out)
{
    char buf[8192];
    while (end > 0) {
        size_t n = end > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)end;
        int rc = read_at(fd, buf, n, end - (off_t)n);
        if (rc < 0) return rc;
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                *out = end - (off_t)n + (off_t)i;
                return 0;
            }
        }
        end -= (off_t)n;
    }
    *out = 0;
    return 0;
}

/* Reads the chain state from the file's last complete line, and cuts a torn tail off. */
static int resume_chain(audit_t *a, off_t size, off_t *torn, char *reason, size_t reason_len)
{
    off_t keep;
    int rc = find_line_end(a->fd, size, &keep);
    if (rc < 0) goto io;
    *torn = size - keep;
    if (keep > 0) {
        off_t start;
        rc = find_line_end(a->fd, keep - 1, &start);
        if (rc < 0) goto io;
        size_t len = (size_t)(keep - 1 - start);
        audit_entry_t e;
        audit_line_status_t st = AUDIT_LINE_UNPARSEABLE;
        if (len < AUDIT_LINE_MAX) {
            char *line = malloc(len + 1);
            if (line == NULL)
                rc = -ENOMEM;
            else if ((rc = read_at(a->fd, line, len, start)) == 0)
                st = audit__check_line(line, len, &e);
            free(line);
        }
        if (rc < 0) goto io;
        if (st != AUDIT_LINE_OK) {
            snprintf(reason, reason_len,
                     "the last record of %s is not a valid audit record (damaged or altered). "
                     "Restarting will not fix it: run `relaisctl audit verify %s` to see where "
                     "the chain breaks, keep the file as evidence (move it aside, e.g. to "
                     "%s.damaged), then start relaisd again: it opens a new journal, whose "
                     "first record is the start of a new chain",
                     a->path, a->path, a->path);
            return RELAIS_ECONFIG;
        }
        a->seq = e.seq;
        memcpy(a->hash, e.hash, HASH_LEN);
    }
    if (*torn > 0) {
        /* Our writes are whole lines: a tail without its newline is a write cut short by a
         * crash (or zeros a power cut left), never a record that was complete. */
        if (ftruncate(a->fd, keep) < 0 || fdatasync(a->fd) < 0) {
            snprintf(reason, reason_len, "cannot cut the torn last line off %s: %s", a->path,
                     strerror(errno));
            return RELAIS_ESTORE;
        }
        RLOG(RELAIS_LOG_WARN, "audit",
             "%s ended with a torn line (%lld bytes, a write cut short by a crash): cut off, "
             "the chain continues at seq %" PRIu64,
             a->path, (long long)*torn, a->seq + 1);
    }
    a->size = keep;
    return 0;
io:
    snprintf(reason, reason_len, "cannot read %s: %s", a->path, relais_strerror(rc));
    return rc;
}

/* Makes a newly created journal's directory entry durable. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0) return;
    (void)fsync(dfd);
    close(dfd);
}

int audit_open(audit_t **out, const char *path, char *reason, size_t reason_len)
{
    if (sodium_init() < 0) {
        snprintf(reason, reason_len, "libsodium failed to initialise");
        return RELAIS_EINTERNAL;
    }
    audit_t *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->path = strdup(path)) == NULL || (a->out = malloc(OUT_CAP)) == NULL) {
        if (a != NULL) free(a->path);
        free(a);
        snprintf(reason, reason_len, "out of memory");
        return -ENOMEM;
    }
    int rc;
    off_t torn = 0;
    /* 0600: the journal says who exchanged what with whom, when: for the broker's user only,
     * like the database and the keys. */
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        rc = -errno;
        snprintf(reason, reason_len, "cannot open %s: %s", path, strerror(errno));
        goto err;
    }
    if (flock(a->fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? RELAIS_ESTORE : -errno;
        snprintf(reason, reason_len, "%s is locked by another process (another relaisd?)", path);
        goto err;
    }
    struct stat st;
    if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = RELAIS_ESTORE;
        snprintf(reason, reason_len, "%s is not a regular file", path);
        goto err;
    }
    if (st.st_mode & 077)
        RLOG(RELAIS_LOG_WARN, "audit",
             "%s is readable or writable by others (mode %03o): chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
    if (st.st_size == 0) sync_dir(path);
    if ((rc = resume_chain(a, st.st_size, &torn, reason, reason_len)) < 0) goto err;

    uv_mutex_init(&a->mu);
    uv_mutex_init(&a->notify_mu);
    uv_cond_init(&a->wake);
    uv_cond_init(&a->room);
    uv_cond_init(&a->synced);
    if (torn > 0) {
        char bytes[64];
        snprintf(bytes, sizeof(bytes), "cut %lld torn bytes", (long long)torn);
        audit_event_t ev = {.kind = AUDIT_REPAIR, .outcome = bytes};
        char text[AUDIT_LINE_MAX];
        size_t len =
            audit__format_event(text, sizeof(text), &ev, kind_names[AUDIT_REPAIR], wall_ms());
        if (queue_put(a, text, len) < 0) {
            rc = -ENOMEM;
            snprintf(reason, reason_len, "out of memory");
            goto err_sync;
        }
    }
    if ((rc = uv_thread_create(&a->thread, writer_main, a)) != 0) {
        snprintf(reason, reason_len, "cannot start the audit writer: %s", uv_strerror(rc));
        goto err_sync;
    }
    *out = a;
    return 0;
err_sync:
    uv_cond_destroy(&a->synced);
    uv_cond_destroy(&a->room);
    uv_cond_destroy(&a->wake);
    uv_mutex_destroy(&a->mu);
    uv_mutex_destroy(&a->notify_mu);
err:
    if (a->fd >= 0) close(a->fd);
    free(a->queue);
    free(a->out);
    free(a->path);
    free(a);
    return rc;
}

void audit_close(audit_t **ap)
{
    if (ap == NULL || *ap == NULL) return;
    audit_t *a = *ap;
    *ap = NULL;
    uv_mutex_lock(&a->mu);
    a->quit = true;
    uv_cond_signal(&a->wake);
    uv_cond_broadcast(&a->room);
    uv_mutex_unlock(&a->mu);
    uv_thread_join(&a->thread);
    if (a->lost > 0)
        RLOG(RELAIS_LOG_ERROR, "audit", "%" PRIu64 " events refused since the last record of %s",
             a->lost, a->path);
    close(a->fd);
    uv_cond_destroy(&a->synced);
    uv_cond_destroy(&a->room);
    uv_cond_destroy(&a->wake);
    uv_mutex_destroy(&a->mu);
    uv_mutex_destroy(&a->notify_mu);
    free(a->queue);
    free(a->pending);
    free(a->out);
    free(a->path);
    free(a);
}
