/*
 * relaisctl keygen NAME: a new CurveZMQ keypair for an agent or the broker.
 *
 * Writes NAME.key (the keypair, in the format include/relais/keys.h reads, mode 0600) and
 * NAME.pub (the public key alone, what an agent sends its CPTS to be enrolled), then prints
 * how to enrol it: the `relaisctl agent add` command and the directory entry that command
 * writes, with this key in it (and the address, role and name, when given with --address,
 * --role, --name, which are checked as agent add checks them before any key is made). Neither file is ever overwritten: replacing a key is a
 * revocation, which the administrator does on purpose by removing the old files first.
 * The .key file is created with O_EXCL at mode 0600, so the secret never sits in a file
 * that someone else could open, not even between create and chmod.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "directory.h"
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
    fprintf(out, "usage: relaisctl keygen [--address A --role R [--name N]] NAME\n"
                 "  writes NAME.key (keypair, secret, mode 0600) and NAME.pub (public key);\n"
                 "  refuses to overwrite either. Prints the relaisctl agent add command that\n"
                 "  enrols the key, and the directory entry it writes (complete when --address\n"
                 "  and --role are given)\n");
}

enum { OPT_ADDRESS = 400, OPT_ROLE, OPT_NAME, OPT_HELP };

int ctl__keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"role", required_argument, NULL, OPT_ROLE},
        {"name", required_argument, NULL, OPT_NAME},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *address = NULL, *role_name = NULL, *display = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ADDRESS: address = optarg; break;
        case OPT_ROLE: role_name = optarg; break;
        case OPT_NAME: display = optarg; break;
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || argv[optind][0] == '\0' || argv[optind][0] == '-' ||
        (address == NULL) != (role_name == NULL)) {
        usage(stderr);
        return 2;
    }
    /* Checked before the key exists, so that a typo costs nothing to correct. */
    dir_role_t role = DIR_ROLE_GP;
    char why[512];
    if (address != NULL && ctl__identifier_check(address, why, sizeof why) != 0) {
        fprintf(stderr, "relaisctl keygen: %s\n", why);
        return 1;
    }
    if (role_name != NULL && dir_role_from_name(role_name, &role) != 0) {
        fprintf(stderr, "relaisctl keygen: unknown role '%s'\n", role_name);
        return 1;
    }
    argv += optind - 1;
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
           "CPTS enrols, or, for the broker's own key, what agents are given; never enrol\n"
           "the broker's key as an agent)\n\n",
           public_z85, key_path, pub_path);
    printf("To enrol it, the CPTS runs, with %s, on the broker host:\n"
           "  relaisctl agent add --address %s --role %s%s%s%s --key %s "
           "/etc/relais/territory.yaml\n"
           "  systemctl reload relaisd\n",
           pub_path, address ? address : "ADDRESS", role_name ? dir_role_name(role) : "ROLE",
           display ? " --name \"" : "", display ? display : "", display ? "\"" : "", pub_path);
    ctl_entry_t e = {
        .address = address ? address : "ADDRESS",
        .name = display,
        .role = role_name ? dir_role_name(role) : "ROLE",
        .public_key = public_z85,
    };
    char entry[2048];
    if (ctl__entry_format(&e, 2, entry, sizeof entry, why, sizeof why) == 0)
        printf("which adds to the directory's agents: list%s:\n%s",
               address ? "" : " (with the address and role filled in)", entry);
    status = 0;
out:
    free(key_path);
    free(pub_path);
    return status;
}
