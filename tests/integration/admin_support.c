/*
 * The admin tests' HTTP client and strict Prometheus text-format parser (admin_support.h).
 *
 * The parser follows the exposition format 0.0.4 as Prometheus documents it and adds what
 * relaisd promises on top: every family declared by HELP and TYPE before its samples, the
 * relais_ prefix, counters ending _total, histograms with cumulative buckets ending in
 * le="+Inf" equal to _count, no duplicate series, and a family's samples kept together.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "admin_support.h"

void ah_free(ah_resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int ah_admin_port(rt_broker_t *b)
{
    if (rt_broker_wait_log(b, "admin listening endpoint=", 10000) < 0) return -1;
    FILE *f = fopen(b->log_path, "r");
    if (f == NULL) return -1;
    char line[1024];
    int port = -1;
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "admin listening endpoint=http://127.0.0.1:");
        if (p) port = atoi(p + strlen("admin listening endpoint=http://127.0.0.1:"));
    }
    fclose(f);
    return port;
}

int ah_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

int ah_connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ah_exchange(int fd, const void *req, size_t len, int timeout_ms, ah_resp_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = req;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) break; /* the server may answer and close before reading everything */
        p += n;
        len -= (size_t)n;
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    long long deadline = now_ms() + timeout_ms;
    int rc = -1;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)left) <= 0) break;
        if (got + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n < 0 && errno == ECONNRESET) n = 0;
        if (n < 0) break;
        if (n == 0) {
            rc = 0;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (rc == 0 && sep != NULL) {
        size_t hl = (size_t)(sep - buf);
        out->head = strndup(buf, hl);
        out->body_len = got - hl - 4;
        out->body = malloc(out->body_len + 1);
        memcpy(out->body, sep + 4, out->body_len);
        out->body[out->body_len] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d", &out->status) != 1) out->status = 0;
    } else if (rc == 0) {
        out->head = strdup("");
        out->body = strdup("");
    }
    free(buf);
    return rc;
}

int ah_get(int port, const char *path, const char *extra, ah_resp_t *out)
{
    int fd = ah_connect(port);
    if (fd < 0) return -1;
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
                     extra ? extra : "");
    return ah_exchange(fd, req, (size_t)n, 5000, out);
}

bool ah_wait_for(int port, const char *path, const char *needle, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        ah_resp_t r;
        bool found = ah_get(port, path, NULL, &r) == 0 && r.body && strstr(r.body, needle);
        ah_free(&r);
        if (found) return true;
    }
    return false;
}

bool ah_header(const ah_resp_t *r, const char *name, char *out, size_t out_len)
{
    size_t nl = strlen(name);
    for (const char *l = r->head; l && *l;) {
        const char *e = strstr(l, "\r\n");
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            snprintf(out, out_len, "%.*s", (int)(len - (size_t)(v - l)), v);
            return true;
        }
        l = e ? e + 2 : NULL;
    }
    return false;
}

/* ---- Prometheus ---------------------------------------------------------------------- */

typedef struct family {
    char name[128];
    char type[16];
    bool help, typed, closed;
} family_t;

static bool name_ok(const char *s, size_t n, bool label)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool parse_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0)
        *v = INFINITY;
    else if (strcmp(s, "-Inf") == 0)
        *v = -INFINITY;
    else if (strcmp(s, "NaN") == 0)
        *v = NAN;
    else {
        char *end;
        errno = 0;
        *v = strtod(s, &end);
        if (end == s || *end != '\0' || errno) return false;
        for (const char *p = s; *p; p++)
            if (!strchr("0123456789.eE+-", *p)) return false; /* no hex, no "inf" */
    }
    return true;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        int off_ = snprintf(err, err_len, "line %d: ", lineno);                                    \
        snprintf(err + off_, err_len - (size_t)off_, __VA_ARGS__);                                 \
        goto fail;                                                                                 \
    } while (0)

static family_t *family_find(family_t *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0) return &f[i];
    return NULL;
}

