//! docs/runbook.md's steps: each `<!-- step: NAME -->` followed by a ```` ```console ```` block of
//! commands (`$ ` lines, with their continuation lines and heredocs) and the output each prints
//! (`…` stands for any text within a line, or alone on its line for any lines).

use anyhow::{Result, bail};

#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub commands: Vec<DocCommand>,
}

#[derive(Clone, Debug)]
pub struct DocCommand {
    /// The command as typed (without `$ `), continuation lines and heredoc included.
    pub script: String,
    /// The lines it prints, as written.
    pub expected: Vec<String>,
    /// The line of the runbook the command starts on (for failure messages).
    pub line: usize,
}

impl DocCommand {
    /// A command shown failing: its output starts with kubectl's or helm's error.
    pub fn fails(&self) -> bool {
        self.expected
            .first()
            .is_some_and(|line| line.starts_with("Error") || line.starts_with("error:"))
    }
}

pub fn parse(markdown: &str) -> Result<Vec<Step>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i]
            .trim()
            .strip_prefix("<!-- step: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            i += 1;
            continue;
        };
        let name = name.trim().to_owned();
        i += 1;
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        if lines.get(i).map(|line| line.trim()) != Some("```console") {
            bail!(
                "runbook line {}: step {name} is not followed by a ```console block",
                i + 1
            );
        }
        i += 1;
        let mut commands: Vec<DocCommand> = Vec::new();
        while i < lines.len() && lines[i].trim() != "```" {
            let line = lines[i];
            if let Some(first) = line.strip_prefix("$ ") {
                let start = i + 1;
                let mut script = first.to_owned();
                i += 1;
                // Continuation lines, open quotes, heredocs.
                loop {
                    if let Some(end) = heredoc_end(&script)
                        && !script.lines().skip(1).any(|l| l == end)
                    {
                        if i >= lines.len() {
                            bail!("runbook line {start}: heredoc {end} never closed");
                        }
                        script.push('\n');
                        script.push_str(lines[i]);
                        i += 1;
                        continue;
                    }
                    if incomplete(&script) {
                        if i >= lines.len() || lines[i].trim() == "```" {
                            bail!("runbook line {start}: the command never ends");
                        }
                        script.push('\n');
                        script.push_str(lines[i]);
                        i += 1;
                        continue;
                    }
                    break;
                }
                commands.push(DocCommand {
                    script,
                    expected: Vec::new(),
                    line: start,
                });
                continue;
            }
            match commands.last_mut() {
                Some(command) => command.expected.push(line.to_owned()),
                None => bail!(
                    "runbook line {}: output before any command in step {name}",
                    i + 1
                ),
            }
            i += 1;
        }
        if commands.is_empty() {
            bail!("step {name} has no command");
        }
        steps.push(Step { name, commands });
        i += 1;
    }
    Ok(steps)
}

/// The delimiter of a heredoc the script opens (`<<'EOF'`, `<<EOF`), if any.
fn heredoc_end(script: &str) -> Option<String> {
    let first = script.lines().next()?;
    let (_, rest) = first.split_once("<<")?;
    let word = rest.trim_start_matches('-').trim();
    let word = word.split_whitespace().next()?;
    Some(word.trim_matches(|c| c == '\'' || c == '"').to_owned())
}

/// Whether the script's last line ends with `\`, or a quote is still open.
fn incomplete(script: &str) -> bool {
    if script.ends_with('\\') {
        return true;
    }
    let (mut single, mut double, mut escaped) = (false, false, false);
    // The heredoc's body does not count.
    let body_start =
        heredoc_end(script).map_or(script.len(), |_| script.find('\n').unwrap_or(script.len()));
    for c in script[..body_start].chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

/// Whether `actual` (the command's output, stdout and stderr) is what `expected` shows.
pub fn matches(expected: &[String], actual: &str) -> bool {
    let actual: Vec<&str> = actual.lines().collect();
    matches_from(expected, &actual)
}

fn matches_from(expected: &[String], actual: &[&str]) -> bool {
    let Some((first, rest)) = expected.split_first() else {
        return actual.is_empty();
    };
    if first.trim() == "…" {
        return (0..=actual.len()).any(|skip| matches_from(rest, &actual[skip..]));
    }
    match actual.split_first() {
        Some((line, others)) => line_matches(first, line) && matches_from(rest, others),
        None => false,
    }
}

/// One line, with `…` standing for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern.trim_end() == line.trim_end();
    }
    let mut rest = line.trim_end();
    let last = parts.len() - 1;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if index == last {
            return rest.ends_with(part.trim_end());
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The parser and the matcher on a sample (run as a trial of the runbook test).
pub fn self_test() -> Result<()> {
    let sample = "text\n<!-- step: one -->\n```console\n$ echo a \\\n    b\na b\n$ cat <<'EOF'\nx\nEOF\nx\n$ printf '%s\\n' 'multi\n  line'\n…\n```\n";
    let steps = parse(sample)?;
    anyhow::ensure!(steps.len() == 1 && steps[0].name == "one", "{steps:?}");
    let commands = &steps[0].commands;
    anyhow::ensure!(commands.len() == 3, "{commands:?}");
    anyhow::ensure!(
        commands[0].script == "echo a \\\n    b",
        "{:?}",
        commands[0]
    );
    anyhow::ensure!(commands[0].expected == ["a b"], "{:?}", commands[0]);
    anyhow::ensure!(
        commands[1].script == "cat <<'EOF'\nx\nEOF",
        "{:?}",
        commands[1]
    );
    anyhow::ensure!(
        commands[2].script == "printf '%s\\n' 'multi\n  line'",
        "{:?}",
        commands[2]
    );
    let expected = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    anyhow::ensure!(matches(&expected(&["a…c", "…", "z"]), "abc\nx\ny\nz"));
    anyhow::ensure!(!matches(&expected(&["a…c"]), "abc\nmore"));
    anyhow::ensure!(matches(
        &expected(&["…", "STATUS: deployed", "…"]),
        "x\nSTATUS: deployed"
    ));
    anyhow::ensure!(!matches(&expected(&["0"]), "1"));
    anyhow::ensure!(matches(&expected(&[]), ""));
    Ok(())
}
