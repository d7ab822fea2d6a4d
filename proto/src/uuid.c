/*
 * Message identifiers.
 *
 * Message ids are UUIDv7 (RFC 9562 section 5.7): a 48-bit Unix millisecond timestamp, so
 * ids sort roughly by creation time and a store can index them cheaply, followed by 74
 * random bits from getrandom(2). Uniqueness rests on those random bits alone: no counter and
 * no shared state, so any number of threads may call relais_uuid7() at once without a lock,
 * and two ids drawn in the same millisecond collide with probability about 2^-74. Ids made
 * in the same millisecond are not ordered among themselves; nothing in Relais relies on
 * that (delivery order is the broker's acceptance order, not the id order).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "relais/codec.h"

/* Fills buf from the kernel's CSPRNG; small requests never return short except on EINTR. */
static int fill_random(uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

int relais_uuid7(uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    int rc = fill_random(id + 6, RELAIS_MESSAGE_ID_LEN - 6);
    if (rc != 0) return rc;

    uint64_t ms = (uint64_t)relais_wall_ms();
    for (int i = 0; i < 6; i++) id[i] = (uint8_t)(ms >> (40 - 8 * i));
    id[6] = (uint8_t)(0x70 | (id[6] & 0x0f)); /* version 7 in the high nibble */
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f)); /* variant 10 in the two high bits */
    return 0;
}

char *relais_id_format(const uint8_t *id, size_t len, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    if (id == NULL || len == 0) {
        memcpy(out, "-", 2);
        return out;
    }
    size_t o = 0;
    if (len == RELAIS_MESSAGE_ID_LEN) {
        for (size_t i = 0; i < len; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
            out[o++] = hex[id[i] >> 4];
            out[o++] = hex[id[i] & 0x0f];
        }
        out[o] = '\0';
        return out;
    }
    /* 36 characters hold 18 bytes of hex; a longer id shows 17 of them and "..". */
    size_t shown = len <= 18 ? len : 17;
    for (size_t i = 0; i < shown; i++) {
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 0x0f];
    }
    if (shown < len) {
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}
