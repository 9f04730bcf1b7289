-- Dead-letter queue listing and message browsing (issue #4.6, #4.8).
-- DLQ pages are read in (failed_at, pk) order, optionally for one queue; the per-message
-- "dead-lettered for this group?" test of browsing looks entries up by (partition, group, seq).
CREATE INDEX dead_letters_by_failed_at ON dead_letters (failed_at, pk);
CREATE INDEX dead_letters_by_queue_failed_at ON dead_letters (queue_pk, failed_at, pk);
CREATE INDEX dead_letters_by_message ON dead_letters (partition_pk, group_name, seq);
