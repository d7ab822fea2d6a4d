/*
 * The admin listener's HTTP/1.1: a request-head parser with hard limits, and the
 * connections it serves on the broker's own libuv loop (TCP for /metrics, the API and the
 * dashboard; a Unix socket for relaisctl).
 *
 * Deliberately small: GET and HEAD (and POST without a body, which only the control
 * socket accepts, for relaisctl's write actions), no request bodies, one request per connection
 * (every response says Connection: close). That is all Prometheus, a browser and relaisctl
 * need, and it keeps what a hostile client can make the broker hold to one bounded buffer
 * per connection, a capped number of connections and a deadline for each.
 * docs/OPERATIONS.md records why this instead of libmicrohttpd.
 */
#ifndef RELAIS_ADMIN_HTTP_H
#define RELAIS_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#define HTTP_MAX_HEAD 8192   /* request line and headers, bytes */
#define HTTP_MAX_TARGET 2048 /* request target, bytes */
#define HTTP_MAX_HEADERS 32

/* A parsed request head. Pointers point into the parsed buffer, lengths given. */
typedef struct http_request {
    bool head; /* HEAD rather than GET */
    bool post; /* POST (no body): a write action, control socket only */
    const char *path;
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    const char *authorization; /* the Authorization header's value, or NULL */
    size_t authorization_len;
} http_request_t;

/*
 * Parses the request head at the start of buf (len bytes). Returns the head's length
 * (through the blank line) when complete, 0 when more bytes are needed, or a negative HTTP
 * status (-400, -405, -413, -414, -431, -501, -505) with a reason written to reason.
 * Never reads beyond len; a head longer than HTTP_MAX_HEAD is -431.
 */
int http_parse_request(const char *buf, size_t len, http_request_t *req, char *reason,
                       size_t reason_len);

/* The value of query parameter name (not decoded: the API's values are identifiers),
 * copied to out. true when present and it fits. */
bool http_query_param(const http_request_t *req, const char *name, char *out, size_t out_len);

/* A growable output buffer; on allocation failure it stops growing and remembers (oom). */
typedef struct abuf {
    char *p;
    size_t len, cap;
    bool oom;
} abuf_t;

void abuf_put(abuf_t *b, const char *s, size_t n);
void abuf_puts(abuf_t *b, const char *s);
void abuf_printf(abuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included, every control byte and non-ASCII byte escaped. */
void abuf_json_str(abuf_t *b, const char *s);
void abuf_free(abuf_t *b);

/* What a handler answers: a status, a content type and a body (owned by the response). */
typedef struct http_response {
    int status;
    const char *content_type;
    abuf_t body;
    const char *extra_headers; /* e.g. "WWW-Authenticate: Bearer\r\n", static */
    const char *cache;         /* Cache-Control value, static; NULL: no-store */
} http_response_t;

/* Called on the loop thread for each complete request; fills resp. */
typedef void (*http_handler_fn)(void *ud, const http_request_t *req, bool trusted,
                                http_response_t *resp);

typedef struct http_server http_server_t;

typedef struct http_limits {
    unsigned max_connections; /* beyond this, a new connection gets 503 and is closed */
    unsigned head_timeout_ms; /* the whole request head must arrive within this */
    unsigned write_timeout_ms;
} http_limits_t;

/* Listens on host:port (TCP) — trusted false: the handler checks the token — or on a Unix
 * socket path created with mode 0600 — trusted true: the file's mode is the check. The
 * bound address is written to bound ("127.0.0.1:PORT" or the path). 0 or a negative libuv
 * error, with reason. */
int http_server_open_tcp(http_server_t **out, uv_loop_t *loop, const char *host, int port,
                         const http_limits_t *lim, http_handler_fn fn, void *ud, char *bound,
                         size_t bound_len, char *reason, size_t reason_len);
int http_server_open_unix(http_server_t **out, uv_loop_t *loop, const char *path,
                          const http_limits_t *lim, http_handler_fn fn, void *ud, char *reason,
                          size_t reason_len);

/* Connections open now, and refused for the cap since start. */
unsigned http_server_connections(const http_server_t *s);
unsigned long long http_server_refused(const http_server_t *s);

/* Closes the listener and every connection; the memory goes in the close callbacks, so the
 * loop must run afterwards. Accepts NULL; nulls *s. */
void http_server_close(http_server_t **s);

const char *http_status_text(int status);

#endif /* RELAIS_ADMIN_HTTP_H */
