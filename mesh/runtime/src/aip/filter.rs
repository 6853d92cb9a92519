//! An AIP-160 filter subset, parsed into a tree and rendered as a parameterised SQL condition over a
//! whitelist of fields. Supported: comparisons `= != < <= > >=`, `:` (has: substring on text),
//! `AND`, `OR` (binds tighter than AND, as AIP-160 says), `NOT` / `-`, parentheses, implicit AND
//! between terms, quoted strings and bare words, `*` wildcards in `=` on text.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

/// The type of a filterable field.
#[derive(Debug, Clone, Copy)]
pub enum FieldKind {
    /// Text; `:` is a case-insensitive substring match, `=` accepts `*` wildcards.
    Text,
    /// A timestamp written as RFC 3339 (`"2026-01-02T03:04:05Z"`).
    Timestamp,
    /// An enum stored as its number and written by its name.
    Enum(&'static [(&'static str, i32)]),
    /// A 64-bit integer.
    Integer,
    /// `true` or `false`.
    Bool,
    /// A text array; only `:` (has) applies: `labels:"bug"` keeps rows whose array holds `bug`.
    TextArray,
}

/// One field a filter may name and the SQL expression it reads.
#[derive(Debug, Clone, Copy)]
pub struct FilterField {
    /// Name in the filter text.
    pub name: &'static str,
    /// SQL expression (a column, usually).
    pub sql: &'static str,
    /// Type of the field.
    pub kind: FieldKind,
}

/// A parse or type error, worded for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
    Bool(bool),
    Like(String),
    Element(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        sql: &'static str,
        op: Op,
        value: Value,
    },
}

/// A parsed, type-checked filter ready to be rendered as SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Option<Expr>,
}

impl Filter {
    /// Parses `text` against `fields`. An empty or blank text matches everything.
    pub fn parse(text: &str, fields: &[FilterField]) -> Result<Self, FilterError> {
        let tokens = lex(text)?;
        if tokens.is_empty() {
            return Ok(Self { expr: None });
        }
        let mut parser = Parser {
            tokens,
            pos: 0,
            fields,
            depth: 0,
        };
        let expr = parser.expression()?;
        if let Some(token) = parser.tokens.get(parser.pos) {
            return Err(FilterError(format!("unexpected {token}")));
        }
        Ok(Self { expr: Some(expr) })
    }

    /// True when the filter restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Appends ` AND (<condition>)` to a query whose WHERE clause is already open.
    pub fn push_and(&self, query: &mut QueryBuilder<'_, Postgres>) {
        if let Some(expr) = &self.expr {
            query.push(" AND (");
            push_expr(expr, query);
            query.push(")");
        }
    }
}

const MAX_DEPTH: usize = 32;

