-- Ordo schema, SQLite engine, version 1.
-- Messages are append-only rows; per (partition, group) position and lease live in `cursors`,
-- a small row updated in place. Partitions and queues carry an integer key for compact indexes
-- and a UUID for the API.

CREATE TABLE queues (
  pk                    INTEGER PRIMARY KEY,
  id                    TEXT NOT NULL UNIQUE,
  name                  TEXT NOT NULL UNIQUE,
  namespace             TEXT NOT NULL DEFAULT '',
  task                  TEXT NOT NULL DEFAULT '',
  created_at            INTEGER NOT NULL,
  lease_time_s          INTEGER NOT NULL DEFAULT 300,
  retry_limit           INTEGER NOT NULL DEFAULT 3,
  retry_delay_ms        INTEGER NOT NULL DEFAULT 1000,
  retry_backoff         INTEGER NOT NULL DEFAULT 0,
  retry_delay_max_ms    INTEGER NOT NULL DEFAULT 60000,
  delayed_processing_s  INTEGER NOT NULL DEFAULT 0,
  window_buffer_s       INTEGER NOT NULL DEFAULT 0,
  max_size              INTEGER NOT NULL DEFAULT 0,
  retention_s           INTEGER NOT NULL DEFAULT 0,
  completed_retention_s INTEGER NOT NULL DEFAULT 0,
  max_wait_time_s       INTEGER NOT NULL DEFAULT 0,
  dedup_window_s        INTEGER NOT NULL DEFAULT 3600,
  priority              INTEGER NOT NULL DEFAULT 0,
  encryption_enabled    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE partitions (
  pk         INTEGER PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  queue_pk   INTEGER NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL DEFAULT 0,  -- sequence of the newest message
  last_at    INTEGER NOT NULL DEFAULT 0,  -- created_at of the newest message
  UNIQUE (queue_pk, name)
);

-- created_at is non-decreasing with seq inside a partition (the writer enforces it), so
-- "messages created before T" is always a prefix of the partition.
CREATE TABLE messages (
  rowid          INTEGER PRIMARY KEY,
  partition_pk   INTEGER NOT NULL,
  seq            INTEGER NOT NULL,
  id             TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  trace_id       TEXT,
  payload        TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_by_seq ON messages (partition_pk, seq);
-- Transaction id first: generated ids (UUIDv7) grow with time, so new entries append at one end
-- of the index instead of at one point per partition.
CREATE UNIQUE INDEX messages_by_txid ON messages (transaction_id, partition_pk);

-- Where a group stands in a partition: every seq <= position is done for the group.
CREATE TABLE cursors (
  partition_pk     INTEGER NOT NULL,
  group_name       TEXT NOT NULL,
  position         INTEGER NOT NULL DEFAULT 0,
  lease_id         TEXT,
  lease_expires_at INTEGER NOT NULL DEFAULT 0,
  lease_last_seq   INTEGER NOT NULL DEFAULT 0,  -- newest seq delivered under the lease
  eligible_at      INTEGER NOT NULL DEFAULT 0,  -- retry back-off: not before this instant
  PRIMARY KEY (partition_pk, group_name)
) WITHOUT ROWID;
CREATE INDEX cursors_by_lease ON cursors (lease_id) WHERE lease_id IS NOT NULL;

-- Messages completed past a group's position (acked out of order inside a batch).
CREATE TABLE completions (
  partition_pk INTEGER NOT NULL,
  group_name   TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  PRIMARY KEY (partition_pk, group_name, seq)
) WITHOUT ROWID;

-- Failure counts of messages not yet done for a group.
CREATE TABLE failures (
  partition_pk INTEGER NOT NULL,
  group_name   TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  count        INTEGER NOT NULL,
  PRIMARY KEY (partition_pk, group_name, seq)
) WITHOUT ROWID;

-- Where a named group starts reading a queue, fixed at its first pop.
CREATE TABLE subscriptions (
  queue_pk   INTEGER NOT NULL,
  group_name TEXT NOT NULL,
  start_from INTEGER NOT NULL,  -- deliver messages created at or after this instant
  created_at INTEGER NOT NULL,
  PRIMARY KEY (queue_pk, group_name)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
  pk             INTEGER PRIMARY KEY,
  id             TEXT NOT NULL UNIQUE,
  queue_pk       INTEGER NOT NULL,
  partition_pk   INTEGER NOT NULL,
  group_name     TEXT NOT NULL,
  message_id     TEXT NOT NULL,
  seq            INTEGER NOT NULL,
  transaction_id TEXT NOT NULL,
  trace_id       TEXT,
  payload        TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  error          TEXT NOT NULL DEFAULT '',
  retry_count    INTEGER NOT NULL DEFAULT 0,
  failed_at      INTEGER NOT NULL
);
CREATE INDEX dead_letters_by_partition ON dead_letters (partition_pk, group_name);
