-- retryd schema, wire format v1. Applied by `retryd --migrate` (idempotent:
-- every statement is CREATE ... IF NOT EXISTS). Times are BIGINT milliseconds
-- since the Unix epoch, as in the wire format. Names of tables, columns and
-- status values are contracts (DESIGN.md): operators' SQL and reports use them.

CREATE TABLE IF NOT EXISTS retry_task (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  group_name      VARCHAR(64)  NOT NULL,
  scene           VARCHAR(128) NOT NULL,
  idempotency_key VARCHAR(191) NOT NULL,
  -- pending | running | succeeded | exhausted | stopped | paused | cancelled
  status          VARCHAR(16)  NOT NULL DEFAULT 'pending',
  attempts        INT          NOT NULL DEFAULT 0,   -- server attempts made (since the last replay)
  attempt_seq     INT          NOT NULL DEFAULT 0,   -- server attempts ever made; never reset, so
                                                    -- retry_attempt.attempt stays unique across replays
  max_attempts    INT          NOT NULL,
  priority        INT          NOT NULL DEFAULT 0,   -- higher runs first
  next_fire_at    BIGINT       NOT NULL,            -- due time, ms
  deadline        BIGINT       NULL,                -- ms; past it: exhausted
  last_delay_ms   BIGINT       NOT NULL DEFAULT 0,  -- for decorrelated jitter
  last_status     INT          NULL,                -- HTTP status of the last attempt
  last_error      VARCHAR(1024) NULL,
  trace_id        VARCHAR(128) NULL,
  payload         MEDIUMTEXT   NOT NULL,            -- the task, wire format v1
  owner_node      VARCHAR(128) NULL,                -- lease holder
  lease_until     BIGINT       NULL,                -- lease expiry, ms
  fence           BIGINT UNSIGNED NOT NULL DEFAULT 0, -- fencing token, +1 per claim
  created_at      BIGINT       NOT NULL,
  updated_at      BIGINT       NOT NULL,
  ended_at        BIGINT       NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_task_group_key (group_name, idempotency_key),
  KEY ix_task_due (status, next_fire_at),
  KEY ix_task_claim (status, priority DESC, next_fire_at),  -- the claim's ORDER BY, no filesort
  KEY ix_task_lease (status, lease_until),
  KEY ix_task_scene (group_name, scene, status),
  KEY ix_task_ended (status, ended_at)                       -- retention purge
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS retry_attempt (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  task_id         BIGINT UNSIGNED NOT NULL,
  attempt         INT          NOT NULL,            -- 1-based server attempt number (attempt_seq),
                                                    -- the X-Retry-Attempt the target saw
  node            VARCHAR(128) NOT NULL,
  fence           BIGINT UNSIGNED NOT NULL,
  group_name      VARCHAR(64)  NOT NULL,            -- copied for reports
  scene           VARCHAR(128) NOT NULL,            -- copied for reports
  due_at          BIGINT       NULL,                -- the next_fire_at the claim saw;
                                                    -- started_at - due_at = fire lateness
  started_at      BIGINT       NOT NULL,
  duration_ms     INT          NOT NULL,
  -- succeeded | failed (retryable) | stopped (stop_on_status) | released (shutdown)
  outcome         VARCHAR(16)  NOT NULL,
  http_status     INT          NULL,
  error           VARCHAR(1024) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_attempt_task (task_id, attempt),
  KEY ix_attempt_started (started_at, outcome)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS retry_poison (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  raw             MEDIUMBLOB   NOT NULL,            -- the bytes as received
  reason          VARCHAR(1024) NOT NULL,
  source          VARCHAR(255) NOT NULL,            -- kafka:<topic>/<partition>/<offset> or http:<peer>
  received_at     BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY ix_poison_received (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The node registry (server/node.h): one row per [node] id, refreshed by a
-- heartbeat every 2 s; 'stopped' after a graceful exit. A row still 'up' whose
-- heartbeat_at is old belongs to a node that died. GET /api/v1/nodes reads it.
CREATE TABLE IF NOT EXISTS retry_node (
  node_id         VARCHAR(128) NOT NULL,            -- [node] id, as in retry_task.owner_node
  status          VARCHAR(16)  NOT NULL DEFAULT 'up', -- up | stopped
  started_at      BIGINT       NOT NULL,            -- ms; identifies the process
  heartbeat_at    BIGINT       NOT NULL,            -- ms; last heartbeat (or the stop)
  version         VARCHAR(32)  NOT NULL,
  http_listen     VARCHAR(255) NOT NULL,            -- [http] listen
  host            VARCHAR(255) NOT NULL,            -- gethostname()
  pid             INT          NOT NULL,
  PRIMARY KEY (node_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
