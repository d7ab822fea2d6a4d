/*
 * Reading relais-hl7's YAML configuration (see channel.h) with the reference agents'
 * strict reader (refconfig.h): every section lists its keys, every value is checked, and
 * the first mistake is reported with its file and line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "refagents.h"
#include "refconfig.h"
#include "relais/codec.h"
#include "relais/errors.h"

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) abort(); /* the project's out-of-memory policy for configuration */
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) abort();
    return p;
}

static bool name_ok(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 64) return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Reads "host:port" or "[v6]:port" into *host / *port. */
static int read_hostport(ref_cfg_t *cfg, const yaml_node_t *n, const char *what, const char *text,
                         char **host, int *port_out)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text) {
        return ref__cfg_fail(cfg, n, what, "expected host:port, e.g. 0.0.0.0:2575");
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535) {
        return ref__cfg_fail(cfg, n, what, "port must be 0..65535");
    }
    size_t hl = (size_t)(colon - text);
    const char *h = text;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') h++, hl -= 2;
    *host = xcalloc(1, hl + 1);
    memcpy(*host, h, hl);
    *port_out = (int)port;
    return 0;
}

static int read_list(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, char ***out,
                     size_t *n)
{
    const yaml_node_t *seq = ref__cfg_get(cfg, map, key);
    if (seq == NULL) return 0;
    size_t len = ref__cfg_len(cfg, seq, key);
    *out = xcalloc(len, sizeof **out);
    for (size_t i = 0; i < len; i++) {
        const char *t = ref__cfg_text(cfg, ref__cfg_at(cfg, seq, i), key);
        if (t == NULL) return ref__cfg_status(cfg);
        if (t[0] == '\0') return ref__cfg_fail(cfg, seq, key, "empty value");
        (*out)[(*n)++] = xstrdup(t);
    }
    return ref__cfg_status(cfg);
}

typedef enum table_kind { TABLE_DISPOSITIONS, TABLE_DIAGNOSES, TABLE_SPECIALTIES } table_kind_t;

/* Reads a list of {code_key: code, value_key: value} into a table. */
static int read_table(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, const char *code_key,
                      const char *value_key, hl7_code_map_t **out, size_t *n, table_kind_t kind,
                      const relais_ref_programmes_t *progs)
{
    const yaml_node_t *seq = ref__cfg_get(cfg, map, key);
    if (seq == NULL) return 0;
    bool dispositions = kind == TABLE_DISPOSITIONS;
    size_t len = ref__cfg_len(cfg, seq, key);
    *out = xcalloc(len, sizeof **out);
    const char *const keys[] = {code_key, value_key, NULL};
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *e = ref__cfg_at(cfg, seq, i);
        if (ref__cfg_keys(cfg, e, key, keys) != 0) return ref__cfg_status(cfg);
        const char *code = NULL, *val = NULL;
        ref__cfg_str(cfg, e, code_key, &code);
        ref__cfg_str(cfg, e, value_key, &val);
        if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
        if (code == NULL || code[0] == '\0' || val == NULL)
            return ref__cfg_fail(cfg, e, key, "each entry needs %s and %s", code_key, value_key);
        char norm[16];
        if (kind == TABLE_DIAGNOSES) {
            /* ICD-10 codes are compared without their dot: I50.0 and I500 are one code. */
            size_t o = 0;
            for (const char *c = code; *c && o + 1 < sizeof norm; c++) {
                if (*c != '.') norm[o++] = *c;
            }
            norm[o] = '\0';
            if (o == 0 || strlen(code) > 10)
                return ref__cfg_fail(cfg, e, key, "'%s' is not an ICD-10 code", code);
            code = norm;
        }
        for (size_t j = 0; j < *n; j++) {
            if (strcmp((*out)[j].code, code) == 0)
                return ref__cfg_fail(cfg, e, key, "%s '%s' given twice", code_key, code);
        }
        hl7_code_map_t *m = &(*out)[*n];
        if (dispositions) {
            /* HOME_WITH_SERVICES as in the schema, or home-with-services as programmes.yaml
             * writes it. */
            char up[32];
            size_t o = 0;
            for (const char *c = val; *c && o + 1 < sizeof up; c++)
                up[o++] = *c == '-' ? '_' : (*c >= 'a' && *c <= 'z') ? (char)(*c - 32) : *c;
            up[o] = '\0';
            const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
                &relais__v1__discharge_notification__disposition__descriptor, up);
            if (v == NULL || v->value == 0) {
                return ref__cfg_fail(cfg, e, key,
                                     "unknown disposition '%s' (HOME, HOME_WITH_SERVICES, SMR, "
                                     "EHPAD, TRANSFER, DECEASED)",
                                     val);
            }
            m->disposition = v->value;
        } else if (kind == TABLE_DIAGNOSES && relais_ref_programme_find(progs, val) == NULL) {
            return ref__cfg_fail(cfg, e, key, "unknown programme '%s'", val);
        } else if (kind == TABLE_SPECIALTIES && !name_ok(val)) {
            return ref__cfg_fail(cfg, e, key, "specialty '%s': lowercase letters, digits, . _ -",
                                 val);
        }
        m->code = xstrdup(code);
        m->value = xstrdup(val);
        (*n)++;
    }
    return 0;
}

