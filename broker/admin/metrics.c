/*
 * GET /metrics: the broker's figures in the Prometheus text exposition format 0.0.4.
 *
 * Names follow the Prometheus conventions: the relais_ prefix, base units (seconds, bytes),
 * counters ending in _total, one HELP and one TYPE line per family, every label set of a
 * family present from the start (a rejection code never seen is a 0, not a missing series,
 * so rate() and alerts work from the first scrape). Series are aggregated: no address
 * appears in a label, so cardinality stays bounded by the number of roles, states and
 * codes, and a scrape reveals no one's activity. Also the view of the mailboxes that the
 * API shares (admin__refresh).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "admin_internal.h"
#include "directory.h"
#include "relais/log.h"

/* Index: wire ErrorCode (PROTOCOL.md); the label values of rejections. */
static const char *const code_labels[] = {
    NULL,
    "bad_frame",
    "unsupported_version",
    "no_session",
    "invalid_envelope",
    "forbidden",
    "unknown_recipient",
    "too_large",
    "expired",
    "overloaded",
    "store_unavailable",
    "internal",
};

static void add_row(const void *k, size_t kl, void *v, void *ud)
{
    admin_t *a = ud;
    mailbox_t *mb = v;
    uint64_t queued = mb->mem[0] + mb->mem[1] + mb->disk[0] + mb->disk[1];
    uint64_t in_flight = mb->session ? mb->session->inflight_count : 0;
    if (queued + in_flight == 0) return;
    if (a->nrows == a->rows_cap) {
        size_t ncap = a->rows_cap ? a->rows_cap * 2 : 64;
        mailbox_row_t *n = realloc(a->rows, ncap * sizeof(*n));
        if (n == NULL) return;
        a->rows = n;
        a->rows_cap = ncap;
    }
    a->rows[a->nrows++] = (mailbox_row_t){.address = mb->address,
                                          .queued = queued,
                                          .in_flight = in_flight,
                                          .online = mb->session != NULL,
                                          .pool = mb->pool};
}

static int cmp_rows(const void *x, const void *y)
{
    return strcmp(((const mailbox_row_t *)x)->address, ((const mailbox_row_t *)y)->address);
}

void admin__refresh(admin_t *a)
{
    broker_t *b = a->b;
    a->nrows = 0;
    a->store_failed = false;
    map_foreach(b->mailboxes, add_row, a);
    if (a->nrows) qsort(a->rows, a->nrows, sizeof(a->rows[0]), cmp_rows);
    for (size_t i = 0; i < a->nrows; i++)
        if (store_sqlite_oldest_pending(b->store, a->rows[i].address, &a->rows[i].oldest_ms) < 0)
            a->store_failed = true;
    int64_t now = relais_mono_ms();
    /* Dead letters appear only through commits: recounted after one, or now and then. */
    if (a->dead_at_ms == 0 || b->gen_committed != a->dead_gen ||
        now - a->dead_at_ms >= ADMIN_CACHE_MS) {
        if (store_sqlite_dead_letter_count(b->store, &a->dead_letters) < 0) a->store_failed = true;
        a->dead_at_ms = now;
        a->dead_gen = b->gen_committed;
    }
}

