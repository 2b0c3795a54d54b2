//! The PostgreSQL backend: a connection pool, migrations under an advisory
//! lock, row locks for turn numbers, `tsvector` + GIN for full-text search,
//! and multi-row inserts through `UNNEST` of array parameters.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use super::sql::{self, Dialect, Filters, Param};
use super::{
    Backend, MAX_TURN, context_is_active, context_not_found, conversation_not_found, has_messages, next_turn,
    no_turns_left, turn_taken,
};
use crate::error::{DeweyError, Result};
use crate::model::{
    BulkStored, BulkTarget, ConversationPage, ConversationQuery, ConversationRecord, ConversationWithMessages,
    LogBatchStored, LogLevel, LogQuery, LogRecord, LogStats, MessageRecord, NewLog, NewMessage, Role, SearchHit,
    SearchQuery, StartupContext, StoredMessage, format_timestamp,
};

/// Every replica takes this transaction-level advisory lock before it looks
/// at the schema version, so replicas starting together migrate one at a
/// time and the later ones find nothing left to do.
const MIGRATION_LOCK: i64 = 0x6465_7765_795f_6d67; // "dewey_mg"

/// Serializes activations of startup contexts, so two concurrent
/// `set_active` calls cannot both pass the "deactivate the others" step.
const ACTIVATION_LOCK: i64 = 0x6465_7765_795f_6163; // "dewey_ac"

/// Versioned, append-only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE conversations (
    id          UUID PRIMARY KEY,
    session_id  TEXT,
    metadata    JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX conversations_session_idx ON conversations (session_id, created_at DESC);
CREATE INDEX conversations_created_idx ON conversations (created_at DESC);
CREATE INDEX conversations_updated_idx ON conversations (updated_at DESC);

CREATE TABLE messages (
    id              UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn_number     INTEGER NOT NULL CHECK (turn_number > 0),
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content         TEXT NOT NULL,
    metadata        JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    content_tsv     TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    UNIQUE (conversation_id, turn_number)
);
CREATE INDEX messages_content_tsv_idx ON messages USING GIN (content_tsv);
CREATE INDEX messages_created_idx ON messages (created_at);

CREATE TABLE startup_contexts (
    name        TEXT PRIMARY KEY,
    content     TEXT NOT NULL,
    is_active   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- At most one active context, whatever the callers do.
CREATE UNIQUE INDEX startup_contexts_one_active ON startup_contexts (is_active) WHERE is_active;

CREATE TABLE logs (
    id          UUID PRIMARY KEY,
    component   TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR')),
    level_rank  SMALLINT NOT NULL,
    message     TEXT NOT NULL,
    trace_id    TEXT,
    data        JSONB,
    created_at  TIMESTAMPTZ NOT NULL,
    message_tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', message)) STORED
);
CREATE INDEX logs_created_idx ON logs (created_at DESC);
CREATE INDEX logs_trace_idx ON logs (trace_id, created_at DESC) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_component_idx ON logs (component, created_at DESC);
CREATE INDEX logs_message_tsv_idx ON logs USING GIN (message_tsv);
"#,
)];

/// A handle to the pool; clones share it.
#[derive(Clone)]
pub(crate) struct PgStorage {
    pool: Pool,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage").field("status", &self.pool.status()).finish()
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The shared filters' parameters as PostgreSQL values.
fn pg_params(params: &[Param]) -> Params {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(text) => Box::new(text.clone()),
                Param::Int(n) => Box::new(*n),
                Param::Rank(rank) => Box::new(*rank),
                Param::Time(time) => Box::new(*time),
            }
        })
        .collect()
}

