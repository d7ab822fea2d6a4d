/*
 * The strict reader of relaisd.yaml (relaisd_config.h): libyaml events, one top-level
 * mapping of known keys to scalars, each setting turned into the command-line option it
 * stands for. What the values mean is main.c's business, which checks them as it checks
 * flags.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "relais/errors.h"
#include "relaisd_config.h"

/* The keys, in the order of relaisd --help; those with flag=true take true or false. */
static const struct key {
    const char *name;
    bool flag;
} keys[] = {
    {"bind", false},
    {"data", false},
    {"directory", false},
    {"curve_key", false},
    {"insecure", true},
    {"broker_id", false},
    {"heartbeat_ms", false},
    {"max_frame_bytes", false},
    {"max_recipients", false},
    {"default_ttl_ms", false},
    {"max_ttl_ms", false},
    {"durability", false},
    {"dedup_retention_ms", false},
    {"ack_timeout_ms", false},
    {"store_reserve_kb", false},
    {"dead_letter_retention_days", false},
    {"audit_rotate_mb", false},
    {"audit_retention_days", false},
    {"admin", false},
    {"admin_token", false},
    {"log_level", false},
    {"log_json", true},
};
#define N_KEYS (sizeof keys / sizeof keys[0])
#define MAX_VALUE 4096

static int fail(char *err, size_t err_len, const char *name, size_t line, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, err_len, "%s:%zu: %s", name, line, what);
    return RELAIS_ECONFIG;
}

static void key_list(char *buf, size_t cap)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KEYS && pos < cap; i++) {
        int n = snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", keys[i].name);
        if (n < 0) break;
        pos += (size_t)n;
    }
}

void relaisd_config_free(relaisd_config_t *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < c->n; i++) free(c->settings[i].option);
    free(c->settings);
    c->settings = NULL;
    c->n = 0;
}

/* Adds the option of key k with value v (NULL for a boolean true). */
static int add(relaisd_config_t *c, const struct key *k, const char *v, unsigned line)
{
    relaisd_setting_t *more = realloc(c->settings, (c->n + 1) * sizeof *more);
    if (more == NULL) return -ENOMEM;
    c->settings = more;
    size_t cap = strlen(k->name) + (v ? strlen(v) : 0) + 4;
    char *opt = malloc(cap);
    if (opt == NULL) return -ENOMEM;
    int n = snprintf(opt, cap, "--%s%s%s", k->name, v ? "=" : "", v ? v : "");
    for (int i = 2; i < n && opt[i] != '='; i++)
        if (opt[i] == '_') opt[i] = '-';
    c->settings[c->n].option = opt;
    c->settings[c->n].line = line;
    c->n++;
    return 0;
}

int relaisd_config_parse(const void *yaml, size_t len, const char *name, relaisd_config_t *out,
                         char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (name == NULL) name = "<memory>";
    if (memchr(yaml, '\0', len) != NULL)
        return fail(err, err_len, name, 1, "the file holds a NUL byte: not a text file");
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return -ENOMEM;
    yaml_parser_set_input_string(&parser, yaml, len);

    relaisd_config_t c = {0};
    bool seen[N_KEYS] = {false};
    const struct key *pending = NULL; /* the key whose value comes next */
    unsigned pending_line = 0;
    int depth = 0, docs = 0, rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = fail(err, err_len, name, parser.problem_mark.line + 1, "not valid YAML: %s",
                      parser.problem ? parser.problem : "syntax error");
            break;
        }
        size_t line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) rc = fail(err, err_len, name, line, "a second document: one only");
            break;
        case YAML_ALIAS_EVENT:
            rc = fail(err, err_len, name, line, "aliases (*name) are not accepted here");
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor != NULL)
                rc = fail(err, err_len, name, line, "anchors (&name) are not accepted here");
            else if (depth == 0 && ev.type == YAML_MAPPING_START_EVENT)
                depth = 1;
            else if (pending != NULL)
                rc = fail(err, err_len, name, line, "%s: wants a single value, not a %s",
                          pending->name, ev.type == YAML_MAPPING_START_EVENT ? "mapping" : "list");
            else
                rc = fail(err, err_len, name, line,
                          "the file must be a mapping of options (key: value)");
            break;
        case YAML_MAPPING_END_EVENT:
            depth = 0;
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (ev.data.scalar.anchor != NULL) {
                rc = fail(err, err_len, name, line, "anchors (&name) are not accepted here");
                break;
            }
            if (depth == 0) {
                /* A document that is one scalar: an empty file is `~`, anything else is
                 * not a configuration. */
                if (ev.data.scalar.length != 0 && strcmp(v, "~") != 0 && strcmp(v, "null") != 0)
                    rc = fail(err, err_len, name, line,
                              "the file must be a mapping of options (key: value)");
                break;
            }
            if (memchr(v, '\0', ev.data.scalar.length) != NULL) {
                /* A "\0" escape: the option would silently end there. */
                if (pending == NULL)
                    rc = fail(err, err_len, name, line, "a key holds a NUL (\\0) character");
                else
                    rc = fail(err, err_len, name, line, "%s: holds a NUL (\\0) character",
                              pending->name);
                break;
            }
            if (pending == NULL) {
                for (size_t i = 0; i < N_KEYS && pending == NULL; i++)
                    if (strcmp(v, keys[i].name) == 0) {
                        if (seen[i]) {
                            rc = fail(err, err_len, name, line, "%s: given twice", v);
                            break;
                        }
                        seen[i] = true;
                        pending = &keys[i];
                        pending_line = (unsigned)line;
                    }
                if (pending == NULL && rc == 0) {
                    char list[512];
                    key_list(list, sizeof list);
                    rc = fail(err, err_len, name, line, "unknown key '%.64s' (expected %s)", v,
                              list);
                }
                break;
            }
            const struct key *k = pending;
            pending = NULL;
            bool plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (k->flag) {
                if (plain && strcmp(v, "true") == 0)
                    rc = add(&c, k, NULL, pending_line);
                else if (!(plain && strcmp(v, "false") == 0))
                    rc = fail(err, err_len, name, line, "%s: wants true or false, got '%.64s'",
                              k->name, v);
            } else if (ev.data.scalar.length == 0 || (plain && strcmp(v, "~") == 0) ||
                       (plain && strcmp(v, "null") == 0)) {
                rc = fail(err, err_len, name, line, "%s: has no value", k->name);
            } else if (ev.data.scalar.length > MAX_VALUE) {
                rc = fail(err, err_len, name, line, "%s: longer than %d bytes", k->name, MAX_VALUE);
            } else {
                rc = add(&c, k, v, pending_line);
            }
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        relaisd_config_free(&c);
        if (rc == -ENOMEM) snprintf(err, err_len, "%s: out of memory", name);
        return rc;
    }
    *out = c;
    return 0;
}

int relaisd_config_load(const char *path, relaisd_config_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_len, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= (1u << 20)) break;
        char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) break;
        buf = bigger;
        cap *= 2;
    }
    if (buf == NULL)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = -EIO;
    else if (n == cap)
        rc = fail(err, err_len, path, 1, "larger than %zu bytes", cap);
    fclose(f);
    if (rc == -ENOMEM || rc == -EIO) snprintf(err, err_len, "%s: %s", path, strerror(-rc));
    if (rc == 0) rc = relaisd_config_parse(buf, n, path, out, err, err_len);
    free(buf);
    return rc;
}
