/*
 * Loading the territory directory (directory.h) from YAML with libyaml's document API.
 *
 * The walk is driven by the schema: each mapping is read against the list of keys it may
 * hold, so an unknown or repeated key is an error rather than a line silently ignored —
 * libyaml itself accepts duplicate keys, and a misspelt `pubic_key` must not turn into an
 * agent without a key. Anchors and aliases are refused before the walk: a directory has no
 * use for them, and they are how a YAML file becomes a cycle or an exponential tree.
 * Every error names the file, the line and the field, in one sentence for the operator.
 */
#include "directory.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>
#include <zmq.h>

#include "map.h"
#include "relais/codec.h"
#include "relais/errors.h"

/* One service pool: its members, in file order. */
typedef struct pool {
    char *address;
    const dir_agent_t **members;
    size_t n, cap;
} pool_t;

#define MAX_OVERRIDES 32 /* more than the body types of the schema */

struct directory {
    char *territory;
    bool production;
    dir_limits_t limits;
    dir_agent_t *agents; /* never reallocated once filled: the maps point into it */
    size_t n_agents;
    map_t *by_address;
    map_t *by_key;
    map_t *by_pool; /* address → pool_t */
    pool_t **pools;
    size_t n_pools, cap_pools;
    dir_acl_override_t overrides[MAX_OVERRIDES];
    size_t n_overrides;
};

typedef struct parse {
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t err_len;
    directory_t *d;
} parse_t;

static const char *const role_names[DIR_ROLE_COUNT] = {
    "gp",       "medical_assistant", "nurse", "physiotherapist", "specialist", "hospital",
    "facility", "coordinator",       "app",
};

#define ROLE_LIST                                                                                  \
    "gp, medical_assistant, nurse, physiotherapist, specialist, hospital, "                        \
    "facility, coordinator, app"

const char *dir_role_name(dir_role_t role)
{
    return (unsigned)role < DIR_ROLE_COUNT ? role_names[role] : "unknown";
}

int dir_role_from_name(const char *name, dir_role_t *out)
{
    for (int i = 0; name != NULL && i < DIR_ROLE_COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (dir_role_t)i;
            return 0;
        }
    }
    return RELAIS_EINVALID;
}

/* ---- Errors and YAML helpers ------------------------------------------------------- */