fn param_refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl PgStorage {
    pub(crate) async fn connect(url: &str) -> Result<PgStorage> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| DeweyError::invalid(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}")))?;
        // Statements are prepared once per connection and reused. After a few
        // runs PostgreSQL may switch a reused statement to a generic plan,
        // which cannot know how rare the searched word is and may walk the
        // whole created_at index looking for it. Custom plans cost a fraction
        // of a millisecond per call.
        let custom_plans = "-c plan_cache_mode=force_custom_plan";
        let options = match config.get_options() {
            Some(existing) => format!("{existing} {custom_plans}"),
            None => custom_plans.to_owned(),
        };
        config.options(&options);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| DeweyError::storage(format!("cannot build the connection pool: {e}")))?;
        let storage = PgStorage { pool };
        storage.migrate().await?;
        Ok(storage)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Backend for PgStorage {
    async fn schema_version(&self) -> Result<i64> {
        let client = self.pool.get().await?;
        Ok(client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0))
    }

    async fn begin_conversation(
        &self,
        session_id: Option<String>,
        metadata: Option<Value>,
    ) -> Result<ConversationRecord> {
        let client = self.pool.get().await?;
        let id = Uuid::now_v7();
        let now = Utc::now();
        client.execute(sql::INSERT_CONVERSATION, &[&id, &session_id, &metadata, &now]).await?;
        Ok(ConversationRecord {
            conversation_id: id.to_string(),
            session_id,
            metadata,
            created_at: format_timestamp(now),
            updated_at: format_timestamp(now),
            message_count: 0,
        })
    }

    async fn store_message(
        &self,
        conversation_id: Uuid,
        turn_number: Option<i64>,
        message: NewMessage,
    ) -> Result<StoredMessage> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The UPDATE takes the conversation's row lock: concurrent appends to
        // one conversation queue here, so MAX+1 below is never read twice.
        let now = Utc::now();
        if tx.execute(sql::TOUCH_CONVERSATION, &[&conversation_id, &now]).await? == 0 {
            return Err(conversation_not_found(conversation_id));
        }
        let turn: i32 = match turn_number {
            Some(t) => i32::try_from(t).map_err(|_| DeweyError::invalid(format!("turn_number {t} is too large")))?,
            None => {
                // MAX + 1 is computed here, in 64 bits: in SQL it would
                // overflow int4 after turn 2147483647.
                let last: i32 = tx.query_one(sql::LAST_TURN, &[&conversation_id]).await?.get(0);
                i32::try_from(next_turn(conversation_id, last.into())?).expect("next_turn stays within MAX_TURN")
            }
        };
        let id = Uuid::now_v7();
        tx.execute(
            sql::INSERT_MESSAGE,
            &[&id, &conversation_id, &turn, &message.role.as_str(), &message.content, &message.metadata, &now],
        )
        .await
        .map_err(|e| map_unique(e, || turn_taken(conversation_id, turn.into())))?;
        tx.commit().await?;
        Ok(StoredMessage {
            message_id: id.to_string(),
            conversation_id: conversation_id.to_string(),
            turn_number: turn.into(),
            created_at: format_timestamp(now),
        })
    }

    async fn store_messages_bulk(&self, target: BulkTarget, messages: Vec<NewMessage>) -> Result<BulkStored> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = Utc::now();
        let (conversation_id, created) = match target {
            BulkTarget::Existing(id) => {
                if tx.execute(sql::TOUCH_CONVERSATION, &[&id, &now]).await? == 0 {
                    return Err(conversation_not_found(id));
                }
                (id, false)
            }
            BulkTarget::New { session_id, metadata } => {
                let id = Uuid::now_v7();
                tx.execute(sql::INSERT_CONVERSATION, &[&id, &session_id, &metadata, &now]).await?;
                (id, true)
            }
        };
        let base: i32 = tx.query_one(sql::LAST_TURN, &[&conversation_id]).await?.get(0);
        let count = messages.len() as i64;
        if i64::from(base) + count > MAX_TURN {
            return Err(no_turns_left(conversation_id));
        }
        let mut ids = Vec::with_capacity(messages.len());
        let mut turns = Vec::with_capacity(messages.len());
        let mut roles = Vec::with_capacity(messages.len());
        let mut contents = Vec::with_capacity(messages.len());
        let mut metadata = Vec::with_capacity(messages.len());
        for (n, m) in messages.into_iter().enumerate() {
            ids.push(Uuid::now_v7());
            turns.push(base + 1 + n as i32);
            roles.push(m.role.as_str());
            contents.push(m.content);
            metadata.push(m.metadata);
        }
        tx.execute(
            "INSERT INTO messages (id, conversation_id, turn_number, role, content, metadata, created_at) \
             SELECT u.id, $1, u.turn, u.role, u.content, u.metadata, $7::timestamptz \
             FROM UNNEST($2::uuid[], $3::int4[], $4::text[], $5::text[], $6::jsonb[]) \
                  AS u(id, turn, role, content, metadata)",
            &[&conversation_id, &ids, &turns, &roles, &contents, &metadata, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(BulkStored {
            conversation_id: conversation_id.to_string(),
            conversation_created: created,
            messages_stored: count,
            first_turn: i64::from(base) + 1,
            last_turn: i64::from(base) + count,
        })
    }

    async fn get_conversation(&self, conversation_id: Uuid) -> Result<ConversationWithMessages> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(sql::SELECT_CONVERSATION, &[&conversation_id])
            .await?
            .ok_or_else(|| conversation_not_found(conversation_id))?;
        let mut conversation = conversation_from_row(&row);
        let messages = client
            .query(sql::SELECT_MESSAGES, &[&conversation_id])
            .await?
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        conversation.message_count = messages.len() as i64;
        Ok(ConversationWithMessages { conversation, messages })
    }

    async fn list_conversations(&self, query: ConversationQuery) -> Result<ConversationPage> {
        let client = self.pool.get().await?;
        let (page_sql, page, count_sql, count) = sql::list_conversations(Dialect::Postgres, &query);
        let rows = client.query(&page_sql, &param_refs(&pg_params(&page.params))).await?;
        let total: i64 = client.query_one(&count_sql, &param_refs(&pg_params(&count.params))).await?.get(0);
        Ok(ConversationPage { conversations: rows.iter().map(conversation_from_row).collect(), total })
    }

    async fn delete_conversation(&self, conversation_id: Uuid, force: bool) -> Result<i64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(&format!("{} FOR UPDATE", sql::COUNT_MESSAGES), &[&conversation_id])
            .await?
            .ok_or_else(|| conversation_not_found(conversation_id))?;
        let count: i64 = row.get(0);
        if count > 0 && !force {
            return Err(has_messages(conversation_id, count));
        }
        tx.execute(sql::DELETE_CONVERSATION, &[&conversation_id]).await?;
        tx.commit().await?;
        Ok(count)
    }

    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        let client = self.pool.get().await?;
        let mut filters = Filters::new(Dialect::Postgres);
        let terms = filters.bind(Param::Text(query.terms.plain()));
        filters.push_condition("m.content_tsv @@ q".to_owned());
        sql::search_conditions(&mut filters, &query);
        let where_clause = filters.where_clause();
        let limit = filters.bind(Param::Int(query.limit));
        let offset = filters.bind(Param::Int(query.offset));
        let sql = format!(
            "SELECT m.id, m.conversation_id, c.session_id, m.turn_number, m.role, m.content, m.created_at, \
                    ts_rank(m.content_tsv, q)::float8 AS rank \
             FROM plainto_tsquery('english', {terms}) q, messages m JOIN conversations c ON c.id = m.conversation_id \
             {where_clause} \
             ORDER BY rank DESC, m.created_at DESC, m.id \
             LIMIT {limit} OFFSET {offset}"
        );
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &param_refs(&pg_params(&filters.params))).await?;
        rows.iter()
            .map(|row| {
                Ok(SearchHit {
                    message_id: row.get::<_, Uuid>(0).to_string(),
                    conversation_id: row.get::<_, Uuid>(1).to_string(),
                    session_id: row.get(2),
                    turn_number: row.get::<_, i32>(3).into(),
                    role: parse_role(row.get(4))?,
                    content: row.get(5),
                    created_at: format_timestamp(row.get(6)),
                    rank: row.get(7),
                })
            })
            .collect()
    }

    async fn get_startup_context(&self, name: Option<String>) -> Result<Option<StartupContext>> {
        let client = self.pool.get().await?;
        let row = match name {
            Some(name) => client.query_opt(sql::SELECT_CONTEXT, &[&name]).await?,
            None => client.query_opt(sql::SELECT_ACTIVE_CONTEXT, &[]).await?,
        };
        Ok(row.as_ref().map(|r| context_from_row(r, true)))
    }

    async fn set_startup_context(
        &self,
        name: String,
        content: String,
        set_active: bool,
    ) -> Result<(StartupContext, bool)> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = Utc::now();
        if set_active {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACTIVATION_LOCK]).await?;
            tx.execute(sql::DEACTIVATE_OTHER_CONTEXTS, &[&name, &now]).await?;
        }
        // xmax = 0: the row is new, not an update of an existing one.
        let upsert = sql::upsert_context_returning(", (xmax = 0) AS inserted");
        let row = tx.query_one(&upsert, &[&name, &content, &set_active, &now]).await?;
        tx.commit().await?;
        Ok((context_from_row(&row, true), row.get(5)))
    }

    async fn list_startup_contexts(&self, include_content: bool) -> Result<Vec<StartupContext>> {
        let client = self.pool.get().await?;
        let rows = client.query(sql::LIST_CONTEXTS, &[]).await?;
        Ok(rows.iter().map(|r| context_from_row(r, include_content)).collect())
    }

    async fn delete_startup_context(&self, name: String, force: bool) -> Result<StartupContext> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(&format!("{} FOR UPDATE", sql::SELECT_CONTEXT), &[&name])
            .await?
            .ok_or_else(|| context_not_found(&name))?;
        let context = context_from_row(&row, false);
        if context.is_active && !force {
            return Err(context_is_active(&name));
        }
        tx.execute(sql::DELETE_CONTEXT, &[&name]).await?;
        tx.commit().await?;
        Ok(context)
    }

    async fn store_logs(&self, logs: Vec<NewLog>) -> Result<LogBatchStored> {
        if logs.is_empty() {
            return Ok(LogBatchStored { stored: 0, duplicates: 0 });
        }
        let total = logs.len() as i64;
        let mut ids = Vec::with_capacity(logs.len());
        let mut components = Vec::with_capacity(logs.len());
        let mut levels = Vec::with_capacity(logs.len());
        let mut ranks = Vec::with_capacity(logs.len());
        let mut messages = Vec::with_capacity(logs.len());
        let mut traces = Vec::with_capacity(logs.len());
        let mut data = Vec::with_capacity(logs.len());
        let mut times = Vec::with_capacity(logs.len());
        for log in logs {
            ids.push(log.id);
            components.push(log.component);
            levels.push(log.level.as_str());
            ranks.push(log.level.rank());
            messages.push(log.message);
            traces.push(log.trace_id);
            data.push(log.data);
            times.push(log.created_at);
        }
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO logs (id, component, level, level_rank, message, trace_id, data, created_at) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::text[], \
                                      $7::jsonb[], $8::timestamptz[]) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        let stored = client
            .execute(&statement, &[&ids, &components, &levels, &ranks, &messages, &traces, &data, &times])
            .await? as i64;
        Ok(LogBatchStored { stored, duplicates: total - stored })
    }

    async fn query_logs(&self, query: LogQuery) -> Result<Vec<LogRecord>> {
        const COLUMNS: &str = sql::LOG_COLUMNS;
        let client = self.pool.get().await?;
        let mut filters = Filters::new(Dialect::Postgres);
        sql::log_conditions(&mut filters, &query);
        let Some(search) = query.search else {
            let where_clause = filters.where_clause();
            let limit = filters.bind(Param::Int(query.limit));
            let sql =
                format!("SELECT {COLUMNS} FROM logs {where_clause} ORDER BY created_at DESC, id DESC LIMIT {limit}");
            let statement = client.prepare_cached(&sql).await?;
            let rows = client.query(&statement, &param_refs(&pg_params(&filters.params))).await?;
            return rows.iter().map(log_from_row).collect();
        };
        // Newest-first text search has no plan that suits every word: walking
        // the created_at index finds a common word at once and a rare one
        // only after reading the whole table; the GIN index is the reverse.
        // The planner's guess between them was measured at 233 ms p50 for
        // rare words at 10^6 logs. So: first look for the matches among the
        // newest rows that pass the other filters (bounded work); only if
        // they hold fewer than `limit` matches, which makes the word rare
        // there, take every match from the GIN index and sort those.
        let other_conditions = filters.where_clause();
        let words = filters.bind(Param::Text(search.plain()));
        let matches = format!("message_tsv @@ plainto_tsquery('english', {words})");
        let limit = filters.bind(Param::Int(query.limit));
        let mut params = pg_params(&filters.params);
        let probe = format!("${}", params.len() + 1);
        params.push(Box::new((query.limit * 50).max(5000)));
        let recent = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, message_tsv FROM logs {other_conditions} \
             ORDER BY created_at DESC, id DESC LIMIT {probe}) recent \
             WHERE {matches} ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        let statement = client.prepare_cached(&recent).await?;
        let rows = client.query(&statement, &param_refs(&params)).await?;
        if rows.len() as i64 >= query.limit {
            return rows.iter().map(log_from_row).collect();
        }
        params.pop();
        filters.push_condition(matches);
        // MATERIALIZED keeps the planner from turning this back into a walk
        // of the created_at index.
        let all = format!(
            "WITH hits AS MATERIALIZED (SELECT {COLUMNS} FROM logs {}) \
             SELECT {COLUMNS} FROM hits ORDER BY created_at DESC, id DESC LIMIT {limit}",
            filters.where_clause()
        );
        let statement = client.prepare_cached(&all).await?;
        let rows = client.query(&statement, &param_refs(&params)).await?;
        rows.iter().map(log_from_row).collect()
    }

    async fn clear_logs(&self, component: Option<String>, before: Option<DateTime<Utc>>) -> Result<i64> {
        let client = self.pool.get().await?;
        let (sql, filters) = sql::clear_logs(Dialect::Postgres, component, before);
        Ok(client.execute(&sql, &param_refs(&pg_params(&filters.params))).await? as i64)
    }

    async fn log_stats(&self) -> Result<LogStats> {
        let client = self.pool.get().await?;
        let row = client.query_one(sql::LOG_TOTALS, &[]).await?;
        let bytes: i64 = client.query_one("SELECT pg_total_relation_size('logs')", &[]).await?.get(0);
        let mut by_level: BTreeMap<String, i64> = LogLevel::ALL.iter().map(|l| (l.as_str().to_owned(), 0)).collect();
        for r in client.query(sql::LOG_COUNTS_BY_LEVEL, &[]).await? {
            by_level.insert(r.get(0), r.get(1));
        }
        let by_component =
            client.query(sql::LOG_COUNTS_BY_COMPONENT, &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(LogStats {
            total_logs: row.get(0),
            by_level,
            by_component,
            oldest: row.get::<_, Option<DateTime<Utc>>>(1).map(format_timestamp),
            newest: row.get::<_, Option<DateTime<Utc>>>(2).map(format_timestamp),
            storage_bytes: Some(bytes),
        })
    }
}

