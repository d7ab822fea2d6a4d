/*
 * The territory directory: who may connect to this broker, under which address, with which
 * role, and what the territory changes in the default authorisation.
 *
 * One YAML file per territory (a CPTS) lists its agents — address, display name, role,
 * specialty, CurveZMQ public key, the service pools each belongs to, whom each may act for —
 * plus optional limits and ACL overrides. The broker loads it at start and again on SIGHUP;
 * the ZAP handler looks agents up by public key, the submit path by address. Loading is
 * strict: a typo in a role, a malformed key or an unknown principal is an error naming the
 * line, never a silently weaker directory, because the file is a security boundary.
 *
 * A loaded directory is immutable, so one may be read from any thread; reloading means
 * loading a new one and swapping pointers. deploy/territory/README.md shows the format.
 */
#ifndef RELAIS_BROKER_DIRECTORY_H
#define RELAIS_BROKER_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIR_KEY_LEN 32 /* CurveZMQ public key, bytes */
#define DIR_Z85_LEN 40 /* the same key, Z85-encoded */

typedef struct directory directory_t;

/* What an agent is, as far as authorisation cares. */
typedef enum dir_role {
    DIR_ROLE_GP = 0,
    DIR_ROLE_MEDICAL_ASSISTANT = 1,
    DIR_ROLE_NURSE = 2,
    DIR_ROLE_PHYSIOTHERAPIST = 3,
    DIR_ROLE_SPECIALIST = 4,
    DIR_ROLE_HOSPITAL = 5,
    DIR_ROLE_FACILITY = 6,
    DIR_ROLE_COORDINATOR = 7,
    DIR_ROLE_APP = 8,
} dir_role_t;

#define DIR_ROLE_COUNT 9

/* The role's name as written in the directory ("medical_assistant"), or "unknown". */
const char *dir_role_name(dir_role_t role);

/* The role for a name. 0 and *out set, or RELAIS_EINVALID for an unknown name. */
int dir_role_from_name(const char *name, dir_role_t *out);

/*
 * One agent. Every pointer is owned by the directory and lives as long as it does.
 * has_key is false only in a non-production directory (insecure development), where the
 * agent can connect only to a broker started with --insecure.
 */
typedef struct dir_agent {
    const char *address; /* canonical address (PROTOCOL.md section 4), never service: */
    const char *name;    /* display name, for people; may be "" */
    dir_role_t role;
    const char *specialty; /* "" when none */
    bool has_key;
    uint8_t public_key[DIR_KEY_LEN];
    char public_key_z85[DIR_Z85_LEN + 1]; /* "" when !has_key */
    const char *const *pools;             /* service addresses of this territory */
    size_t n_pools;
    const char *const *acts_for; /* addresses of agents it may act on behalf of */
    size_t n_acts_for;
    unsigned line; /* where the agent is declared, for messages */
} dir_agent_t;

/* Limits a territory may set; directory_limits() fills the defaults for absent ones. */
typedef struct dir_limits {
    uint32_t submissions_per_second; /* per agent; default DIR_DEFAULT_SUBMISSIONS_PER_SECOND */
    uint32_t sessions_per_key;       /* concurrent sessions; default DIR_DEFAULT_SESSIONS_PER_KEY */
    uint64_t pending_per_mailbox;    /* undelivered; default DIR_DEFAULT_PENDING_PER_MAILBOX */
} dir_limits_t;

#define DIR_DEFAULT_SUBMISSIONS_PER_SECOND 1000u
#define DIR_DEFAULT_SESSIONS_PER_KEY 2u
#define DIR_DEFAULT_PENDING_PER_MAILBOX 1000000u

/*
 * A set of senders or recipients in an authorisation rule: the roles in the mask
 * (bit 1u << dir_role_t), everybody in the directory (any), and the participants of the
 * message's conversation (participants). The set is the union of the three; an empty set
 * allows nobody. For recipients, a role also admits the service pools of that role.
 */
typedef struct dir_acl_set {
    uint32_t roles;
    bool any;
    bool participants;
} dir_acl_set_t;

/*
 * A territory's change to the default rule of one body type. Only the halves the YAML
 * names are replaced; acl.c merges them onto the defaults of PROTOCOL.md section 6.
 */
typedef struct dir_acl_override {
    int body_case; /* RELAIS__V1__ENVELOPE__BODY_… */
    bool has_senders;
    bool has_recipients;
    dir_acl_set_t senders;
    dir_acl_set_t recipients;
} dir_acl_override_t;

/*
 * Loads and validates the directory in the file at path.
 * Returns 0 and *out (free with directory_destroy()), or: a negative errno when the file
 * cannot be read, RELAIS_ECONFIG when it is not a valid directory, -ENOMEM. On failure
 * *out is NULL and err (err_len bytes, NUL-terminated) says "path:line: what is wrong",
 * e.g. "cpts.yaml:14: agents[2].role: unknown role 'doctor' (expected gp, …)".
 */
int directory_load(const char *path, directory_t **out, char *err, size_t err_len);

/*
 * As directory_load(), from len bytes of YAML in memory; name prefixes the messages
 * ("<memory>" when NULL). For tests and fuzzing.
 */
int directory_parse(const void *yaml, size_t len, const char *name, directory_t **out, char *err,
                    size_t err_len);

/* Frees the directory and nulls *d. Accepts NULL. Every dir_agent_t of it dies with it. */
void directory_destroy(directory_t **d);

/* The territory's name ("cpts-rennes-nord"), the part after '@' of its service addresses. */
const char *directory_territory(const directory_t *d);

/*
 * True for a production directory. A directory that omits `production` is one: the safe
 * reading of a forgotten line is the strict one. relaisd refuses --insecure with it.
 */
bool directory_production(const directory_t *d);

/* The territory's limits, defaults filled in. */
dir_limits_t directory_limits(const directory_t *d);

/* The agent with this address, or NULL. Service addresses are pools, never agents. */
const dir_agent_t *directory_lookup(const directory_t *d, const char *address);

/* The agent holding this CurveZMQ public key, or NULL. */
const dir_agent_t *directory_lookup_key(const directory_t *d, const uint8_t key[DIR_KEY_LEN]);

/* Number of agents, and the i-th in file order (NULL past the end): for summaries. */
size_t directory_agent_count(const directory_t *d);
const dir_agent_t *directory_agent_at(const directory_t *d, size_t i);

/*
 * Calls cb for each member of the service pool `pool`, in file order, and returns how many
 * there are (cb may be NULL to count). A pool exists when at least one agent lists it;
 * an unknown pool, or any other address, has 0 members.
 */
size_t directory_pool_members(const directory_t *d, const char *pool,
                              void (*cb)(const dir_agent_t *member, void *ud), void *ud);

/* Number of pools, and the i-th one's address (in order of first mention; NULL past end). */
size_t directory_pool_count(const directory_t *d);
const char *directory_pool_at(const directory_t *d, size_t i);

/*
 * True when agent may send on behalf of principal: principal is listed in its acts_for,
 * or is the agent itself (acting for oneself grants nothing new).
 */
bool directory_may_act_for(const directory_t *d, const dir_agent_t *agent, const char *principal);

/* The territory's override for body_case, or NULL when the default applies unchanged. */
const dir_acl_override_t *directory_acl_override(const directory_t *d, int body_case);

/* Number of overrides, and the i-th (in file order; NULL past the end): for summaries. */
size_t directory_acl_override_count(const directory_t *d);
const dir_acl_override_t *directory_acl_override_at(const directory_t *d, size_t i);

#endif /* RELAIS_BROKER_DIRECTORY_H */
