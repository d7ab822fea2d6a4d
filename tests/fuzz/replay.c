/*
 * A stand-in for libFuzzer's driver: runs each file named on the command line, or each file
 * of each directory named, once through LLVMFuzzerTestOneInput().
 *
 * The main build uses gcc, which has no libFuzzer; linked with this file, each fuzz target
 * becomes a plain program that replays the committed corpus (seeds and every crash input
 * added after a fix), so the CI and sanitizer passes check those inputs on every run
 * without clang. It does no fuzzing: a target's checks abort on the first broken invariant
 * and this program prints the file it was reading first.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads path into a new buffer (caller frees); NULL with errno set on failure. */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

static int run_file(const char *path)
{
    size_t len = 0;
    uint8_t *data = read_all(path, &len);
    if (data == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

/* Runs every regular file of dir; returns how many, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (run_file(path) != 0) {
            count = -1;
            break;
        }
        count++;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            n = run_dir(argv[i]);
        } else {
            n = run_file(argv[i]) == 0 ? 1 : -1;
        }
        if (n < 0) return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr,
                "replay: no input files: a corpus replay that runs nothing proves nothing\n");
        return 1;
    }
    printf("replay: %ld inputs, all invariants held\n", total);
    return 0;
}