/// A unique violation becomes the caller-facing conflict; anything else
/// stays a storage error.
fn map_unique(e: tokio_postgres::Error, conflict: impl FnOnce() -> DeweyError) -> DeweyError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) { conflict() } else { e.into() }
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| DeweyError::storage(format!("unknown role {s:?} in the database")))
}

fn conversation_from_row(row: &Row) -> ConversationRecord {
    ConversationRecord {
        conversation_id: row.get::<_, Uuid>(0).to_string(),
        session_id: row.get(1),
        metadata: row.get(2),
        created_at: format_timestamp(row.get(3)),
        updated_at: format_timestamp(row.get(4)),
        message_count: row.get(5),
    }
}

fn message_from_row(row: &Row) -> Result<MessageRecord> {
    Ok(MessageRecord {
        message_id: row.get::<_, Uuid>(0).to_string(),
        conversation_id: row.get::<_, Uuid>(1).to_string(),
        turn_number: row.get::<_, i32>(2).into(),
        role: parse_role(row.get(3))?,
        content: row.get(4),
        metadata: row.get(5),
        created_at: format_timestamp(row.get(6)),
    })
}

fn context_from_row(row: &Row, include_content: bool) -> StartupContext {
    StartupContext {
        name: row.get(0),
        content: include_content.then(|| row.get(1)),
        is_active: row.get(2),
        created_at: format_timestamp(row.get(3)),
        updated_at: format_timestamp(row.get(4)),
    }
}

fn log_from_row(row: &Row) -> Result<LogRecord> {
    let level: &str = row.get(2);
    Ok(LogRecord {
        id: row.get::<_, Uuid>(0).to_string(),
        component: row.get(1),
        level: LogLevel::parse(level)
            .ok_or_else(|| DeweyError::storage(format!("unknown level {level:?} in the database")))?,
        message: row.get(3),
        trace_id: row.get(4),
        data: row.get(5),
        created_at: format_timestamp(row.get(6)),
    })
}

/// PostgreSQL's errors become storage errors here, so nothing outside this
/// backend knows the engine's error types.
impl From<tokio_postgres::Error> for DeweyError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The bare Display of a server error is just "db error"; the
        // DbError inside carries the message worth showing.
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => e.to_string(),
        };
        DeweyError::Storage { message, source: Some(Box::new(e)) }
    }
}

impl From<deadpool_postgres::PoolError> for DeweyError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DeweyError::Storage { message: format!("no database connection: {e}"), source: Some(Box::new(e)) }
    }
}