int prom_parse(const char *text, prom_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    family_t fam[256];
    size_t nfam = 0;
    family_t *current = NULL;
    int lineno = 0;
    size_t tl = strlen(text);
    if (tl == 0 || text[tl - 1] != '\n') {
        snprintf(err, err_len, "the exposition must end with a line feed");
        return -1;
    }
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (strchr(line, '\r')) FAIL("carriage return");
        if (line[0] == '#') {
            char kw[8], name[128];
            int used = 0;
            if (sscanf(line, "# %7s %127s %n", kw, name, &used) < 2 ||
                (strcmp(kw, "HELP") && strcmp(kw, "TYPE")))
                continue; /* a plain comment */
            if (!name_ok(name, strlen(name), false)) FAIL("bad metric name '%s'", name);
            family_t *f = family_find(fam, nfam, name);
            if (f == NULL) {
                if (nfam == 256) FAIL("too many families");
                f = &fam[nfam++];
                memset(f, 0, sizeof(*f));
                snprintf(f->name, sizeof(f->name), "%s", name);
            }
            if (f->closed) FAIL("%s %s after its samples", kw, name);
            if (strcmp(kw, "HELP") == 0) {
                if (f->help) FAIL("second HELP for %s", name);
                f->help = true;
                for (const char *p = line + used; *p; p++)
                    if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                        FAIL("bad escape in HELP");
                    else if (*p == '\\')
                        p++;
            } else {
                if (f->typed) FAIL("second TYPE for %s", name);
                const char *t = line + used;
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                    strcmp(t, "summary") && strcmp(t, "untyped"))
                    FAIL("unknown type '%s'", t);
                snprintf(f->type, sizeof(f->type), "%s", t);
                f->typed = true;
            }
            continue;
        }
        if (line[0] == '\0') continue;
        /* A sample: name [{labels}] value [timestamp] */
        prom_sample_t s;
        memset(&s, 0, sizeof(s));
        const char *p = line;
        size_t nl = strcspn(p, "{ ");
        if (nl >= sizeof(s.name) || !name_ok(p, nl, false)) FAIL("bad sample name");
        memcpy(s.name, p, nl);
        p += nl;
        if (*p == '{') {
            p++;
            size_t lo = 0;
            char seen[16][64];
            int nseen = 0;
            while (*p != '}') {
                size_t ln = strcspn(p, "=");
                if (!name_ok(p, ln, true) || ln >= 64) FAIL("bad label name");
                if (ln >= 2 && p[0] == '_' && p[1] == '_') FAIL("reserved label name");
                for (int i = 0; i < nseen; i++)
                    if (strlen(seen[i]) == ln && memcmp(seen[i], p, ln) == 0)
                        FAIL("duplicate label");
                if (nseen < 16) snprintf(seen[nseen++], 64, "%.*s", (int)ln, p);
                if (lo + ln + 2 >= sizeof(s.labels)) FAIL("labels too long");
                if (lo) s.labels[lo++] = ',';
                memcpy(s.labels + lo, p, ln);
                lo += ln;
                p += ln;
                if (p[0] != '=' || p[1] != '"') FAIL("label value must be quoted");
                s.labels[lo++] = '=';
                s.labels[lo++] = '"';
                p += 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') FAIL("bad escape in label");
                        if (lo + 2 < sizeof(s.labels)) s.labels[lo++] = *p++;
                    }
                    if (lo + 2 < sizeof(s.labels)) s.labels[lo++] = *p;
                    p++;
                }
                if (*p != '"') FAIL("unterminated label value");
                s.labels[lo++] = '"';
                p++;
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    FAIL("expected , or }");
            }
            p++;
        }
        if (*p != ' ') FAIL("expected a space before the value");
        p++;
        char vbuf[64];
        size_t vl = strcspn(p, " ");
        if (vl == 0 || vl >= sizeof(vbuf)) FAIL("bad value");
        memcpy(vbuf, p, vl);
        vbuf[vl] = '\0';
        if (!parse_value(vbuf, &s.value)) FAIL("value '%s' is not a float", vbuf);
        p += vl;
        if (*p == ' ') {
            char *end;
            p++;
            strtoll(p, &end, 10);
            if (end == p || *end != '\0') FAIL("bad timestamp");
        } else if (*p != '\0') {
            FAIL("trailing bytes");
        }
        /* Which family, and the conventions. */
        char base[128];
        snprintf(base, sizeof(base), "%s", s.name);
        family_t *f = family_find(fam, nfam, base);
        if (f == NULL) {
            const char *suffixes[] = {"_bucket", "_sum", "_count"};
            for (int i = 0; i < 3 && f == NULL; i++)
                if (ends_with(s.name, suffixes[i])) {
                    snprintf(base, sizeof(base), "%.*s",
                             (int)(strlen(s.name) - strlen(suffixes[i])), s.name);
                    f = family_find(fam, nfam, base);
                    if (f && strcmp(f->type, "histogram") && strcmp(f->type, "summary")) f = NULL;
                }
        }
        if (f == NULL || !f->typed || !f->help) FAIL("%s has no HELP and TYPE before it", s.name);
        if (f != current) {
            if (f->closed) FAIL("samples of %s are not together", f->name);
            if (current) current->closed = true;
            current = f;
        }
        if (strncmp(f->name, "relais_", 7) != 0) FAIL("%s lacks the relais_ prefix", f->name);
        if (!strcmp(f->type, "counter") && !ends_with(f->name, "_total"))
            FAIL("counter %s does not end in _total", f->name);
        if (strcmp(f->type, "counter") && ends_with(f->name, "_total"))
            FAIL("%s ends in _total but is a %s", f->name, f->type);
        if (!strcmp(f->type, "counter") && !(s.value >= 0)) FAIL("negative counter");
        if (!strcmp(f->type, "histogram") && ends_with(s.name, "_bucket") &&
            strstr(s.labels, "le=\"") == NULL)
            FAIL("bucket without le");
        for (size_t i = 0; i < out->n; i++)
            if (!strcmp(out->s[i].name, s.name) && !strcmp(out->s[i].labels, s.labels))
                FAIL("duplicate series %s{%s}", s.name, s.labels);
        if (out->n == out->cap)
            out->s = realloc(out->s, (out->cap = out->cap * 2 + 64) * sizeof(s));
        out->s[out->n++] = s;
    }
    /* Histograms: cumulative buckets, +Inf equal to _count, a _sum. */
    for (size_t i = 0; i < nfam; i++) {
        if (strcmp(fam[i].type, "histogram")) continue;
        char nb[160], nc[160], ns[160];
        snprintf(nb, sizeof nb, "%s_bucket", fam[i].name);
        snprintf(nc, sizeof nc, "%s_count", fam[i].name);
        snprintf(ns, sizeof ns, "%s_sum", fam[i].name);
        double prev = 0, inf = NAN;
        lineno = 0;
        for (size_t k = 0; k < out->n; k++) {
            if (strcmp(out->s[k].name, nb)) continue;
            if (out->s[k].value < prev) FAIL("%s buckets are not cumulative", fam[i].name);
            prev = out->s[k].value;
            if (strstr(out->s[k].labels, "le=\"+Inf\"")) inf = out->s[k].value;
        }
        double count = prom_get(out, nc, ""), sum = prom_get(out, ns, "");
        if (isnan(inf) || isnan(count) || isnan(sum) || inf != count)
            FAIL("%s lacks +Inf, _sum or _count, or +Inf != _count", fam[i].name);
    }
    free(copy);
    return 0;
fail:
    free(copy);
    prom_free(out);
    return -1;
}

double prom_get(const prom_t *p, const char *name, const char *labels)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->s[i].name, name) && !strcmp(p->s[i].labels, labels)) return p->s[i].value;
    return NAN;
}

double prom_sum(const prom_t *p, const char *name)
{
    double v = NAN;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->s[i].name, name)) v = (isnan(v) ? 0 : v) + p->s[i].value;
    return v;
}

void prom_free(prom_t *p)
{
    free(p->s);
    memset(p, 0, sizeof(*p));
}
