/*
 * The admin listener's request-head parser and output buffer: pure functions over bytes,
 * no I/O, so the fuzz target (tests/fuzz/fuzz_http.c) exercises exactly what the listener
 * runs on what a client sent.
 *
 * Strict by design: the request line must be `GET|HEAD|POST SP origin-form SP HTTP/1.x CRLF`,
 * header lines `token ":" OWS value CRLF` with no obsolete folding, and a request may not
 * carry a body. Anything else is refused with the status RFC 9112 names for it, so a
 * confused client learns what is wrong instead of getting a guess.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static int fail(int status, char *reason, size_t reason_len, const char *why)
{
    snprintf(reason, reason_len, "%s", why);
    return -status;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The end of the line starting at p (the index of its CR), or -1 when no CRLF yet, -2 on a
 * bare LF or CR. */
static long line_end(const char *buf, size_t len, size_t p)
{
    for (size_t i = p; i < len; i++) {
        if (buf[i] == '\n') return -2;
        if (buf[i] == '\r') {
            if (i + 1 >= len) return -1;
            return buf[i + 1] == '\n' ? (long)i : -2;
        }
    }
    return -1;
}

static int parse_request_line(const char *buf, size_t end, http_request_t *req, char *reason,
                              size_t reason_len)
{
    const char *sp1 = memchr(buf, ' ', end);
    if (sp1 == NULL) return fail(400, reason, reason_len, "malformed request line");
    size_t mlen = (size_t)(sp1 - buf);
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)buf[i]))
            return fail(400, reason, reason_len, "malformed method");
    if (mlen == 3 && memcmp(buf, "GET", 3) == 0)
        req->head = false;
    else if (mlen == 4 && memcmp(buf, "HEAD", 4) == 0)
        req->head = true;
    else if (mlen == 4 && memcmp(buf, "POST", 4) == 0)
        req->post = true;
    else if (mlen == 0)
        return fail(400, reason, reason_len, "malformed request line");
    else
        return fail(405, reason, reason_len,
                    "only GET, HEAD and (on the control socket) POST are served here");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', end - (size_t)(target - buf));
    if (sp2 == NULL) return fail(400, reason, reason_len, "malformed request line");
    size_t tlen = (size_t)(sp2 - target);
    if (tlen > HTTP_MAX_TARGET) return fail(414, reason, reason_len, "request target too long");
    if (tlen == 0 || target[0] != '/')
        return fail(400, reason, reason_len, "the request target must be a path");
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail(400, reason, reason_len, "invalid byte in the request target");
    }
    const char *version = sp2 + 1;
    size_t vlen = end - (size_t)(version - buf);
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1'))
        return fail(vlen >= 5 && memcmp(version, "HTTP/", 5) == 0 ? 505 : 400, reason, reason_len,
                    "only HTTP/1.0 and HTTP/1.1 are served here");
    const char *q = memchr(target, '?', tlen);
    req->path = target;
    req->path_len = q ? (size_t)(q - target) : tlen;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? tlen - req->path_len - 1 : 0;
    return 0;
}

static int parse_header(const char *line, size_t n, http_request_t *req, char *reason,
                        size_t reason_len)
{
    if (line[0] == ' ' || line[0] == '\t')
        return fail(400, reason, reason_len, "obsolete header line folding");
    const char *colon = memchr(line, ':', n);
    if (colon == NULL || colon == line) return fail(400, reason, reason_len, "malformed header");
    size_t nlen = (size_t)(colon - line);
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)line[i]))
            return fail(400, reason, reason_len, "malformed header name");
    const char *v = colon + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
    for (const char *p = v; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(400, reason, reason_len, "control byte in a header value");
    }
    size_t vlen = (size_t)(e - v);
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
        for (size_t i = 0; i < vlen; i++)
            if (v[i] != '0') return fail(413, reason, reason_len, "requests carry no body here");
        if (vlen == 0) return fail(400, reason, reason_len, "empty Content-Length");
    } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        return fail(501, reason, reason_len, "requests carry no body here");
    } else if (nlen == 13 && strncasecmp(line, "authorization", 13) == 0) {
        if (req->authorization != NULL)
            return fail(400, reason, reason_len, "more than one Authorization header");
        req->authorization = v;
        req->authorization_len = vlen;
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, http_request_t *req, char *reason,
                       size_t reason_len)
{
    memset(req, 0, sizeof(*req));
    if (reason_len) reason[0] = '\0';
    size_t avail = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    long e = line_end(buf, avail, 0);
    if (e == -2) return fail(400, reason, reason_len, "lines must end with CRLF");
    if (e == -1) {
        if (len >= HTTP_MAX_HEAD) return fail(414, reason, reason_len, "request line too long");
        /* An early refusal of what cannot become a valid request line. */
        for (size_t i = 0; i < avail && buf[i] != ' '; i++)
            if (!is_tchar((unsigned char)buf[i]))
                return fail(400, reason, reason_len, "malformed method");
        return 0;
    }
    int rc = parse_request_line(buf, (size_t)e, req, reason, reason_len);
    if (rc < 0) return rc;
    size_t p = (size_t)e + 2;
    unsigned headers = 0;
    for (;;) {
        e = line_end(buf, avail, p);
        if (e == -2) return fail(400, reason, reason_len, "lines must end with CRLF");
        if (e == -1) {
            if (len >= HTTP_MAX_HEAD)
                return fail(431, reason, reason_len, "request headers too large");
            return 0;
        }
        if ((size_t)e == p) return (int)(p + 2); /* the blank line: the head is complete */
        if (++headers > HTTP_MAX_HEADERS)
            return fail(431, reason, reason_len, "too many request headers");
        rc = parse_header(buf + p, (size_t)e - p, req, reason, reason_len);
        if (rc < 0) return rc;
        p = (size_t)e + 2;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool http_query_param(const http_request_t *req, const char *name, char *out, size_t out_len)
{
    size_t nlen = strlen(name);
    const char *q = req->query, *end = req->query ? req->query + req->query_len : NULL;
    while (q != NULL && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            /* Percent-decoded; '+' stays itself (addresses never hold spaces). */
            const char *v = q + nlen + 1;
            size_t o = 0;
            while (v < pe) {
                if (o + 1 >= out_len) return false;
                if (*v == '%' && pe - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    out[o++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 3;
                } else {
                    out[o++] = *v++;
                }
            }
            out[o] = '\0';
            return true;
        }
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

void abuf_put(abuf_t *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *p = realloc(b->p, ncap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void abuf_puts(abuf_t *b, const char *s)
{
    abuf_put(b, s, strlen(s));
}

void abuf_printf(abuf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        abuf_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    abuf_put(b, big, (size_t)n);
    free(big);
}

void abuf_json_str(abuf_t *b, const char *s)
{
    abuf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            abuf_put(b, e, 2);
        } else if (*p < 0x20 || *p >= 0x7f) {
            abuf_printf(b, "\\u%04x", *p);
        } else {
            abuf_put(b, (const char *)p, 1);
        }
    }
    abuf_put(b, "\"", 1);
}

void abuf_free(abuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

const char *http_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
