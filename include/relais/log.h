/*
 * Relais logging: one macro, four levels, key=value context, to stderr.
 *
 * RLOG checks the level before evaluating its arguments, so a debug line on a hot path
 * costs one comparison when debug is off. Messages are written as
 *   2026-11-22T13:07:00.123Z INFO  broker: accepted msg=… from=rpps:…
 * or, with relais_log_set_json(true), as one JSON object per line. Log lines carry
 * identifiers and types, never clinical content or patient identity: callers pass no body
 * field to a log call. The level is process-wide (set once at start-up); writing is
 * thread-safe (one write(2) per line).
 */
#ifndef RELAIS_LOG_H
#define RELAIS_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum relais_log_level {
    RELAIS_LOG_ERROR = 0,
    RELAIS_LOG_WARN = 1,
    RELAIS_LOG_INFO = 2,
    RELAIS_LOG_DEBUG = 3,
} relais_log_level_t;

void relais_log_set_level(relais_log_level_t level);
/* Parses "error", "warn", "info", "debug"; returns 0 or RELAIS_ECONFIG. */
int relais_log_set_level_name(const char *name);
void relais_log_set_json(bool on);
bool relais_log_enabled(relais_log_level_t level);
void relais_log_write(relais_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RLOG(level, component, ...)                                                      \
    do {                                                                                 \
        if (relais_log_enabled(level)) relais_log_write(level, component, __VA_ARGS__);   \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_LOG_H */
