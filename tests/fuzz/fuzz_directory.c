/*
 * Fuzz target: the territory directory parser (broker/directory.h), which reads the file
 * that decides who may connect: a security boundary written by people.
 *
 * The input is the YAML text, given to directory_parse(); for one input in eight it is also
 * written to a memfd and read back through directory_load(), which must agree. Properties
 * checked:
 *   - on failure: no directory, RELAIS_ECONFIG (or -ENOMEM), and an error that names the
 *     file, fits the buffer, and is a prefix of the same sentence in a short buffer;
 *   - on success: everything the loader promises holds of what it kept — the territory is
 *     a valid territory name; each agent has a valid, non-service address that looks up to
 *     itself, a known role, a key only as 40 Z85 characters that decode to its public_key
 *     and look up to itself (no key only outside production); each pool is a service
 *     address of this territory and of the member's role, counted among the pools, with
 *     the agent among its members; each principal is another agent of the directory, that
 *     directory_may_act_for() accepts; each ACL override is found again by its body type;
 *     the limits are inside their documented ranges.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zmq.h>

#include "directory.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"

struct seen {
    const dir_agent_t *agent;
    bool found;
};

static void note_member(const dir_agent_t *member, void *ud)
{
    struct seen *s = ud;
    if (member == s->agent) s->found = true;
}

static void check_agent(const directory_t *d, const dir_agent_t *a)
{
    relais_address_t addr;
    FUZZ_CHECK(a->address != NULL && a->name != NULL && a->specialty != NULL);
    FUZZ_CHECKF(relais_address_parse(a->address, &addr, NULL, 0) == 0, "'%s'", a->address);
    FUZZ_CHECK(addr.kind != RELAIS_ADDR_SERVICE);
    FUZZ_CHECK(directory_lookup(d, a->address) == a);
    FUZZ_CHECK(strcmp(dir_role_name(a->role), "unknown") != 0);
    dir_role_t role;
    FUZZ_CHECK(dir_role_from_name(dir_role_name(a->role), &role) == 0 && role == a->role);

    FUZZ_CHECK(fuzz_terminated(a->public_key_z85, sizeof a->public_key_z85));
    if (a->has_key) {
        uint8_t key[DIR_KEY_LEN];
        FUZZ_CHECK(strlen(a->public_key_z85) == DIR_Z85_LEN);
        FUZZ_CHECK(zmq_z85_decode(key, a->public_key_z85) != NULL);
        FUZZ_CHECK(memcmp(key, a->public_key, DIR_KEY_LEN) == 0);
        FUZZ_CHECK(directory_lookup_key(d, a->public_key) == a);
    } else {
        FUZZ_CHECK(a->public_key_z85[0] == '\0');
        FUZZ_CHECK(!directory_production(d));
    }

    for (size_t k = 0; k < a->n_pools; k++) {
        relais_address_t pool;
        FUZZ_CHECK(relais_address_parse(a->pools[k], &pool, NULL, 0) == 0);
        FUZZ_CHECK(pool.kind == RELAIS_ADDR_SERVICE);
        FUZZ_CHECK(strcmp(pool.territory, directory_territory(d)) == 0);
        FUZZ_CHECK(strcmp(pool.role, dir_role_name(a->role)) == 0);
        FUZZ_CHECK(pool.specialty[0] == '\0' || strcmp(pool.specialty, a->specialty) == 0);
        FUZZ_CHECK(directory_lookup(d, a->pools[k]) == NULL);
        struct seen s = {a, false};
        FUZZ_CHECK(directory_pool_members(d, a->pools[k], note_member, &s) >= 1);
        FUZZ_CHECKF(s.found, "%s is not among the members of its pool %s", a->address, a->pools[k]);
    }
    for (size_t k = 0; k < a->n_acts_for; k++) {
        const dir_agent_t *principal = directory_lookup(d, a->acts_for[k]);
        FUZZ_CHECK(principal != NULL && principal != a);
        FUZZ_CHECK(directory_may_act_for(d, a, a->acts_for[k]));
    }
    FUZZ_CHECK(directory_may_act_for(d, a, a->address));
}

static void check_directory(const directory_t *d)
{
    const char *territory = directory_territory(d);
    char probe[RELAIS_ADDRESS_MAX + 16];
    FUZZ_CHECK(territory != NULL && strlen(territory) < 128);
    snprintf(probe, sizeof probe, "service:gp@%s", territory);
    FUZZ_CHECKF(relais_address_valid(probe), "territory '%s'", territory);

    size_t n = directory_agent_count(d);
    for (size_t i = 0; i < n; i++) {
        const dir_agent_t *a = directory_agent_at(d, i);
        FUZZ_CHECK(a != NULL);
        check_agent(d, a);
    }
    FUZZ_CHECK(directory_agent_at(d, n) == NULL);

    size_t n_pools = directory_pool_count(d);
    for (size_t i = 0; i < n_pools; i++) {
        const char *pool = directory_pool_at(d, i);
        FUZZ_CHECK(pool != NULL);
        FUZZ_CHECK(directory_pool_members(d, pool, NULL, NULL) >= 1);
    }
    FUZZ_CHECK(directory_pool_at(d, n_pools) == NULL);

    size_t n_acl = directory_acl_override_count(d);
    for (size_t i = 0; i < n_acl; i++) {
        const dir_acl_override_t *o = directory_acl_override_at(d, i);
        FUZZ_CHECK(o != NULL);
        FUZZ_CHECK(strcmp(relais_body_name(o->body_case), "unknown") != 0);
        FUZZ_CHECK(directory_acl_override(d, o->body_case) == o);
        FUZZ_CHECK((o->senders.roles >> DIR_ROLE_COUNT) == 0);
        FUZZ_CHECK((o->recipients.roles >> DIR_ROLE_COUNT) == 0);
    }
    FUZZ_CHECK(directory_acl_override_at(d, n_acl) == NULL);

    dir_limits_t limits = directory_limits(d);
    FUZZ_CHECK(limits.submissions_per_second >= 1 && limits.submissions_per_second <= 1000000);
    FUZZ_CHECK(limits.sessions_per_key >= 1 && limits.sessions_per_key <= 1000);
    FUZZ_CHECK(limits.pending_per_mailbox >= 1);
}

/* directory_load() of the same bytes through a file: the same verdict. */
static void check_load_agrees(const uint8_t *data, size_t size, int rc)
{
    int fd = memfd_create("fuzz-directory", 0);
    FUZZ_CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    directory_t *d = NULL;
    int loaded = directory_load(path, &d, err, sizeof err);
    FUZZ_CHECKF(loaded == rc, "directory_parse %d, directory_load %d: %s", rc, loaded, err);
    FUZZ_CHECK((d != NULL) == (rc == 0));
    directory_destroy(&d);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    directory_t *d = NULL;
    memset(err, 'x', sizeof err);
    int rc = directory_parse(data, size, NAME, &d, err, sizeof err);
    FUZZ_CHECK(fuzz_terminated(err, sizeof err));

    if (rc != 0) {
        FUZZ_CHECK(d == NULL);
        FUZZ_CHECKF(rc == RELAIS_ECONFIG || rc == -ENOMEM, "rc %d: %s", rc, err);
        FUZZ_CHECKF(strncmp(err, NAME ":", strlen(NAME ":")) == 0 || rc == -ENOMEM,
                    "the error does not name the file: '%s'", err);
        char small[16];
        size_t cap = 1 + size % sizeof small;
        FUZZ_CHECK(directory_parse(data, size, NAME, &d, small, cap) == rc && d == NULL);
        FUZZ_CHECK(fuzz_terminated(small, cap));
        FUZZ_CHECKF(strncmp(small, err, cap - 1) == 0, "'%s' is not a prefix of '%s'", small, err);
        FUZZ_CHECK(directory_parse(data, size, NAME, &d, NULL, 0) == rc && d == NULL);
    } else {
        FUZZ_CHECK(d != NULL);
        FUZZ_CHECKF(err[0] == '\0', "success with error '%s'", err);
        check_directory(d);
        directory_destroy(&d);
        FUZZ_CHECK(d == NULL);
    }
    if (size % 8 == 0) check_load_agrees(data, size, rc);
    return 0;
}
