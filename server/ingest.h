/*
 * ingest.h: the Kafka consumer. Flow position: Kafka -> INGEST -> store.
 * Runs on its own thread with its own MySQL connection. Messages are taken in
 * small batches; each batch's tasks and poison rows are written in one MySQL
 * transaction, and only after COMMIT are the messages' offsets stored for
 * librdkafka's auto-commit (enable.auto.offset.store=false, librdkafka
 * INTRODUCTION.md "At-least-once"). While MySQL is unreachable the batch is
 * kept, the assigned partitions are paused (the consumer keeps polling so it
 * stays in its group), and the write is retried with backoff.
 */
#ifndef RD_INGEST_H
#define RD_INGEST_H

#include "daemon.h"
#include "store.h"

#define RD_INGEST_BATCH 500       /* messages per transaction, at most */
#define RD_INGEST_LINGER_MS 20    /* wait this long to fill a batch */

/* Starts the consumer thread. Returns 0, or -1 with a sentence in err. */
int rd_ingest_start(rd_daemon *d, rd_ingest **out, char *err, size_t errsz);
/* Asks the thread to stop after its current batch; returns at once. */
void rd_ingest_request_stop(rd_ingest *ing);
/* Stops consuming: the current batch is finished (written, or left
 * uncommitted if MySQL is down), stored offsets are committed, the consumer
 * leaves its group. Blocks until the thread has exited. */
void rd_ingest_stop(rd_ingest *ing);

/* Shared by Kafka ingest and POST /api/v1/tasks: decodes one message and
 * resolves what the store needs. Returns 0 (task filled, caller frees with
 * rt_task_free and free(*payload)), or -1 with the reason in err. */
int rd_ingest_prepare(const rd_config *cfg, const char *buf, size_t len, int64_t now_ms,
                      rt_task *task, char **payload, rd_ingest_row *row, char *err,
                      size_t errsz);

#endif
