//! Full-text search over the notes a caller can read: PostgreSQL's `websearch_to_tsquery` syntax
//! (words, `"phrases"`, `or`, `-exclusion`) against the notes' stored `tsvector` (title weighted
//! above body, GIN-indexed), ranked with `ts_rank`, with a snippet of the body around the matched
//! words. Which notes a caller can read is part of the one query: their own, those shared with
//! them, and those of the projects they belong to; a note never comes back otherwise.

use sqlx::{Postgres, QueryBuilder};
use taskmesh_mesh::aip::Filter;

use super::{COLUMNS, NoteRow, Store, StoreError, user_id};

/// Marks the snippet's matches before escaping: characters of Unicode's private use area, taken
/// out of the text first so a note cannot forge them.
const START: char = '\u{E000}';
const STOP: char = '\u{E001}';

/// A note found, with its rank and snippet.
#[derive(Debug, Clone)]
pub struct Found {
    /// The note.
    pub note: NoteRow,
    /// How well it matches.
    pub rank: f32,
    /// Escaped HTML text around the matches, which are wrapped in `<mark>`.
    pub snippet: String,
}

#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    note: NoteRow,
    rank: f32,
    snippet: String,
}

impl Store {
    /// The notes `caller` (`users/{user}`) can read that match `query` and `filter`, best first:
    /// `limit` of them after skipping `offset`. Deleted notes are never found.
    pub async fn search(
        &self,
        caller: &str,
        query: &str,
        filter: Option<&Filter>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Found>, StoreError> {
        let mut sql =
            QueryBuilder::<Postgres>::new("WITH q AS (SELECT websearch_to_tsquery('english', ");
        sql.push_bind(query.to_owned());
        sql.push(format!(
            ") AS q) SELECT {COLUMNS}, ts_rank(n.search, q.q) AS rank, \
             ts_headline('english', translate(n.body, E'\\uE000\\uE001', ''), q.q, \
               'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=30, MinWords=12, \
                MaxFragments=2, FragmentDelimiter=\" … \"') AS snippet \
             FROM notes n, q WHERE n.search @@ q.q AND n.delete_time IS NULL AND ("
        ));
        sql.push("n.parent = ");
        sql.push_bind(caller.to_owned());
        sql.push(
            " OR EXISTS (SELECT 1 FROM note_shares s WHERE s.note_id = n.note_id AND s.user_id = ",
        );
        sql.push_bind(user_id(caller).to_owned());
        sql.push(
            ") OR (n.project_id <> '' AND EXISTS (SELECT 1 FROM members m \
                  WHERE m.role > 0 AND m.project_id = n.project_id AND m.user_id = ",
        );
        sql.push_bind(user_id(caller).to_owned());
        sql.push(")))");
        if let Some(filter) = filter {
            filter.push_and(&mut sql);
        }
        sql.push(" ORDER BY rank DESC, n.update_time DESC, n.note_id LIMIT ");
        sql.push_bind(limit);
        sql.push(" OFFSET ");
        sql.push_bind(offset);
        let rows: Vec<FoundRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|row| Found {
                snippet: marked(&row.snippet),
                note: row.note,
                rank: row.rank,
            })
            .collect())
    }
}

/// `snippet` escaped as HTML text, its matches (between [`START`] and [`STOP`]) in `<mark>`.
fn marked(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 32);
    for c in snippet.chars() {
        match c {
            START => out.push_str("<mark>"),
            STOP => out.push_str("</mark>"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_around_their_marks() {
        assert_eq!(
            marked("a <b> \u{E000}word\u{E001} & \"c\""),
            "a &lt;b&gt; <mark>word</mark> &amp; &quot;c&quot;"
        );
    }
}
