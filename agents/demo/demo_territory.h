/*
 * The demo's territory directory and its CurveZMQ keys, made fresh at every run.
 *
 * The demo runs relaisd as a CPTS runs it: with CurveZMQ and a directory, never in
 * insecure mode. So before the broker starts, the demo generates in its data directory a
 * keypair for the broker and one per member of the territory (files mode 0600, in the
 * format of include/relais/keys.h, as relaisctl keygen writes them), and the directory
 * YAML listing each member's address, role, public key, pools and whom it acts for (the
 * format of broker/directory.h). The roles are chosen so that both stories pass the
 * default authorisation of PROTOCOL.md section 6 without any ACL override.
 */
#ifndef RELAIS_DEMO_TERRITORY_H
#define RELAIS_DEMO_TERRITORY_H

#include <limits.h>
#include <stddef.h>

#define DEMO_TERRITORY "cpts-demo"

/* The members' addresses. Not every member runs in the demo: the GP is only the one her
 * assistant acts for. The two physiotherapists are the pool of story 3; the coordinator
 * receives story 4's escalation. */
#define DEMO_GP "rpps:10101234567"
#define DEMO_ASSISTANT_ADDR "staff:claire.martin@cabinet-dupont"
#define DEMO_PHYSIO_ADDR "rpps:10102345678"
#define DEMO_PHYSIO2_ADDR "rpps:10105678901"
#define DEMO_PHYSIO_POOL "service:physiotherapist@" DEMO_TERRITORY
#define DEMO_CARDIOLOGY_POOL "service:specialist/cardiology@" DEMO_TERRITORY
#define DEMO_NURSE_ADDR "rpps:10103456789"
#define DEMO_CARDIOLOGIST_ADDR "rpps:10104567890"
#define DEMO_HOSPITAL_ADDR "finess:350000014"
#define DEMO_COORDINATOR "staff:coordination@cpts-demo"

#define DEMO_MEMBERS 8
#define DEMO_KEY_PATH_MAX (PATH_MAX + 64)

typedef struct demo_member_keys {
    const char *address;
    char public_z85[41];
    char path[DEMO_KEY_PATH_MAX]; /* data_dir/keys/<n>-<role>.key, mode 0600 */
} demo_member_keys_t;

typedef struct demo_territory {
    char directory_path[DEMO_KEY_PATH_MAX];  /* data_dir/territory.yaml */
    char broker_key_path[DEMO_KEY_PATH_MAX]; /* data_dir/keys/relaisd.key, mode 0600 */
    char broker_public_z85[41];              /* also in data_dir/keys/relaisd.pub */
    demo_member_keys_t members[DEMO_MEMBERS];
    size_t n_members;
} demo_territory_t;

/*
 * Generates the broker's and every member's keypair under data_dir/keys/ and writes the
 * directory data_dir/territory.yaml. 0, or -1 with err filled (files already written are
 * left for the caller's removal of data_dir).
 */
int demo_territory_write(demo_territory_t *t, const char *data_dir, char *err, size_t errlen);

/* The key file of the member with this address, or NULL when it is not a member. */
const char *demo_territory_key_path(const demo_territory_t *t, const char *address);

#endif /* RELAIS_DEMO_TERRITORY_H */
