-- Moving a Python Dewey's PostgreSQL data into the Rust Dewey, step 3 of 3
-- (docs/migrating.md, "Dewey on the Python service's PostgreSQL").
--
-- Step 1 (dewey-set-aside.sql) moved the Python tables into the schema
-- python_dewey; step 2 started the Rust Dewey once on this database, which
-- created its own tables in public. This copies the rows across:
--
--   psql -v ON_ERROR_STOP=1 "$DATABASE_URL" -f docs/sql/dewey-import.sql
--
-- One transaction: everything is imported or nothing is. Running it again
-- imports nothing twice (rows are matched by id, contexts by name). The
-- python_dewey tables are only read; drop the schema once you are satisfied.
--
-- What it keeps and what it maps (every mapping keeps the original value):
--   conversations  id, session_id, metadata, created_at, updated_at as they are.
--   messages       a UUID id is kept; any other id (a serial number) becomes a
--                  UUID derived from it (md5), the same on every run.
--                  turn_number is kept when it is positive and the first of its
--                  conversation with that number; the others (duplicates, zero,
--                  negative, missing) get the next numbers after the
--                  conversation's highest kept turn, in (turn, created_at) order.
--                  A role outside user/assistant/system/tool (in any case)
--                  becomes `system`, the original kept in metadata.python_role.
--   startup_contexts  as they are; of several active contexts only the most
--                  recently updated stays active (the Rust Dewey allows one),
--                  and none is activated if the Rust Dewey already has one.
--   logs           ids as for messages; level in any case, WARNING as WARN,
--                  CRITICAL and FATAL as ERROR; any other level becomes INFO,
--                  the original kept in data.python_level.
-- Timestamps without a time zone are read as UTC (SET LOCAL TimeZone below).
-- A NULL where the Rust Dewey requires a value (a message's content, a log's
-- component, message or created_at, ...) stops the import with PostgreSQL's
-- not-null error naming the column: fill it in python_dewey and run again.
--
-- The seed shows the Python SQL for conversations and messages only; the
-- columns read from startup_contexts (name, content, is_active, created_at,
-- updated_at) and logs (id, trace_id, component, level, message, data,
-- created_at) follow the tools' parameters. Compare them with
-- `\d python_dewey.startup_contexts` and `\d python_dewey.logs` first.

BEGIN;
SET LOCAL TimeZone = 'UTC';

DO $$
BEGIN
    IF to_regclass('python_dewey.conversations') IS NULL THEN
        RAISE EXCEPTION 'python_dewey.conversations does not exist: run docs/sql/dewey-set-aside.sql first';
    END IF;
    -- The Rust Dewey creates this table in the transaction of its migrations.
    IF to_regclass('public.schema_migrations') IS NULL THEN
        RAISE EXCEPTION 'the Rust Dewey''s tables are not in public yet: start the Rust Dewey once on this database (it creates them), stop it, then run this again';
    END IF;
END $$;

INSERT INTO public.conversations (id, session_id, metadata, created_at, updated_at)
SELECT c.id::text::uuid,
       c.session_id,
       c.metadata::jsonb,
       c.created_at::timestamptz,
       COALESCE(c.updated_at, c.created_at)::timestamptz
FROM python_dewey.conversations c
ON CONFLICT DO NOTHING;

