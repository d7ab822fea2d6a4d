/*
 * The reference agents' configuration reader (see refconfig.h): a libyaml document and the
 * first error found in it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refconfig.h"
#include "relais/errors.h"

#define FILE_MAX (1024 * 1024)

struct ref_cfg {
    yaml_document_t doc;
    bool have_doc;
    char name[256];
    char err[1024];
    int status;
};

static unsigned line_of(const yaml_node_t *n)
{
    return n != NULL ? (unsigned)n->start_mark.line + 1 : 0;
}

int ref__cfg_fail(ref_cfg_t *cfg, const yaml_node_t *n, const char *what, const char *fmt, ...)
{
    if (cfg->status != 0) return cfg->status;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(cfg->err, sizeof cfg->err, "%s:%u: %s: %s", cfg->name, line_of(n), what, msg);
    cfg->status = RELAIS_ECONFIG;
    return cfg->status;
}

const char *ref__cfg_error(const ref_cfg_t *cfg)
{
    return cfg->status != 0 ? cfg->err : NULL;
}

int ref__cfg_status(const ref_cfg_t *cfg)
{
    return cfg->status;
}

static bool has_nul(yaml_document_t *doc)
{
    for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++) {
        if (n->type == YAML_SCALAR_NODE &&
            n->data.scalar.length != strlen((char *)n->data.scalar.value))
            return true; /* a NUL inside a value: refuse as firmly as an alias */
    }
    return false;
}

int ref__cfg_parse(ref_cfg_t **out, const char *yaml, size_t len, const char *name, char *err,
                   size_t err_len)
{
    *out = NULL;
    ref_cfg_t *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) return -ENOMEM;
    snprintf(cfg->name, sizeof cfg->name, "%s", name);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(cfg);
        return -ENOMEM;
    }
    /* Aliases are refused by scanning events first: libyaml resolves them silently. */
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, err_len, "%s:%u: %s", name, (unsigned)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "not valid YAML");
            rc = RELAIS_ECONFIG;
            break;
        }
        bool alias =
            ev.type == YAML_ALIAS_EVENT ||
            (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor != NULL) ||
            (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor != NULL) ||
            (ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor != NULL);
        unsigned line = (unsigned)ev.start_mark.line + 1;
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (alias) {
            snprintf(err, err_len, "%s:%u: anchors and aliases are not accepted", name, line);
            rc = RELAIS_ECONFIG;
            break;
        }
        if (end) break;
    }
    yaml_parser_delete(&parser);
    if (rc == 0) {
        if (!yaml_parser_initialize(&parser)) {
            free(cfg);
            return -ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
        if (!yaml_parser_load(&parser, &cfg->doc)) {
            snprintf(err, err_len, "%s:%u: %s", name, (unsigned)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "not valid YAML");
            rc = RELAIS_ECONFIG;
        } else {
            cfg->have_doc = true;
            if (has_nul(&cfg->doc)) {
                snprintf(err, err_len, "%s: a value contains a NUL character", name);
                rc = RELAIS_ECONFIG;
            }
        }
        yaml_parser_delete(&parser);
    }
    if (rc != 0) {
        ref__cfg_free(&cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int ref__cfg_load(ref_cfg_t **out, const char *path, char *err, size_t err_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return RELAIS_ECONFIG;
    }
    char *buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    int rc;
    if (bad) {
        snprintf(err, err_len, "%s: cannot read", path);
        rc = RELAIS_ECONFIG;
    } else if (n > FILE_MAX) {
        snprintf(err, err_len, "%s: larger than %d bytes", path, FILE_MAX);
        rc = RELAIS_ECONFIG;
    } else {
        rc = ref__cfg_parse(out, buf, n, path, err, err_len);
    }
    free(buf);
    return rc;
}

void ref__cfg_free(ref_cfg_t **cfgp)
{
    if (cfgp == NULL || *cfgp == NULL) return;
    if ((*cfgp)->have_doc) yaml_document_delete(&(*cfgp)->doc);
    free(*cfgp);
    *cfgp = NULL;
}

static yaml_node_t *node(ref_cfg_t *cfg, int id)
{
    return yaml_document_get_node(&cfg->doc, id);
}

const yaml_node_t *ref__cfg_root(ref_cfg_t *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&cfg->doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        ref__cfg_fail(cfg, root, "document", "expected a mapping (key: value lines)");
        return NULL;
    }
    return root;
}

const char *ref__cfg_text(ref_cfg_t *cfg, const yaml_node_t *n, const char *what)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE) {
        ref__cfg_fail(cfg, n, what, "expected a single value");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

int ref__cfg_keys(ref_cfg_t *cfg, const yaml_node_t *map, const char *what,
                  const char *const *allowed)
{
    if (cfg->status != 0) return cfg->status;
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return ref__cfg_fail(cfg, map, what, "expected a mapping (key: value lines)");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(cfg, p->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE)
            return ref__cfg_fail(cfg, map, what, "keys must be plain names");
        const char *name = (const char *)k->data.scalar.value;
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], name) != 0) i++;
        if (allowed[i] == NULL) return ref__cfg_fail(cfg, k, what, "unknown key '%s'", name);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *kq = node(cfg, q->key);
            if (strcmp((const char *)kq->data.scalar.value, name) == 0)
                return ref__cfg_fail(cfg, k, what, "'%s' appears twice", name);
        }
    }
    return 0;
}