/* Writes "name:line: message" and returns RELAIS_ECONFIG. line 0 omits the line. */
__attribute__((format(printf, 3, 4))) static int fail(parse_t *p, unsigned line, const char *fmt,
                                                      ...)
{
    if (p->err != NULL && p->err_len > 0) {
        int n = line > 0 ? snprintf(p->err, p->err_len, "%s:%u: ", p->name, line)
                         : snprintf(p->err, p->err_len, "%s: ", p->name);
        if (n >= 0 && (size_t)n < p->err_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->err_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return RELAIS_ECONFIG;
}

static unsigned line_of(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

static yaml_node_t *node(parse_t *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain empty, "~" or "null" scalar: YAML's ways of writing nothing. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = text(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

static int want_scalar(parse_t *p, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(p, line_of(n), "%s: expected a single value", what);
    if (strlen(text(n)) != n->data.scalar.length)
        return fail(p, line_of(n), "%s: contains a NUL character", what);
    return 0;
}

static int want_kind(parse_t *p, const yaml_node_t *n, yaml_node_type_t type, const char *what)
{
    if (n->type == type) return 0;
    return fail(p, line_of(n), "%s: expected a %s", what,
                type == YAML_MAPPING_NODE ? "mapping (key: value lines)" : "list");
}

/*
 * Checks that every key of mapping n is one of allowed (NULL-terminated) and appears once;
 * then stores each value's node id in values[i] (0 when absent), in the order of allowed.
 */
static int read_mapping(parse_t *p, const yaml_node_t *n, const char *what,
                        const char *const *allowed, int *values)
{
    int rc = want_kind(p, n, YAML_MAPPING_NODE, what);
    if (rc) return rc;
    size_t n_allowed = 0;
    while (allowed[n_allowed] != NULL) values[n_allowed++] = 0;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = node(p, pair->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE)
            return fail(p, line_of(n), "%s: keys must be plain names", what);
        size_t i = 0;
        while (i < n_allowed && strcmp(text(k), allowed[i]) != 0) i++;
        if (i == n_allowed) return fail(p, line_of(k), "%s: unknown key '%s'", what, text(k));
        if (values[i] != 0) return fail(p, line_of(k), "%s: '%s' appears twice", what, text(k));
        values[i] = pair->value;
    }
    return 0;
}

/* Reads a non-negative integer in [min, max]. */
static int read_uint(parse_t *p, const yaml_node_t *n, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    int rc = want_scalar(p, n, what);
    if (rc) return rc;
    const char *s = text(n);
    uint64_t v = 0;
    if (s[0] == '\0') return fail(p, line_of(n), "%s: expected a whole number", what);
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return fail(p, line_of(n), "%s: expected a whole number, got '%s'", what, text(n));
        if (v > (UINT64_MAX - 9) / 10) return fail(p, line_of(n), "%s: number too large", what);
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < min || v > max) {
        return fail(p, line_of(n), "%s: %llu is outside %llu..%llu", what, (unsigned long long)v,
                    (unsigned long long)min, (unsigned long long)max);
    }
    *out = v;
    return 0;
}

static int read_bool(parse_t *p, const yaml_node_t *n, const char *what, bool *out)
{
    int rc = want_scalar(p, n, what);
    if (rc) return rc;
    if (strcmp(text(n), "true") != 0 && strcmp(text(n), "false") != 0)
        return fail(p, line_of(n), "%s: expected true or false, got '%s'", what, text(n));
    *out = strcmp(text(n), "true") == 0;
    return 0;
}

static int dup_string(const char *s, char **out)
{
    *out = strdup(s);
    return *out == NULL ? -ENOMEM : 0;
}

/*
 * Refuses anchors and aliases: with the document API an alias is a second reference to
 * the same node, so a node referenced twice (or a root referenced at all) is one.
 */
static int check_no_alias(parse_t *p)
{
    size_t count = (size_t)(p->doc->nodes.top - p->doc->nodes.start);
    unsigned char *refs = calloc(count + 1, 1);
    if (refs == NULL) return -ENOMEM;
    int bad = 0;
    refs[1] = 1; /* the root */
    for (size_t i = 0; i < count && bad == 0; i++) {
        yaml_node_t *n = &p->doc->nodes.start[i];
        if (n->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = n->data.sequence.items.start;
                 bad == 0 && it < n->data.sequence.items.top; it++)
                if (refs[*it]++) bad = *it;
        } else if (n->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
                 bad == 0 && pr < n->data.mapping.pairs.top; pr++) {
                bad = refs[pr->key]++ ? pr->key : refs[pr->value]++ ? pr->value : 0;
            }
        }
    }
    free(refs);
    if (bad) return fail(p, line_of(node(p, bad)), "anchors and aliases are not supported");
    return 0;
}

/* ---- Agents ------------------------------------------------------------------------ */

/* Reads a list of addresses into a new NULL-free array; each checked by check(). */
static int read_address_list(parse_t *p, const yaml_node_t *n, const char *what, char ***out,
                             size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (is_null(n)) return 0;
    int rc = want_kind(p, n, YAML_SEQUENCE_NODE, what);
    if (rc) return rc;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) return 0;
    char **list = calloc(count, sizeof *list);
    if (list == NULL) return -ENOMEM;
    *out = list; /* owned by the agent from here, even on failure */
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(p, n->data.sequence.items.start[i]);
        char reason[RELAIS_REASON_MAX];
        rc = want_scalar(p, item, what);
        if (rc) return rc;
        if (relais_address_parse(text(item), NULL, reason, sizeof reason) != 0)
            return fail(p, line_of(item), "%s: '%s' is not an address: %s", what, text(item),
                        reason);
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j], text(item)) == 0)
                return fail(p, line_of(item), "%s: '%s' is listed twice", what, text(item));
        rc = dup_string(text(item), &list[i]);
        if (rc) return rc;
        *n_out = i + 1;
    }
    return 0;
}

