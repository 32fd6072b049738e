/*
 * client/spool_record.c: CRC32C and the spool's record codec (format in
 * spool_record.h). Pure functions: no I/O, no allocation, no globals.
 */
#include <string.h>

#include "spool_record.h"

static const unsigned char file_magic[8] = {'R', 'E', 'T', 'R', 'Y', 'S', 'P', 'L'};
static const unsigned char rec_magic[4] = {'R', 'R', 'E', 'C'};

/* CRC-32C, four bits at a time: a 16-entry table of the reflected
 * polynomial 0x82f63b78 is small enough to be a constant. The spool's
 * records are a few kilobytes, so this is not on any hot path. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u, 0x417b1dbcu, 0x5125dad3u,
    0x61c69362u, 0x7198540du, 0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

uint32_t rc_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    crc = ~crc;
    while (len-- > 0) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 0xfu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xfu];
    }
    return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xffu);
    p[1] = (unsigned char)((v >> 8) & 0xffu);
    p[2] = (unsigned char)((v >> 16) & 0xffu);
    p[3] = (unsigned char)((v >> 24) & 0xffu);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rc_spool_header_encode(unsigned char out[RC_SPOOL_HEADER_LEN])
{
    memcpy(out, file_magic, sizeof file_magic);
    put_u32(out + 8, 1);
    put_u32(out + 12, rc_crc32c(0, out, 12));
}

int rc_spool_header_ok(const unsigned char *buf, size_t len)
{
    return len >= RC_SPOOL_HEADER_LEN && memcmp(buf, file_magic, sizeof file_magic) == 0 &&
           get_u32(buf + 8) == 1 && get_u32(buf + 12) == rc_crc32c(0, buf, 12);
}

/* The CRC covers both lengths, so a flipped length bit cannot pass. */
static uint32_t rec_crc(const unsigned char lens[8], const void *key, size_t klen,
                        const void *value, size_t vlen)
{
    uint32_t crc = rc_crc32c(0, lens, 8);

    crc = rc_crc32c(crc, key, klen);
    return rc_crc32c(crc, value, vlen);
}

void rc_spool_rec_header(unsigned char out[RC_SPOOL_REC_HDR_LEN], const void *key, size_t klen,
                         const void *value, size_t vlen)
{
    memcpy(out, rec_magic, sizeof rec_magic);
    put_u32(out + 4, (uint32_t)klen);
    put_u32(out + 8, (uint32_t)vlen);
    put_u32(out + 12, rec_crc(out + 4, key, klen, value, vlen));
}

rc_rec_status rc_spool_rec_lengths(const unsigned char *buf, size_t len, uint32_t *klen,
                                   uint32_t *vlen)
{
    size_t have = len < sizeof rec_magic ? len : sizeof rec_magic;

    /* A short tail that is not even a prefix of the magic is garbage. */
    if (memcmp(buf, rec_magic, have) != 0)
        return RC_REC_BAD;
    if (len < RC_SPOOL_REC_HDR_LEN)
        return RC_REC_TORN;
    *klen = get_u32(buf + 4);
    *vlen = get_u32(buf + 8);
    if (*klen == 0 || *klen > RC_SPOOL_KEY_MAX || *vlen > RC_SPOOL_VALUE_MAX)
        return RC_REC_BAD;
    return RC_REC_OK;
}

rc_rec_status rc_spool_rec_decode(const unsigned char *buf, size_t len, const unsigned char **key,
                                  uint32_t *klen, const unsigned char **value, uint32_t *vlen,
                                  size_t *total)
{
    rc_rec_status st = rc_spool_rec_lengths(buf, len, klen, vlen);
    size_t need;

    if (st != RC_REC_OK)
        return st;
    need = RC_SPOOL_REC_HDR_LEN + (size_t)*klen + (size_t)*vlen;
    if (len < need)
        return RC_REC_TORN;
    *key = buf + RC_SPOOL_REC_HDR_LEN;
    *value = *key + *klen;
    if (get_u32(buf + 12) != rec_crc(buf + 4, *key, *klen, *value, *vlen))
        return RC_REC_BAD;
    *total = need;
    return RC_REC_OK;
}
