//! Shell completions and the man page, generated from the clap definition of
//! [`Cli`](crate::cli::Cli), so they can never drift from what the binary
//! accepts.
//!
//! `dcsync completions <shell>` and `dcsync man` print them on stdout;
//! `packaging/build-deb.sh` writes them under `target/` for `cargo deb`.
//! The man page is one page, `dcsync(1)`: the global options, then every
//! command (subcommands included) with its own usage and options, and the
//! exit status. Nothing here reads a config file or touches the network.

use crate::cli::Cli;
use clap::CommandFactory;
use std::io::{self, Write};

/// The name the completions and the man page are written for.
const BIN: &str = "dcsync";

/// Writes the completion script for `shell` to `out`.
///
/// Install paths: bash `/usr/share/bash-completion/completions/dcsync`,
/// zsh `/usr/share/zsh/vendor-completions/_dcsync` (or any `$fpath` dir),
/// fish `/usr/share/fish/vendor_completions.d/dcsync.fish`.
///
/// A reader that stops early (`dcsync completions bash | head`) is not an
/// error. Any other write failure panics, as `println!` does: the script is
/// never left silently truncated.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut script);
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("cannot write the {shell} completion script: {e}"),
    }
}

/// Writes the `dcsync(1)` man page (roff) to `out`.
///
/// clap_mangen's own subcommand section only points at `dcsync-sync(1)`-style
/// pages that are not shipped, so the COMMANDS section here renders each
/// (sub)command's usage and options in place, without the global options
/// (those are under OPTIONS once). Environment values are never shown, so
/// the page does not depend on the environment it was generated in.
pub fn man_page(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = hide_env_values(Cli::command()).bin_name(BIN);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("{BIN} {version}"))
        .manual("User Commands");

    let mut page = Vec::new();
    let w: &mut dyn Write = &mut page;
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;

    writeln!(w, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands() {
        render_command(w, sub, &format!("{BIN} {}", sub.get_name()))?;
    }

    writeln!(w, ".SH FILES")?;
    writeln!(w, ".TP")?;
    writeln!(w, "{}", text("~/.config/dcsync/config.toml"))?;
    writeln!(
        w,
        "{}",
        text(
            "The default config file on Linux (the platform config directory elsewhere); \
             --config or DCSYNC_CONFIG choose another."
        )
    )?;
    writeln!(w, ".TP")?;
    writeln!(w, "{}", text("~/.local/share/dcsync/"))?;
    writeln!(
        w,
        "{}",
        text(
            "The default state directory on Linux (state_dir in the config): \
             one database per sync pair."
        )
    )?;

    writeln!(w, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in [
        ("0", "Success."),
        (
            "1",
            "An operation failed (each failure was reported on stderr).",
        ),
        ("2", "Usage or config error, including refused credentials."),
        (
            "3",
            "Safety stop: the pass would delete more than max_delete_percent or \
             max_delete_count of the tracked files (see --allow-mass-delete).",
        ),
    ] {
        writeln!(w, ".TP")?;
        writeln!(w, "{code}")?;
        writeln!(w, "{}", text(meaning))?;
    }

    // As clap_mangen's own `render` does: these sections only when they
    // have something to say.
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(w)?;
    }
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    if cmd.get_author().is_some() {
        man.render_authors_section(w)?;
    }

    // Each clap_mangen render call starts with the same two-line preamble;
    // keep the first one only.
    let page = String::from_utf8_lossy(&page);
    let mut seen_preamble = false;
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if line == PREAMBLE[0] && lines.peek() == Some(&PREAMBLE[1]) {
            lines.next();
            if seen_preamble {
                continue;
            }
            seen_preamble = true;
            writeln!(out, "{}\n{}", PREAMBLE[0], PREAMBLE[1])?;
            continue;
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// What the roff crate writes at the start of every rendered piece.
const PREAMBLE: [&str; 2] = [r".ie \n(.g .ds Aq \(aq", ".el .ds Aq '"];

/// `hide_env_values` on every argument of every command.
fn hide_env_values(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| a.hide_env_values(true))
        .mut_subcommands(hide_env_values)
}

/// One `.SS` block per (sub)command: what it does, its usage and its own
/// options, then its subcommands. The `help` subcommands and hidden
/// commands are left out.
fn render_command(w: &mut dyn Write, cmd: &clap::Command, path: &str) -> io::Result<()> {
    if cmd.get_name() == "help" || cmd.is_hide_set() {
        return Ok(());
    }
    writeln!(w, ".SS \"{}\"", text(path).replace('"', "\\(dq"))?;
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        for line in about.to_string().lines() {
            if line.trim().is_empty() {
                writeln!(w, ".PP")?;
            } else {
                writeln!(w, "{}", text(line))?;
            }
        }
    }
    // Only this command's own options: the global ones (and -h) are
    // documented once, under OPTIONS.
    let own = cmd.clone().mut_args(|a| {
        if a.is_global_set() || a.get_id() == "help" {
            a.hide(true)
        } else {
            a
        }
    });
    let man = clap_mangen::Man::new(own);
    let mut body = Vec::new();
    man.render_synopsis_section(&mut body)?;
    man.render_options_section(&mut body)?;
    let body = String::from_utf8_lossy(&body);
    writeln!(w, ".PP")?;
    for line in body.lines() {
        if PREAMBLE.contains(&line) || line == ".SH SYNOPSIS" || line == ".SH OPTIONS" {
            continue;
        }
        if let Some(heading) = line.strip_prefix(".SH ") {
            // A help heading of this command's options: a bold paragraph.
            writeln!(w, ".PP\n\\fB{}\\fR", heading.trim_matches('"'))?;
            continue;
        }
        writeln!(w, "{line}")?;
    }
    for sub in cmd.get_subcommands() {
        render_command(w, sub, &format!("{path} {}", sub.get_name()))?;
    }
    Ok(())
}