static int read_key(parse_t *p, const yaml_node_t *n, const char *what, dir_agent_t *a)
{
    static const char z85_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                                       "TUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    int rc = want_scalar(p, n, what);
    if (rc) return rc;
    const char *s = text(n);
    size_t len = strlen(s);
    if (len != DIR_Z85_LEN)
        return fail(p, line_of(n), "%s: a CURVE public key is %d Z85 characters, got %zu", what,
                    DIR_Z85_LEN, len);
    size_t bad = strspn(s, z85_alphabet);
    if (bad < len) return fail(p, line_of(n), "%s: character %zu is not Z85", what, bad + 1);
    /* libzmq also refuses groups whose value overflows 32 bits. */
    if (zmq_z85_decode(a->public_key, s) == NULL)
        return fail(p, line_of(n), "%s: not a valid Z85 key", what);
    memcpy(a->public_key_z85, s, DIR_Z85_LEN + 1);
    a->has_key = true;
    return 0;
}

static const char *const agent_keys[] = {"address",    "name",  "role",     "specialty",
                                         "public_key", "pools", "acts_for", NULL};
enum { A_ADDRESS, A_NAME, A_ROLE, A_SPECIALTY, A_KEY, A_POOLS, A_ACTS_FOR };

/* Reads agents[i] into *a; what is cross-referenced (pools, acts_for) is checked later. */
static int read_agent(parse_t *p, const yaml_node_t *n, size_t i, dir_agent_t *a)
{
    directory_t *d = p->d;
    char what[64], field[96], reason[RELAIS_REASON_MAX];
    int v[8];
    snprintf(what, sizeof what, "agents[%zu]", i);
    a->line = line_of(n);
    int rc = read_mapping(p, n, what, agent_keys, v);
    if (rc) return rc;
    if (v[A_ADDRESS] == 0) return fail(p, line_of(n), "%s: 'address' is missing", what);
    if (v[A_ROLE] == 0) return fail(p, line_of(n), "%s: 'role' is missing", what);

    yaml_node_t *addr = node(p, v[A_ADDRESS]);
    snprintf(field, sizeof field, "%s.address", what);
    relais_address_t parsed;
    if ((rc = want_scalar(p, addr, field))) return rc;
    if (relais_address_parse(text(addr), &parsed, reason, sizeof reason) != 0)
        return fail(p, line_of(addr), "%s: '%s' is not an address: %s", field, text(addr), reason);
    if (parsed.kind == RELAIS_ADDR_SERVICE)
        return fail(p, line_of(addr),
                    "%s: '%s' is a service pool; an agent has its own address and lists pools "
                    "under 'pools'",
                    field, text(addr));
    if (map_get(d->by_address, text(addr), strlen(text(addr))) != NULL)
        return fail(p, line_of(addr), "%s: '%s' is declared twice", field, text(addr));
    if ((rc = dup_string(text(addr), (char **)&a->address))) return rc;
    if ((rc = map_put(d->by_address, a->address, strlen(a->address), a))) return rc;

    snprintf(field, sizeof field, "%s.name", what);
    yaml_node_t *name = v[A_NAME] ? node(p, v[A_NAME]) : NULL;
    if (name != NULL && !is_null(name) && (rc = want_scalar(p, name, field))) return rc;
    if ((rc = dup_string(name != NULL && !is_null(name) ? text(name) : "", (char **)&a->name)))
        return rc;

    yaml_node_t *role = node(p, v[A_ROLE]);
    snprintf(field, sizeof field, "%s.role", what);
    if ((rc = want_scalar(p, role, field))) return rc;
    if (dir_role_from_name(text(role), &a->role) != 0)
        return fail(p, line_of(role), "%s: unknown role '%s' (expected " ROLE_LIST ")", field,
                    text(role));

    /* A specialty becomes part of service addresses, so it follows their name rules. */
    yaml_node_t *spec = v[A_SPECIALTY] ? node(p, v[A_SPECIALTY]) : NULL;
    snprintf(field, sizeof field, "%s.specialty", what);
    const char *specialty = "";
    if (spec != NULL && !is_null(spec)) {
        if ((rc = want_scalar(p, spec, field))) return rc;
        specialty = text(spec);
        char probe[RELAIS_ADDRESS_MAX];
        snprintf(probe, sizeof probe, "service:specialist/%s@x", specialty);
        if (specialty[0] != '\0' && relais_address_parse(probe, NULL, reason, sizeof reason) != 0)
            return fail(p, line_of(spec), "%s: '%s' is not a valid specialty name: %s", field,
                        specialty, reason);
    }
    if ((rc = dup_string(specialty, (char **)&a->specialty))) return rc;

    snprintf(field, sizeof field, "%s.public_key", what);
    yaml_node_t *key = v[A_KEY] ? node(p, v[A_KEY]) : NULL;
    if (key != NULL && !is_null(key)) {
        if ((rc = read_key(p, key, field, a))) return rc;
        const dir_agent_t *other = map_get(d->by_key, a->public_key, DIR_KEY_LEN);
        if (other != NULL)
            return fail(p, line_of(key), "%s: the same key as %s (line %u): one key, one agent",
                        field, other->address, other->line);
        if ((rc = map_put(d->by_key, a->public_key, DIR_KEY_LEN, a))) return rc;
    }

    snprintf(field, sizeof field, "%s.pools", what);
    if (v[A_POOLS] &&
        (rc = read_address_list(p, node(p, v[A_POOLS]), field, (char ***)&a->pools, &a->n_pools)))
        return rc;
    snprintf(field, sizeof field, "%s.acts_for", what);
    if (v[A_ACTS_FOR] && (rc = read_address_list(p, node(p, v[A_ACTS_FOR]), field,
                                                 (char ***)&a->acts_for, &a->n_acts_for)))
        return rc;
    return 0;
}

