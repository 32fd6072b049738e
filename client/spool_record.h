/*
 * client/spool_record.h: the on-disk format of the client's spool (spool.c),
 * as a pure codec: CRC32C, the file header, and one record. No I/O, no
 * allocation; the file-backed spool and the tests both use it.
 *
 * Flow: a task whose delivery to Kafka failed is encoded here, appended and
 * fsync'd by spool.c, and decoded again when it is re-produced.
 *
 * Layout (all integers little-endian):
 *
 *   file header, 16 bytes:  "RETRYSPL" | u32 version (1) | u32 crc32c(first 12 bytes)
 *   record, 16 + k + v bytes:
 *                           "RREC" | u32 k | u32 v | u32 crc32c(k, v, key, value) | key | value
 *
 * A record is only valid when its whole length is present and its CRC
 * matches: a crash in the middle of an append leaves a torn tail that
 * decodes as RC_REC_TORN or RC_REC_BAD, never as a record.
 */
#ifndef RC_SPOOL_RECORD_H
#define RC_SPOOL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RC_SPOOL_HEADER_LEN 16u
#define RC_SPOOL_REC_HDR_LEN 16u
/* Upper bounds a decoder accepts; anything larger is a corrupt length. */
#define RC_SPOOL_KEY_MAX 1024u
#define RC_SPOOL_VALUE_MAX (256u * 1024u * 1024u)

/* CRC-32C (Castagnoli, reflected, as in iSCSI and ext4): crc is the value
 * so far (0 to start). rc_crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t rc_crc32c(uint32_t crc, const void *data, size_t len);

/* Writes the 16-byte file header into out. */
void rc_spool_header_encode(unsigned char out[RC_SPOOL_HEADER_LEN]);
/* 1 when buf holds a valid version-1 file header, else 0. */
int rc_spool_header_ok(const unsigned char *buf, size_t len);

/* Writes the 16-byte record header for key/value into out; the record is
 * out followed by key and value. */
void rc_spool_rec_header(unsigned char out[RC_SPOOL_REC_HDR_LEN], const void *key, size_t klen,
                         const void *value, size_t vlen);

typedef enum {
    RC_REC_OK = 0,  /* a whole, valid record */
    RC_REC_TORN = 1, /* fewer bytes than the record needs: a torn tail */
    RC_REC_BAD = 2   /* bad magic, impossible length or CRC mismatch */
} rc_rec_status;

/* Record lengths read from a record header: rc_spool_rec_lengths() needs
 * RC_SPOOL_REC_HDR_LEN bytes (else RC_REC_TORN) and checks magic and bounds. */
rc_rec_status rc_spool_rec_lengths(const unsigned char *buf, size_t len, uint32_t *klen,
                                   uint32_t *vlen);

/* Decodes the record at buf (len bytes available). On RC_REC_OK, *key and
 * *value point into buf and *total is the record's length in bytes. */
rc_rec_status rc_spool_rec_decode(const unsigned char *buf, size_t len, const unsigned char **key,
                                  uint32_t *klen, const unsigned char **value, uint32_t *vlen,
                                  size_t *total);

#endif
