/*
 * Fuzz target: the admin listener's HTTP request-head parser (broker/admin/http_parse.c),
 * which reads whatever a client on the admin port sends.
 *
 * Properties checked beyond "no sanitizer report": the verdict is one of the documented
 * ones (need more, a head length, or a listed status) with a reason exactly on refusal; a
 * complete head ends with the blank line, fits the limit and has an origin-form path inside
 * the input; every strict prefix of a complete head asks for more rather than deciding
 * differently; query look-ups stay within their output; and the JSON string escaper emits
 * only printable ASCII.
 */
#include "fuzz.h"
#include "http.h"

static int allowed(int rc)
{
    switch (rc) {
    case -400:
    case -405:
    case -413:
    case -414:
    case -431:
    case -501:
    case -505:
        return 1;
    default:
        return rc >= 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    http_request_t req;
    char reason[128];
    int rc = http_parse_request(buf, size, &req, reason, sizeof(reason));
    FUZZ_CHECK(fuzz_terminated(reason, sizeof(reason)));
    FUZZ_CHECKF(allowed(rc), "rc %d", rc);
    FUZZ_CHECKF((rc < 0) == (reason[0] != '\0'), "rc %d reason '%s'", rc, reason);
    if (rc > 0) {
        size_t n = (size_t)rc;
        FUZZ_CHECK(n <= size && n <= HTTP_MAX_HEAD && n >= 4);
        FUZZ_CHECK(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
        FUZZ_CHECK(req.path >= buf && req.path + req.path_len <= buf + n);
        FUZZ_CHECK(req.path_len >= 1 && req.path[0] == '/');
        FUZZ_CHECK(req.path_len <= HTTP_MAX_TARGET);
        if (req.query) FUZZ_CHECK(req.query >= buf && req.query + req.query_len <= buf + n);
        if (req.authorization)
            FUZZ_CHECK(req.authorization >= buf &&
                       req.authorization + req.authorization_len <= buf + n);
        /* A head is decided only once complete: its prefixes all ask for more. */
        for (size_t cut = n > 64 ? n - 64 : 0; cut < n; cut++) {
            http_request_t r2;
            char why[128];
            int rc2 = http_parse_request(buf, cut, &r2, why, sizeof(why));
            FUZZ_CHECKF(rc2 == 0, "prefix %zu of a %zu-byte head gave %d (%s)", cut, n, rc2, why);
        }
        char v[16];
        if (http_query_param(&req, "limit", v, sizeof(v))) FUZZ_CHECK(fuzz_terminated(v, sizeof v));
        char tiny[1];
        FUZZ_CHECK(!http_query_param(&req, "after", tiny, sizeof(tiny)) || tiny[0] == '\0');
    }
    /* The JSON escaper on the raw bytes (up to the first NUL). */
    char *s = malloc(size + 1);
    if (s == NULL) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    abuf_t o = {0};
    abuf_json_str(&o, s);
    if (!o.oom) {
        FUZZ_CHECK(o.len >= 2 && o.p[0] == '"' && o.p[o.len - 1] == '"');
        for (size_t i = 0; i < o.len; i++)
            FUZZ_CHECK((unsigned char)o.p[i] >= 0x20 && (unsigned char)o.p[i] < 0x7f);
    }
    abuf_free(&o);
    free(s);
    return 0;
}
