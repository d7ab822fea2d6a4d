/*
 * HL7 gateway test support (see test_hl7_support.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_hl7_support.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int spawn(hl7_gwproc_t *g)
{
    int out[2];
    if (pipe(out) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int log = open(g->log.log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(out[1], 1);
        if (log >= 0) dup2(log, 2);
        close(out[0]);
        const char *level = getenv("HL7_GW_LOG_LEVEL");
        execl(HL7_GATEWAY_PATH, "relais-hl7", "--config", g->config, "--log-level",
              level != NULL ? level : "info", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    g->pid = pid;
    /* The ready line: "relais-hl7 ready channel=test listen=127.0.0.1:PORT". */
    char buf[512];
    size_t len = 0;
    int64_t deadline = mono_ms() + 15000;
    int rc = -1;
    while (mono_ms() < deadline && len + 1 < sizeof buf) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - mono_ms())) <= 0) break;
        ssize_t n = read(out[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        char *l = strstr(buf, "listen=");
        if (l != NULL && strchr(l, '\n') != NULL) {
            char *colon = strrchr(strtok(l + 7, "\n"), ':');
            g->port = atoi(colon + 1);
            rc = 0;
            break;
        }
    }
    close(out[0]); /* the gateway prints nothing else to stdout: a closed pipe is fine */
    if (rc != 0) fprintf(stderr, "relais-hl7 did not become ready (log: %s)\n", g->log.log_path);
    return rc;
}

int hl7_gw_start(hl7_gwproc_t *g, const rt_broker_t *b, const char *extra_limits)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "/tmp/relais-hl7-test-XXXXXX");
    if (mkdtemp(g->dir) == NULL) return -1;
    snprintf(g->config, sizeof g->config, "%s/relais-hl7.yaml", g->dir);
    snprintf(g->log.log_path, sizeof g->log.log_path, "%s/relais-hl7.log", g->dir);
    const rt_key_t *k = rt_key_for(b, HL7_HOSPITAL);
    if (k == NULL) return -1;
    FILE *f = fopen(g->config, "w");
    if (f == NULL) return -1;
    fprintf(f,
            "broker: {endpoint: \"%s\", server_key: \"%s\"}\n"
            "directory: \"%s/territory.yaml\"\n"
            "state_dir: \"%s\"\n"
            "outbox: %s\n"
            "limits: {ack_timeout_ms: 3000%s%s}\n"
            "channels:\n"
            "  - name: test\n"
            "    listen: 127.0.0.1:0\n"
            "    address: \"%s\"\n"
            "    key: \"%s\"\n"
            "    applications: [DXCARE]\n"
            "    dispositions: [{pv1_36: \"01\", disposition: HOME}]\n"
            "    diagnoses: [{icd10: I50, programme: heart-failure}, {icd10: J44, programme: "
            "copd}]\n"
            "    specialties: [{rf1_3: CARDIO, specialty: cardiology}]\n"
            "%s%s%s",
            b->endpoint, b->server_pub_path, b->data_dir, g->dir,
            getenv("HL7_GW_OUTBOX") != NULL ? getenv("HL7_GW_OUTBOX") : "disk",
            extra_limits ? ", " : "", extra_limits ? extra_limits : "", HL7_HOSPITAL, k->path,
            getenv("HL7_GW_OUTBOUND") != NULL ? "    outbound: " : "",
            getenv("HL7_GW_OUTBOUND") != NULL ? getenv("HL7_GW_OUTBOUND") : "",
            getenv("HL7_GW_OUTBOUND") != NULL ? "\n" : "");
    fclose(f);
    return spawn(g);
}

int hl7_gw_restart(hl7_gwproc_t *g)
{
    /* Same port as before, so that senders reconnect where they were. */
    char tmp[320], line[1024];
    snprintf(tmp, sizeof tmp, "%s.new", g->config);
    FILE *in = fopen(g->config, "r"), *out = fopen(tmp, "w");
    if (in == NULL || out == NULL) return -1;
    while (fgets(line, sizeof line, in) != NULL) {
        if (strstr(line, "listen: 127.0.0.1:") != NULL)
            snprintf(line, sizeof line, "    listen: 127.0.0.1:%d\n", g->port);
        fputs(line, out);
    }
    fclose(in);
    fclose(out);
    rename(tmp, g->config);
    /* A fresh log, so that waiting for a line waits for this run's. */
    char old[320];
    snprintf(old, sizeof old, "%s.previous", g->log.log_path);
    rename(g->log.log_path, old);
    return spawn(g);
}

