-- Flow counters for the status routes (issue #4.8): what happened to each queue's messages, one
-- row per (queue, minute), added to by the broker's periodic flush (never counted from the
-- message table). Keyed by queue name, so a queue's history outlives the queue.

CREATE TABLE queue_stats (
  queue         TEXT NOT NULL,
  minute        INTEGER NOT NULL,  -- start of the minute, microseconds since the epoch (UTC)
  pushed        INTEGER NOT NULL DEFAULT 0,
  duplicates    INTEGER NOT NULL DEFAULT 0,
  delivered     INTEGER NOT NULL DEFAULT 0,
  completed     INTEGER NOT NULL DEFAULT 0,
  failed        INTEGER NOT NULL DEFAULT 0,
  dead_lettered INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
) WITHOUT ROWID;
-- Time-window reads over every queue.
CREATE INDEX queue_stats_by_minute ON queue_stats (minute);
