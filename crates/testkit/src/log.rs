//! A child process's output file, read as the child writes it: how the kit learns
//! the address a program bound (`jwtgrant serve`, `chromedriver`) or that it is
//! ready (`redis-server`), without guessing a port beforehand.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The part of an output file a child writes from now on (a file written by an
/// earlier run of the same program is skipped).
#[derive(Clone, Debug)]
pub struct Output {
    path: PathBuf,
    from: usize,
}

/// Why [`Output::wait_for`] gave up.
#[derive(Debug)]
pub enum Gave {
    /// The child exited (its status) before the output showed what was awaited.
    Exited(std::process::ExitStatus),
    /// Nothing after this long.
    TimedOut(Duration),
}

impl Output {
    /// The output `path` will get from now on.
    pub fn from_now(path: &Path) -> Output {
        let from = std::fs::metadata(path)
            .map(|m| usize::try_from(m.len()).unwrap_or(usize::MAX))
            .unwrap_or(0);
        Output {
            path: path.to_path_buf(),
            from,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What has been written so far, without ANSI colour codes.
    pub fn text(&self) -> String {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        let written = bytes.get(self.from..).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(written))
    }

    /// Polls the output until `find` finds what it looks for in one line, the child
    /// exits, or `within` has passed.
    pub async fn wait_for<T>(
        &self,
        child: &mut Child,
        within: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> Result<T, Gave> {
        let start = Instant::now();
        loop {
            if let Some(found) = self.text().lines().find_map(&find) {
                return Ok(found);
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The last lines may have been written just before it exited.
                return self
                    .text()
                    .lines()
                    .find_map(&find)
                    .ok_or(Gave::Exited(status));
            }
            if start.elapsed() > within {
                return Err(Gave::TimedOut(start.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `text` without the escape sequences of terminal colours (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for end in chars.by_ref() {
                if end.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_codes_are_removed() {
        assert_eq!(
            super::strip_ansi("\u{1b}[3mlisten\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:80"),
            "listen=127.0.0.1:80"
        );
    }
}
