//! Multi-row inserts with bound values, shared by the journal, the work log
//! and the projection.

use sqlx::Any;

use super::Result;

/// A value to bind.
pub(super) enum Val {
    I(i64),
    S(String),
    B(Vec<u8>),
    Null,
}

impl Val {
    /// Binds this value as the query's next parameter.
    pub(super) fn bind(self, q: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Self::I(i) => q.bind(i),
            Self::S(s) => q.bind(s),
            Self::B(b) => q.bind(b),
            Self::Null => q.bind(None::<String>),
        }
    }
}

/// A query on any database, with its parameters.
type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// The most rows [`insert`] puts in one statement.
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// `head VALUES (..), (..) tail` for rows of `width` values, at most
/// [`ROWS_PER_STATEMENT`] rows a statement (under SQLite's and PostgreSQL's
/// parameter limits).
pub(super) async fn insert(
    conn: &mut sqlx::AnyConnection,
    postgres: bool,
    head: &str,
    width: usize,
    values: &mut Vec<Val>,
    tail: &str,
) -> Result<()> {
    use std::fmt::Write as _;
    // Drained, not consumed: a caller that inserts again reuses the buffer.
    debug_assert_eq!(values.len() % width, 0, "whole rows of {width} values");
    let mut values = values.drain(..);
    while values.len() >= width {
        let rows = (values.len() / width).min(ROWS_PER_STATEMENT);
        let mut sql = String::with_capacity(head.len() + rows * width * 6);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for col in 0..width {
                let sep = if col == 0 { "" } else { ", " };
                if postgres {
                    let _ = write!(sql, "{sep}${}", row * width + col + 1);
                } else {
                    let _ = write!(sql, "{sep}?");
                }
            }
            sql.push(')');
        }
        sql.push_str(tail);
        // Only placeholders are formatted in; the values are bound. The
        // statements of small batches (the acknowledgement path: a few to a
        // few dozen rows) recur, so the connection keeps them prepared.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows <= 64);
        for v in values.by_ref().take(rows * width) {
            q = v.bind(q);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