fn push_expr(expr: &Expr, query: &mut QueryBuilder<'_, Postgres>) {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            query.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    query.push(joiner);
                }
                push_expr(item, query);
            }
            query.push(")");
        }
        Expr::Not(inner) => {
            query.push("NOT (");
            push_expr(inner, query);
            query.push(")");
        }
        Expr::Cmp {
            sql,
            value: Value::Element(element),
            ..
        } => {
            query.push_bind(element.clone());
            query.push(" = ANY(");
            query.push(*sql);
            query.push(")");
        }
        Expr::Cmp { sql, op, value } => {
            query.push(*sql);
            let op = match (op, value) {
                (Op::Eq, Value::Like(_)) => " LIKE ",
                (Op::Ne, Value::Like(_)) => " NOT LIKE ",
                (Op::Has, _) => " ILIKE ",
                (Op::Eq, _) => " = ",
                (Op::Ne, _) => " IS DISTINCT FROM ",
                (Op::Lt, _) => " < ",
                (Op::Le, _) => " <= ",
                (Op::Gt, _) => " > ",
                (Op::Ge, _) => " >= ",
            };
            query.push(op);
            match value.clone() {
                Value::Text(s) | Value::Like(s) | Value::Element(s) => query.push_bind(s),
                Value::Time(t) => query.push_bind(t),
                Value::Int(i) => query.push_bind(i),
                Value::Bool(b) => query.push_bind(b),
            };
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Op(Op),
    Minus,
    Quoted(String),
    Word(String),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::LParen => write!(f, "`(`"),
            Token::RParen => write!(f, "`)`"),
            Token::Op(op) => write!(f, "operator {op:?}"),
            Token::Minus => write!(f, "`-`"),
            Token::Quoted(s) => write!(f, "string \"{s}\""),
            Token::Word(w) => write!(f, "`{w}`"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::LParen);
            }
            ')' => {
                chars.next();
                tokens.push(Token::RParen);
            }
            ':' => {
                chars.next();
                tokens.push(Token::Op(Op::Has));
            }
            '=' => {
                chars.next();
                tokens.push(Token::Op(Op::Eq));
            }
            '!' => {
                chars.next();
                if chars.next_if(|&(_, c)| c == '=').is_none() {
                    return Err(FilterError(format!("`!` at {i} must be followed by `=`")));
                }
                tokens.push(Token::Op(Op::Ne));
            }
            '<' | '>' => {
                chars.next();
                let eq = chars.next_if(|&(_, c)| c == '=').is_some();
                tokens.push(Token::Op(match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    (_, true) => Op::Ge,
                }));
            }
            '-' if tokens.last().is_none_or(|t| !matches!(t, Token::Op(_))) => {
                chars.next();
                tokens.push(Token::Minus);
            }
            '"' | '\'' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    match ch {
                        '\\' => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => break,
                        },
                        ch if ch == c => {
                            closed = true;
                            break;
                        }
                        ch => value.push(ch),
                    }
                }
                if !closed {
                    return Err(FilterError(format!("string starting at {i} is not closed")));
                }
                tokens.push(Token::Quoted(value));
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some((_, ch)) = chars.next_if(|&(_, ch)| is_word_char(ch)) {
                    word.push(ch);
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(FilterError(format!(
                    "unexpected character `{other}` at {i}"
                )));
            }
        }
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '/' | '+')
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    fields: &'a [FilterField],
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == keyword)
    }

    // expression := sequence { AND sequence }
    fn expression(&mut self) -> Result<Expr, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError("filter is nested too deeply".to_owned()));
        }
        let mut items = vec![self.sequence()?];
        while self.is_keyword("AND") {
            self.pos += 1;
            items.push(self.sequence()?);
        }
        self.depth -= 1;
        Ok(flatten(items, Expr::And))
    }

    // sequence := factor { factor }  (implicit AND)
    fn sequence(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.factor()?];
        while let Some(token) = self.peek() {
            let starts_term = match token {
                Token::LParen | Token::Minus | Token::Quoted(_) => true,
                Token::Word(w) => w != "AND" && w != "OR",
                Token::RParen | Token::Op(_) => false,
            };
            if !starts_term {
                break;
            }
            items.push(self.factor()?);
        }
        Ok(flatten(items, Expr::And))
    }

    // factor := term { OR term }
    fn factor(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.term()?];
        while self.is_keyword("OR") {
            self.pos += 1;
            items.push(self.term()?);
        }
        Ok(flatten(items, Expr::Or))
    }

    // term := [NOT | -] simple
    fn term(&mut self) -> Result<Expr, FilterError> {
        if self.is_keyword("NOT") || matches!(self.peek(), Some(Token::Minus)) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.simple()?)));
        }
        self.simple()
    }

    // simple := '(' expression ')' | field comparator value
    fn simple(&mut self) -> Result<Expr, FilterError> {
        match self.next() {
            Some(Token::LParen) => {
                let expr = self.expression()?;
                match self.next() {
                    Some(Token::RParen) => Ok(expr),
                    Some(other) => Err(FilterError(format!("expected `)`, found {other}"))),
                    None => Err(FilterError("missing `)`".to_owned())),
                }
            }
            Some(Token::Word(name)) => {
                let field = self.fields.iter().find(|f| f.name == name).ok_or_else(|| {
                    let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                    FilterError(format!(
                        "unknown field `{name}`; filterable fields: {}",
                        known.join(", ")
                    ))
                })?;
                let op = match self.next() {
                    Some(Token::Op(op)) => op,
                    Some(other) => {
                        return Err(FilterError(format!(
                            "expected a comparison after `{name}`, found {other}"
                        )));
                    }
                    None => return Err(FilterError(format!("`{name}` needs a comparison"))),
                };
                let raw = match self.next() {
                    Some(Token::Quoted(s)) => (s, true),
                    Some(Token::Word(w)) => (w, false),
                    Some(other) => {
                        return Err(FilterError(format!(
                            "expected a value after `{name}`, found {other}"
                        )));
                    }
                    None => return Err(FilterError(format!("`{name}` needs a value"))),
                };
                let value = typed_value(field, op, &raw.0)?;
                Ok(Expr::Cmp {
                    sql: field.sql,
                    op,
                    value,
                })
            }
            Some(other) => Err(FilterError(format!("unexpected {other}"))),
            None => Err(FilterError("filter ends too early".to_owned())),
        }
    }
}

fn flatten(mut items: Vec<Expr>, wrap: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.remove(0)
    } else {
        wrap(items)
    }
}

fn typed_value(field: &FilterField, op: Op, raw: &str) -> Result<Value, FilterError> {
    let name = field.name;
    match field.kind {
        FieldKind::Text => match op {
            Op::Has => Ok(Value::Like(format!("%{}%", escape_like(raw)))),
            Op::Eq | Op::Ne if raw.contains('*') => {
                Ok(Value::Like(escape_like(raw).replace('*', "%")))
            }
            _ => Ok(Value::Text(raw.to_owned())),
        },
        FieldKind::Timestamp => {
            if op == Op::Has {
                return Err(FilterError(format!(
                    "`:` does not apply to timestamp `{name}`"
                )));
            }
            DateTime::parse_from_rfc3339(raw)
                .map(|t| Value::Time(t.with_timezone(&Utc)))
                .map_err(|_| {
                    FilterError(format!(
                        "`{name}` needs an RFC 3339 timestamp such as \"2026-01-31T12:00:00Z\", got `{raw}`"
                    ))
                })
        }
        FieldKind::Enum(values) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(FilterError(format!("`{name}` supports only = and !=")));
            }
            values
                .iter()
                .find(|(n, _)| *n == raw)
                .map(|(_, v)| Value::Int(i64::from(*v)))
                .ok_or_else(|| {
                    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
                    FilterError(format!(
                        "`{raw}` is not a value of `{name}`; one of {}",
                        names.join(", ")
                    ))
                })
        }
        FieldKind::Integer => {
            if op == Op::Has {
                return Err(FilterError(format!(
                    "`:` does not apply to number `{name}`"
                )));
            }
            raw.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| FilterError(format!("`{name}` needs an integer, got `{raw}`")))
        }
        FieldKind::TextArray => {
            if op != Op::Has {
                return Err(FilterError(format!(
                    "`{name}` is a list: use `{name}:\"value\"`"
                )));
            }
            Ok(Value::Element(raw.to_owned()))
        }
        FieldKind::Bool => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(FilterError(format!("`{name}` supports only = and !=")));
            }
            match raw {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(FilterError(format!(
                    "`{name}` needs true or false, got `{raw}`"
                ))),
            }
        }
    }
}

fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