static int pool_add(directory_t *d, const char *address, const dir_agent_t *member)
{
    pool_t *pool = map_get(d->by_pool, address, strlen(address));
    if (pool == NULL) {
        if (d->n_pools == d->cap_pools) {
            size_t cap = d->cap_pools ? d->cap_pools * 2 : 8;
            pool_t **grown = realloc(d->pools, cap * sizeof *grown);
            if (grown == NULL) return -ENOMEM;
            d->pools = grown;
            d->cap_pools = cap;
        }
        pool = calloc(1, sizeof *pool);
        if (pool == NULL) return -ENOMEM;
        d->pools[d->n_pools++] = pool;
        if (dup_string(address, &pool->address) != 0 ||
            map_put(d->by_pool, pool->address, strlen(pool->address), pool) != 0)
            return -ENOMEM;
    }
    if (pool->n == pool->cap) {
        size_t cap = pool->cap ? pool->cap * 2 : 4;
        const dir_agent_t **grown = realloc(pool->members, cap * sizeof *grown);
        if (grown == NULL) return -ENOMEM;
        pool->members = grown;
        pool->cap = cap;
    }
    pool->members[pool->n++] = member;
    return 0;
}

/*
 * Checks what refers to other entries once every agent is known: principals exist and are
 * not the agent itself; a pool is a service address of this territory whose role (and
 * specialty, if it names one) is the member's, since the ACL admits a pool by its role and
 * a nurse pool holding a GP would let nurse-only traffic reach a GP.
 */
static int check_references(parse_t *p, dir_agent_t *a, size_t i)
{
    directory_t *d = p->d;
    for (size_t k = 0; k < a->n_acts_for; k++) {
        if (strcmp(a->acts_for[k], a->address) == 0)
            return fail(p, a->line, "agents[%zu].acts_for: %s lists itself", i, a->address);
        if (map_get(d->by_address, a->acts_for[k], strlen(a->acts_for[k])) == NULL)
            return fail(p, a->line, "agents[%zu].acts_for: %s is not an agent of this directory", i,
                        a->acts_for[k]);
    }
    for (size_t k = 0; k < a->n_pools; k++) {
        relais_address_t pool;
        if (relais_address_parse(a->pools[k], &pool, NULL, 0) != 0 ||
            pool.kind != RELAIS_ADDR_SERVICE)
            return fail(p, a->line, "agents[%zu].pools: %s is not a service address", i,
                        a->pools[k]);
        if (strcmp(pool.territory, d->territory) != 0)
            return fail(p, a->line,
                        "agents[%zu].pools: %s belongs to territory '%s', this directory is '%s'",
                        i, a->pools[k], pool.territory, d->territory);
        if (strcmp(pool.role, dir_role_name(a->role)) != 0)
            return fail(p, a->line, "agents[%zu].pools: %s is a pool of %s, %s is a %s", i,
                        a->pools[k], pool.role, a->address, dir_role_name(a->role));
        if (pool.specialty[0] != '\0' && strcmp(pool.specialty, a->specialty) != 0)
            return fail(p, a->line, "agents[%zu].pools: %s is a pool of %s, %s's specialty is '%s'",
                        i, a->pools[k], pool.specialty, a->address, a->specialty);
        int rc = pool_add(d, a->pools[k], a);
        if (rc) return rc;
    }
    return 0;
}

