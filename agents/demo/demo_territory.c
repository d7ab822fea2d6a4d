/*
 * The demo territory's keys and directory (see demo_territory.h). Keys come from
 * zmq_curve_keypair(); each secret is written once, to a file created 0600, and wiped from
 * memory; the agents read their keys back from those files with relais_keyfile_read(), as
 * the reference programs do with --key. The directory is written with the members in the
 * table below; its roles are the whole authorisation story of the demo.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "demo_territory.h"

#define POOL(role) "service:" role "@" DEMO_TERRITORY

/*
 * Who is in the territory, and why each may do what the stories need under the default
 * rules: the assistant (a medical assistant acting for the GP) sends AppointmentRequest,
 * AppointmentBook and CareTaskRequest; the physiotherapist and the nurse may receive
 * requests and answer inside the conversations they were delivered into; the hospital may
 * send a DischargeNotification to anyone in the directory. Both physiotherapists belong to
 * the physiotherapists' pool, whose member claiming a request becomes a participant of its
 * conversation; anyone may send an Escalation to the coordinator, and the coordinator may
 * answer inside the escalation's conversation.
 */
static const struct member {
    const char *address, *name, *role, *specialty, *acts_for;
    const char *pools[2];
    const char *stem; /* key file name */
} members[DEMO_MEMBERS] = {
    {.address = DEMO_GP,
     .name = "Dr Jeanne Martin",
     .role = "gp",
     .pools = {POOL("gp")},
     .stem = "gp"},
    {.address = DEMO_ASSISTANT_ADDR,
     .name = "Claire Martin",
     .role = "medical_assistant",
     .acts_for = DEMO_GP,
     .stem = "assistant"},
    {.address = DEMO_PHYSIO_ADDR,
     .name = "Sophie Lemoine",
     .role = "physiotherapist",
     .pools = {POOL("physiotherapist")},
     .stem = "physiotherapist"},
    {.address = DEMO_PHYSIO2_ADDR,
     .name = "Marc Guillou",
     .role = "physiotherapist",
     .pools = {POOL("physiotherapist")},
     .stem = "physiotherapist2"},
    {.address = DEMO_NURSE_ADDR,
     .name = "Yann Le Goff",
     .role = "nurse",
     .pools = {POOL("nurse")},
     .stem = "nurse"},
    {.address = DEMO_CARDIOLOGIST_ADDR,
     .name = "Dr Karim Benali",
     .role = "specialist",
     .specialty = "cardiology",
     .pools = {POOL("specialist"), POOL("specialist/cardiology")},
     .stem = "cardiologist"},
    {.address = DEMO_HOSPITAL_ADDR,
     .name = "Centre hospitalier de Rennes-Nord",
     .role = "hospital",
     .stem = "hospital"},
    {.address = DEMO_COORDINATOR,
     .name = "Coordination CPTS demo",
     .role = "coordinator",
     .pools = {POOL("coordinator")},
     .stem = "coordinator"},
};

/* Writes text to a new file of the given mode; 0 or -1 with err filled. */
static int write_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Generates a keypair and writes it to path (mode 0600); the public half is kept in
 * public_z85, the secret one never outlives this call in memory.
 */
static int make_keyfile(const char *path, const char *whose, char public_z85[41], char *err,
                        size_t errlen)
{
    char secret[41];
    if (zmq_curve_keypair(public_z85, secret) != 0) {
        snprintf(err, errlen, "cannot generate a CURVE keypair (libzmq without CURVE?): %s",
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    char text[256];
    snprintf(text, sizeof text,
             "# Relais CURVE keypair of %s, made by relais-demo for one run — secret\n"
             "public-key: %s\nsecret-key: %s\n",
             whose, public_z85, secret);
    int rc = write_file(path, 0600, text, err, errlen);
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(text, sizeof text);
    return rc;
}

static void write_member(FILE *f, const struct member *m, const char *public_z85)
{
    fprintf(f, "  - address: \"%s\"\n    name: \"%s\"\n    role: %s\n", m->address, m->name,
            m->role);
    if (m->specialty != NULL) fprintf(f, "    specialty: %s\n", m->specialty);
    /* Z85 has neither '"' nor '\\': a double-quoted scalar holds any key as it is. */
    fprintf(f, "    public_key: \"%s\"\n", public_z85);
    if (m->pools[0] != NULL) {
        fprintf(f, "    pools: [\"%s\"", m->pools[0]);
        if (m->pools[1] != NULL) fprintf(f, ", \"%s\"", m->pools[1]);
        fprintf(f, "]\n");
    }
    if (m->acts_for != NULL) fprintf(f, "    acts_for: [\"%s\"]\n", m->acts_for);
}

static int write_directory(demo_territory_t *t, char *err, size_t errlen)
{
    FILE *f = fopen(t->directory_path, "wx");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %s: %s", t->directory_path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# The demo territory, written by relais-demo for this run: fictitious members,\n"
            "# keys generated at start (their .key files are next to this one, in keys/).\n"
            "# No acl section: the stories pass the default rules of PROTOCOL.md section 6.\n"
            "territory: %s\n"
            "production: true\n"
            "agents:\n",
            DEMO_TERRITORY);
    for (size_t i = 0; i < t->n_members; i++) {
        write_member(f, &members[i], t->members[i].public_z85);
    }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        snprintf(err, errlen, "cannot write %s", t->directory_path);
        return -1;
    }
    return 0;
}

/* out = data_dir/rest; 0, or -1 with err filled when the path does not fit. */
static int data_path(char out[DEMO_KEY_PATH_MAX], const char *data_dir, const char *rest, char *err,
                     size_t errlen)
{
    int n = snprintf(out, DEMO_KEY_PATH_MAX, "%s/%s", data_dir, rest);
    if (n < 0 || n >= DEMO_KEY_PATH_MAX) {
        snprintf(err, errlen, "the data directory's path is too long for %s", rest);
        return -1;
    }
    return 0;
}

int demo_territory_write(demo_territory_t *t, const char *data_dir, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    char path[DEMO_KEY_PATH_MAX], name[64];
    if (data_path(path, data_dir, "keys", err, errlen) != 0) return -1;
    if (mkdir(path, 0700) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (data_path(t->broker_key_path, data_dir, "keys/relaisd.key", err, errlen) != 0 ||
        make_keyfile(t->broker_key_path, "the broker", t->broker_public_z85, err, errlen) != 0) {
        return -1;
    }
    char line[48];
    snprintf(line, sizeof line, "%s\n", t->broker_public_z85);
    if (data_path(path, data_dir, "keys/relaisd.pub", err, errlen) != 0 ||
        write_file(path, 0644, line, err, errlen) != 0) {
        return -1;
    }

    for (size_t i = 0; i < DEMO_MEMBERS; i++) {
        demo_member_keys_t *k = &t->members[i];
        k->address = members[i].address;
        snprintf(name, sizeof name, "keys/%s.key", members[i].stem);
        if (data_path(k->path, data_dir, name, err, errlen) != 0 ||
            make_keyfile(k->path, k->address, k->public_z85, err, errlen) != 0) {
            return -1;
        }
        t->n_members++;
    }
    if (data_path(t->directory_path, data_dir, "territory.yaml", err, errlen) != 0) return -1;
    return write_directory(t, err, errlen);
}

const char *demo_territory_key_path(const demo_territory_t *t, const char *address)
{
    for (size_t i = 0; i < t->n_members; i++) {
        if (strcmp(t->members[i].address, address) == 0) return t->members[i].path;
    }
    return NULL;
}
