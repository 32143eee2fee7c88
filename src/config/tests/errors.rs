//! Every problem reported at once, each with its line, in file order.

use std::path::Path;

use super::*;

#[test]
fn two_unknown_keys_a_bad_size_and_a_bad_duration_give_four_lines() {
    let text = r#"[origin]
url = "http://127.0.0.1:9000"
colour = "blue"
connect_timeout = "soon"

[cache]
memory = "lots"

[sever]
listen = ["127.0.0.1:8080"]
"#;
    let errors = errs(text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:3: origin.colour: unknown key"), "{}", errors[0]);
    assert!(errors[1].starts_with("t.toml:4: origin.connect_timeout: invalid duration \"soon\""), "{}", errors[1]);
    assert!(errors[2].starts_with("t.toml:7: cache.memory: invalid size \"lots\""), "{}", errors[2]);
    assert!(errors[3].starts_with("t.toml:9: sever: unknown key"), "{}", errors[3]);
    assert!(errors[3].contains("`server`"), "the expected keys are listed: {}", errors[3]);
}

#[test]
fn error_display_is_file_line_key_reason() {
    let e = ConfigError { file: "a.toml".into(), line: 7, key: "cache.memory".into(), reason: "bad".into() };
    assert_eq!(e.to_string(), "a.toml:7: cache.memory: bad");
    let all = ConfigErrors(vec![e.clone(), ConfigError { line: 9, ..e }]);
    assert_eq!(all.to_string(), "a.toml:7: cache.memory: bad\na.toml:9: cache.memory: bad");
}

#[test]
fn unknown_keys_in_nested_tables_and_arrays_are_found() {
    let text = r#"[origin]
url = "http://127.0.0.1:9000"

[[server.tls]]
cert = "a.pem"
key = "a.key"
password = "x"

[[pops]]
name = "p"
nodes = [
  { id = "test-host", url = "http://127.0.0.1:8081", weight = 3 },
]
"#;
    let errors = errs(text);
    let unknown: Vec<&String> = errors.iter().filter(|e| e.contains("unknown key")).collect();
    assert_eq!(unknown.len(), 2, "{errors:#?}");
    assert!(unknown[0].starts_with("t.toml:7: server.tls[0].password: unknown key"), "{}", unknown[0]);
    assert!(unknown[1].starts_with("t.toml:12: pops[0].nodes[0].weight: unknown key"), "{}", unknown[1]);
}

#[test]
fn a_value_of_the_wrong_type_is_reported_once() {
    let text = "[origin]\nurl = 5\n";
    one_err(text, "t.toml:2: origin.url: invalid type: integer `5`, expected a string");
    let text = format!("{ORIGIN}[server]\nlisten = \"127.0.0.1:8080\"\n");
    one_err(&text, "t.toml:4: server.listen: invalid type: string \"127.0.0.1:8080\", expected an array");
    let text = format!("node = 3\n{ORIGIN}");
    one_err(&text, "t.toml:1: node: invalid type: integer `3`, expected a table");
    let text = format!("{ORIGIN}[compression]\nalgorithms = [\"br\", 1]\n");
    one_err(&text, "t.toml:4: compression.algorithms: invalid type: integer `1`");
    let text = format!("{ORIGIN}[throttle]\nclient_rate = \"fast\"\n");
    one_err(&text, "t.toml:4: throttle.client_rate: invalid type: string \"fast\"");
}

#[test]
fn structural_and_value_problems_come_out_in_file_order() {
    let text = r#"[cache]
memory = 0
[origin]
url = "ftp://example.com"
nope = 1
[server]
listen = ["x"]
"#;
    let errors = errs(text);
    let lines: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap_or("")).collect();
    assert_eq!(lines, ["t.toml:2", "t.toml:4", "t.toml:5", "t.toml:7"], "{errors:#?}");
}

#[test]
fn syntax_errors_name_their_line() {
    let text = "[origin]\nurl = \"http://127.0.0.1:9000\"\nconnect_timeout = = \"2s\"\n";
    let errors = errs(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:3: origin.connect_timeout: syntax error"), "{}", errors[0]);

    let text = "[origin]\nurl = \"http://127.0.0.1:9000\n[cache]\nmemory = \"1MiB\"\n[server\n";
    let errors = errs(text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:2: "), "{}", errors[0]);
    assert!(errors[1].starts_with("t.toml:5: "), "{}", errors[1]);
    assert!(errors.iter().all(|e| e.contains("syntax error")), "{errors:#?}");
}

#[test]
fn duplicate_keys_are_syntax_errors() {
    let text = "[origin]\nurl = \"http://127.0.0.1:9000\"\nurl = \"http://127.0.0.1:9001\"\n";
    let errors = errs(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:3: "), "{}", errors[0]);
}

#[test]
fn a_missing_file_is_one_error_at_line_zero() {
    let path = Path::new("/nonexistent/edgecache.toml");
    let Err(errors) = load(path) else { panic!("a missing file must not load") };
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].line, 0);
    assert!(errors.0[0].to_string().starts_with("/nonexistent/edgecache.toml:0: file: cannot read"), "{}", errors.0[0]);
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, format!("{ORIGIN}[cache]\nmemory = \"1 parsec\"\n"))?;
    let Err(errors) = load(&path) else { panic!("a bad size must not load") };
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].file, path.display().to_string());
    assert_eq!(errors.0[0].line, 4);
    std::fs::write(&path, ORIGIN)?;
    let config = load(&path).map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(config.origin.url.map(|u| u.to_string()).as_deref(), Some("http://127.0.0.1:9000/"));
    Ok(())
}

#[test]
fn a_section_written_as_an_array_is_named_as_such() {
    let text = format!("{ORIGIN}[[node]]\nid = \"a\"\n");
    one_err(&text, "t.toml:3: node: expected a table ([node]), not an array");
    one_err(&format!("server = []\n{ORIGIN}"), "t.toml:1: server: expected a table ([server]), not an array");
}

#[test]
fn odd_shapes_give_placed_errors() {
    let cases = [
        "[[node]]\nid = \"a\"\n",
        "[server.tls]\ncert = \"a\"\n",
        "pops = 5\n",
        "[pops]\nname = \"x\"\n",
        "server = []\n",
        "[origin]\nurl = \"http://127.0.0.1:9000\"\n[origin.extra]\nx = 1\n",
        "[origin]\nurl = \"http://127.0.0.1:9000\"\n[cache]\nmemory = 1.5\n",
        "[origin]\nurl = \"http://127.0.0.1:9000\"\n[compression]\nalgorithms = [[\"br\"]]\n",
        "[origin]\nurl = \"http://127.0.0.1:9000\"\n[admin]\ntoken = 1979-05-27\n",
        "[origin]\nurl = \"http://127.0.0.1:9000\"\n\"ünï\" = 1\n",
        "[[pops]]\nname = \"p\"\nnodes = [\"a\"]\n",
    ];
    for text in cases {
        let errors = match parse_in(text, Path::new("/")) {
            Ok(c) => panic!("{text:?} must be rejected, got {c:?}"),
            Err(e) => e.0,
        };
        assert!(!errors.is_empty());
        let max_line = text.lines().count();
        for e in &errors {
            assert!((1..=max_line).contains(&e.line) && !e.key.is_empty(), "{text:?}: {e}");
        }
    }
}

#[test]
fn an_empty_file_only_lacks_the_origin() {
    for text in ["", "# nothing but a comment\n"] {
        let errors = errs(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("t.toml:1: origin.url: required"), "{}", errors[0]);
    }
}