static int read_agents(parse_t *p, const yaml_node_t *n)
{
    directory_t *d = p->d;
    int rc = want_kind(p, n, YAML_SEQUENCE_NODE, "agents");
    if (rc) return rc;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) return 0;
    d->agents = calloc(count, sizeof *d->agents);
    if (d->agents == NULL) return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        d->n_agents = i + 1; /* so that destroy frees what a failed read_agent filled */
        if ((rc = read_agent(p, node(p, n->data.sequence.items.start[i]), i, &d->agents[i])))
            return rc;
        if (!d->agents[i].has_key && d->production)
            return fail(p, d->agents[i].line,
                        "agents[%zu]: %s has no public_key; agents without a key are allowed "
                        "only in a directory with 'production: false' (insecure development)",
                        i, d->agents[i].address);
    }
    for (size_t i = 0; i < count; i++)
        if ((rc = check_references(p, &d->agents[i], i))) return rc;
    return 0;
}

/* ---- Limits and ACL ---------------------------------------------------------------- */

static int read_limits(parse_t *p, const yaml_node_t *n)
{
    static const char *const keys[] = {"submissions_per_second", "sessions_per_key",
                                       "pending_per_mailbox", NULL};
    static const uint64_t max[] = {1000000, 1000, UINT64_MAX / 2};
    dir_limits_t *l = &p->d->limits;
    uint64_t x[3] = {l->submissions_per_second, l->sessions_per_key, l->pending_per_mailbox};
    int v[3], rc = read_mapping(p, n, "limits", keys, v);
    for (int i = 0; i < 3 && rc == 0; i++) {
        char what[64];
        snprintf(what, sizeof what, "limits.%s", keys[i]);
        if (v[i]) rc = read_uint(p, node(p, v[i]), what, 1, max[i], &x[i]);
    }
    if (rc) return rc;
    l->submissions_per_second = (uint32_t)x[0];
    l->sessions_per_key = (uint32_t)x[1];
    l->pending_per_mailbox = x[2];
    return 0;
}

/* Reads [gp, nurse, any, participants, …] into a set. */
static int read_acl_set(parse_t *p, const yaml_node_t *n, const char *what, dir_acl_set_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = want_kind(p, n, YAML_SEQUENCE_NODE, what);
    if (rc) return rc;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(p, *it);
        dir_role_t role = DIR_ROLE_GP;
        if ((rc = want_scalar(p, item, what))) return rc;
        bool any = strcmp(text(item), "any") == 0;
        bool participants = strcmp(text(item), "participants") == 0;
        if (!any && !participants && dir_role_from_name(text(item), &role) != 0)
            return fail(p, line_of(item),
                        "%s: unknown '%s' (expected any, participants or a role: " ROLE_LIST ")",
                        what, text(item));
        out->any |= any;
        out->participants |= participants;
        if (!any && !participants) out->roles |= 1u << role;
    }
    return 0;
}

static int read_acl(parse_t *p, const yaml_node_t *n)
{
    static const char *const keys[] = {"senders", "recipients", NULL};
    directory_t *d = p->d;
    int rc = want_kind(p, n, YAML_MAPPING_NODE, "acl");
    if (rc) return rc;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = node(p, pair->key);
        char what[96];
        if ((rc = want_scalar(p, k, "acl"))) return rc;
        int body = relais_body_from_name(text(k));
        if (body <= 0)
            return fail(p, line_of(k),
                        "acl: unknown body '%s' (expected a schema name such as "
                        "appointment_request, note)",
                        text(k));
        if (directory_acl_override(d, body) != NULL)
            return fail(p, line_of(k), "acl: '%s' appears twice", text(k));
        if (d->n_overrides == MAX_OVERRIDES) return fail(p, line_of(k), "acl: too many entries");
        snprintf(what, sizeof what, "acl.%s", text(k));
        int v[2];
        if ((rc = read_mapping(p, node(p, pair->value), what, keys, v))) return rc;
        dir_acl_override_t *o = &d->overrides[d->n_overrides];
        memset(o, 0, sizeof *o);
        o->body_case = body;
        snprintf(what, sizeof what, "acl.%s.senders", text(k));
        if (v[0] && (rc = read_acl_set(p, node(p, v[0]), what, &o->senders))) return rc;
        snprintf(what, sizeof what, "acl.%s.recipients", text(k));
        if (v[1] && (rc = read_acl_set(p, node(p, v[1]), what, &o->recipients))) return rc;
        o->has_senders = v[0] != 0;
        o->has_recipients = v[1] != 0;
        d->n_overrides++;
    }
    return 0;
}

