/*
 * MLLP framing (HL7 v2's Minimal Lower Layer Protocol): each message travels as
 * 0x0B <message> 0x1C 0x0D on a TCP stream. This is the pure half, with no I/O, so the
 * fuzzer and the unit tests reach it directly: finding one frame in what a connection has
 * received so far, and wrapping an ACK. The listener (conn.c) owns the sockets.
 */
#ifndef RELAIS_HL7_MLLP_H
#define RELAIS_HL7_MLLP_H

#include <stddef.h>
#include <stdint.h>

#define MLLP_SB 0x0B
#define MLLP_EB 0x1C
#define MLLP_CR 0x0D

enum {
    MLLP_FRAME = 1,     /* a whole frame is there */
    MLLP_MORE = 0,      /* not yet: read more */
    MLLP_EGARBAGE = -1, /* bytes other than CR or LF before a start block */
    MLLP_ENESTED = -2,  /* a start block inside a frame: the frame before was never ended */
    MLLP_ETRAILER = -3, /* the end block is not followed by a carriage return */
    MLLP_ETOOBIG = -4,  /* the frame is longer than the limit */
};

/* A sentence for an MLLP_E… code, for logs; never NULL. */
const char *mllp_strerror(int code);

/*
 * Looks for the first frame in buf[0..len) (what the connection received and has not
 * consumed). *scan carries where the previous call stopped looking, so a slow sender's
 * frame is scanned once whatever the number of reads; it starts at 0 and is reset by the
 * caller after it consumes bytes. On MLLP_FRAME: the message is buf[*start .. *start+*flen)
 * and *consumed bytes (CR/LF before the start block included) can be dropped. On
 * MLLP_MORE: *consumed leading CR/LF bytes can be dropped. Errors leave the stream
 * unusable: the caller closes the connection (after an ACK if it can make one).
 * A frame whose message exceeds max bytes is refused as soon as that is known.
 */
int mllp_extract(const uint8_t *buf, size_t len, size_t max, size_t *scan, size_t *start,
                 size_t *flen, size_t *consumed);

/* Wraps len bytes in a new malloc'd frame; 0 or -ENOMEM. */
int mllp_wrap(const char *msg, size_t len, uint8_t **out, size_t *out_len);

#endif /* RELAIS_HL7_MLLP_H */