static void family(abuf_t *o, const char *name, const char *type, const char *help)
{
    abuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(abuf_t *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    abuf_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(abuf_t *o, const char *name, const char *help, double v)
{
    family(o, name, "gauge", help);
    abuf_printf(o, "%s %.17g\n", name, v);
}

static void histogram(abuf_t *o, const char *name, const char *help, const histogram_t *h)
{
    family(o, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += h->counts[i];
        abuf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->nbounds];
    abuf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    abuf_printf(o, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name,
                (unsigned long long)h->count);
}

typedef struct role_count {
    uint64_t n[DIR_ROLE_COUNT + 1]; /* [DIR_ROLE_COUNT]: no directory entry (insecure) */
} role_count_t;

static int role_index(broker_t *b, const char *address)
{
    const dir_agent_t *ag = b->dir ? directory_lookup(b->dir, address) : NULL;
    return ag ? (int)ag->role : DIR_ROLE_COUNT;
}

static void count_session(const void *k, size_t kl, void *v, void *ud)
{
    void **ctx = ud;
    session_t *s = v;
    ((role_count_t *)ctx[1])->n[role_index(ctx[0], s->address)]++;
}

static void process_metrics(admin_t *a, abuf_t *o)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) != 2) vsz = rss = 0;
        fclose(f);
    }
    gauge(o, "relais_process_resident_memory_bytes", "Resident memory of relaisd.",
          (double)rss * (double)page);
    gauge(o, "relais_process_virtual_memory_bytes", "Virtual memory of relaisd.",
          (double)vsz * (double)page);
    unsigned fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        fds--; /* the directory stream's own */
    }
    gauge(o, "relais_process_open_fds", "File descriptors open in relaisd.", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(o, "relais_process_max_fds", "The file descriptor limit of relaisd.",
              (double)rl.rlim_cur);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    family(o, "relais_process_cpu_seconds_total", "counter", "CPU time used by relaisd.");
    abuf_printf(o, "relais_process_cpu_seconds_total %.6f\n",
                (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    gauge(o, "relais_process_start_time_seconds", "When relaisd started, Unix time.",
          a->start_time_s);
}

void metrics__render(admin_t *a, abuf_t *o)
{
    broker_t *b = a->b;
    admin__refresh(a);
    family(o, "relais_build_info", "gauge", "Version of relaisd; the value is always 1.");
    abuf_printf(o, "relais_build_info{version=\"%s\",protocol=\"%d\",store=\"%s\",mode=\"%s\"} 1\n",
                RELAIS_VERSION_STRING, RELAIS_PROTOCOL_VERSION, b->store->vt->name,
                b->cfg.insecure ? "insecure" : "curve");
    process_metrics(a, o);

    family(o, "relais_messages_accepted_total", "counter",
           "Messages accepted (committed to the store), by body type.");
    for (int bc = 1; bc < ADMIN_BODY_CASES; bc++) {
        const char *type = relais_body_name(bc);
        if (strcmp(type, "unknown") == 0) continue;
        abuf_printf(o, "relais_messages_accepted_total{type=\"%s\"} %llu\n", type,
                    (unsigned long long)a->accepted_by_type[bc]);
    }
    counter(o, "relais_messages_duplicates_total",
            "Submissions answered as duplicates of a message accepted before.",
            b->stats.duplicates);
    family(o, "relais_messages_rejected_total", "counter", "Submissions rejected, by error code.");
    for (size_t c = 1; c < sizeof(code_labels) / sizeof(code_labels[0]); c++)
        abuf_printf(o, "relais_messages_rejected_total{code=\"%s\"} %llu\n", code_labels[c],
                    (unsigned long long)b->stats.rejected_by_code[c]);
    counter(o, "relais_deliveries_sent_total", "Deliver frames sent to agents (every attempt).",
            b->stats.delivered);
    family(o, "relais_delivery_outcomes_total", "counter",
           "How deliveries ended or were answered, by outcome.");
    abuf_printf(o,
                "relais_delivery_outcomes_total{outcome=\"processed\"} %llu\n"
                "relais_delivery_outcomes_total{outcome=\"refused\"} %llu\n"
                "relais_delivery_outcomes_total{outcome=\"retry_later\"} %llu\n"
                "relais_delivery_outcomes_total{outcome=\"expired\"} %llu\n",
                (unsigned long long)b->stats.acked, (unsigned long long)b->stats.refused,
                (unsigned long long)b->stats.retry_later, (unsigned long long)b->stats.expired);
    counter(o, "relais_redeliveries_total",
            "Deliveries put back in their queue (session lost, ack timeout, retry later).",
            b->stats.redeliveries);
    counter(o, "relais_protocol_errors_total", "Error frames sent to agents.", b->stats.errors);

    family(o, "relais_auth_failures_total", "counter", "Connections or Hellos refused, by reason.");
    abuf_printf(o,
                "relais_auth_failures_total{reason=\"unknown_key\"} %llu\n"
                "relais_auth_failures_total{reason=\"not_curve\"} %llu\n"
                "relais_auth_failures_total{reason=\"hello_refused\"} %llu\n",
                (unsigned long long)b->stats.auth_unknown_key,
                (unsigned long long)b->stats.auth_not_curve,
                (unsigned long long)b->stats.auth_hello);

    counter(o, "relais_sessions_opened_total", "Agent sessions opened.", b->stats.sessions_opened);
    counter(o, "relais_sessions_closed_total", "Agent sessions closed.", b->stats.sessions_closed);
    role_count_t online = {{0}}, known = {{0}};
    void *ctx[2] = {b, &online};
    map_foreach(b->sessions, count_session, ctx);
    size_t nagents = b->dir ? directory_agent_count(b->dir) : 0;
    for (size_t i = 0; i < nagents; i++) known.n[directory_agent_at(b->dir, i)->role]++;
    family(o, "relais_sessions", "gauge", "Agent sessions open now, by directory role.");
    for (int r = 0; r <= DIR_ROLE_COUNT; r++)
        abuf_printf(o, "relais_sessions{role=\"%s\"} %llu\n",
                    r == DIR_ROLE_COUNT ? "none" : dir_role_name((dir_role_t)r),
                    (unsigned long long)online.n[r]);
    family(o, "relais_directory_agents", "gauge", "Agents in the territory directory, by role.");
    for (int r = 0; r < DIR_ROLE_COUNT; r++)
        abuf_printf(o, "relais_directory_agents{role=\"%s\"} %llu\n", dir_role_name((dir_role_t)r),
                    (unsigned long long)known.n[r]);
    gauge(o, "relais_directory_loaded_timestamp_seconds",
          "When the territory directory was last loaded, Unix time.", a->dir_loaded_ms / 1000.0);

    uint64_t queued = 0, in_flight = 0;
    int64_t oldest = 0;
    for (size_t i = 0; i < a->nrows; i++) {
        queued += a->rows[i].queued;
        in_flight += a->rows[i].in_flight;
        if (a->rows[i].oldest_ms && (oldest == 0 || a->rows[i].oldest_ms < oldest))
            oldest = a->rows[i].oldest_ms;
    }
    family(o, "relais_mailbox_deliveries", "gauge",
           "Pending deliveries in every mailbox, by state: queued (waiting to be sent) or "
           "in_flight (sent, awaiting the agent's Ack).");
    abuf_printf(o,
                "relais_mailbox_deliveries{state=\"queued\"} %llu\n"
                "relais_mailbox_deliveries{state=\"in_flight\"} %llu\n",
                (unsigned long long)queued, (unsigned long long)in_flight);
    gauge(o, "relais_mailboxes_pending", "Mailboxes holding at least one pending delivery.",
          (double)a->nrows);
    int64_t now = relais_now_ms();
    gauge(o, "relais_oldest_pending_age_seconds",
          "Age of the oldest delivery not yet acknowledged (0 when none).",
          oldest && now > oldest ? (now - oldest) / 1000.0 : 0);
    gauge(o, "relais_dead_letters", "Deliveries that ended expired or refused, kept in the store.",
          (double)a->dead_letters);
    gauge(o, "relais_store_read_failed",
          "1 when the store could not be read for these figures (they are then partial).",
          a->store_failed ? 1 : 0);

    histogram(o, "relais_store_commit_duration_seconds",
              "Time from handing a batch to the store to its commit completing.",
              &a->commit_seconds);
    histogram(o, "relais_store_commit_operations", "Operations per committed batch.",
              &a->commit_ops);
    histogram(o, "relais_submit_accepted_duration_seconds",
              "Time from reading a Submit to sending its Accepted.", &a->accept_seconds);
    counter(o, "relais_store_commit_failures_total", "Store commits that failed.",
            a->commit_failures);
    struct statvfs vfs;
    if (statvfs(b->cfg.data_dir, &vfs) == 0)
        gauge(o, "relais_data_free_bytes", "Space available in the data directory's file system.",
              (double)vfs.f_bavail * (double)vfs.f_frsize);
    gauge(o, "relais_admin_connections", "Admin HTTP connections open now.",
          http_server_connections(a->http));
    counter(o, "relais_admin_refused_connections_total",
            "Admin HTTP connections refused because too many were open.",
            http_server_refused(a->http));
}

/* A label value with \, " and line feeds escaped as the text format requires. */
static void label_value(abuf_t *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            abuf_puts(o, "\\\\");
        else if (*v == '"')
            abuf_puts(o, "\\\"");
        else if (*v == '\n')
            abuf_puts(o, "\\n");
        else
            abuf_put(o, v, 1);
    }
}

static void agent_sample(abuf_t *o, const char *name, const char *address, const char *role,
                         double v)
{
    abuf_printf(o, "%s{address=\"", name);
    label_value(o, address);
    if (role != NULL) {
        abuf_puts(o, "\",role=\"");
        label_value(o, role);
    }
    abuf_printf(o, "\"} %.17g\n", v);
}

void metrics__render_agents(admin_t *a, abuf_t *o)
{
    broker_t *b = a->b;
    admin__refresh(a);
    int64_t now = relais_now_ms();
    size_t nd = b->dir ? directory_agent_count(b->dir) : 0;
    family(o, "relais_agent_online", "gauge", "1 when the agent has a session open, else 0.");
    for (size_t i = 0; i < nd; i++) {
        const dir_agent_t *ag = directory_agent_at(b->dir, i);
        mailbox_t *mb = map_get(b->mailboxes, ag->address, strlen(ag->address));
        agent_sample(o, "relais_agent_online", ag->address, dir_role_name(ag->role),
                     mb != NULL && mb->session != NULL);
    }
    family(o, "relais_agent_pending_deliveries", "gauge",
           "Deliveries waiting for the agent (queued or in flight).");
    for (size_t i = 0; i < a->nrows; i++)
        agent_sample(o, "relais_agent_pending_deliveries", a->rows[i].address, NULL,
                     (double)(a->rows[i].queued + a->rows[i].in_flight));
    family(o, "relais_agent_oldest_pending_age_seconds", "gauge",
           "Age of the oldest delivery waiting for the agent.");
    for (size_t i = 0; i < a->nrows; i++)
        agent_sample(o, "relais_agent_oldest_pending_age_seconds", a->rows[i].address, NULL,
                     a->rows[i].oldest_ms && now > a->rows[i].oldest_ms
                         ? (now - a->rows[i].oldest_ms) / 1000.0
                         : 0);
}
