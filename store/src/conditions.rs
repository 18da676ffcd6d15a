//! A `WHERE` clause assembled from optional filters, with numbered `$N` binds, so a list query
//! with any combination of filters is one portable statement (no `($1 IS NULL OR …)` tricks
//! that keep PostgreSQL from using an index). Column names come from the code, never from
//! the request; every value is a bind.

use crate::page::Cursor;

/// A value bound to one `$N` placeholder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bind {
    /// A TEXT value.
    Text(String),
    /// A BIGINT value.
    Int(i64),
}

/// The conditions of a `WHERE` clause (joined by `AND`) and their binds, in placeholder order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// The placeholder for a new bind of `value`.
    fn placeholder(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// `column = value`.
    pub(crate) fn text_equals(&mut self, column: &'static str, value: &str) {
        let at = self.placeholder(Bind::Text(value.to_owned()));
        self.clauses.push(format!("{column} = {at}"));
    }

    /// `column >= value` (an inclusive lower bound).
    pub(crate) fn at_least(&mut self, column: &'static str, value: i64) {
        let at = self.placeholder(Bind::Int(value));
        self.clauses.push(format!("{column} >= {at}"));
    }

    /// `column < value` (an exclusive upper bound).
    pub(crate) fn below(&mut self, column: &'static str, value: i64) {
        let at = self.placeholder(Bind::Int(value));
        self.clauses.push(format!("{column} < {at}"));
    }

    /// The rows after `cursor` in the order `time_column DESC, id_column DESC`:
    /// `(time_column, id_column) < (cursor.at_ms, cursor.id)`.
    pub(crate) fn after_cursor(
        &mut self,
        time_column: &'static str,
        id_column: &'static str,
        cursor: &Cursor,
    ) {
        let at = self.placeholder(Bind::Int(cursor.at_ms));
        let id = self.placeholder(Bind::Text(cursor.id.clone()));
        self.clauses
            .push(format!("({time_column}, {id_column}) < ({at}, {id})"));
    }

    /// A placeholder for a value used after the `WHERE` clause (such as `LIMIT`).
    pub(crate) fn extra(&mut self, value: Bind) -> String {
        self.placeholder(value)
    }

    /// ` WHERE a AND b …`, or nothing when there are no conditions.
    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The binds, in placeholder order.
    pub(crate) fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

/// Binds every value of `$conditions` to the query `$query`, in order (a macro because the
/// query's type differs per backend inside `with_pool!`).
macro_rules! bind_all {
    ($query:expr, $conditions:expr) => {{
        let mut query = $query;
        for bind in $conditions.binds() {
            query = match bind {
                $crate::conditions::Bind::Text(text) => query.bind(text.clone()),
                $crate::conditions::Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_number_their_binds_in_order() {
        let mut conditions = Conditions::default();
        assert_eq!(conditions.where_sql(), "");
        conditions.text_equals("tenant_id", "a");
        conditions.at_least("started_at", 10);
        conditions.below("started_at", 20);
        conditions.after_cursor(
            "started_at",
            "id",
            &Cursor {
                at_ms: 15,
                id: "x".to_owned(),
            },
        );
        let limit = conditions.extra(Bind::Int(3));
        assert_eq!(
            conditions.where_sql(),
            " WHERE tenant_id = $1 AND started_at >= $2 AND started_at < $3 \
             AND (started_at, id) < ($4, $5)"
        );
        assert_eq!(limit, "$6");
        assert_eq!(
            conditions.binds(),
            [
                Bind::Text("a".to_owned()),
                Bind::Int(10),
                Bind::Int(20),
                Bind::Int(15),
                Bind::Text("x".to_owned()),
                Bind::Int(3),
            ]
        );
    }
}