int hl7_gw_stop(hl7_gwproc_t *g)
{
    if (g->pid <= 0) return 0;
    /* A pidfd becomes readable when the process exits: the wait has an event and a limit. */
    int pfd = (int)syscall(SYS_pidfd_open, g->pid, 0);
    kill(g->pid, SIGTERM);
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    bool exited = pfd >= 0 && poll(&p, 1, 10000) == 1;
    if (pfd >= 0) close(pfd);
    if (!exited) kill(g->pid, SIGKILL);
    int status = 0;
    waitpid(g->pid, &status, 0);
    g->pid = 0;
    return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void hl7_gw_kill9(hl7_gwproc_t *g)
{
    if (g->pid <= 0) return;
    kill(g->pid, SIGKILL);
    waitpid(g->pid, NULL, 0);
    g->pid = 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void hl7_gw_cleanup(hl7_gwproc_t *g)
{
    if (g->dir[0]) nftw(g->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g->dir[0] = '\0';
}

/* ---- MLLP client ------------------------------------------------------------------- */

int hl7_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int hl7_send_raw(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hl7_send(int fd, const char *text, size_t len)
{
    char *f = malloc(len + 3);
    f[0] = 0x0B;
    memcpy(f + 1, text, len);
    f[len + 1] = 0x1C;
    f[len + 2] = 0x0D;
    int rc = hl7_send_raw(fd, f, len + 3);
    free(f);
    return rc;
}

int hl7_recv(int fd, int timeout_ms, char **out)
{
    *out = NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        char *sb = memchr(buf, 0x0B, len);
        if (sb != NULL) {
            char *eb = memchr(sb, 0x1C, len - (size_t)(sb - buf));
            if (eb != NULL && (size_t)(eb - buf) + 1 < len) {
                size_t n = (size_t)(eb - sb) - 1;
                memmove(buf, sb + 1, n);
                buf[n] = '\0';
                *out = buf;
                return 0;
            }
        }
        int left = (int)(deadline - mono_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        if (len + 1024 > cap) buf = realloc(buf, cap *= 2);
        /* One byte past the end block at most: the next frame stays in the socket. */
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n == 0) {
            free(buf);
            return 1;
        }
        if (n < 0) break;
        len += (size_t)n;
    }
    free(buf);
    return -1;
}

int hl7_roundtrip(int fd, const char *text, char code[4], char **ack, int timeout_ms)
{
    code[0] = '\0';
    if (ack != NULL) *ack = NULL;
    if (hl7_send(fd, text, strlen(text)) != 0) return -1;
    char *a;
    if (hl7_recv(fd, timeout_ms, &a) != 0) return -1;
    char *msa = strstr(a, "\rMSA|");
    if (msa != NULL) snprintf(code, 4, "%.2s", msa + 5);
    if (ack != NULL) {
        *ack = a;
    } else {
        free(a);
    }
    return msa != NULL ? 0 : -1;
}

char *hl7_sample(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", HL7_SAMPLES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static char *replace(char *s, const char *from, const char *to)
{
    char *p = strstr(s, from);
    if (p == NULL) return s;
    size_t n = strlen(s) + strlen(to) + 1;
    char *r = malloc(n);
    snprintf(r, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    free(s);
    return r;
}

char *hl7_a03(const char *control, const char *visit)
{
    size_t len;
    char *s = hl7_sample("a03-heart-failure.hl7", &len);
    s = replace(s, "MSG-A03-0001", control);
    return replace(s, "VN2026-000123", visit);
}

/* ---- Receiving agents --------------------------------------------------------------- */

static void note_seen(hl7_receiver_t *r, const char *enc)
{
    for (size_t i = 0; i < r->n_seen; i++) {
        if (strcmp(r->seen[i], enc) == 0) {
            r->seen_count[i]++;
            return;
        }
    }
    if (r->n_seen == r->cap_seen) {
        r->cap_seen = r->cap_seen ? 2 * r->cap_seen : 256;
        r->seen = realloc(r->seen, r->cap_seen * sizeof *r->seen);
        r->seen_count = realloc(r->seen_count, r->cap_seen * sizeof *r->seen_count);
    }
    snprintf(r->seen[r->n_seen], 64, "%s", enc);
    r->seen_count[r->n_seen++] = 1;
}

static relais_outcome_t on_body(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    hl7_receiver_t *r = ud;
    const Relais__V1__Envelope *env = d->envelope;
    pthread_mutex_lock(&r->mu);
    if (env->body_case == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION) {
        const Relais__V1__DischargeNotification *dn = env->discharge_notification;
        r->discharges++;
        snprintf(r->last_encounter, sizeof r->last_encounter, "%s", dn->encounter_id);
        snprintf(r->last_programme, sizeof r->last_programme, "%s", dn->programme);
        snprintf(r->last_ins, sizeof r->last_ins, "%s",
                 dn->patient != NULL ? dn->patient->ins_matricule : "");
        r->last_items = dn->n_follow_up;
        note_seen(r, dn->encounter_id);
    } else if (env->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST) {
        r->requests++;
        snprintf(r->last_encounter, sizeof r->last_encounter, "%s",
                 env->appointment_request->request_id);
    } else if (env->body_case == RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION) {
        r->decisions++;
    } else if (env->body_case == RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE) {
        r->admissions++;
        snprintf(r->last_encounter, sizeof r->last_encounter, "%s",
                 env->admission_notice->encounter_id);
    } else if (env->body_case == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED) {
        r->cancels++;
    } else if (env->body_case == RELAIS__V1__ENVELOPE__BODY_ESCALATION) {
        r->escalations++;
        snprintf(r->last_reason, sizeof r->last_reason, "%s", env->escalation->reason);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return RELAIS_PROCESSED;
}

static void on_state(relais_agent_t *agent, relais_agent_state_t s, const char *detail, void *ud)
{
    hl7_receiver_t *r = ud;
    pthread_mutex_lock(&r->mu);
    if (s == RELAIS_AGENT_READY) r->ready++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void *run(void *ud)
{
    hl7_receiver_t *r = ud;
    relais_agent_run(r->agent);
    return NULL;
}

int hl7_receiver_start(hl7_receiver_t *r, const rt_broker_t *b, const char *address)
{
    memset(r, 0, sizeof *r);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&r->mu, NULL);
    const rt_key_t *k = rt_key_for(b, address);
    if (k == NULL) return -1;
    relais_agent_options_t o = {.endpoint = b->endpoint,
                                .address = address,
                                .curve_server_key = b->server_pub,
                                .curve_public_key = k->pub,
                                .curve_secret_key = k->sec};
    if (relais_agent_new(&r->agent, &o) != 0) return -1;
    relais_agent_on(r->agent, 0, on_body, r);
    relais_agent_on_state(r->agent, on_state, r);
    if (pthread_create(&r->thread, NULL, run, r) != 0) return -1;
    return hl7_receiver_wait(r, &r->ready, 1, 15000);
}

void hl7_receiver_stop(hl7_receiver_t *r)
{
    if (r->agent == NULL) return;
    relais_agent_stop(r->agent);
    pthread_join(r->thread, NULL);
    relais_agent_destroy(&r->agent);
    free(r->seen);
    free(r->seen_count);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

int hl7_receiver_wait(hl7_receiver_t *r, const int *field, int n, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) dl.tv_sec++, dl.tv_nsec -= 1000000000;
    pthread_mutex_lock(&r->mu);
    while (*field < n) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) break;
    }
    int ok = *field >= n ? 0 : -1;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int hl7_receiver_count(hl7_receiver_t *r, const char *encounter)
{
    pthread_mutex_lock(&r->mu);
    int c = 0;
    for (size_t i = 0; i < r->n_seen; i++) {
        if (strcmp(r->seen[i], encounter) == 0) c = r->seen_count[i];
    }
    pthread_mutex_unlock(&r->mu);
    return c;
}
