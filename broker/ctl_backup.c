/*
 * relaisctl backup DIR and relaisctl restore DIR: a broker's state, copied while it runs, and
 * put back into a new data directory.
 *
 * backup takes the store with SQLite's online backup API from a connection of its own (a
 * consistent snapshot; the broker goes on writing, WAL readers do not block it), the audit
 * journal — the current file up to its last complete line, and any rotated files — the
 * territory directory when one is named, and writes MANIFEST: one line per file with its
 * SHA-256 and size, then when and from where. Everything is created 0600 in a directory 0700:
 * a backup holds clinical content and the journal of who talked to whom.
 *
 * restore checks every checksum of the manifest, refuses a data directory that is not empty
 * (a restore never overwrites a live store), copies the files in, and verifies the journal's
 * hash chain. Starting relaisd on the restored directory recovers every message the snapshot
 * held undelivered; what was accepted after the snapshot is not in it (take backups often, or
 * keep the data directory on a replicated volume).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "relaisctl.h"

#define MANIFEST "MANIFEST"

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "relaisctl: ");
    fprintf(stderr, fmt, a, b ? b : "");
    fputc('\n', stderr);
    return 1;
}

/* Copies src to dst (created 0600, exclusively), at most limit bytes (-1: all); the SHA-256
 * of what was copied into hex (65 bytes) and its size into *size. 0 or -1 (reported). */
static int copy_file(const char *src, const char *dst, off_t limit, char hex[65], off_t *size)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return fail("cannot read %s: %s", src, strerror(errno)), -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return fail("cannot create %s: %s", dst, strerror(errno)), -1;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    char buf[1 << 16];
    off_t done = 0;
    int rc = 0;
    while (limit < 0 || done < limit) {
        size_t want = sizeof(buf);
        if (limit >= 0 && (off_t)want > limit - done) want = (size_t)(limit - done);
        ssize_t n = read(in, buf, want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) rc = -1;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
        crypto_hash_sha256_update(&st, (const unsigned char *)buf, (size_t)n);
        done += n;
    }
    if (rc == 0 && fsync(out) < 0) rc = -1;
    close(in);
    close(out);
    if (rc < 0) return fail("cannot copy %s: %s", src, strerror(errno)), -1;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof(h));
    *size = done;
    return 0;
}

static int hash_file(const char *path, char hex[65], off_t *size)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    char buf[1 << 16];
    ssize_t n;
    *size = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        crypto_hash_sha256_update(&st, (const unsigned char *)buf, (size_t)n);
        *size += n;
    }
    close(in);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof(h));
    return n < 0 ? -1 : 0;
}

/* The journal's length up to and including its last newline: a line being written is left
 * out, as relaisd itself would cut it at its next start. */
static off_t complete_lines(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    off_t end = st.st_size;
    char c;
    while (end > 0 && pread(fd, &c, 1, end - 1) == 1 && c != '\n') end--;
    close(fd);
    return end;
}

