/*
 * client/spool.h: the client's local spool, where a task goes when Kafka
 * does not take it (delivery failed, or the producer refused it), so that a
 * broker outage loses nothing. One append-only file per client, format in
 * spool_record.h, every record fsync'd before the failure counts as handled.
 *
 * Flow: exhausted call -> ship.c -> rc_produce (client.c) -> Kafka; on a
 * delivery failure client.c's delivery report hands the message here
 * (rc_spool_keep); rc_spool_replay() re-produces the records later (at
 * retry_client_new, on each ship and each retry_client_flush), and their
 * delivery reports come back through rc_spool_report(). When every record
 * has been acknowledged the file is compacted to its header.
 *
 * Replays are produced with msg_opaque = the record's id (>= 1); messages
 * produced by rc_produce carry a NULL msg_opaque. That is how the delivery
 * report callback tells them apart.
 *
 * Thread safety: every function may be called from any thread (the
 * application's, or whichever thread serves librdkafka's delivery reports);
 * one mutex guards the file and the record table.
 */
#ifndef RC_SPOOL_H
#define RC_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "retry/retry.h"

typedef struct rc_spool rc_spool;

#define RC_SPOOL_MIN_BYTES 4096u

/* Opens (creating it if needed) and locks the spool file at path, reads
 * the records it already holds (a torn or corrupt tail is logged, ignored
 * and cut off; a corrupt record followed by valid ones is skipped and
 * counted, the records after it kept), and returns it in *out. c must have a producer (c->rk).
 * Returns RETRY_OK, RETRY_ERR_INVALID_ARG (cannot open or lock the file,
 * not a spool file) or RETRY_ERR_NOMEM, with a sentence in err. */
retry_err rc_spool_open(retry_client *c, const char *path, uint64_t max_bytes, rc_spool **out,
                        char *err, size_t errsz);

/* Compacts away acknowledged records, unlocks and closes the file, frees s.
 * NULL does nothing. Records in flight stay in the file. */
void rc_spool_close(rc_spool *s);

/* Appends one task (key/value as produced to Kafka) and fsyncs it. why says
 * what happened to it, for the log ("failed delivery to topic ...").
 * Returns RETRY_OK once it is on disk; RETRY_ERR_KAFKA when it could not be
 * kept (spool full, or an I/O error), which is logged at RETRY_LOG_ERR as
 * "spool full (N bytes): task K NOT kept", counted in spool_dropped, and
 * described in err. */
retry_err rc_spool_keep(rc_spool *s, const char *key, size_t klen, const void *value,
                        size_t vlen, const char *why, char *err, size_t errsz);

/* Produces every record that is neither in flight nor acknowledged. Returns
 * how many were handed to the producer. Cheap when there is nothing to do.
 * A record the producer refuses for good (rc_kafka_err_permanent) is moved
 * to "<path>.rejected" and counted in spool_rejected. */
size_t rc_spool_replay(rc_spool *s);

/* Delivery report of a replayed record (m->_private != NULL): acknowledged
 * records are marked for compaction, failed ones become pending again, or
 * go to "<path>.rejected" when the error is permanent. */
void rc_spool_report(rc_spool *s, const rd_kafka_message_t *m);

/* Rewrites the file without its acknowledged records, if it has any. */
void rc_spool_compact(rc_spool *s);

/* Records not yet acknowledged and the file's size in bytes. */
size_t rc_spool_left(rc_spool *s, uint64_t *bytes);

/* Fills the spool counters of *out (spooled, spool_replayed, ...). */
void rc_spool_stats(rc_spool *s, retry_stats *out);

#endif
