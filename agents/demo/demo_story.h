/*
 * The demo's shared state and its story book-keeping: the territory's agents, the four
 * stories with the steps each must go through, the timeline printer, and the waits of the
 * orchestrator. Roles report events on their agents' threads; demo__on_event() turns each
 * into one timeline line and a step of a story, under the one mutex, and wakes the
 * orchestrator through the condition variable.
 */
#ifndef RELAIS_DEMO_STORY_H
#define RELAIS_DEMO_STORY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "demo_broker.h"
#include "demo_territory.h"
#include "refagents.h"

enum {
    DEMO_ASSISTANT = 0,
    DEMO_PHYSIO,
    DEMO_NURSE,
    DEMO_CARDIOLOGIST,
    DEMO_HOSPITAL,
    DEMO_PHYSIO2,
    DEMO_COORDINATION,
    DEMO_N_AGENTS,
};

#define DEMO_STEPS 8
#define DEMO_STORIES 4
#define DEMO_CONVS 8

typedef struct demo demo_t;

typedef struct demo_agent {
    demo_t *demo;
    const char *label;
    const char *address;
    relais_agent_t *agent;
    pthread_t thread;
    bool thread_started;
    /* Under demo->mu: */
    relais_agent_state_t state;
    bool was_ready;
    bool exited;
    int run_rc;
} demo_agent_t;

typedef struct demo_story {
    const char *label; /* "story 1" */
    const char *title;
    const char *steps[DEMO_STEPS]; /* what must happen, in the usual order */
    int n_steps;
    /* Under demo->mu: */
    unsigned seen; /* bit i set: step i happened */
    bool running, done, failed;
    char failure[320];
    char outcome[192];
    int64_t started_ms, finished_ms;
    uint8_t convs[DEMO_CONVS][RELAIS_MESSAGE_ID_LEN]; /* conversations of this story */
    size_t n_convs;
} demo_story_t;

struct demo {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* signalled on every state change and event */
    struct timespec t0; /* CLOCK_MONOTONIC at start: the timeline's zero */
    int addr_width;
    bool stopping;
    bool broker_running;
    demo_broker_t broker;
    demo_territory_t territory; /* keys and directory, in the broker's data directory */
    demo_agent_t agents[DEMO_N_AGENTS];
    relais_ref_assistant_t *assistant;
    relais_ref_provider_t *physio;
    relais_ref_provider_t *nurse;
    relais_ref_provider_t *cardio;
    relais_ref_hospital_t *hospital;
    relais_ref_provider_t *physio2;
    relais_ref_coordinator_t *coordinator;
    demo_story_t stories[DEMO_STORIES];
    /* Story 3: the pool members who claimed the request and saw it withdrawn. */
    char claimed_by[RELAIS_ADDRESS_MAX];
    char withdrawn_from[RELAIS_ADDRESS_MAX];
    bool offer_summary_printed;
    char request_id[RELAIS_REF_ID_MAX];
    char pool_request_id[RELAIS_REF_ID_MAX];
    char silent_request_id[RELAIS_REF_ID_MAX];
    char encounter_id[RELAIS_REF_ID_MAX];
    relais_ref_sample_discharge_t discharge; /* used on the hospital's loop only */
};

/* Initialises the lock, the monotonic condition variable and the clock. 0 or -1. */
int demo__init(demo_t *d);
void demo__fini(demo_t *d);

/* Names the stories' identifiers: story 1's request, story 2's encounter, story 3's
 * request to the pool and story 4's request to the silent cardiologist. */
void demo__story_setup(demo_t *d, const char *assistant, const char *request_id,
                       const char *encounter_id, const char *pool_request_id,
                       const char *silent_request_id);

/* Milliseconds since demo__init(). */
int64_t demo__elapsed_ms(demo_t *d);

/* Prints one timeline line, "+NNms  text". The caller holds d->mu. */
void demo__print(demo_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Waits on d->cv (caller holds d->mu) until done(d) or abort(d) (may be NULL) holds or
 * timeout_ms passed. Returns done(d).
 */
bool demo__wait(demo_t *d, int timeout_ms, bool (*done)(demo_t *), bool (*abort)(demo_t *));

/* Waits (caller holds d->mu) until s completes or fails; records a timeout as failure. */
void demo__wait_story(demo_t *d, demo_story_t *s, int timeout_ms);

/* Marks s failed with "what: why" (takes d->mu itself). */
void demo__story_fail(demo_t *d, demo_story_t *s, const char *what, const char *why);

/* The roles' event callback (ud: the demo). */
void demo__on_event(const relais_ref_event_t *ev, void *ud);

/* The coordinator's escalation callback (ud: the demo). */
void demo__on_escalation(const relais_ref_escalation_t *esc, void *ud);

/* Prints each story's result: completion time and outcome, or what failed. */
void demo__report(demo_t *d, FILE *out);

#endif /* RELAIS_DEMO_STORY_H */
