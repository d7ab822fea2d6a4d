/*
 * The disk reserve (reserve.h): one file, one flag.
 */
#include "reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "relais/errors.h"
#include "relais/log.h"

struct reserve {
    char *path;
    size_t bytes;
    atomic_bool constrained;
    atomic_bool spent; /* the file is gone: spending again has nothing to give */
};

static bool fs_free_at_least(const char *path, uint64_t bytes)
{
    struct statvfs v;
    return statvfs(path, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize >= bytes;
}

/* Makes the file (posix_fallocate: its blocks are really taken) when twice its size is free,
 * so making it never fills the disk by itself. */
static int make(reserve_t *r)
{
    struct stat st;
    if (stat(r->path, &st) == 0 && (size_t)st.st_size >= r->bytes) return 0;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", r->path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) *slash = '\0';
    if (!fs_free_at_least(slash ? dir : ".", 2 * (uint64_t)r->bytes)) return -ENOSPC;
    int fd = open(r->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int rc = posix_fallocate(fd, 0, (off_t)r->bytes);
    close(fd);
    if (rc != 0) {
        unlink(r->path);
        return -rc;
    }
    return 0;
}

int reserve_open(reserve_t **out, const char *path, size_t bytes)
{
    reserve_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->bytes = bytes;
    atomic_init(&r->constrained, false);
    atomic_init(&r->spent, bytes == 0);
    if (bytes > 0) {
        int rc = make(r);
        if (rc < 0) {
            atomic_store(&r->spent, true);
            RLOG(RELAIS_LOG_WARN, "reserve",
                 "cannot make the %zu-byte disk reserve %s (%s): a full disk will be harder to "
                 "recover from; free some space",
                 bytes, path, relais_strerror(rc));
        }
    }
    *out = r;
    return 0;
}

void reserve_close(reserve_t **rp)
{
    if (rp == NULL || *rp == NULL) return;
    free((*rp)->path);
    free(*rp);
    *rp = NULL;
}

void reserve_spend(reserve_t *r, const char *who)
{
    if (r == NULL || r->bytes == 0) return;
    bool was = atomic_exchange(&r->constrained, true);
    bool had = !atomic_exchange(&r->spent, true) && unlink(r->path) == 0;
    if (!was)
        RLOG(RELAIS_LOG_WARN, "reserve",
             "disk full (met by the %s): %s; new messages are refused until space returns, "
             "acknowledgements are still recorded",
             who, had ? "the disk reserve is given back" : "no disk reserve to give back");
}

size_t reserve_bytes(const reserve_t *r)
{
    return r == NULL ? 0 : r->bytes;
}

bool reserve_ok(reserve_t *r)
{
    return r == NULL || !atomic_load(&r->constrained);
}

void reserve_check(reserve_t *r, uint64_t inside_free)
{
    if (r == NULL || !atomic_load(&r->constrained)) return;
    /* Room inside the database is not enough: the journal needs room on the file system. */
    if (make(r) != 0) return;
    atomic_store(&r->spent, false);
    atomic_store(&r->constrained, false);
    RLOG(RELAIS_LOG_INFO, "reserve", "space is back (disk reserve made again, %llu bytes free "
         "inside the store): new messages are taken again",
         (unsigned long long)inside_free);
}
