/*
 * node.h: the node registry. Each retryd process keeps one row in the
 * retry_node table (sql/schema.sql): its [node] id, when it started, its
 * version, its [http] listen address and host, and a heartbeat written every
 * RD_NODE_HEARTBEAT_MS through a store job (workq.h), so the loop thread never
 * waits on MySQL. A graceful exit marks the row 'stopped'; a node that dies
 * (kill -9, crash, lost host) stays 'up' and its heartbeat goes stale.
 * GET /api/v1/nodes (api.c) reads the table through rd_store_nodes_json.
 *
 * Flow position: beside the task flow; it only tells operators which nodes
 * exist, which are alive and how many leases each holds. Leases themselves
 * (retry_task.owner_node, lease_until, fence) do not depend on it.
 * Loop thread only.
 */
#ifndef RD_NODE_H
#define RD_NODE_H

#include <stddef.h>

#include "daemon.h"

/* How often a node writes its heartbeat (ms). */
#define RD_NODE_HEARTBEAT_MS 2000
/* A heartbeat older than this is stale: the node is dead or cut off from
 * MySQL (three missed heartbeats). */
#define RD_NODE_STALE_MS (3 * RD_NODE_HEARTBEAT_MS)

typedef struct rd_node rd_node;

/* Registers this node (the first heartbeat is queued at once) and starts the
 * heartbeat timer. Returns 0, or -1 with a sentence in err. A failing
 * heartbeat is logged and does not stop retryd. */
int rd_node_start(rd_daemon *d, rd_node **out, char *err, size_t errsz);
/* Graceful exit, after the loop has stopped and before rd_workq_free: stops
 * the heartbeats and queues the store job that marks the row 'stopped'
 * (rd_workq_free runs every queued job before it returns). NULL: nothing. */
void rd_node_stop(rd_node *n);
/* Frees the registry; call after rd_workq_free. NULL: nothing. */
void rd_node_free(rd_node *n);

#endif
