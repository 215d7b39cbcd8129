//! Positions in source text. Cedar reports where an error is as a byte offset; people read lines and
//! columns. Cedar also cannot say which policy a syntax error belongs to (the parse failed, so there are
//! no policies yet), so a light scanner splits the text into statements to attribute it.
//!
//! The scanner never decides what a policy means: Cedar's parser does. It only finds where statements
//! begin and end and reads their `@id` annotation, and a mistake here could only misplace a diagnostic.

use std::ops::Range;

/// One statement of a policy text: a policy or a template, from its first token to its `;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    /// Byte range from the statement's first token (after whitespace and comments) to its end.
    pub(crate) span: Range<usize>,
    /// The value of its `@id("…")` annotation, if it has one.
    pub(crate) id_annotation: Option<String>,
}

impl Statement {
    /// The id Cedar gives this statement: its `@id` annotation when present, else its positional id.
    pub(crate) fn policy_id(&self, index: usize) -> String {
        self.id_annotation.clone().unwrap_or_else(|| positional_id(index))
    }
}

/// The id Cedar's parser assigns to the statement at `index` (counting policies and templates together).
pub(crate) fn positional_id(index: usize) -> String {
    format!("policy{index}")
}

/// The statement index in a positional id (`policy7` → 7).
pub(crate) fn positional_index(id: &str) -> Option<usize> {
    id.strip_prefix("policy")?.parse().ok()
}

/// 1-based line and column (in characters) of a byte offset; an offset past the end or inside a
/// character counts as the nearest character boundary before it.
pub(crate) fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut cut = offset.min(text.len());
    while !text.is_char_boundary(cut) {
        cut = cut.saturating_sub(1);
    }
    let before = text.get(..cut).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    (to_u32(line), to_u32(column))
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Splits a Cedar policy text into statements at each `;` outside string literals and `//` comments.
/// Trailing text with no `;` still counts as a statement, so that an error in it can be attributed.
pub(crate) fn statements(text: &str) -> Vec<Statement> {
    let mut found = Vec::new();
    let mut start = 0;
    let mut state = Lex::Code;
    let mut previous_slash = false;
    for (index, byte) in text.bytes().enumerate() {
        let slash = state == Lex::Code && byte == b'/' && !previous_slash;
        state = match (state, byte) {
            (Lex::Comment, b'\n') => Lex::Code,
            (Lex::Comment, _) => Lex::Comment,
            (Lex::String, b'\\') => Lex::Escape,
            (Lex::String, b'"') => Lex::Code,
            (Lex::String, _) | (Lex::Escape, _) => Lex::String,
            (Lex::Code, b'"') => Lex::String,
            (Lex::Code, b'/') if previous_slash => Lex::Comment,
            (Lex::Code, b';') => {
                found.push(statement(text, start..index + 1));
                start = index + 1;
                Lex::Code
            }
            (Lex::Code, _) => Lex::Code,
        };
        previous_slash = slash;
    }
    if skip_trivia(text, start) < text.len() {
        found.push(statement(text, start..text.len()));
    }
    found
}

/// Where the scanner is: in code, inside a string literal (just after a backslash), or in a comment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    String,
    Escape,
    Comment,
}

fn statement(text: &str, range: Range<usize>) -> Statement {
    let first = skip_trivia(text, range.start).min(range.end);
    let body = text.get(first..range.end).unwrap_or_default();
    Statement { span: first..range.end, id_annotation: id_annotation(body) }
}

/// The offset of the first byte at or after `from` that is neither whitespace nor in a `//` comment.
fn skip_trivia(text: &str, from: usize) -> usize {
    let mut position = from;
    loop {
        let rest = text.get(position..).unwrap_or_default();
        let trimmed = rest.trim_start();
        position += rest.len() - trimmed.len();
        if !trimmed.starts_with("//") {
            return position;
        }
        position += trimmed.find('\n').unwrap_or(trimmed.len());
    }
}

/// Reads the leading annotations of a statement (`@key` or `@key("value")`) and returns the `@id` value.
fn id_annotation(statement: &str) -> Option<String> {
    let mut rest = statement;
    let mut id = None;
    while let Some(after_at) = rest.strip_prefix('@') {
        let key_len = after_at.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after_at.len());
        let (key, after_key) = after_at.split_at(key_len);
        rest = after_key.trim_start();
        if let Some(after_paren) = rest.strip_prefix('(') {
            let (value, after_value) = string_literal(after_paren.trim_start())?;
            rest = after_value.trim_start().strip_prefix(')')?.trim_start();
            if key == "id" && id.is_none() {
                id = Some(value);
            }
        }
        rest = rest.get(skip_trivia(rest, 0)..).unwrap_or_default();
    }
    id
}

/// A Cedar string literal at the start of `text`, unescaping `\"` and `\\` (other escapes are kept as
/// written: the value is only used to name a policy in a diagnostic).
fn string_literal(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, body.get(index + 1..).unwrap_or_default())),
            '\\' => match chars.next() {
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        statements(text).iter().enumerate().map(|(index, statement)| statement.policy_id(index)).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let text = "// a; comment\npermit(principal, action, resource) when { \"a;b\" like \"*\\\";\" };\n\
                    @id(\"second\") forbid(principal, action, resource);\n// trailing; comment\n";
        assert_eq!(ids(text), ["policy0", "second"]);
        let first = &statements(text)[0];
        assert!(text[first.span.clone()].starts_with("permit"));
        assert!(text[first.span.clone()].ends_with("};"));
    }

    #[test]
    fn unterminated_trailing_statement_counts() {
        assert_eq!(ids("permit(principal, action, resource);\n@id(\"x\") permit(principal"), ["policy0", "x"]);
        assert_eq!(ids("  \n// only a comment\n"), Vec::<String>::new());
    }

    #[test]
    fn reads_id_among_other_annotations() {
        let text =
            "@advice(\"no \\\"quotes\\\"\")\n@id(\"a \\\"quoted\\\" id\") @flag permit(principal, action, resource);";
        assert_eq!(ids(text), ["a \"quoted\" id"]);
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 6), (2, 3), "inside é counts as its start");
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 999), (3, 2));
    }

    #[test]
    fn positional_ids_round_trip() {
        assert_eq!(positional_index(&positional_id(12)), Some(12));
        assert_eq!(positional_index("custom"), None);
    }
}
