/*
 * relais-hl7's configuration: the broker it talks to, the territory directory it resolves
 * GPs with, where it keeps its state, and its channels — one per sending hospital system,
 * each with its own MLLP listener, Relais address (finess:) and key, and the tables that
 * turn the hospital's codes into Relais values (PV1-36 dispositions, ICD-10 diagnoses to
 * care programmes). Mappings are data, not code.
 *
 * The file is YAML read as strictly as the territory directory: unknown or repeated keys,
 * values out of range, unknown dispositions or programmes are errors naming file and line.
 * docs/HL7.md shows the layout; deploy/hl7/relais-hl7.yaml is a complete example.
 */
#ifndef RELAIS_HL7_CHANNEL_H
#define RELAIS_HL7_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL7_CHANNELS_MAX 32

typedef struct hl7_code_map {
    char *code;      /* the hospital's code: PV1-36 value, or an ICD-10 prefix without dot */
    char *value;     /* the programme name; for dispositions unused */
    int disposition; /* Relais__V1__DischargeNotification__Disposition, for dispositions */
} hl7_code_map_t;

typedef struct hl7_channel {
    char *name;          /* for logs and the state; [a-z0-9._-] */
    char *listen_host;   /* numeric IPv4 or IPv6 */
    int listen_port;     /* 0: any free port (the ready line says which) */
    char *outbound_host; /* the hospital's own MLLP endpoint, NULL when none */
    int outbound_port;
    char *address;       /* the hospital's Relais address, finess:… */
    char *key_path;      /* its CurveZMQ keypair file; NULL with insecure */
    char **applications; /* accepted MSH-3 (namespace id); none: any */
    size_t n_applications;
    char **facilities; /* accepted MSH-4; none: any */
    size_t n_facilities;
    char *timezone;         /* for timestamps without offset; default Europe/Paris */
    char processing_ids[4]; /* accepted MSH-11 values among P, T, D; default "P" */
    hl7_code_map_t *dispositions;
    size_t n_dispositions;
    hl7_code_map_t *diagnoses; /* ICD-10 prefix → programme, longest prefix wins */
    size_t n_diagnoses;
    hl7_code_map_t *specialties; /* RF1-3 referral type → specialty of the pool asked */
    size_t n_specialties;
} hl7_channel_t;

typedef struct hl7_config {
    char *endpoint;   /* broker endpoint */
    char *server_key; /* the broker's public key (file or Z85); NULL with insecure */
    bool insecure;    /* development only: no CURVE */
    char *directory;  /* the territory directory file */
    char *state_dir;  /* acknowledgement store and the channels' agent state files */
    /*
     * false (outbox: disk, the default): each channel's agent keeps its unconfirmed
     * submissions in a state file, one synced write per submission. true (outbox: memory):
     * no state file. Both keep the promise, because AA waits for Accepted and a sender
     * resends what was not AA'd (under the same derived message ids); docs/HL7.md.
     */
    bool outbox_memory;
    char *coordinator;     /* NULL: the directory's first coordinator */
    char *programmes_file; /* NULL: the built-in programmes (heart-failure, copd) */
    struct relais_ref_programmes *programmes; /* loaded from it; NULL: the built-in ones */
    uint64_t max_message_bytes;
    uint64_t max_connections;  /* per channel */
    uint64_t frame_timeout_ms; /* a frame begun must end within this */
    uint64_t idle_timeout_ms;  /* a connection without any frame is closed after this */
    uint64_t ack_timeout_ms;   /* no Accepted within this: AR */
    hl7_channel_t channels[HL7_CHANNELS_MAX];
    size_t n_channels;
} hl7_config_t;

/*
 * Loads the configuration at path (or len bytes of yaml when yaml is not NULL, path then
 * naming it in messages). Returns 0 and *out (free with hl7_config_free()), RELAIS_ECONFIG
 * with "file:line: key: why" in err, or -ENOMEM. Files named in it are not opened here.
 */
int hl7_config_load(const char *path, const char *yaml, size_t len, hl7_config_t **out, char *err,
                    size_t err_len);
void hl7_config_free(hl7_config_t **cfg);

#endif /* RELAIS_HL7_CHANNEL_H */
