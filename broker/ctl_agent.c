/*
 * relaisctl agent add|revoke|list: enrolment of a territory's members, at CPTS scale.
 *
 * A CPTS enrols 50 to 500 professionals; hand-editing YAML for each is how keys end up
 * under the wrong address. These commands edit the directory file in place, keeping its
 * comments and layout (ctl_agent_edit.c), and refuse what a tired administrator gets wrong:
 * an address already enrolled, a key already used by another agent or by the broker
 * itself, a secret key file sent instead of the .pub, an RPPS or FINESS number whose check
 * digit is wrong. Whatever they write is first loaded by the broker's own loader
 * (directory_parse), so a file these commands write is one relaisd accepts on SIGHUP; the
 * file is replaced atomically (same directory, fsync, rename) with its owner and mode, under
 * an exclusive lock so that two administrators cannot lose each other's enrolment.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "directory.h"
#include "relais/errors.h"
#include "relais/keys.h"
#include "relaisctl.h"

#define MAX_LIST 32               /* --pool / --acts-for given at most this often */
#define MAX_DIRECTORY (16u << 20) /* a directory of 500 agents is about 150 KiB */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: relaisctl agent add --address A --role R --key X.pub [--name N]\n"
            "                           [--specialty S] [--pool P]… [--acts-for G]…\n"
            "                           [--broker-key FILE] DIRECTORY\n"
            "       relaisctl agent revoke --address A DIRECTORY\n"
            "       relaisctl agent list DIRECTORY\n"
            "\n"
            "  add     enrols an agent: appends its entry to DIRECTORY, keeping the file's\n"
            "          comments. Refuses an address already enrolled, a key already in use or\n"
            "          the broker's own (--broker-key, or broker.pub / broker.key next to\n"
            "          DIRECTORY), a secret .key file, and RPPS or FINESS numbers whose check\n"
            "          digit is wrong. --pool and --acts-for may be repeated.\n"
            "  revoke  removes the agent's entry (refused while another agent acts for it)\n"
            "  list    prints every agent: address, role, key, name, pools, acts_for\n"
            "\n"
            "The result is checked as relaisd will load it before the file is replaced.\n"
            "Then reload the broker: systemctl reload relaisd (or kill -HUP its pid).\n"
            "Exit status: 0 done, 1 refused (the reason is printed), 2 usage error.\n");
}

/* The directory file, read and locked for an edit. */
typedef struct dirfile {
    const char *path;
    int fd;
    struct stat st;
    char *text;
    size_t len;
} dirfile_t;

static void dirfile_close(dirfile_t *f)
{
    if (f->fd >= 0) close(f->fd); /* releases the lock */
    free(f->text);
    f->fd = -1;
    f->text = NULL;
}

/*
 * Opens and reads path; with lock, holds an exclusive lock on it. The lock is taken on
 * the file that is at path once locked: another relaisctl may have replaced it while this
 * one waited, and its edit must not be lost.
 */
static int dirfile_open(dirfile_t *f, const char *path, bool lock)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = -1;
    for (int attempt = 0; attempt < 10; attempt++) {
        f->fd = open(path, (lock ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (f->fd < 0) break;
        if (lock && flock(f->fd, LOCK_EX) != 0) break;
        struct stat now;
        if (fstat(f->fd, &f->st) != 0 || stat(path, &now) != 0) break;
        if (now.st_ino == f->st.st_ino && now.st_dev == f->st.st_dev) {
            if (f->st.st_size < 0 || (size_t)f->st.st_size > MAX_DIRECTORY) {
                fprintf(stderr, "relaisctl agent: %s: larger than %u bytes\n", path, MAX_DIRECTORY);
                dirfile_close(f);
                return 1;
            }
            f->len = (size_t)f->st.st_size;
            f->text = malloc(f->len + 1);
            if (f->text == NULL) break;
            size_t got = 0;
            while (got < f->len) {
                ssize_t n = pread(f->fd, f->text + got, f->len - got, (off_t)got);
                if (n <= 0) {
                    if (n < 0 && errno == EINTR) continue;
                    fprintf(stderr, "relaisctl agent: %s: %s\n", path,
                            n < 0 ? strerror(errno) : "changed while read");
                    dirfile_close(f);
                    return 1;
                }
                got += (size_t)n;
            }
            f->text[f->len] = '\0';
            return 0;
        }
        close(f->fd);
        f->fd = -1;
    }
    fprintf(stderr, "relaisctl agent: %s: %s\n", path, strerror(errno ? errno : EAGAIN));
    dirfile_close(f);
    return 1;
}

/* Replaces f's file by text, atomically, with the same owner and mode. */
static int dirfile_replace(dirfile_t *f, const char *text, size_t len)
{
    size_t plen = strlen(f->path) + 16;
    char *tmp = malloc(plen);
    if (tmp == NULL) return -ENOMEM;
    snprintf(tmp, plen, "%s.new-XXXXXX", f->path);
    int fd = mkstemp(tmp), rc = 0;
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        return rc;
    }
    /* root edits /etc/relais/territory.yaml (root:relais 0640): keep it so. */
    if (fchmod(fd, f->st.st_mode & 07777) != 0) rc = -errno;
    if (rc == 0 && geteuid() == 0 && fchown(fd, f->st.st_uid, f->st.st_gid) != 0) rc = -errno;
    for (size_t done = 0; rc == 0 && done < len;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            rc = -errno;
        else
            done += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, f->path) != 0) rc = -errno;
    if (rc != 0) unlink(tmp);
    if (rc == 0) {
        /* The rename is durable once the directory holding it is synced. */
        char *copy = strdup(f->path);
        if (copy != NULL) {
            int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(copy);
        }
    }
    free(tmp);
    return rc;
}

