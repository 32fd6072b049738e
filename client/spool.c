/*
 * client/spool.c: the file-backed spool (contract in spool.h, format in
 * spool_record.h). Sits between the producer (client.c) and the disk: a task
 * Kafka did not take is appended and fsync'd here, and re-produced later.
 *
 * The file is append-only between compactions. A compaction writes the
 * records still needed to "<path>.tmp", fsyncs it, renames it over the spool
 * and fsyncs the directory, so a crash at any point leaves either the old or
 * the new file, both whole. An exclusive flock() keeps a second client (in
 * this or another process) off the same file.
 *
 * A task Kafka refuses for good on replay (rc_kafka_err_permanent, e.g.
 * larger than message.max.bytes) is moved to "<path>.rejected", a file in
 * the same format (header, then records; appended and fsync'd), so that it
 * neither blocks the spool forever nor disappears.
 *
 * Delivery is at-least-once: a crash after Kafka acknowledged a replay but
 * before the compaction re-sends that record on the next start; retryd's
 * idempotency-key dedupe makes the duplicate harmless.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "spool.h"
#include "spool_record.h"

enum { SP_PENDING = 0, SP_INFLIGHT = 1, SP_ACKED = 2 };

typedef struct sp_entry {
    uint64_t id;  /* msg_opaque of its replays; ids grow with the file order */
    uint64_t off; /* offset of the record in the file */
    uint32_t len; /* whole record, header included */
    int state;
} sp_entry;

