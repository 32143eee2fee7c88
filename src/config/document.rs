//! The structural pass: TOML syntax, unknown keys and wrong value types, every one of them, with its place.
//!
//! serde stops at the first error, so the text is first parsed into a spanned document (`toml::de::DeTable`). Then
//! it is deserialized into [`FileConfig`]; when that fails, the error's span names the offending entry, which is
//! recorded as a [`Problem`] and removed from the document, and deserializing is tried again. The loop ends with a
//! `FileConfig` made of everything that was well-formed, plus one problem per bad entry. The serde types in
//! `file.rs` stay the one description of the file's shape.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::file::FileConfig;

/// One problem, placed by byte offset into the text (turned into a line when reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Byte offset of the offending key or value; 0 when it has no better place.
    pub pos: usize,
    /// Dotted key, e.g. `pops[1].nodes[0].url`.
    pub key: String,
    /// What is wrong, for the operator.
    pub reason: String,
}

impl Problem {
    /// A problem at `pos` about `key`.
    pub fn new(pos: usize, key: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem { pos, key: key.into(), reason: reason.into() }
    }
}

/// What the structural pass found.
#[derive(Debug, Default)]
pub struct Document {
    /// The well-formed part of the file; `None` when the TOML itself is broken.
    pub file: Option<FileConfig>,
    /// Syntax errors, unknown keys and values of the wrong type.
    pub problems: Vec<Problem>,
    /// Keys removed because they were bad; later checks skip them so a bad key is reported once.
    pub removed: Vec<String>,
}

/// One step of a path into the document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Most bad entries removed before giving up; far more than any real file has.
const MAX_ROUNDS: usize = 1000;

/// Parses `text` and checks its shape against [`FileConfig`].
pub fn read(text: &str) -> Document {
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // One error per line: the parser's follow-up complaints about the rest of a broken line are noise.
        let mut problems: Vec<Problem> = Vec::new();
        for err in &syntax_errors {
            let problem = syntax_problem(&doc, text, err);
            if problems.last().is_none_or(|last| line_start(text, last.pos) != line_start(text, problem.pos)) {
                problems.push(problem);
            }
        }
        return Document { file: None, problems, removed: Vec::new() };
    }
    let span = doc.span();
    let mut root = doc.into_inner();
    let mut out = Document::default();
    // `[[pops]]` is the one array of tables at the top; serde's words for `[[node]]` would be confusing.
    let arrays: Vec<(String, usize)> = root
        .iter()
        .filter(|(k, v)| k.get_ref() != "pops" && matches!(v.get_ref(), DeValue::Array(_)))
        .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
        .collect();
    for (key, pos) in arrays {
        let reason = format!("expected a table ([{key}]), not an array");
        out.problems.push(Problem::new(pos, key.clone(), reason));
        root.remove(key.as_str());
        out.removed.push(key);
    }
    for _ in 0..MAX_ROUNDS {
        let attempt = Spanned::new(span.clone(), root.clone());
        let err = match FileConfig::deserialize(toml::de::Deserializer::from(attempt)) {
            Ok(file) => {
                out.file = Some(file);
                return out;
            }
            Err(err) => err,
        };
        let at = err.span().unwrap_or(0..0);
        let Some(path) = locate(&root, &at) else {
            out.problems.push(Problem::new(at.start, "", reword(err.message())));
            return out;
        };
        let key = dotted(&path);
        out.problems.push(Problem::new(at.start, key.clone(), reword(err.message())));
        out.removed.push(key);
        remove(&mut root, &path);
    }
    out
}

/// A syntax error, named by the key on its line when there is one.
fn syntax_problem(doc: &Spanned<DeTable<'_>>, text: &str, err: &toml::de::Error) -> Problem {
    let pos = err.span().map_or(0, |s| s.start).min(text.len());
    let line_start = line_start(text, pos);
    let line_end = text.as_bytes()[pos..].iter().position(|&b| b == b'\n').map_or(text.len(), |i| pos + i);
    let mut best = None;
    walk(doc.get_ref(), &mut Vec::new(), &mut |path, key, _| {
        if (line_start..line_end).contains(&key.start) {
            best = Some(dotted(path));
        }
    });
    let message = err.message().trim_end();
    Problem::new(pos, best.unwrap_or_else(|| "toml".to_string()), format!("syntax error: {message}"))
}

/// The byte offset where the line holding `pos` starts.
fn line_start(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// What [`walk`] calls for each entry: its path, the span of its key and the span of its value.
type Visit<'a> = dyn FnMut(&[Step], Range<usize>, Range<usize>) + 'a;

/// Calls `visit(path, key_span, value_span)` for every key of every table, depth first, arrays included.
fn walk(table: &DeTable<'_>, path: &mut Vec<Step>, visit: &mut Visit<'_>) {
    for (key, value) in table.iter() {
        path.push(Step::Key(key.get_ref().to_string()));
        visit(path, key.span(), value.span());
        walk_value(value.get_ref(), path, visit);
        path.pop();
    }
}

fn walk_value(value: &DeValue<'_>, path: &mut Vec<Step>, visit: &mut Visit<'_>) {
    match value {
        DeValue::Table(table) => walk(table, path, visit),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk_value(item.get_ref(), path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The deepest table entry whose key or value holds the start of `at`.
fn locate(root: &DeTable<'_>, at: &Range<usize>) -> Option<Vec<Step>> {
    let mut best: Option<(Vec<Step>, usize)> = None;
    walk(root, &mut Vec::new(), &mut |path, key, value| {
        let holds = |r: &Range<usize>| r.start <= at.start && (at.start < r.end || r.start == at.start);
        if holds(&key) || holds(&value) {
            let depth = path.len();
            if best.as_ref().is_none_or(|(_, d)| depth >= *d) {
                best = Some((path.to_vec(), depth));
            }
        }
    });
    best.map(|(path, _)| path)
}

/// Removes the entry at `path` (which ends with a key) from the document.
fn remove(root: &mut DeTable<'_>, path: &[Step]) {
    let Some((Step::Key(last), parents)) = path.split_last() else {
        return;
    };
    let mut table = root;
    let mut steps = parents.iter();
    while let Some(step) = steps.next() {
        let Step::Key(name) = step else { return };
        let Some(mut value) = table.get_mut(name.as_str()).map(|v| v.get_mut()) else {
            return;
        };
        // Follow array indexes until the next table.
        loop {
            match value {
                DeValue::Array(items) => {
                    let Some(Step::Index(i)) = steps.next() else {
                        return;
                    };
                    let Some(item) = items.get_mut(*i) else {
                        return;
                    };
                    value = item.get_mut();
                }
                DeValue::Table(t) => {
                    table = t;
                    break;
                }
                _ => return,
            }
        }
    }
    table.remove(last.as_str());
}

/// `pops[1].nodes[0].url` from a path.
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// serde's words in the words of a config file.
fn reword(message: &str) -> String {
    let message = message.trim_end();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return match rest.split_once(", ") {
            Some((_, expected)) => format!("unknown key; {expected}"),
            None => "unknown key".to_string(),
        };
    }
    let mut out = message.replace("expected a sequence", "expected an array");
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a table");
    }
    out
}