/* Loads text as relaisd would; prints the loader's error with what, and returns 1. */
static int validate(const char *text, size_t len, const char *path, const char *what,
                    directory_t **out)
{
    char err[512];
    directory_t *d = NULL;
    if (directory_parse(text, len, path, &d, err, sizeof err) != 0) {
        fprintf(stderr, "relaisctl agent: %s: %s\n", what, err);
        return 1;
    }
    if (out != NULL)
        *out = d;
    else
        directory_destroy(&d);
    return 0;
}

/*
 * The broker's public key into z85 (41 bytes), from --broker-key or, failing that, from
 * broker.pub or broker.key next to the directory. 1 when found, 0 when there is none to
 * compare with, -1 after printing why a given one is unreadable.
 */
static int broker_key(const char *given, const char *dir_path, char z85[41])
{
    char why[256];
    if (given != NULL) {
        if (relais_pubkey_read(given, z85, why, sizeof why) != 0) {
            fprintf(stderr, "relaisctl agent: --broker-key: %s\n", why);
            return -1;
        }
        return 1;
    }
    char *copy = strdup(dir_path);
    if (copy == NULL) return 0;
    const char *dir = dirname(copy);
    int found = 0;
    static const char *const names[] = {"broker.pub", "broker.key"};
    for (size_t i = 0; i < 2 && !found; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (access(path, R_OK) == 0 && relais_pubkey_read(path, z85, why, sizeof why) == 0)
            found = 1;
    }
    free(copy);
    return found;
}

/* The public key of --key into z85; refuses a secret keypair file. 0 or 1 (printed). */
static int agent_key(const char *arg, char z85[41])
{
    char why[256];
    FILE *fp = fopen(arg, "r");
    if (fp != NULL) {
        char line[256];
        bool secret = false;
        while (fgets(line, sizeof line, fp) != NULL)
            if (strncmp(line, "secret-key:", 11) == 0) secret = true;
        fclose(fp);
        if (secret) {
            fprintf(stderr,
                    "relaisctl agent: %s holds a secret key: it must never leave the agent's "
                    "machine. Enrol its .pub file (relaisctl keygen NAME writes NAME.pub); and "
                    "since this secret has travelled, have the member make a new keypair\n",
                    arg);
            return 1;
        }
    }
    if (relais_pubkey_read(arg, z85, why, sizeof why) != 0) {
        fprintf(stderr, "relaisctl agent: --key: %s\n", why);
        return 1;
    }
    return 0;
}

enum {
    OPT_ADDRESS = 300,
    OPT_ROLE,
    OPT_KEY,
    OPT_NAME,
    OPT_SPECIALTY,
    OPT_POOL,
    OPT_ACTS_FOR,
    OPT_BROKER_KEY,
    OPT_HELP
};

typedef struct args {
    const char *address, *role, *key, *name, *specialty, *broker_key, *file;
    const char *pools[MAX_LIST], *acts_for[MAX_LIST];
    size_t n_pools, n_acts_for;
} args_t;

