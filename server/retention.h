/*
 * retention.h: the "remove history" job. Every [retention] interval_ms a
 * store job deletes one small batch of old history (store.h rd_store_purge:
 * succeeded tasks older than succeeded_max_age_ms with their attempts, and
 * attempt rows older than attempt_max_age_ms); while batches come back full
 * it runs again at once, so a backlog is worked off in many short
 * transactions instead of one long one. Off the hot path: it shares the store
 * workers but never holds more than one job. Loop thread only.
 */
#ifndef RD_RETENTION_H
#define RD_RETENTION_H

#include "daemon.h"

typedef struct rd_retention rd_retention;

/* NULL when both ages are 0 (nothing to purge) or out of memory. */
rd_retention *rd_retention_new(rd_daemon *d);
void rd_retention_stop(rd_retention *r);
void rd_retention_free(rd_retention *r);

#endif