struct rc_spool {
    retry_client *c;
    char *path;
    char *tmp_path;
    char *rejected_path;
    int fd;
    uint64_t max_bytes;
    pthread_mutex_t mu; /* guards everything below but the atomics */
    sp_entry *ent;
    size_t n, cap;
    size_t npending, ninflight, nacked;
    uint64_t next_id;
    uint64_t size; /* bytes in the file, header included */
    unsigned char *buf;
    size_t bufcap;
    /* Mirrors for lock-free reads (stats, the ship path's "anything to do?"). */
    atomic_uint_fast64_t pending_hint, bytes, records;
    atomic_uint_fast64_t spooled, replayed, dropped, rejected, skipped_bytes;
};

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* the file is shorter than it should be */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off)
{
    const unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* fsync of the spool's directory, so that a created or renamed file
 * survives a crash. */
static int fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd, rc;

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int grow_buf(rc_spool *s, size_t n)
{
    unsigned char *p;

    if (n <= s->bufcap)
        return 0;
    p = realloc(s->buf, n);
    if (p == NULL)
        return -1;
    s->buf = p;
    s->bufcap = n;
    return 0;
}

static int push_entry(rc_spool *s, uint64_t off, uint32_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 64;
        sp_entry *p = realloc(s->ent, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->ent = p;
        s->cap = cap;
    }
    s->ent[s->n].id = s->next_id++;
    s->ent[s->n].off = off;
    s->ent[s->n].len = len;
    s->ent[s->n].state = SP_PENDING;
    s->n++;
    s->npending++;
    return 0;
}

/* Refreshes the lock-free mirrors; called with mu held after every change. */
static void publish(rc_spool *s)
{
    atomic_store(&s->pending_hint, (uint_fast64_t)s->npending);
    atomic_store(&s->bytes, (uint_fast64_t)s->size);
    atomic_store(&s->records, (uint_fast64_t)(s->n - s->nacked));
}

/* Opens path and takes its lock. A compaction in another client renames a
 * new file over the path, so the lock taken may belong to a file that is no
 * longer linked there: check, and open again. */
static int open_locked(const char *path, char *err, size_t errsz)
{
    int tries;

    for (tries = 0; tries < 5; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        if (fd < 0) {
            snprintf(err, errsz, "cannot open spool_path %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errsz, "cannot lock spool_path %s: %s", path,
                     errno == EWOULDBLOCK ? "it is in use by another client" : strerror(errno));
            close(fd);
            return -1;
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            return fd;
        close(fd);
    }
    snprintf(err, errsz, "cannot lock spool_path %s: it keeps being replaced", path);
    return -1;
}

/* Reads and checks the record at off (fsize bytes in the file) into
 * s->buf. Returns RC_REC_OK with its length in *total, RC_REC_TORN or
 * RC_REC_BAD; -1 on a read error (errno set), -2 when out of memory. */
static int read_record(rc_spool *s, uint64_t off, uint64_t fsize, size_t *total)
{
    unsigned char hdr[RC_SPOOL_REC_HDR_LEN];
    uint64_t avail = fsize - off;
    size_t n = avail < sizeof hdr ? (size_t)avail : sizeof hdr;
    const unsigned char *key, *value;
    uint32_t klen, vlen;
    rc_rec_status st;

    if (read_full(s->fd, hdr, n, off) != 0)
        return -1;
    st = rc_spool_rec_lengths(hdr, n, &klen, &vlen);
    if (st != RC_REC_OK)
        return (int)st;
    *total = RC_SPOOL_REC_HDR_LEN + (size_t)klen + (size_t)vlen;
    if (*total > avail)
        return RC_REC_TORN;
    if (grow_buf(s, *total) != 0)
        return -2;
    if (read_full(s->fd, s->buf, *total, off) != 0)
        return -1;
    return (int)rc_spool_rec_decode(s->buf, *total, &key, &klen, &value, &vlen, total);
}

/* After a bad record at from - 1: the offset of the next whole, valid
 * record (a "RREC" whose record decodes, CRC included) in *next, or fsize
 * when none follows. Returns 0, or read_record()'s -1 / -2. */
static int find_next_record(rc_spool *s, uint64_t from, uint64_t fsize, uint64_t *next)
{
    enum { CHUNK = 64 * 1024 };
    unsigned char *chunk = malloc(CHUNK);
    uint64_t pos = from;
    int r = 0;

    if (chunk == NULL)
        return -2;
    *next = fsize;
    while (pos + RC_SPOOL_REC_HDR_LEN <= fsize) {
        size_t n = fsize - pos < CHUNK ? (size_t)(fsize - pos) : CHUNK;
        size_t i, total;

        if (read_full(s->fd, chunk, n, pos) != 0) {
            r = -1;
            goto out;
        }
        for (i = 0; i + 4 <= n; i++) {
            if (memcmp(chunk + i, "RREC", 4) != 0)
                continue;
            r = read_record(s, pos + i, fsize, &total);
            if (r < 0)
                goto out;
            if (r == RC_REC_OK) {
                *next = pos + i;
                r = 0;
                goto out;
            }
        }
        if (n < CHUNK)
            break;
        pos += n - 3; /* a magic split across two chunks is seen in the next */
    }
    r = 0;
out:
    free(chunk);
    return r;
}

/* Reads every whole, valid record after the header. A bad record (torn,
 * bad magic, impossible length or CRC mismatch) followed by a valid one is
 * skipped, loudly: its bytes are left in the file (the next compaction
 * drops them) and every record after it is kept. A bad record with nothing
 * valid after it is a torn or corrupt tail (an append cut short by a
 * crash): logged and cut off, so that the next append lands on a record
 * boundary. Valid records are never cut. */
static retry_err load(rc_spool *s, uint64_t fsize, char *err, size_t errsz)
{
    uint64_t off = RC_SPOOL_HEADER_LEN, end = fsize, skipped = 0;
    const char *what = NULL;

    while (off < fsize) {
        size_t total;
        uint64_t next;
        int bad, r = read_record(s, off, fsize, &total);

        if (r == -1)
            goto io;
        if (r == -2)
            goto nomem;
        if (r == RC_REC_OK) {
            if (push_entry(s, off, (uint32_t)total) != 0)
                goto nomem;
            off += total;
            continue;
        }
        bad = r;
        r = find_next_record(s, off + 1, fsize, &next);
        if (r == -1)
            goto io;
        if (r == -2)
            goto nomem;
        if (next >= fsize) {
            what = bad == RC_REC_TORN ? "torn" : "corrupt";
            end = off;
            break;
        }
        rc_log(s->c, RETRY_LOG_ERR,
               "spool %s: corrupt record at offset %" PRIu64 ": skipped %" PRIu64
               " byte(s) up to the next valid record at offset %" PRIu64
               " (the task(s) in them are lost); the records after it are kept",
               s->path, off, next - off, next);
        skipped += next - off;
        off = next;
    }
    atomic_store(&s->skipped_bytes, (uint_fast64_t)skipped);
    if (what != NULL) {
        rc_log(s->c, RETRY_LOG_WARNING,
               "spool %s: %s record at offset %" PRIu64 ": ignoring its last %" PRIu64
               " byte(s) (an append cut short by a crash?); %zu record(s) kept",
               s->path, what, end, fsize - end, s->n);
        if (ftruncate(s->fd, (off_t)end) != 0 || fdatasync(s->fd) != 0) {
            snprintf(err, errsz, "cannot cut the %s tail off spool %s: %s", what, s->path,
                     strerror(errno));
            return RETRY_ERR_INVALID_ARG;
        }
    }
    s->size = end;
    return RETRY_OK;
io:
    snprintf(err, errsz, "cannot read spool %s: %s", s->path, strerror(errno));
    return RETRY_ERR_INVALID_ARG;
nomem:
    snprintf(err, errsz, "out of memory reading spool %s", s->path);
    return RETRY_ERR_NOMEM;
}

/* Gives a new or empty file its header; a file shorter than a header is
 * only rewritten when its bytes are a prefix of one (a creation cut short),
 * never when it is something else. */
static retry_err init_header(rc_spool *s, uint64_t fsize, char *err, size_t errsz)
{
    unsigned char want[RC_SPOOL_HEADER_LEN], have[RC_SPOOL_HEADER_LEN];

    rc_spool_header_encode(want);
    if (fsize > 0 && read_full(s->fd, have, fsize < sizeof have ? (size_t)fsize : sizeof have,
                               0) != 0) {
        snprintf(err, errsz, "cannot read spool %s: %s", s->path, strerror(errno));
        return RETRY_ERR_INVALID_ARG;
    }
    if (fsize >= RC_SPOOL_HEADER_LEN) {
        if (rc_spool_header_ok(have, sizeof have))
            return RETRY_OK;
    } else if (memcmp(have, want, (size_t)fsize) == 0) {
        if (write_full(s->fd, want, sizeof want, 0) == 0 && fdatasync(s->fd) == 0 &&
            fsync_dir(s->path) == 0)
            return RETRY_OK;
        snprintf(err, errsz, "cannot write spool %s: %s", s->path, strerror(errno));
        return RETRY_ERR_INVALID_ARG;
    }
    snprintf(err, errsz, "spool_path %s is not a retry spool (bad header): refusing to touch it",
             s->path);
    return RETRY_ERR_INVALID_ARG;
}

static void spool_free(rc_spool *s)
{
    if (s->fd >= 0)
        close(s->fd); /* also drops the flock */
    pthread_mutex_destroy(&s->mu);
    free(s->ent);
    free(s->buf);
    free(s->path);
    free(s->tmp_path);
    free(s->rejected_path);
    free(s);
}

retry_err rc_spool_open(retry_client *c, const char *path, uint64_t max_bytes, rc_spool **out,
                        char *err, size_t errsz)
{
    rc_spool *s;
    struct stat st;
    retry_err e;
    size_t plen = strlen(path);

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errsz, "out of memory allocating the spool");
        return RETRY_ERR_NOMEM;
    }
    s->fd = -1;
    s->c = c;
    s->max_bytes = max_bytes;
    s->next_id = 1;
    s->path = strdup(path);
    s->tmp_path = malloc(plen + 5);
    s->rejected_path = malloc(plen + 10);
    if (pthread_mutex_init(&s->mu, NULL) != 0 || s->path == NULL || s->tmp_path == NULL ||
        s->rejected_path == NULL) {
        spool_free(s);
        snprintf(err, errsz, "out of memory allocating the spool");
        return RETRY_ERR_NOMEM;
    }
    memcpy(s->tmp_path, path, plen);
    memcpy(s->tmp_path + plen, ".tmp", 5);
    memcpy(s->rejected_path, path, plen);
    memcpy(s->rejected_path + plen, ".rejected", 10);
    s->fd = open_locked(path, err, errsz);
    if (s->fd < 0) {
        spool_free(s);
        return RETRY_ERR_INVALID_ARG;
    }
    if (fstat(s->fd, &st) != 0) {
        snprintf(err, errsz, "cannot stat spool %s: %s", path, strerror(errno));
        spool_free(s);
        return RETRY_ERR_INVALID_ARG;
    }
    e = init_header(s, (uint64_t)st.st_size, err, errsz);
    if (e == RETRY_OK)
        e = load(s, st.st_size > (off_t)RC_SPOOL_HEADER_LEN ? (uint64_t)st.st_size
                                                            : RC_SPOOL_HEADER_LEN,
                 err, errsz);
    if (e != RETRY_OK) {
        spool_free(s);
        return e;
    }
    publish(s);
    if (s->n > 0)
        rc_log(c, RETRY_LOG_NOTICE, "spool %s holds %zu task(s) (%" PRIu64 " bytes) to re-produce",
               path, s->n, s->size);
    *out = s;
    return RETRY_OK;
}