/* Parses argv (argv[0] is the action). 0, or the exit status of a usage error. */
static int parse(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"role", required_argument, NULL, OPT_ROLE},
        {"key", required_argument, NULL, OPT_KEY},
        {"name", required_argument, NULL, OPT_NAME},
        {"specialty", required_argument, NULL, OPT_SPECIALTY},
        {"pool", required_argument, NULL, OPT_POOL},
        {"acts-for", required_argument, NULL, OPT_ACTS_FOR},
        {"broker-key", required_argument, NULL, OPT_BROKER_KEY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    optind = 0; /* glibc: start afresh, whatever parsed before */
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ADDRESS:
            a->address = optarg;
            break;
        case OPT_ROLE:
            a->role = optarg;
            break;
        case OPT_KEY:
            a->key = optarg;
            break;
        case OPT_NAME:
            a->name = optarg;
            break;
        case OPT_SPECIALTY:
            a->specialty = optarg;
            break;
        case OPT_BROKER_KEY:
            a->broker_key = optarg;
            break;
        case OPT_POOL:
        case OPT_ACTS_FOR: {
            size_t *n = c == OPT_POOL ? &a->n_pools : &a->n_acts_for;
            const char **list = c == OPT_POOL ? a->pools : a->acts_for;
            if (*n == MAX_LIST) {
                fprintf(stderr, "relaisctl agent: at most %d of --%s\n", MAX_LIST,
                        c == OPT_POOL ? "pool" : "acts-for");
                return 2;
            }
            list[(*n)++] = optarg;
            break;
        }
        case OPT_HELP:
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "relaisctl agent %s: give exactly one DIRECTORY file\n", argv[0]);
        return 2;
    }
    a->file = argv[optind];
    return 0;
}

static int agent_add(const args_t *a)
{
    if (a->address == NULL || a->role == NULL || a->key == NULL) {
        fprintf(stderr, "relaisctl agent add: --address, --role and --key are required\n");
        return 2;
    }
    char why[512], key[41], bkey[41];
    if (ctl__identifier_check(a->address, why, sizeof why) != 0) {
        fprintf(stderr, "relaisctl agent add: %s\n", why);
        return 1;
    }
    dir_role_t role;
    if (dir_role_from_name(a->role, &role) != 0) {
        fprintf(stderr,
                "relaisctl agent add: unknown role '%s' (gp, medical_assistant, nurse, "
                "physiotherapist, specialist, hospital, facility, coordinator, app)\n",
                a->role);
        return 1;
    }
    if (agent_key(a->key, key) != 0) return 1;
    int have_bkey = broker_key(a->broker_key, a->file, bkey);
    if (have_bkey < 0) return 1;
    if (have_bkey && strcmp(bkey, key) == 0) {
        fprintf(stderr,
                "relaisctl agent add: %s is the broker's own public key: an agent "
                "holding the broker's keypair could impersonate it. The member must "
                "make its own (relaisctl keygen NAME)\n",
                a->key);
        return 1;
    }

    dirfile_t f;
    if (dirfile_open(&f, a->file, true) != 0) return 1;
    int status = 1;
    directory_t *cur = NULL, *next = NULL;
    char *out = NULL;
    size_t out_len = 0;
    if (validate(f.text, f.len, f.path, "the directory is invalid as it stands; fix it first",
                 &cur) != 0)
        goto done;
    const dir_agent_t *same = directory_lookup(cur, a->address);
    if (same != NULL) {
        fprintf(stderr,
                "relaisctl agent add: %s is already enrolled (%s:%u). To replace its "
                "key, revoke it first: relaisctl agent revoke --address %s %s\n",
                a->address, f.path, same->line, a->address, f.path);
        goto done;
    }
    uint8_t raw[DIR_KEY_LEN];
    if (zmq_z85_decode(raw, key) != NULL) {
        const dir_agent_t *holder = directory_lookup_key(cur, raw);
        if (holder != NULL) {
            fprintf(stderr,
                    "relaisctl agent add: this key is already enrolled for %s (%s:%u): "
                    "each agent needs its own keypair\n",
                    holder->address, f.path, holder->line);
            goto done;
        }
    }
    char date[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL) strftime(date, sizeof date, "%Y-%m-%d", &tm);
    char comment[96];
    snprintf(comment, sizeof comment, CTL_ENROLLED_COMMENT ", %s", date);
    ctl_entry_t e = {
        .comment = comment,
        .address = a->address,
        .name = a->name,
        .role = dir_role_name(role),
        .specialty = a->specialty,
        .public_key = key,
        .pools = a->pools,
        .n_pools = a->n_pools,
        .acts_for = a->acts_for,
        .n_acts_for = a->n_acts_for,
    };
    if (ctl__dir_add(f.text, f.len, &e, &out, &out_len, why, sizeof why) != 0) {
        fprintf(stderr, "relaisctl agent add: %s: %s\n", f.path, why);
        goto done;
    }
    if (validate(out, out_len, f.path, "refused, the directory would not load", &next) != 0)
        goto done;
    int rc = dirfile_replace(&f, out, out_len);
    if (rc != 0) {
        fprintf(stderr, "relaisctl agent add: cannot write %s: %s\n", f.path, strerror(-rc));
        goto done;
    }
    printf("enrolled %s (%s) in %s; %zu agents now.\n", a->address, dir_role_name(role), f.path,
           directory_agent_count(next));
    if (!have_bkey)
        printf("note: no broker key found to compare with (broker.pub next to the directory, "
               "or --broker-key)\n");
    printf("Reload the broker for it to connect: systemctl reload relaisd\n");
    status = 0;
done:
    free(out);
    directory_destroy(&cur);
    directory_destroy(&next);
    dirfile_close(&f);
    return status;
}

