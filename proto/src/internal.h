/*
 * Helpers shared by the files of relais_core and by nothing else (not installed, not part
 * of the public API).
 */
#ifndef RELAIS_CORE_INTERNAL_H
#define RELAIS_CORE_INTERNAL_H

#include <stddef.h>

/*
 * Writes a printf-formatted reason into reason (when it is not NULL and reason_len > 0,
 * truncated and NUL-terminated) and returns code, so that a check reads
 * `return codec__fail(RELAIS_EINVALID, reason, reason_len, "…", …);`.
 */
int codec__fail(int code, char *reason, size_t reason_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Empties reason (when it is not NULL and reason_len > 0); for the success paths. */
void codec__clear(char *reason, size_t reason_len);

#endif /* RELAIS_CORE_INTERNAL_H */
