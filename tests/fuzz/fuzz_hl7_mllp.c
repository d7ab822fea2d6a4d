/*
 * Fuzz target: MLLP framing of relais-hl7 (agents/hl7/mllp.c), which splits what a TCP
 * connection delivers into HL7 messages.
 *
 * The first input byte chooses the size limit, the rest is the stream. Properties checked:
 * a frame found lies between a start block and an end block followed by CR, holds neither
 * block byte, fits the limit, and consumed covers exactly it (and the line ends before
 * it); reading the stream one byte at a time, with the scan position carried over, finds
 * the same frames and the same error as reading it whole; nothing loops forever.
 */
#include "fuzz.h"
#include "mllp.h"

/* Splits the stream into frames; returns the final code, and the frames' hash in *sig. */
static int walk(const uint8_t *p, size_t n, size_t max, bool bytewise, uint64_t *sig)
{
    size_t off = 0;
    *sig = 1469598103934665603ull;
    for (;;) {
        size_t scan = 0, start, flen, consumed;
        int rc = MLLP_MORE;
        size_t avail = bytewise ? 0 : n - off;
        for (;;) {
            rc = mllp_extract(p + off, avail, max, &scan, &start, &flen, &consumed);
            if (rc != MLLP_MORE || avail == n - off) break;
            avail++;
        }
        if (rc != MLLP_FRAME) return rc;
        FUZZ_CHECK(start >= 1 && p[off + start - 1] == MLLP_SB);
        FUZZ_CHECK(flen <= max);
        FUZZ_CHECK(consumed == start + flen + 2);
        FUZZ_CHECK(p[off + start + flen] == MLLP_EB && p[off + start + flen + 1] == MLLP_CR);
        FUZZ_CHECK(memchr(p + off + start, MLLP_SB, flen) == NULL);
        FUZZ_CHECK(memchr(p + off + start, MLLP_EB, flen) == NULL);
        for (size_t i = 0; i + 1 < start; i++) {
            FUZZ_CHECK(p[off + i] == '\r' || p[off + i] == '\n');
        }
        for (size_t i = 0; i < flen; i++) *sig = (*sig ^ p[off + start + i]) * 1099511628211ull;
        *sig = (*sig ^ 0x100) * 1099511628211ull;
        off += consumed;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t max = data[0];
    uint64_t a, b;
    int ra = walk(data + 1, size - 1, max, false, &a);
    int rb = walk(data + 1, size - 1, max, true, &b);
    FUZZ_CHECKF(ra == rb, "whole %d, bytewise %d", ra, rb);
    FUZZ_CHECK(a == b);
    FUZZ_CHECK(ra == MLLP_MORE || ra < 0);
    return 0;
}