const yaml_node_t *ref__cfg_get(ref_cfg_t *cfg, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(cfg, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return node(cfg, p->value);
    }
    return NULL;
}

size_t ref__cfg_len(ref_cfg_t *cfg, const yaml_node_t *seq, const char *what)
{
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE) {
        ref__cfg_fail(cfg, seq, what, "expected a list");
        return 0;
    }
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

const yaml_node_t *ref__cfg_at(ref_cfg_t *cfg, const yaml_node_t *seq, size_t i)
{
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE) return NULL;
    return node(cfg, seq->data.sequence.items.start[i]);
}

int ref__cfg_str(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, const char **out)
{
    const yaml_node_t *n = ref__cfg_get(cfg, map, key);
    if (n == NULL || cfg->status != 0) return cfg->status;
    const char *s = ref__cfg_text(cfg, n, key);
    if (s == NULL) return cfg->status;
    *out = s;
    return 0;
}

int ref__cfg_uint(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, uint64_t min,
                  uint64_t max, uint64_t *out)
{
    const yaml_node_t *n = ref__cfg_get(cfg, map, key);
    if (n == NULL || cfg->status != 0) return cfg->status;
    const char *s = ref__cfg_text(cfg, n, key);
    if (s == NULL) return cfg->status;
    if (s[0] == '\0') return ref__cfg_fail(cfg, n, key, "expected a whole number");
    uint64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return ref__cfg_fail(cfg, n, key, "expected a whole number, got '%s'", s);
        if (v > (UINT64_MAX - 9) / 10) return ref__cfg_fail(cfg, n, key, "number too large");
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (v < min || v > max)
        return ref__cfg_fail(cfg, n, key, "%llu is outside %llu..%llu", (unsigned long long)v,
                             (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

int ref__cfg_double(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, double min, double max,
                    double *out)
{
    const yaml_node_t *n = ref__cfg_get(cfg, map, key);
    if (n == NULL || cfg->status != 0) return cfg->status;
    const char *s = ref__cfg_text(cfg, n, key);
    if (s == NULL) return cfg->status;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || end == NULL || *end != '\0' || errno != 0 || !isfinite(v))
        return ref__cfg_fail(cfg, n, key, "expected a number, got '%s'", s);
    if (v < min || v > max) return ref__cfg_fail(cfg, n, key, "%g is outside %g..%g", v, min, max);
    *out = v;
    return 0;
}

int ref__cfg_bool(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, bool *out)
{
    const yaml_node_t *n = ref__cfg_get(cfg, map, key);
    if (n == NULL || cfg->status != 0) return cfg->status;
    const char *s = ref__cfg_text(cfg, n, key);
    if (s == NULL) return cfg->status;
    if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
        return ref__cfg_fail(cfg, n, key, "expected true or false, got '%s'", s);
    *out = strcmp(s, "true") == 0;
    return 0;
}