static int read_channel(ref_cfg_t *cfg, const yaml_node_t *c, hl7_config_t *conf, hl7_channel_t *ch)
{
    static const char *const keys[] = {
        "name",     "listen",         "address",      "key",       "applications", "facilities",
        "timezone", "processing_ids", "dispositions", "diagnoses", "specialties",  "outbound",
        NULL};
    if (ref__cfg_keys(cfg, c, "channels[]", keys) != 0) return ref__cfg_status(cfg);
    const char *name = NULL, *listen = NULL, *address = NULL, *key = NULL, *tz = NULL;
    ref__cfg_str(cfg, c, "name", &name);
    ref__cfg_str(cfg, c, "listen", &listen);
    ref__cfg_str(cfg, c, "address", &address);
    ref__cfg_str(cfg, c, "key", &key);
    ref__cfg_str(cfg, c, "timezone", &tz);
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (name == NULL || !name_ok(name))
        return ref__cfg_fail(cfg, c, "name", "required, lowercase letters, digits, . _ -");
    for (size_t i = 0; i < conf->n_channels; i++) {
        if (strcmp(conf->channels[i].name, name) == 0)
            return ref__cfg_fail(cfg, c, "name", "channel '%s' declared twice", name);
    }
    ch->name = xstrdup(name);
    if (listen == NULL) return ref__cfg_fail(cfg, c, "listen", "required (host:port)");
    if (read_hostport(cfg, ref__cfg_get(cfg, c, "listen"), "listen", listen, &ch->listen_host,
                      &ch->listen_port) != 0)
        return ref__cfg_status(cfg);
    const char *outbound = NULL;
    ref__cfg_str(cfg, c, "outbound", &outbound);
    if (outbound != NULL && (read_hostport(cfg, ref__cfg_get(cfg, c, "outbound"), "outbound",
                                           outbound, &ch->outbound_host, &ch->outbound_port) != 0 ||
                             ch->outbound_port == 0))
        return ref__cfg_fail(cfg, ref__cfg_get(cfg, c, "outbound"), "outbound",
                             "the hospital's MLLP endpoint, host:port");
    relais_address_t a;
    char why[RELAIS_REASON_MAX];
    if (address == NULL || relais_address_parse(address, &a, why, sizeof why) != 0 ||
        a.kind != RELAIS_ADDR_FINESS) {
        return ref__cfg_fail(cfg, c, "address", "required, the hospital's finess: address");
    }
    ch->address = xstrdup(address);
    if (key == NULL && !conf->insecure)
        return ref__cfg_fail(cfg, c, "key", "required (the channel's keypair file)");
    if (key != NULL) ch->key_path = xstrdup(key);
    ch->timezone = xstrdup(tz != NULL ? tz : "Europe/Paris");
    if (ch->timezone[0] == '\0' || strstr(ch->timezone, "..") != NULL)
        return ref__cfg_fail(cfg, c, "timezone", "an IANA zone name, e.g. Europe/Paris");
    read_list(cfg, c, "applications", &ch->applications, &ch->n_applications);
    read_list(cfg, c, "facilities", &ch->facilities, &ch->n_facilities);
    char **ids = NULL;
    size_t nids = 0;
    read_list(cfg, c, "processing_ids", &ids, &nids);
    strcpy(ch->processing_ids, "P");
    if (ids != NULL) {
        ch->processing_ids[0] = '\0';
        for (size_t i = 0; i < nids; i++) {
            bool ok = strlen(ids[i]) == 1 && strchr("PTD", ids[i][0]) != NULL;
            if (ok && strchr(ch->processing_ids, ids[i][0]) == NULL &&
                strlen(ch->processing_ids) < 3)
                strncat(ch->processing_ids, ids[i], 1);
            free(ids[i]);
            if (!ok) {
                free(ids);
                return ref__cfg_fail(cfg, ref__cfg_get(cfg, c, "processing_ids"), "processing_ids",
                                     "values are P, T or D (MSH-11)");
            }
        }
        free(ids);
        if (ch->processing_ids[0] == '\0')
            return ref__cfg_fail(cfg, c, "processing_ids", "at least one of P, T, D");
    }
    read_table(cfg, c, "dispositions", "pv1_36", "disposition", &ch->dispositions,
               &ch->n_dispositions, TABLE_DISPOSITIONS, NULL);
    read_table(cfg, c, "specialties", "rf1_3", "specialty", &ch->specialties, &ch->n_specialties,
               TABLE_SPECIALTIES, NULL);
    const relais_ref_programmes_t *progs =
        conf->programmes != NULL ? conf->programmes : relais_ref_programmes_default();
    read_table(cfg, c, "diagnoses", "icd10", "programme", &ch->diagnoses, &ch->n_diagnoses,
               TABLE_DIAGNOSES, progs);
    return ref__cfg_status(cfg);
}

