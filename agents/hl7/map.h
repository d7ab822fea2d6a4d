/*
 * From HL7 v2 to Relais: what each supported message becomes (docs/HL7.md has the field
 * by field table). The mapping is a pure function of the message, the channel's tables,
 * the territory directory and the programmes: it builds the envelopes to submit (a plan)
 * or refuses the message with an HL7 error, and never does I/O, so the unit tests run it
 * on the sample messages directly.
 *
 * Supported: ADT^A03 (discharge → DischargeNotification to the GP's practice, with the
 * follow-up plan of the programme the diagnoses select), ADT^A13 (cancel discharge →
 * DischargeCancelled to the same recipients), ADT^A01 (admission → AdmissionNotice),
 * ADT^A05/A38 (pre-admission granted/cancelled → PreadmissionDecision) and REF^I12 (referral →
 * AppointmentRequest to the specialist or the specialty's pool). A GP the directory cannot resolve
 * sends the message to the CPTS coordinator instead, with an Escalation saying why.
 */
#ifndef RELAIS_HL7_MAP_H
#define RELAIS_HL7_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "channel.h"
#include "directory.h"
#include "hl7.h"
#include "refagents.h"
#include "relais/codec.h"

#define HL7_PLAN_MAX 2 /* envelopes one message may produce */
#define HL7_RCPT_MAX 8 /* addresses acting for one GP that are notified */

typedef struct hl7_map_ctx {
    const hl7_channel_t *ch;
    const directory_t *dir;
    const relais_ref_programmes_t *programmes; /* NULL: the built-in ones */
    const char *coordinator;                   /* where unresolved messages go */
    bool production;                           /* test INS refused */
} hl7_map_ctx_t;

typedef struct hl7_plan {
    const char *kind;       /* "discharge", "discharge-cancel", "admission", "referral" */
    const char *route;      /* "practice", "gp", "specialist", "pool", "coordinator" */
    char route_reason[160]; /* why the coordinator (no patient data) */
    size_t n;
    Relais__V1__Envelope env[HL7_PLAN_MAX];
    /* What the envelopes point into. */
    relais_ref_discharge_t d;
    Relais__V1__DischargeCancelled cancel;
    Relais__V1__AdmissionNotice admission;
    Relais__V1__AppointmentRequest referral;
    Relais__V1__PreadmissionDecision decision;
    Relais__V1__TimeWindow window;
    Relais__V1__Escalation esc;
    Relais__V1__PatientRef patient;
    char to_buf[HL7_RCPT_MAX][RELAIS_ADDRESS_MAX];
    char *to[HL7_RCPT_MAX];
    char coord_buf[RELAIS_ADDRESS_MAX];
    char *coord[1];
    char gp[RELAIS_ADDRESS_MAX];
    char *care_team[1];
    char encounter[128], local_id[128], ins[32], ins_oid[64], family[128], given[2][128];
    char *given_ptrs[2];
    char birth[11];
    char programme[64];
    char reason[256];
    char facility[RELAIS_ADDRESS_MAX];
    uint8_t ids[HL7_PLAN_MAX][RELAIS_MESSAGE_ID_LEN];
} hl7_plan_t;

/*
 * Maps m into plan (the caller's, zeroed by this call). Returns 0, or an HL7 error code
 * with err filled: 200/201 for a type or trigger not supported (read from MSH-9 only),
 * 202 for a processing id the channel refuses, 203 for a version that is not 2.x,
 * 101 for a required field missing, 102/103 for a value that cannot be read or a test INS
 * in a production territory, 207 for a sending application or facility the channel does
 * not accept.
 */
int hl7_map(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *plan, hl7_error_t *err);

/*
 * Gives the plan's envelopes their message ids (ids[i] for env[i], 16 bytes each) and ties
 * them together: the first opens its conversation, the Escalation of a coordinator
 * routing belongs to it and names it.
 */
void hl7_plan_set_ids(hl7_plan_t *plan, const uint8_t ids[][RELAIS_MESSAGE_ID_LEN]);

/*
 * Reads an HL7 DTM (YYYYMMDD[HH[MM[SS[.S…]]]][+/-ZZZZ]) as milliseconds since the epoch;
 * without an offset the time is local time in the zone tz (an IANA name). Returns 0 or
 * HL7_ERR_DATA_TYPE. Changes and restores the process's TZ: call on one thread only.
 */
int hl7_time_ms(const char *dtm, const char *tz, int64_t *out);

#endif /* RELAIS_HL7_MAP_H */
