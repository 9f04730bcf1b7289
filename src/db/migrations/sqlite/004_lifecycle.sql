-- Ordo schema, SQLite engine, version 4: admission and retention (issue #4 item 5).
-- Mirrors src/db/migrations/postgres/004_lifecycle.sql.

-- Every seq at or below removed_through has been removed by a retention rule (removal is always
-- a prefix of the partition, as created_at is non-decreasing with seq). A queue's size for
-- maxSize is the sum over its partitions of last_seq - max(default group position,
-- removed_through): no count over the message table on the push path.
ALTER TABLE partitions ADD COLUMN removed_through INTEGER NOT NULL DEFAULT 0;

-- Transaction ids of messages removed by retention, kept until their queue's dedupWindowSeconds
-- has passed since the original was pushed (created_at), so a late retry is still a duplicate.
-- Only messages whose transaction id the producer chose are kept (a server-made one is the
-- message id, which no producer can repeat).
CREATE TABLE dedup_window (
  partition_pk   INTEGER NOT NULL,
  transaction_id TEXT NOT NULL,
  message_id     TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (partition_pk, transaction_id)
) WITHOUT ROWID;
CREATE INDEX dedup_window_by_time ON dedup_window (created_at);

-- Per-message delay (push item `delayMs`): not delivered before visible_at; 0: at once. A
-- partition is a FIFO lane, so the messages behind a delayed one wait for it too.
ALTER TABLE messages ADD COLUMN visible_at INTEGER NOT NULL DEFAULT 0;