static int read_config(ref_cfg_t *cfg, hl7_config_t *conf, char *err, size_t err_len)
{
    const yaml_node_t *root = ref__cfg_root(cfg);
    static const char *const keys[] = {"broker",      "directory",  "state_dir",
                                       "coordinator", "programmes", "limits",
                                       "channels",    "outbox",     NULL};
    if (root == NULL || ref__cfg_keys(cfg, root, "configuration", keys) != 0)
        return ref__cfg_status(cfg);
    const yaml_node_t *b = ref__cfg_get(cfg, root, "broker");
    if (b == NULL) return ref__cfg_fail(cfg, root, "broker", "required (endpoint, server_key)");
    static const char *const bkeys[] = {"endpoint", "server_key", "insecure", NULL};
    if (ref__cfg_keys(cfg, b, "broker", bkeys) != 0) return ref__cfg_status(cfg);
    const char *endpoint = NULL, *server_key = NULL;
    ref__cfg_str(cfg, b, "endpoint", &endpoint);
    ref__cfg_str(cfg, b, "server_key", &server_key);
    ref__cfg_bool(cfg, b, "insecure", &conf->insecure);
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (endpoint == NULL || endpoint[0] == '\0')
        return ref__cfg_fail(cfg, b, "endpoint", "required, e.g. tcp://127.0.0.1:7400");
    conf->endpoint = xstrdup(endpoint);
    if (server_key == NULL && !conf->insecure)
        return ref__cfg_fail(cfg, b, "server_key", "required unless insecure: true");
    if (server_key != NULL) conf->server_key = xstrdup(server_key);

    const char *dir = NULL, *state = NULL, *coord = NULL, *progs = NULL, *outbox = NULL;
    ref__cfg_str(cfg, root, "outbox", &outbox);
    if (outbox != NULL && strcmp(outbox, "disk") != 0 && strcmp(outbox, "memory") != 0)
        return ref__cfg_fail(cfg, ref__cfg_get(cfg, root, "outbox"), "outbox", "disk or memory");
    conf->outbox_memory = outbox != NULL && strcmp(outbox, "memory") == 0;
    ref__cfg_str(cfg, root, "directory", &dir);
    ref__cfg_str(cfg, root, "state_dir", &state);
    ref__cfg_str(cfg, root, "coordinator", &coord);
    ref__cfg_str(cfg, root, "programmes", &progs);
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (dir == NULL) return ref__cfg_fail(cfg, root, "directory", "required (the territory file)");
    if (state == NULL) return ref__cfg_fail(cfg, root, "state_dir", "required");
    conf->directory = xstrdup(dir);
    conf->state_dir = xstrdup(state);
    if (coord != NULL) {
        if (!relais_address_valid(coord))
            return ref__cfg_fail(cfg, ref__cfg_get(cfg, root, "coordinator"), "coordinator",
                                 "not a valid address");
        conf->coordinator = xstrdup(coord);
    }
    if (progs != NULL) {
        conf->programmes_file = xstrdup(progs);
        int rc = relais_ref_programmes_load(progs, &conf->programmes, err, err_len);
        if (rc != 0) return rc;
    }

    conf->max_message_bytes = 1024 * 1024;
    conf->max_connections = 256;
    conf->frame_timeout_ms = 30000;
    conf->idle_timeout_ms = 600000;
    conf->ack_timeout_ms = 10000;
    const yaml_node_t *lim = ref__cfg_get(cfg, root, "limits");
    if (lim != NULL) {
        static const char *const lkeys[] = {"max_message_bytes", "max_connections",
                                            "frame_timeout_ms",  "idle_timeout_ms",
                                            "ack_timeout_ms",    NULL};
        if (ref__cfg_keys(cfg, lim, "limits", lkeys) != 0) return ref__cfg_status(cfg);
        ref__cfg_uint(cfg, lim, "max_message_bytes", 1024, 16 * 1024 * 1024,
                      &conf->max_message_bytes);
        ref__cfg_uint(cfg, lim, "max_connections", 1, 100000, &conf->max_connections);
        ref__cfg_uint(cfg, lim, "frame_timeout_ms", 100, 3600000, &conf->frame_timeout_ms);
        ref__cfg_uint(cfg, lim, "idle_timeout_ms", 100, 86400000, &conf->idle_timeout_ms);
        ref__cfg_uint(cfg, lim, "ack_timeout_ms", 100, 600000, &conf->ack_timeout_ms);
        if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    }
    const yaml_node_t *chs = ref__cfg_get(cfg, root, "channels");
    size_t n = chs != NULL ? ref__cfg_len(cfg, chs, "channels") : 0;
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (n == 0) return ref__cfg_fail(cfg, root, "channels", "at least one channel");
    if (n > HL7_CHANNELS_MAX)
        return ref__cfg_fail(cfg, chs, "channels", "at most %d channels", HL7_CHANNELS_MAX);
    for (size_t i = 0; i < n; i++) {
        hl7_channel_t *ch = &conf->channels[conf->n_channels];
        int rc = read_channel(cfg, ref__cfg_at(cfg, chs, i), conf, ch);
        conf->n_channels++; /* counted even when half read, so that free() finds it */
        if (rc != 0) return rc;
    }
    return 0;
}