/* ---- The document ------------------------------------------------------------------ */

static int read_root(parse_t *p, const yaml_node_t *root)
{
    static const char *const keys[] = {"territory", "production", "limits", "acl", "agents", NULL};
    enum { K_TERRITORY, K_PRODUCTION, K_LIMITS, K_ACL, K_AGENTS };
    directory_t *d = p->d;
    int v[5], rc = read_mapping(p, root, "directory", keys, v);
    if (rc) return rc;
    if (v[K_TERRITORY] == 0) return fail(p, line_of(root), "'territory' is missing");
    if (v[K_AGENTS] == 0) return fail(p, line_of(root), "'agents' is missing");

    /* The territory is the last part of service addresses: the same rules apply. */
    yaml_node_t *t = node(p, v[K_TERRITORY]);
    char probe[RELAIS_ADDRESS_MAX], reason[RELAIS_REASON_MAX];
    if ((rc = want_scalar(p, t, "territory"))) return rc;
    snprintf(probe, sizeof probe, "service:gp@%s", text(t));
    if (strlen(text(t)) >= 128 || relais_address_parse(probe, NULL, reason, sizeof reason) != 0)
        return fail(p, line_of(t), "territory: '%s' is not a valid territory name: %s", text(t),
                    reason);
    if ((rc = dup_string(text(t), &d->territory))) return rc;

    if (v[K_PRODUCTION] &&
        (rc = read_bool(p, node(p, v[K_PRODUCTION]), "production", &d->production)))
        return rc;
    if (v[K_LIMITS] && (rc = read_limits(p, node(p, v[K_LIMITS])))) return rc;
    if (v[K_ACL] && (rc = read_acl(p, node(p, v[K_ACL])))) return rc;
    return read_agents(p, node(p, v[K_AGENTS]));
}

static int directory_new(directory_t **out)
{
    directory_t *d = calloc(1, sizeof *d);
    if (d == NULL) return -ENOMEM;
    d->production = true;
    d->limits.submissions_per_second = DIR_DEFAULT_SUBMISSIONS_PER_SECOND;
    d->limits.sessions_per_key = DIR_DEFAULT_SESSIONS_PER_KEY;
    d->limits.pending_per_mailbox = DIR_DEFAULT_PENDING_PER_MAILBOX;
    *out = d;
    if (map_new(&d->by_address) || map_new(&d->by_key) || map_new(&d->by_pool)) {
        directory_destroy(out);
        return -ENOMEM;
    }
    return 0;
}