/// Escapes a line of running text for roff: backslashes, minus signs
/// (so that `--config` stays copy-pastable), and a leading `.` or `'`.
fn text(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\e"),
            '-' => o.push_str("\\-"),
            _ => o.push(c),
        }
    }
    if o.starts_with('.') || o.starts_with('\'') {
        o.insert_str(0, "\\&");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_knows_every_command() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out);
        let s = String::from_utf8(out).unwrap();
        for word in ["dcsync", "sync", "remote", "status", "--config"] {
            assert!(s.contains(word), "{word} missing from bash completion");
        }
    }

    #[test]
    fn every_shell_generates() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let mut out = Vec::new();
            completions(*shell, &mut out);
            assert!(!out.is_empty(), "{shell:?}");
        }
    }

    #[test]
    fn man_page_has_the_sections_and_every_command() {
        let mut out = Vec::new();
        man_page(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with(".ie") || s.starts_with(".TH"), "{}", &s[..80]);
        assert!(s.contains(".TH dcsync 1"), "{s}");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH COMMANDS",
            ".SH \"EXIT STATUS\"",
            ".SH VERSION",
        ] {
            assert!(s.contains(section), "{section} missing");
        }
        for sub in Cli::command().get_subcommands() {
            let want = format!(".SS \"dcsync {}\"", text(sub.get_name()));
            assert!(s.contains(&want), "{want} missing");
        }
        // Nested: `dcsync remote ls` has its own block.
        assert!(s.contains(".SS \"dcsync remote ls\""), "{s}");
        // Global options are documented once, not in every command's block.
        let sync_block = s
            .split(".SS \"dcsync sync\"")
            .nth(1)
            .and_then(|rest| rest.split(".SS ").next())
            .unwrap();
        assert!(sync_block.contains("\\-\\-dry\\-run"), "{sync_block}");
        assert!(!sync_block.contains("\\-\\-config"), "{sync_block}");
        // One roff preamble, and no environment values baked in.
        assert_eq!(s.matches(PREAMBLE[0]).count(), 1);
        assert!(!s.contains("[env:"));
        // No empty sections (clap_mangen writes EXTRA and AUTHORS headings
        // even when there is nothing under them).
        assert!(
            !s.contains(".SH EXTRA") && !s.contains(".SH AUTHORS"),
            "{s}"
        );
        // Options are escaped minus signs; no stray control lines from help text.
        assert!(s.contains("\\-\\-config"));
        for line in s.lines() {
            assert!(
                !line.starts_with('\''),
                "line would be read as a roff request: {line}"
            );
        }
    }

    /// A writer that fails every write with `kind`.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        completions(
            clap_complete::Shell::Bash,
            &mut Failing(io::ErrorKind::BrokenPipe),
        );
    }

    #[test]
    #[should_panic(expected = "cannot write the bash completion script")]
    fn other_write_errors_are_not_swallowed() {
        completions(
            clap_complete::Shell::Bash,
            &mut Failing(io::ErrorKind::StorageFull),
        );
    }

    #[test]
    fn roff_escaping() {
        assert_eq!(text("a-b\\c"), "a\\-b\\ec");
        assert_eq!(text(".hidden"), "\\&.hidden");
        assert_eq!(text("'quote"), "\\&'quote");
    }
}