int hl7_config_load(const char *path, const char *yaml, size_t len, hl7_config_t **out, char *err,
                    size_t err_len)
{
    *out = NULL;
    ref_cfg_t *cfg = NULL;
    int rc = yaml != NULL ? ref__cfg_parse(&cfg, yaml, len, path, err, err_len)
                          : ref__cfg_load(&cfg, path, err, err_len);
    if (rc != 0) return rc;
    hl7_config_t *conf = xcalloc(1, sizeof *conf);
    rc = read_config(cfg, conf, err, err_len);
    if (rc != 0 && ref__cfg_error(cfg) != NULL) snprintf(err, err_len, "%s", ref__cfg_error(cfg));
    ref__cfg_free(&cfg);
    if (rc != 0) {
        hl7_config_free(&conf);
        return rc;
    }
    *out = conf;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void free_table(hl7_code_map_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].code);
        free(t[i].value);
    }
    free(t);
}

void hl7_config_free(hl7_config_t **cfg)
{
    if (cfg == NULL || *cfg == NULL) return;
    hl7_config_t *c = *cfg;
    for (size_t i = 0; i < c->n_channels; i++) {
        hl7_channel_t *ch = &c->channels[i];
        free(ch->name);
        free(ch->listen_host);
        free(ch->outbound_host);
        free(ch->address);
        free(ch->key_path);
        free(ch->timezone);
        free_strings(ch->applications, ch->n_applications);
        free_strings(ch->facilities, ch->n_facilities);
        free_table(ch->dispositions, ch->n_dispositions);
        free_table(ch->diagnoses, ch->n_diagnoses);
        free_table(ch->specialties, ch->n_specialties);
    }
    free(c->endpoint);
    free(c->server_key);
    free(c->directory);
    free(c->state_dir);
    free(c->coordinator);
    free(c->programmes_file);
    relais_ref_programmes_free(&c->programmes);
    free(c);
    *cfg = NULL;
}