int directory_parse(const void *yaml, size_t len, const char *name, directory_t **out, char *err,
                    size_t err_len)
{
    parse_t p = {.name = name != NULL ? name : "<memory>", .err = err, .err_len = err_len};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_doc = false;
    int rc;
    *out = NULL;
    if (err != NULL && err_len > 0) err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) return -ENOMEM;
    yaml_parser_set_input_string(&parser, yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = parser.error == YAML_MEMORY_ERROR
                 ? -ENOMEM
                 : fail(&p, (unsigned)parser.problem_mark.line + 1, "YAML: %s%s%s",
                        parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                        parser.context ? parser.context : "");
        goto out;
    }
    have_doc = true;
    p.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        rc = fail(&p, 0, "the file is empty");
        goto out;
    }
    /* A second document would be ignored by this loader: refuse rather than surprise. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = parser.error == YAML_MEMORY_ERROR
                 ? -ENOMEM
                 : fail(&p, (unsigned)parser.problem_mark.line + 1, "YAML: %s",
                        parser.problem ? parser.problem : "syntax error");
        goto out;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    unsigned line = (unsigned)extra.start_mark.line + 1;
    yaml_document_delete(&extra);
    if (more) {
        rc = fail(&p, line, "a directory is one YAML document, found a second");
        goto out;
    }
    if ((rc = check_no_alias(&p))) goto out;
    if ((rc = directory_new(&p.d))) goto out;
    if ((rc = read_root(&p, root))) goto out;
    *out = p.d;
    p.d = NULL;
out:
    if (rc == -ENOMEM && err != NULL && err_len > 0) snprintf(err, err_len, "out of memory");
    directory_destroy(&p.d);
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int directory_load(const char *path, directory_t **out, char *err, size_t err_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    if (f == NULL) {
        rc = -errno;
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-rc));
        return rc;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = directory_parse(buf, len, path, out, err, err_len);
    else if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-rc));
    free(buf);
    return rc;
}

static void free_list(const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) free((void *)list[i]);
    free((void *)list);
}

void directory_destroy(directory_t **dp)
{
    if (dp == NULL || *dp == NULL) return;
    directory_t *d = *dp;
    for (size_t i = 0; i < d->n_agents; i++) {
        dir_agent_t *a = &d->agents[i];
        free((void *)a->address);
        free((void *)a->name);
        free((void *)a->specialty);
        free_list(a->pools, a->n_pools);
        free_list(a->acts_for, a->n_acts_for);
    }
    for (size_t i = 0; i < d->n_pools; i++) {
        if (d->pools[i] == NULL) continue;
        free(d->pools[i]->address);
        free(d->pools[i]->members);
        free(d->pools[i]);
    }
    free(d->pools);
    free(d->agents);
    free(d->territory);
    map_destroy(&d->by_address);
    map_destroy(&d->by_key);
    map_destroy(&d->by_pool);
    free(d);
    *dp = NULL;
}

/* ---- Queries ----------------------------------------------------------------------- */

const char *directory_territory(const directory_t *d)
{
    return d->territory;
}

bool directory_production(const directory_t *d)
{
    return d->production;
}

dir_limits_t directory_limits(const directory_t *d)
{
    return d->limits;
}

const dir_agent_t *directory_lookup(const directory_t *d, const char *address)
{
    return address == NULL ? NULL : map_get(d->by_address, address, strlen(address));
}

const dir_agent_t *directory_lookup_key(const directory_t *d, const uint8_t key[DIR_KEY_LEN])
{
    return map_get(d->by_key, key, DIR_KEY_LEN);
}

size_t directory_agent_count(const directory_t *d)
{
    return d->n_agents;
}

const dir_agent_t *directory_agent_at(const directory_t *d, size_t i)
{
    return i < d->n_agents ? &d->agents[i] : NULL;
}

size_t directory_pool_members(const directory_t *d, const char *pool,
                              void (*cb)(const dir_agent_t *member, void *ud), void *ud)
{
    const pool_t *p = pool == NULL ? NULL : map_get(d->by_pool, pool, strlen(pool));
    if (p == NULL) return 0;
    for (size_t i = 0; cb != NULL && i < p->n; i++) cb(p->members[i], ud);
    return p->n;
}

size_t directory_pool_count(const directory_t *d)
{
    return d->n_pools;
}

const char *directory_pool_at(const directory_t *d, size_t i)
{
    return i < d->n_pools ? d->pools[i]->address : NULL;
}

bool directory_may_act_for(const directory_t *d, const dir_agent_t *agent, const char *principal)
{
    (void)d; /* today the agent's own list decides; the territory may add rules later */
    if (agent == NULL || principal == NULL) return false;
    if (strcmp(agent->address, principal) == 0) return true;
    for (size_t i = 0; i < agent->n_acts_for; i++)
        if (strcmp(agent->acts_for[i], principal) == 0) return true;
    return false;
}

const dir_acl_override_t *directory_acl_override(const directory_t *d, int body_case)
{
    for (size_t i = 0; i < d->n_overrides; i++)
        if (d->overrides[i].body_case == body_case) return &d->overrides[i];
    return NULL;
}

size_t directory_acl_override_count(const directory_t *d)
{
    return d->n_overrides;
}

const dir_acl_override_t *directory_acl_override_at(const directory_t *d, size_t i)
{
    return i < d->n_overrides ? &d->overrides[i] : NULL;
}
