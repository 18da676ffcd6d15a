-- Which node (one vaani server) a call runs on. Several nodes may share one PostgreSQL
-- database; at start a node fails only the calls it left open itself (crash recovery), never
-- the live calls of another node. NULL for calls stored before this migration: recovery treats
-- them as every node's.
--
-- Portable DDL, like 0001-0004.

ALTER TABLE calls ADD COLUMN node_id TEXT;
