/*
 * relaisctl keygen NAME: a new CurveZMQ keypair for an agent or the broker.
 *
 * Writes NAME.key (the keypair, in the format include/relais/keys.h reads, mode 0600) and
 * NAME.pub (the public key alone, what an agent sends its CPTS to be enrolled), then prints
 * the directory entry to paste. Neither file is ever overwritten: replacing a key is a
 * revocation, which the administrator does on purpose by removing the old files first.
 * The .key file is created with O_EXCL at mode 0600, so the secret never sits in a file
 * that someone else could open, not even between create and chmod.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "relaisctl.h"

/* Creates path exclusively with mode and writes text to it, synced. 0 or a negative errno. */
static int write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    size_t len = strlen(text), done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        done += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc != 0) unlink(path);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl keygen NAME\n"
                 "  writes NAME.key (keypair, secret, mode 0600) and NAME.pub (public key);\n"
                 "  refuses to overwrite either\n");
}

int ctl__keygen(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    size_t path_len = strlen(name) + 5;
    char *key_path = malloc(path_len), *pub_path = malloc(path_len);
    char public_z85[41], secret_z85[41];
    char keyfile[256];
    int status = 1, rc;
    if (key_path == NULL || pub_path == NULL) {
        fprintf(stderr, "relaisctl keygen: out of memory\n");
        goto out;
    }
    snprintf(key_path, path_len, "%s.key", name);
    snprintf(pub_path, path_len, "%s.pub", name);
    if (zmq_curve_keypair(public_z85, secret_z85) != 0) {
        fprintf(stderr, "relaisctl keygen: cannot generate a keypair: %s (libzmq without CURVE?)\n",
                zmq_strerror(errno));
        goto out;
    }
    snprintf(keyfile, sizeof keyfile,
             "# Relais CURVE keypair — secret: never share this file\n"
             "public-key: %s\n"
             "secret-key: %s\n",
             public_z85, secret_z85);
    rc = write_new(key_path, 0600, keyfile);
    sodium_memzero(keyfile, sizeof keyfile);
    sodium_memzero(secret_z85, sizeof secret_z85);
    if (rc != 0) {
        fprintf(stderr, "relaisctl keygen: %s: %s%s\n", key_path, strerror(-rc),
                rc == -EEXIST ? " (remove it first to replace the key: that revokes it)" : "");
        goto out;
    }
    char pub[48];
    snprintf(pub, sizeof pub, "%s\n", public_z85);
    rc = write_new(pub_path, 0644, pub);
    if (rc != 0) {
        /* The pair is useless without its .pub on record; leave no half-made key behind. */
        unlink(key_path);
        fprintf(stderr, "relaisctl keygen: %s: %s\n", pub_path, strerror(-rc));
        goto out;
    }
    printf("public key: %s\n"
           "wrote %s (secret, mode 0600: never leaves this machine) and %s (public: what the\n"
           "CPTS enrols, or, for the broker's key, what agents are given)\n"
           "\n"
           "Directory entry to add under agents: (fill in address, name, role), then reload\n"
           "relaisd with SIGHUP:\n"
           "\n"
           "  - address: rpps:00000000000\n"
           "    name: \"\"\n"
           "    role: gp\n"
           "    public_key: \"%s\"\n",
           public_z85, key_path, pub_path, public_z85);
    status = 0;
out:
    free(key_path);
    free(pub_path);
    return status;
}
