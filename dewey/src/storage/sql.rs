//! The SQL both engines run, written once: the statements that read alike in
//! PostgreSQL and SQLite, and the filters built from a query's optional
//! fields. What differs stays in each backend: full-text search (`tsvector`
//! against FTS5), multi-row inserts (`UNNEST` against a prepared loop),
//! locking, and how each engine reports the row a write touched.
//!
//! Statements use PostgreSQL's numbered placeholders (`$1`); [`Dialect::sql`]
//! gives SQLite its `?1` form. (SQLite would accept `$1` too, but numbers
//! such parameters by first appearance, not by the digit.) Values bound by
//! the filter builder are engine-neutral [`Param`]s; each backend turns them
//! into its own parameter type.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::model::{ConversationQuery, LogQuery, SearchQuery, SortBy};

/// Which engine a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// `sql`, written with `$n` placeholders, in this dialect. Statements
    /// hold no `$` other than placeholders (a test checks the shared ones).
    pub(crate) fn sql(self, sql: &str) -> Cow<'_, str> {
        match self {
            Dialect::Postgres => Cow::Borrowed(sql),
            Dialect::Sqlite => Cow::Owned(sql.replace('$', "?")),
        }
    }

    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }
}

/// A value bound by the filter builder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    /// A log level's rank (PostgreSQL `SMALLINT`).
    Rank(i16),
    /// PostgreSQL `TIMESTAMPTZ`; SQLite stores microseconds since the epoch.
    Time(DateTime<Utc>),
}

/// A statement's parameters and conditions, built up in placeholder order.
#[derive(Debug)]
pub(crate) struct Filters {
    dialect: Dialect,
    pub(crate) params: Vec<Param>,
    conditions: Vec<String>,
}

impl Filters {
    pub(crate) fn new(dialect: Dialect) -> Filters {
        Filters { dialect, params: Vec::new(), conditions: Vec::new() }
    }

    /// Binds `value` and returns its placeholder.
    pub(crate) fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        self.dialect.placeholder(self.params.len())
    }

    /// Adds a condition; `{}` in `template` is the placeholder of `value`.
    pub(crate) fn condition(&mut self, template: &str, value: Param) {
        let placeholder = self.bind(value);
        self.conditions.push(template.replace("{}", &placeholder));
    }

    /// Adds a condition that binds nothing (or binds through [`Filters::bind`]).
    pub(crate) fn push_condition(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// `WHERE a AND b ...`, or nothing when there are no conditions.
    pub(crate) fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!("WHERE {}", self.conditions.join(" AND ")) }
    }
}

// ---- conversations and messages ----

pub(crate) const INSERT_CONVERSATION: &str =
    "INSERT INTO conversations (id, session_id, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";

/// Bumps `updated_at`; touching no row means the conversation does not exist.
pub(crate) const TOUCH_CONVERSATION: &str = "UPDATE conversations SET updated_at = $2 WHERE id = $1";

pub(crate) const LAST_TURN: &str = "SELECT COALESCE(MAX(turn_number), 0) FROM messages WHERE conversation_id = $1";

pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages (id, conversation_id, turn_number, role, content, \
                                         metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The count column is set from the messages read with it, so the two cannot
/// disagree under concurrent appends.
pub(crate) const SELECT_CONVERSATION: &str = "SELECT c.id, c.session_id, c.metadata, c.created_at, c.updated_at, \
                                              CAST(0 AS BIGINT) FROM conversations c WHERE c.id = $1";

pub(crate) const SELECT_MESSAGES: &str = "SELECT id, conversation_id, turn_number, role, content, metadata, created_at \
                                          FROM messages WHERE conversation_id = $1 ORDER BY turn_number";

pub(crate) const COUNT_MESSAGES: &str =
    "SELECT (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c WHERE c.id = $1";

pub(crate) const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE id = $1";

/// A page of conversations and the count of all that match, for `query`.
pub(crate) fn list_conversations(dialect: Dialect, query: &ConversationQuery) -> (String, Filters, String, Filters) {
    let filter = |filters: &mut Filters| {
        if let Some(session) = &query.session_id {
            filters.condition("c.session_id = {}", Param::Text(session.clone()));
        }
    };
    let mut count = Filters::new(dialect);
    filter(&mut count);
    let count_sql = format!("SELECT count(*) FROM conversations c {}", count.where_clause());

    let mut page = Filters::new(dialect);
    filter(&mut page);
    let order = match query.sort_by {
        SortBy::CreatedAt => "c.created_at DESC, c.id DESC",
        SortBy::UpdatedAt => "c.updated_at DESC, c.id DESC",
    };
    let where_clause = page.where_clause();
    let limit = page.bind(Param::Int(query.limit));
    let offset = page.bind(Param::Int(query.offset));
    let page_sql = format!(
        "SELECT c.id, c.session_id, c.metadata, c.created_at, c.updated_at, \
                (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) \
         FROM conversations c {where_clause} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    (page_sql, page, count_sql, count)
}

/// The session and time conditions of a message search, on `messages m`
/// joined with `conversations c`; the text match is each engine's own.
pub(crate) fn search_conditions(filters: &mut Filters, query: &SearchQuery) {
    if let Some(session) = &query.session_id {
        filters.condition("c.session_id = {}", Param::Text(session.clone()));
    }
    if let Some(start) = query.start {
        filters.condition("m.created_at >= {}", Param::Time(start));
    }
    if let Some(end) = query.end {
        filters.condition("m.created_at <= {}", Param::Time(end));
    }
}

// ---- startup contexts ----

const CONTEXT_COLUMNS: &str = "name, content, is_active, created_at, updated_at";

pub(crate) const SELECT_CONTEXT: &str =
    "SELECT name, content, is_active, created_at, updated_at FROM startup_contexts WHERE name = $1";

pub(crate) const SELECT_ACTIVE_CONTEXT: &str =
    "SELECT name, content, is_active, created_at, updated_at FROM startup_contexts WHERE is_active";

pub(crate) const LIST_CONTEXTS: &str =
    "SELECT name, content, is_active, created_at, updated_at FROM startup_contexts ORDER BY name";

pub(crate) const DEACTIVATE_OTHER_CONTEXTS: &str =
    "UPDATE startup_contexts SET is_active = FALSE, updated_at = $2 WHERE is_active AND name <> $1";

/// Creates or replaces; an active context stays active when replaced
/// without `set_active`.
pub(crate) const UPSERT_CONTEXT: &str = "INSERT INTO startup_contexts (name, content, is_active, created_at, \
                                         updated_at) VALUES ($1, $2, $3, $4, $4) \
                                         ON CONFLICT (name) DO UPDATE SET content = excluded.content, \
                                         is_active = startup_contexts.is_active OR excluded.is_active, \
                                         updated_at = excluded.updated_at";

pub(crate) const DELETE_CONTEXT: &str = "DELETE FROM startup_contexts WHERE name = $1";

/// [`UPSERT_CONTEXT`] returning the row (PostgreSQL).
pub(crate) fn upsert_context_returning(extra: &str) -> String {
    format!("{UPSERT_CONTEXT} RETURNING {CONTEXT_COLUMNS}{extra}")
}

// ---- logs ----

pub(crate) const LOG_COLUMNS: &str = "id, component, level, message, trace_id, data, created_at";

pub(crate) const LOG_TOTALS: &str = "SELECT count(*), min(created_at), max(created_at) FROM logs";

pub(crate) const LOG_COUNTS_BY_LEVEL: &str = "SELECT level, count(*) FROM logs GROUP BY level";

pub(crate) const LOG_COUNTS_BY_COMPONENT: &str =
    "SELECT component, count(*) AS n FROM logs GROUP BY component ORDER BY n DESC LIMIT 100";

/// Every condition of a log query but its text search.
pub(crate) fn log_conditions(filters: &mut Filters, query: &LogQuery) {
    if let Some(trace) = &query.trace_id {
        filters.condition("trace_id = {}", Param::Text(trace.clone()));
    }
    if let Some(component) = &query.component {
        filters.condition("component = {}", Param::Text(component.clone()));
    }
    if let Some(level) = query.min_level {
        filters.condition("level_rank >= {}", Param::Rank(level.rank()));
    }
    if let Some(start) = query.start {
        filters.condition("created_at >= {}", Param::Time(start));
    }
    if let Some(end) = query.end {
        filters.condition("created_at <= {}", Param::Time(end));
    }
}

/// `DELETE` of the logs of `component` and/or older than `before`. The
/// caller makes sure at least one is given.
pub(crate) fn clear_logs(
    dialect: Dialect,
    component: Option<String>,
    before: Option<DateTime<Utc>>,
) -> (String, Filters) {
    let mut filters = Filters::new(dialect);
    if let Some(component) = component {
        filters.condition("component = {}", Param::Text(component));
    }
    if let Some(before) = before {
        filters.condition("created_at < {}", Param::Time(before));
    }
    debug_assert!(!filters.params.is_empty(), "clear_logs without a filter would delete every log");
    (format!("DELETE FROM logs {}", filters.where_clause()), filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogLevel;

    #[test]
    fn shared_statements_hold_no_dollar_but_placeholders() {
        for sql in [
            INSERT_CONVERSATION,
            TOUCH_CONVERSATION,
            LAST_TURN,
            INSERT_MESSAGE,
            SELECT_CONVERSATION,
            SELECT_MESSAGES,
            COUNT_MESSAGES,
            DELETE_CONVERSATION,
            SELECT_CONTEXT,
            SELECT_ACTIVE_CONTEXT,
            LIST_CONTEXTS,
            DEACTIVATE_OTHER_CONTEXTS,
            UPSERT_CONTEXT,
            DELETE_CONTEXT,
            LOG_TOTALS,
            LOG_COUNTS_BY_LEVEL,
            LOG_COUNTS_BY_COMPONENT,
        ] {
            for (at, _) in sql.match_indices('$') {
                assert!(sql[at + 1..].starts_with(|c: char| c.is_ascii_digit()), "{sql}");
            }
            assert!(!Dialect::Sqlite.sql(sql).contains('$'), "{sql}");
        }
    }

    #[test]
    fn filters_number_their_placeholders_per_dialect() {
        let query = LogQuery {
            trace_id: Some("t".into()),
            component: None,
            min_level: Some(LogLevel::Warn),
            start: None,
            end: None,
            search: None,
            limit: 10,
        };
        for (dialect, expected) in [
            (Dialect::Postgres, "WHERE trace_id = $1 AND level_rank >= $2"),
            (Dialect::Sqlite, "WHERE trace_id = ?1 AND level_rank >= ?2"),
        ] {
            let mut filters = Filters::new(dialect);
            log_conditions(&mut filters, &query);
            assert_eq!(filters.where_clause(), expected);
            assert_eq!(filters.params, [Param::Text("t".into()), Param::Rank(LogLevel::Warn.rank())]);
        }
        assert_eq!(Filters::new(Dialect::Sqlite).where_clause(), "");
    }
}