static int agent_revoke(const args_t *a)
{
    if (a->address == NULL) {
        fprintf(stderr, "relaisctl agent revoke: --address is required\n");
        return 2;
    }
    dirfile_t f;
    if (dirfile_open(&f, a->file, true) != 0) return 1;
    int status = 1;
    directory_t *cur = NULL, *next = NULL;
    char *out = NULL, why[512];
    size_t out_len = 0;
    if (validate(f.text, f.len, f.path, "the directory is invalid as it stands; fix it first",
                 &cur) != 0)
        goto done;
    if (directory_lookup(cur, a->address) == NULL) {
        fprintf(stderr, "relaisctl agent revoke: %s is not in %s\n", a->address, f.path);
        goto done;
    }
    bool blocked = false;
    for (size_t i = 0; i < directory_agent_count(cur); i++) {
        const dir_agent_t *ag = directory_agent_at(cur, i);
        for (size_t k = 0; k < ag->n_acts_for; k++)
            if (strcmp(ag->acts_for[k], a->address) == 0) {
                fprintf(stderr,
                        "relaisctl agent revoke: %s acts for %s (%s:%u): revoke it or "
                        "edit its acts_for first\n",
                        ag->address, a->address, f.path, ag->line);
                blocked = true;
            }
    }
    if (blocked) goto done;
    if (ctl__dir_remove(f.text, f.len, a->address, &out, &out_len, why, sizeof why) != 0) {
        fprintf(stderr, "relaisctl agent revoke: %s: %s\n", f.path, why);
        goto done;
    }
    if (validate(out, out_len, f.path, "refused, the directory would not load", &next) != 0)
        goto done;
    if (directory_lookup(next, a->address) != NULL) {
        fprintf(stderr, "relaisctl agent revoke: %s is declared twice in %s?\n", a->address,
                f.path);
        goto done;
    }
    int rc = dirfile_replace(&f, out, out_len);
    if (rc != 0) {
        fprintf(stderr, "relaisctl agent revoke: cannot write %s: %s\n", f.path, strerror(-rc));
        goto done;
    }
    printf("revoked %s from %s; %zu agents now.\n"
           "Reload the broker to close its session and refuse its key: systemctl reload "
           "relaisd\n",
           a->address, f.path, directory_agent_count(next));
    status = 0;
done:
    free(out);
    directory_destroy(&cur);
    directory_destroy(&next);
    dirfile_close(&f);
    return status;
}

static void print_list(const char *label, const char *const *items, size_t n)
{
    if (n == 0) return;
    printf(" %s=", label);
    for (size_t i = 0; i < n; i++) printf("%s%s", i ? "," : "", items[i]);
}

static int agent_list(const args_t *a)
{
    directory_t *d = NULL;
    char err[512];
    if (directory_load(a->file, &d, err, sizeof err) != 0) {
        fprintf(stderr, "relaisctl agent list: %s\n", err);
        return 1;
    }
    size_t n = directory_agent_count(d);
    printf("%-36s %-18s %-40s %s\n", "ADDRESS", "ROLE", "PUBLIC KEY", "NAME, POOLS, ACTS FOR");
    for (size_t i = 0; i < n; i++) {
        const dir_agent_t *ag = directory_agent_at(d, i);
        char role[64];
        snprintf(role, sizeof role, "%s%s%s", dir_role_name(ag->role), ag->specialty[0] ? "/" : "",
                 ag->specialty);
        printf("%-36s %-18s %-40s %s", ag->address, role, ag->has_key ? ag->public_key_z85 : "-",
               ag->name);
        print_list("pools", ag->pools, ag->n_pools);
        print_list("acts_for", ag->acts_for, ag->n_acts_for);
        printf("\n");
    }
    printf("%zu agents in territory %s\n", n, directory_territory(d));
    directory_destroy(&d);
    return 0;
}

int ctl__agent(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    args_t a;
    int rc = parse(argc - 1, argv + 1, &a);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (strcmp(argv[1], "add") == 0) return agent_add(&a);
    if (strcmp(argv[1], "revoke") == 0) return agent_revoke(&a);
    if (strcmp(argv[1], "list") == 0) return agent_list(&a);
    fprintf(stderr, "relaisctl agent: unknown action '%s' (add, revoke, list)\n", argv[1]);
    return 2;
}