/* Writes the records still needed (pending or in flight) to tmp_path and
 * renames it over the spool. Called with mu held. On failure the old file
 * stays as it is: acknowledged records in it may be sent again later. */
static void compact_locked(rc_spool *s)
{
    unsigned char hdr[RC_SPOOL_HEADER_LEN];
    uint64_t off = RC_SPOOL_HEADER_LEN;
    const char *step = "open";
    size_t i, j;
    int fd;

    if (s->nacked == 0)
        return;
    fd = open(s->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    /* Locked before it becomes the spool, so it is never seen unlocked. */
    step = "lock";
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        goto fail;
    step = "write";
    rc_spool_header_encode(hdr);
    if (write_full(fd, hdr, sizeof hdr, 0) != 0)
        goto fail;
    for (i = 0; i < s->n; i++) {
        sp_entry *e = &s->ent[i];
        if (e->state == SP_ACKED)
            continue;
        if (grow_buf(s, e->len) != 0) {
            errno = ENOMEM;
            goto fail;
        }
        if (read_full(s->fd, s->buf, e->len, e->off) != 0 ||
            write_full(fd, s->buf, e->len, off) != 0)
            goto fail;
        off += e->len;
    }
    step = "fsync";
    if (fdatasync(fd) != 0)
        goto fail;
    step = "rename";
    if (rename(s->tmp_path, s->path) != 0)
        goto fail;
    /* From here the new file is the spool; a failed directory fsync only
     * means a crash could bring the old one back (re-sends, no loss). */
    if (fsync_dir(s->path) != 0)
        rc_log(s->c, RETRY_LOG_WARNING, "spool %s: fsync of its directory failed: %s", s->path,
               strerror(errno));
    close(s->fd);
    s->fd = fd;
    off = RC_SPOOL_HEADER_LEN;
    for (i = 0, j = 0; i < s->n; i++) {
        if (s->ent[i].state == SP_ACKED)
            continue;
        s->ent[j] = s->ent[i];
        s->ent[j].off = off;
        off += s->ent[j].len;
        j++;
    }
    rc_log(s->c, RETRY_LOG_DEBUG, "spool %s compacted: %zu acknowledged record(s) removed, %zu left",
           s->path, s->nacked, j);
    s->n = j;
    s->nacked = 0;
    s->size = off;
    publish(s);
    return;
fail:
    rc_log(s->c, RETRY_LOG_ERR,
           "spool %s: compaction failed (%s %s: %s); acknowledged records stay in it and may be "
           "sent again",
           s->path, step, s->tmp_path, strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(s->tmp_path);
    }
}

void rc_spool_compact(rc_spool *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    compact_locked(s);
    pthread_mutex_unlock(&s->mu);
}

void rc_spool_close(rc_spool *s)
{
    if (s == NULL)
        return;
    rc_spool_compact(s);
    spool_free(s);
}

retry_err rc_spool_keep(rc_spool *s, const char *key, size_t klen, const void *value,
                        size_t vlen, const char *why, char *err, size_t errsz)
{
    unsigned char hdr[RC_SPOOL_REC_HDR_LEN];
    uint64_t total = RC_SPOOL_REC_HDR_LEN + (uint64_t)klen + (uint64_t)vlen;
    int ok = 0;

    if (klen == 0 || klen > RC_SPOOL_KEY_MAX || vlen > RC_SPOOL_VALUE_MAX) {
        atomic_fetch_add(&s->dropped, 1);
        snprintf(err, errsz, "task %.*s cannot be spooled: key or value too long: task NOT kept",
                 (int)(klen < 300 ? klen : 300), key);
        rc_log(s->c, RETRY_LOG_ERR, "%s", err);
        return RETRY_ERR_KAFKA;
    }
    pthread_mutex_lock(&s->mu);
    if (s->size + total > s->max_bytes)
        compact_locked(s); /* acknowledged records may make room */
    if (s->size + total > s->max_bytes) {
        snprintf(err, errsz,
                 "spool full (%" PRIu64 " bytes): task %.*s NOT kept (spool %s, spool_max_bytes "
                 "%" PRIu64 ", the task needs %" PRIu64 " bytes; it %s)",
                 s->size, (int)klen, key, s->path, s->max_bytes, total, why);
    } else {
        rc_spool_rec_header(hdr, key, klen, value, vlen);
        if (grow_buf(s, (size_t)total) != 0) {
            snprintf(err, errsz, "out of memory spooling task %.*s: task NOT kept (it %s)",
                     (int)klen, key, why);
        } else {
            memcpy(s->buf, hdr, sizeof hdr);
            memcpy(s->buf + sizeof hdr, key, klen);
            memcpy(s->buf + sizeof hdr + klen, value, vlen);
            /* One write, then fdatasync (which also makes the new file size
             * durable): only after that is the failure handled. */
            if (write_full(s->fd, s->buf, (size_t)total, s->size) != 0 || fdatasync(s->fd) != 0) {
                snprintf(err, errsz, "cannot write spool %s: %s: task %.*s NOT kept (it %s)",
                         s->path, strerror(errno), (int)klen, key, why);
                /* Cut off a partial record so the next append is readable. */
                if (ftruncate(s->fd, (off_t)s->size) != 0)
                    rc_log(s->c, RETRY_LOG_ERR, "spool %s: cannot cut a failed append: %s",
                           s->path, strerror(errno));
            } else if (push_entry(s, s->size, (uint32_t)total) != 0) {
                /* On disk, so the next start re-produces it; this run
                 * cannot track it. */
                snprintf(err, errsz, "out of memory tracking spooled task %.*s", (int)klen, key);
                s->size += total;
                ok = 1;
            } else {
                s->size += total;
                ok = 1;
                err[0] = '\0';
            }
        }
    }
    publish(s);
    if (ok) {
        atomic_fetch_add(&s->spooled, 1);
        rc_log(s->c, RETRY_LOG_WARNING,
               "task %.*s %s: kept in spool %s (%" PRIu64 " bytes, %zu task(s))", (int)klen, key,
               why, s->path, s->size, s->n - s->nacked);
    } else {
        atomic_fetch_add(&s->dropped, 1);
        rc_log(s->c, RETRY_LOG_ERR, "%s", err);
    }
    pthread_mutex_unlock(&s->mu);
    return ok ? RETRY_OK : RETRY_ERR_KAFKA;
}

/* Moves the record of e, whose bytes are in s->buf, to rejected_path
 * (created with a spool header when new; appended and fsync'd) and marks it
 * for compaction. Called with mu held after Kafka refused the record for
 * good (kerr). On an I/O error the record stays pending: it is never
 * dropped. Returns 1 when moved. */
static int reject_locked(rc_spool *s, sp_entry *e, rd_kafka_resp_err_t kerr)
{
    const unsigned char *key = s->buf + RC_SPOOL_REC_HDR_LEN;
    uint32_t klen = (uint32_t)s->buf[4] | (uint32_t)s->buf[5] << 8 |
                    (uint32_t)s->buf[6] << 16 | (uint32_t)s->buf[7] << 24;
    struct stat st;
    int fd, created = 0, ok = 0;

    fd = open(s->rejected_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0 && fstat(fd, &st) == 0) {
        ok = 1;
        if (st.st_size == 0) {
            unsigned char hdr[RC_SPOOL_HEADER_LEN];

            rc_spool_header_encode(hdr);
            created = 1;
            ok = write(fd, hdr, sizeof hdr) == (ssize_t)sizeof hdr;
        }
        /* O_APPEND: the record lands at the end whatever pwrite's offset. */
        ok = ok && write_full(fd, s->buf, e->len, 0) == 0 && fdatasync(fd) == 0 &&
             (!created || fsync_dir(s->rejected_path) == 0);
    }
    if (!ok) {
        rc_log(s->c, RETRY_LOG_ERR,
               "spool %s: task %.*s refused by Kafka for good (%s), and it cannot be moved to "
               "%s: %s; it stays spooled",
               s->path, (int)klen, (const char *)key, rd_kafka_err2str(kerr), s->rejected_path,
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    e->state = SP_ACKED; /* dropped by the next compaction */
    s->nacked++;
    atomic_fetch_add(&s->rejected, 1);
    rc_log(s->c, RETRY_LOG_ERR,
           "spool %s: task %.*s refused by Kafka for good (%s): moved to %s (spool_rejected)",
           s->path, (int)klen, (const char *)key, rd_kafka_err2str(kerr), s->rejected_path);
    return 1;
}

size_t rc_spool_replay(rc_spool *s)
{
    retry_client *c;
    size_t i, sent = 0;

    if (s == NULL || atomic_load(&s->pending_hint) == 0)
        return 0;
    c = s->c;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->n; i++) {
        sp_entry *e = &s->ent[i];
        const unsigned char *key, *value;
        uint32_t klen, vlen;
        size_t total;
        rd_kafka_resp_err_t kerr;

        if (e->state != SP_PENDING)
            continue;
        if (grow_buf(s, e->len) != 0)
            break;
        if (read_full(s->fd, s->buf, e->len, e->off) != 0 ||
            rc_spool_rec_decode(s->buf, e->len, &key, &klen, &value, &vlen, &total) != RC_REC_OK) {
            rc_log(c, RETRY_LOG_ERR,
                   "spool %s: the record at offset %" PRIu64 " no longer reads back; left in place",
                   s->path, e->off);
            continue;
        }
        kerr = rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC(c->topic),
                                 RD_KAFKA_V_KEY((void *)key, klen),
                                 RD_KAFKA_V_VALUE((void *)value, vlen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_OPAQUE((void *)(uintptr_t)e->id), RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            e->state = SP_INFLIGHT;
            s->npending--;
            s->ninflight++;
            sent++;
        } else if (rc_kafka_err_permanent(kerr)) {
            if (reject_locked(s, e, kerr))
                s->npending--;
        } else {
            rc_log(c, RETRY_LOG_WARNING, "spool %s: cannot re-produce task %.*s: %s; it stays spooled",
                   s->path, (int)klen, (const char *)key, rd_kafka_err2str(kerr));
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break; /* the rest waits for the next replay */
        }
    }
    publish(s);
    pthread_mutex_unlock(&s->mu);
    if (sent > 0)
        rc_log(c, RETRY_LOG_INFO, "spool %s: re-producing %zu task(s)", s->path, sent);
    return sent;
}

static sp_entry *find(rc_spool *s, uint64_t id)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ent[mid].id == id)
            return &s->ent[mid];
        if (s->ent[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void rc_spool_report(rc_spool *s, const rd_kafka_message_t *m)
{
    uint64_t id = (uint64_t)(uintptr_t)m->_private;
    sp_entry *e;

    pthread_mutex_lock(&s->mu);
    e = find(s, id);
    if (e != NULL && e->state == SP_INFLIGHT) {
        s->ninflight--;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            e->state = SP_ACKED;
            s->nacked++;
            atomic_fetch_add(&s->replayed, 1);
            rc_log(s->c, RETRY_LOG_DEBUG,
                   "spooled task %.*s delivered to %s [%d] at offset %lld", (int)m->key_len,
                   (const char *)m->key, s->c->topic, (int)m->partition, (long long)m->offset);
        } else if (rc_kafka_err_permanent(m->err) && grow_buf(s, e->len) == 0 &&
                   read_full(s->fd, s->buf, e->len, e->off) == 0 &&
                   reject_locked(s, e, m->err)) {
            /* moved to rejected_path */
        } else {
            e->state = SP_PENDING;
            s->npending++;
            rc_log(s->c, RETRY_LOG_WARNING,
                   "spooled task %.*s failed delivery again: %s; it stays spooled",
                   (int)m->key_len, (const char *)m->key, rd_kafka_err2str(m->err));
        }
        /* Everything acknowledged: the file goes back to its header. */
        if (s->npending == 0 && s->ninflight == 0)
            compact_locked(s);
    }
    publish(s);
    pthread_mutex_unlock(&s->mu);
}

size_t rc_spool_left(rc_spool *s, uint64_t *bytes)
{
    if (bytes != NULL)
        *bytes = s != NULL ? (uint64_t)atomic_load(&s->bytes) : 0;
    return s != NULL ? (size_t)atomic_load(&s->records) : 0;
}

void rc_spool_stats(rc_spool *s, retry_stats *out)
{
    if (s == NULL)
        return;
    out->spooled = atomic_load(&s->spooled);
    out->spool_replayed = atomic_load(&s->replayed);
    out->spool_dropped = atomic_load(&s->dropped);
    out->spool_bytes = atomic_load(&s->bytes);
    out->spool_records = atomic_load(&s->records);
    out->spool_rejected = atomic_load(&s->rejected);
    out->spool_skipped_bytes = atomic_load(&s->skipped_bytes);
}