/* The store through the online backup API, into dst (0600). 0 or -1 (reported). */
static int backup_store(const char *src, const char *dst)
{
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail("cannot create %s: %s", dst, strerror(errno)), -1;
    close(fd);
    sqlite3 *from = NULL, *to = NULL;
    int rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(from, 5000);
    if (rc == SQLITE_OK) rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_backup *bk = rc == SQLITE_OK ? sqlite3_backup_init(to, "main", from, "main") : NULL;
    if (bk != NULL) {
        /* Whole in one step: a consistent snapshot, however busy the broker is. */
        while ((rc = sqlite3_backup_step(bk, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(50);
        sqlite3_backup_finish(bk);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(to, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    const char *why = rc == SQLITE_OK ? NULL : sqlite3_errmsg(to ? to : from);
    if (why != NULL) fail("cannot back up the store %s: %s", src, why);
    sqlite3_close(from);
    sqlite3_close(to);
    return why == NULL ? 0 : -1;
}

static bool is_rotated_journal(const char *name)
{
    return strncmp(name, "audit.log.", 10) == 0 && strspn(name + 10, "0123456789") > 0 &&
           name[10 + strspn(name + 10, "0123456789")] == '\0';
}

static int backup(const char *data, const char *directory, const char *dir)
{
    if (sodium_init() < 0) return fail("libsodium failed to initialise%s%s", "", NULL);
    if (mkdir(dir, 0700) < 0) return fail("cannot create %s: %s (it must not exist)", dir, strerror(errno));
    char src[1024], dst[1024], path[1024];
    snprintf(path, sizeof(path), "%s/" MANIFEST ".tmp", dir);
    FILE *m = fopen(path, "w");
    if (m == NULL) return fail("cannot write %s: %s", path, strerror(errno));
    fchmod(fileno(m), 0600);
    char hex[65];
    off_t size;
    snprintf(src, sizeof(src), "%s/relais.db", data);
    snprintf(dst, sizeof(dst), "%s/relais.db", dir);
    if (backup_store(src, dst) < 0 || hash_file(dst, hex, &size) < 0) goto err;
    fprintf(m, "%s %lld relais.db\n", hex, (long long)size);
    /* Rotated journals whole, then the current one up to its last complete line. */
    DIR *d = opendir(data);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!is_rotated_journal(e->d_name)) continue;
        snprintf(src, sizeof(src), "%s/%s", data, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", dir, e->d_name);
        if (copy_file(src, dst, -1, hex, &size) < 0) {
            closedir(d);
            goto err;
        }
        fprintf(m, "%s %lld %s\n", hex, (long long)size, e->d_name);
    }
    if (d != NULL) closedir(d);
    snprintf(src, sizeof(src), "%s/audit.log", data);
    snprintf(dst, sizeof(dst), "%s/audit.log", dir);
    off_t lines = complete_lines(src);
    if (lines < 0 || copy_file(src, dst, lines, hex, &size) < 0) goto err;
    fprintf(m, "%s %lld audit.log\n", hex, (long long)size);
    if (directory != NULL) {
        snprintf(dst, sizeof(dst), "%s/territory.yaml", dir);
        if (copy_file(directory, dst, -1, hex, &size) < 0) goto err;
        fprintf(m, "%s %lld territory.yaml\n", hex, (long long)size);
    }
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(m, "# relais backup of %s at %s\n", data, when);
    if (fflush(m) != 0 || fsync(fileno(m)) < 0) goto err;
    fclose(m);
    char final[1024];
    snprintf(final, sizeof(final), "%s/" MANIFEST, dir);
    if (rename(path, final) < 0) return fail("cannot write %s: %s", final, strerror(errno));
    printf("backup of %s written to %s (store snapshot, audit journal%s, manifest)\n", data, dir,
           directory ? ", directory" : "");
    return 0;
err:
    fclose(m);
    return 1;
}

static int restore(const char *dir, const char *data)
{
    if (sodium_init() < 0) return fail("libsodium failed to initialise%s%s", "", NULL);
    char path[1024];
    snprintf(path, sizeof(path), "%s/" MANIFEST, dir);
    FILE *m = fopen(path, "r");
    if (m == NULL) return fail("%s has no manifest: %s", dir, strerror(errno));
    /* First every checksum: a damaged backup is refused before anything is written. */
    char line[1200];
    int files = 0;
    while (fgets(line, sizeof(line), m)) {
        if (line[0] == '#') continue;
        char want[65], name[256], have[65];
        long long size;
        off_t got;
        if (sscanf(line, "%64s %lld %255s", want, &size, name) != 3 || strchr(name, '/')) {
            fclose(m);
            return fail("%s: a line of the manifest is not 'sha256 size name': %s", path, line);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (hash_file(path, have, &got) < 0 || strcmp(have, want) != 0 || got != size) {
            fclose(m);
            return fail("%s does not match the manifest (damaged or altered): restore refused%s",
                        path, NULL);
        }
        files++;
    }
    if (files == 0) {
        fclose(m);
        return fail("%s: the manifest lists no file%s", dir, NULL);
    }
    if (mkdir(data, 0700) < 0 && errno != EEXIST) {
        fclose(m);
        return fail("cannot create %s: %s", data, strerror(errno));
    }
    DIR *d = opendir(data);
    struct dirent *e;
    bool empty = true;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    if (d != NULL) closedir(d);
    if (!empty) {
        fclose(m);
        return fail("%s is not empty: a restore never overwrites a data directory%s", data, NULL);
    }
    rewind(m);
    while (fgets(line, sizeof(line), m)) {
        if (line[0] == '#') continue;
        char want[65], name[256], hex[65];
        long long size;
        off_t got;
        if (sscanf(line, "%64s %lld %255s", want, &size, name) != 3) continue;
        char src[1024], dst[1024];
        snprintf(src, sizeof(src), "%s/%s", dir, name);
        snprintf(dst, sizeof(dst), "%s/%s", data, name);
        if (copy_file(src, dst, -1, hex, &got) < 0) {
            fclose(m);
            return 1;
        }
    }
    fclose(m);
    printf("restored %d files into %s; start relaisd with --data %s%s\n", files, data, data,
           access(path, F_OK) == 0 ? "" : "");
    /* The journal must verify, rotated files included. */
    snprintf(path, sizeof(path), "%s/audit.log", data);
    char *argv[] = {"audit", "verify", path, NULL};
    return ctl__audit(3, argv);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl backup DIR [--data DATA] [--directory FILE]\n"
                 "       relaisctl restore DIR --data NEWDATA\n"
                 "\n"
                 "backup   copies the running broker's state into DIR (created, mode 0700): a\n"
                 "         consistent snapshot of the store (SQLite's online backup), the audit\n"
                 "         journal, the territory directory when --directory names it, and\n"
                 "         MANIFEST with each file's SHA-256. DATA: $RELAIS_DATA, else\n"
                 "         relais-data.\n"
                 "restore  checks DIR against its manifest, copies it into NEWDATA (which must be\n"
                 "         empty or absent) and verifies the journal's chain. Then start relaisd\n"
                 "         with --data NEWDATA.\n");
}

int ctl__backup(int argc, char **argv)
{
    bool is_restore = strcmp(argv[0], "restore") == 0;
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"directory", required_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = getenv("RELAIS_DATA"), *directory = NULL;
    bool data_given = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            data_given = true;
            break;
        case 'y':
            directory = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || (is_restore && (!data_given || directory != NULL))) {
        usage(stderr);
        return 2;
    }
    if (is_restore) return restore(argv[optind], data);
    return backup(data ? data : "relais-data", directory, argv[optind]);
}