INSERT INTO public.messages (id, conversation_id, turn_number, role, content, metadata, created_at)
WITH source AS (
    SELECT m.*,
           lower(trim(m.role)) IN ('user', 'assistant', 'system', 'tool') AS known_role,
           COALESCE(m.turn_number > 0
                    AND row_number() OVER (PARTITION BY m.conversation_id, m.turn_number
                                           ORDER BY m.created_at, m.id::text) = 1, false) AS keeps_turn
    FROM python_dewey.messages m
), numbered AS (
    SELECT s.*,
           COALESCE(max(CASE WHEN s.keeps_turn THEN s.turn_number END)
                        OVER (PARTITION BY s.conversation_id), 0)
               + row_number() OVER (PARTITION BY s.conversation_id, s.keeps_turn
                                    ORDER BY s.turn_number NULLS LAST, s.created_at, s.id::text) AS next_free_turn
    FROM source s
)
SELECT CASE WHEN n.id::text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN n.id::text::uuid
            ELSE md5('python-dewey messages ' || n.id::text)::uuid END,
       n.conversation_id::text::uuid,
       CASE WHEN n.keeps_turn THEN n.turn_number ELSE n.next_free_turn END,
       CASE WHEN n.known_role THEN lower(trim(n.role)) ELSE 'system' END,
       n.content,
       CASE WHEN n.known_role THEN n.metadata::jsonb
            WHEN n.metadata IS NULL THEN jsonb_build_object('python_role', n.role)
            WHEN jsonb_typeof(n.metadata::jsonb) = 'object'
                THEN n.metadata::jsonb || jsonb_build_object('python_role', n.role)
            ELSE jsonb_build_object('python_role', n.role, 'python_metadata', n.metadata::jsonb) END,
       n.created_at::timestamptz
FROM numbered n
ON CONFLICT DO NOTHING;

INSERT INTO public.startup_contexts (name, content, is_active, created_at, updated_at)
SELECT s.name,
       s.content,
       COALESCE(s.is_active, false)
           AND s.name = (SELECT a.name FROM python_dewey.startup_contexts a WHERE a.is_active
                         ORDER BY a.updated_at DESC NULLS LAST, a.name LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM public.startup_contexts p WHERE p.is_active),
       s.created_at::timestamptz,
       COALESCE(s.updated_at, s.created_at)::timestamptz
FROM python_dewey.startup_contexts s
ON CONFLICT DO NOTHING;

INSERT INTO public.logs (id, component, level, level_rank, message, trace_id, data, created_at)
WITH source AS (
    SELECT l.*,
           CASE upper(trim(l.level))
               WHEN 'TRACE' THEN 'TRACE' WHEN 'DEBUG' THEN 'DEBUG' WHEN 'INFO' THEN 'INFO'
               WHEN 'WARN' THEN 'WARN' WHEN 'WARNING' THEN 'WARN'
               WHEN 'ERROR' THEN 'ERROR' WHEN 'CRITICAL' THEN 'ERROR' WHEN 'FATAL' THEN 'ERROR'
           END AS known_level
    FROM python_dewey.logs l
)
SELECT CASE WHEN s.id::text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN s.id::text::uuid
            ELSE md5('python-dewey logs ' || s.id::text)::uuid END,
       s.component,
       COALESCE(s.known_level, 'INFO'),
       CASE COALESCE(s.known_level, 'INFO')
           WHEN 'TRACE' THEN 0 WHEN 'DEBUG' THEN 1 WHEN 'INFO' THEN 2 WHEN 'WARN' THEN 3 ELSE 4 END,
       s.message,
       s.trace_id,
       CASE WHEN s.known_level IS NOT NULL THEN s.data::jsonb
            WHEN s.data IS NULL THEN jsonb_build_object('python_level', s.level)
            WHEN jsonb_typeof(s.data::jsonb) = 'object'
                THEN s.data::jsonb || jsonb_build_object('python_level', s.level)
            ELSE jsonb_build_object('python_level', s.level, 'python_data', s.data::jsonb) END,
       s.created_at::timestamptz
FROM source s
ON CONFLICT DO NOTHING;

DO $$
BEGIN
    RAISE NOTICE 'the Rust Dewey now holds % conversations, % messages, % startup contexts (% active), % logs',
        (SELECT count(*) FROM public.conversations), (SELECT count(*) FROM public.messages),
        (SELECT count(*) FROM public.startup_contexts),
        (SELECT count(*) FROM public.startup_contexts WHERE is_active), (SELECT count(*) FROM public.logs);
END $$;

COMMIT;
