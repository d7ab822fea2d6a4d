/*
 * MLLP framing (see mllp.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mllp.h"

const char *mllp_strerror(int code)
{
    switch (code) {
    case MLLP_EGARBAGE:
        return "bytes before the MLLP start block (0x0B)";
    case MLLP_ENESTED:
        return "a start block (0x0B) inside an unfinished frame";
    case MLLP_ETRAILER:
        return "the end block (0x1C) is not followed by a carriage return";
    case MLLP_ETOOBIG:
        return "frame over the size limit";
    default:
        return "no error";
    }
}

int mllp_extract(const uint8_t *buf, size_t len, size_t max, size_t *scan, size_t *start,
                 size_t *flen, size_t *consumed)
{
    size_t i = 0;
    /* Line ends between frames are tolerated: several engines add one after 0x1C 0x0D. */
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) i++;
    *consumed = i;
    *start = 0;
    *flen = 0;
    if (i == len) return MLLP_MORE;
    if (buf[i] != MLLP_SB) return MLLP_EGARBAGE;
    size_t s = i + 1;
    size_t from = *scan > s ? *scan : s;
    /* Only max + 1 bytes of message are ever looked at, so that a stream gets the same
     * verdict whether it arrives at once or byte by byte. */
    size_t limit = len - s > max ? s + max + 1 : len;
    for (size_t k = from; k < limit; k++) {
        if (buf[k] == MLLP_SB) return MLLP_ENESTED;
        if (buf[k] != MLLP_EB) continue;
        if (k + 1 == len) {
            *scan = k; /* look at the end block again once its CR has come */
            return MLLP_MORE;
        }
        if (buf[k + 1] != MLLP_CR) return MLLP_ETRAILER;
        *start = s;
        *flen = k - s;
        *consumed = k + 2;
        return MLLP_FRAME;
    }
    *scan = limit;
    if (len - s > max) return MLLP_ETOOBIG;
    return MLLP_MORE;
}

int mllp_wrap(const char *msg, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *f = malloc(len + 3);
    if (f == NULL) return -ENOMEM;
    f[0] = MLLP_SB;
    memcpy(f + 1, msg, len);
    f[len + 1] = MLLP_EB;
    f[len + 2] = MLLP_CR;
    *out = f;
    *out_len = len + 3;
    return 0;
}
