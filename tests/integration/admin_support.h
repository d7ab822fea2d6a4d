/*
 * What the admin tests share: a blocking HTTP/1.1 client with timeouts (over TCP or the
 * control socket), the admin port read back from the broker's log, and a strict parser of
 * the Prometheus text exposition format 0.0.4 that also enforces the naming conventions
 * the broker promises (docs/OPERATIONS.md).
 */
#ifndef RELAIS_TEST_ADMIN_SUPPORT_H
#define RELAIS_TEST_ADMIN_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

typedef struct ah_resp {
    int status; /* 0 when no status line was read */
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated */
    size_t body_len;
} ah_resp_t;

void ah_free(ah_resp_t *r);

/* The admin listener's port, from the "admin listening endpoint=" log line (waited for). */
int ah_admin_port(rt_broker_t *b);

/* A TCP connection to 127.0.0.1:port, or -1. */
int ah_connect(int port);
/* A connection to a Unix socket, or -1. */
int ah_connect_unix(const char *path);

/* Sends len bytes, then reads the whole response until the server closes, within
 * timeout_ms. 0, or -1 on timeout or error. */
int ah_exchange(int fd, const void *req, size_t len, int timeout_ms, ah_resp_t *out);

/* GET path (with extra header lines, e.g. "Authorization: Bearer x\r\n", or NULL) on
 * 127.0.0.1:port. 0 or -1. */
int ah_get(int port, const char *path, const char *extra_headers, ah_resp_t *out);

/* Asks GET path until the body contains needle (true) or timeout_ms passes (false): for
 * what becomes visible only once the store has committed it. */
bool ah_wait_for(int port, const char *path, const char *needle, int timeout_ms);

/* A header's value in a response head (case-insensitive name), copied; false if absent. */
bool ah_header(const ah_resp_t *r, const char *name, char *out, size_t out_len);

/* ---- Prometheus text format ---------------------------------------------------------- */

typedef struct prom_sample {
    char name[128];
    char labels[256]; /* as written between the braces, canonical: a="x",b="y" */
    double value;
} prom_sample_t;

typedef struct prom {
    prom_sample_t *s;
    size_t n, cap;
} prom_t;

/* Parses text strictly; 0, or -1 with the offending line and rule in err. */
int prom_parse(const char *text, prom_t *out, char *err, size_t err_len);
/* The value of the series name{labels} (labels "" for none); NAN when absent. */
double prom_get(const prom_t *p, const char *name, const char *labels);
/* The sum of every series of name, whatever its labels; NAN when none. */
double prom_sum(const prom_t *p, const char *name);
void prom_free(prom_t *p);

#endif /* RELAIS_TEST_ADMIN_SUPPORT_H */
