-- Moving a Python Dewey's PostgreSQL data into the Rust Dewey, step 1 of 3
-- (docs/migrating.md, "Dewey on the Python service's PostgreSQL").
--
-- Run it with the Python Dewey stopped, and everything else that writes these
-- tables (the Python Godot's conversation tools wrote to the same ones):
--
--   psql -v ON_ERROR_STOP=1 "$DATABASE_URL" -f docs/sql/dewey-set-aside.sql
--
-- It moves the Python service's four tables, with their indexes, constraints
-- and sequences, out of `public` into a schema of their own, so the Rust
-- Dewey's first migration finds `public` free. Nothing is copied or deleted.
-- All or nothing: if one table is missing, nothing moves. To undo, move each
-- table back (ALTER TABLE python_dewey.conversations SET SCHEMA public; ...).
BEGIN;
CREATE SCHEMA python_dewey;
ALTER TABLE public.conversations SET SCHEMA python_dewey;
ALTER TABLE public.messages SET SCHEMA python_dewey;
ALTER TABLE public.startup_contexts SET SCHEMA python_dewey;
ALTER TABLE public.logs SET SCHEMA python_dewey;
COMMIT;
