-- Flow counters for the status routes (issue #4.8): what happened to each queue's messages, one
-- row per (queue, minute), added to by each broker's periodic flush (sql::kFlushStats, INSERT ...
-- ON CONFLICT DO UPDATE adding, so instances sharing the database add up). Never counted from
-- the message table. Keyed by queue name, so a queue's history outlives the queue.

CREATE TABLE ordo.queue_stats (
  queue         text COLLATE "C" NOT NULL,
  minute        bigint NOT NULL,  -- start of the minute, microseconds since the epoch (UTC)
  pushed        bigint NOT NULL DEFAULT 0,
  duplicates    bigint NOT NULL DEFAULT 0,
  delivered     bigint NOT NULL DEFAULT 0,
  completed     bigint NOT NULL DEFAULT 0,
  failed        bigint NOT NULL DEFAULT 0,
  dead_lettered bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);
-- Time-window reads over every queue.
CREATE INDEX queue_stats_by_minute ON ordo.queue_stats (minute);
