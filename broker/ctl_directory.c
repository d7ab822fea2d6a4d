/*
 * relaisctl directory check FILE: validates a territory directory before relaisd sees it.
 *
 * Loads the file exactly as the broker does (directory.c), so a file this command accepts
 * is a file a SIGHUP reload accepts. On success it prints what an administrator checks by
 * eye — territory, production flag, agents per role, agents without a key, pools and their
 * members, limits, the rules the territory changed — and exits 0; on failure it prints the
 * loader's "file:line: what is wrong" and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "directory.h"
#include "relais/codec.h"
#include "relaisctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl directory check FILE\n"
                 "  validates a territory directory and prints a summary; exit 1 if invalid\n");
}

static void print_member(const dir_agent_t *member, void *ud)
{
    bool *first = ud;
    printf("%s%s", *first ? "" : ", ", member->address);
    *first = false;
}

static void print_summary(const directory_t *d)
{
    size_t n = directory_agent_count(d), per_role[DIR_ROLE_COUNT] = {0}, keyless = 0;
    for (size_t i = 0; i < n; i++) {
        const dir_agent_t *a = directory_agent_at(d, i);
        per_role[a->role]++;
        if (!a->has_key) keyless++;
    }
    printf("territory:  %s\n", directory_territory(d));
    printf("production: %s\n", directory_production(d) ? "true (relaisd refuses --insecure)"
                                                       : "false (development only)");
    printf("agents:     %zu\n", n);
    for (int r = 0; r < DIR_ROLE_COUNT; r++)
        if (per_role[r]) printf("  %-18s %zu\n", dir_role_name((dir_role_t)r), per_role[r]);
    if (keyless)
        printf("without a public key: %zu (they can connect only to relaisd --insecure)\n",
               keyless);
    printf("pools:      %zu\n", directory_pool_count(d));
    for (size_t i = 0; i < directory_pool_count(d); i++) {
        const char *pool = directory_pool_at(d, i);
        bool first = true;
        printf("  %s: ", pool);
        directory_pool_members(d, pool, print_member, &first);
        printf("\n");
    }
    dir_limits_t l = directory_limits(d);
    printf("limits:     submissions_per_second=%u sessions_per_key=%u pending_per_mailbox=%llu\n",
           l.submissions_per_second, l.sessions_per_key, (unsigned long long)l.pending_per_mailbox);
    size_t n_over = directory_acl_override_count(d);
    printf("acl:        %s\n", n_over ? "defaults of PROTOCOL.md section 6, except:"
                                      : "defaults of PROTOCOL.md section 6");
    for (size_t i = 0; i < n_over; i++) {
        const dir_acl_override_t *o = directory_acl_override_at(d, i);
        acl_rule_t rule;
        char senders[256], recipients[256];
        if (acl_rule(d, o->body_case, &rule) != 0) continue;
        printf("  %s: senders %s; recipients %s\n", relais_body_name(o->body_case),
               acl_set_format(&rule.senders, false, senders, sizeof senders),
               acl_set_format(&rule.recipients, true, recipients, sizeof recipients));
    }
}

int ctl__directory(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        usage(stderr);
        return 2;
    }
    directory_t *d = NULL;
    char err[512];
    if (directory_load(argv[2], &d, err, sizeof err) != 0) {
        fprintf(stderr, "relaisctl directory: %s\n", err);
        return 1;
    }
    print_summary(d);
    printf("%s: valid\n", argv[2]);
    directory_destroy(&d);
    return 0;
}
