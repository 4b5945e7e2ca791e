//! The Go programs the differential tests compare with (`tests/go-decoder`, `tests/go-reference`)
//! read one JSON string per line on stdin and answer one JSON value per line on stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Sends every input to the Go program `binary`, one JSON line each, and returns its answers in
/// the same order.
pub fn answer_all(binary: &Path, inputs: &[String]) -> Vec<Value> {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = inputs
        .iter()
        .map(|i| serde_json::to_string(i).expect("string") + "\n")
        .collect();
    // Written from another thread: the program answers while it reads, and both pipes are finite.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).expect("write"));
    let lines: Vec<Value> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map(|line| serde_json::from_str(&line.expect("line")).expect("JSON line"))
        .collect();
    writer.join().expect("writer");
    assert!(child.wait().expect("wait").success());
    assert_eq!(lines.len(), inputs.len());
    lines
}
