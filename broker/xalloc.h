/*
 * One out-of-memory policy for the broker: abort.
 *
 * The store holds the truth: whatever the broker has accepted is committed before anyone is
 * told so, and a restart recovers it. A half-handled allocation failure deep in the loop
 * (a receipt silently not owed, a delivery not recorded) would break a promise quietly; a
 * crash keeps every promise and is seen. So, as Redis's zmalloc does, allocation failures
 * end the process with a message, and callers never test for NULL.
 */
#ifndef RELAIS_BROKER_XALLOC_H
#define RELAIS_BROKER_XALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void xalloc__oom(size_t n)
{
    fprintf(stderr, "relaisd: out of memory allocating %zu bytes: aborting (the store keeps "
                    "everything accepted; a restart recovers it)\n",
            n);
    abort();
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) xalloc__oom(n);
    return p;
}

static inline void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL) xalloc__oom(count * size);
    return p;
}

static inline void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (p == NULL) xalloc__oom(n);
    return p;
}

static inline char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL) xalloc__oom(strlen(s) + 1);
    return p;
}

static inline void *xmemdup(const void *src, size_t n)
{
    void *p = xmalloc(n);
    memcpy(p, src, n);
    return p;
}

#endif /* RELAIS_BROKER_XALLOC_H */
