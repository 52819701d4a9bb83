//! What the admin subcommands (`groups`, `topics`) share: an admin client
//! for a URL, URL parsing, aligned text tables and writing to stdout.

use std::io::Write;
use std::time::Duration;

use skotch::client::Admin;
use skotch::stream::{KafkaUrl, Stream, UrlError};

/// An admin client authenticated as streams opened from `stream` would be.
pub(crate) async fn admin(
    url: &KafkaUrl,
    stream: &Stream,
    timeout_ms: u64,
) -> Result<Admin, String> {
    let client = stream.client(url).await.map_err(|e| e.to_string())?;
    Ok(Admin::new(client).timeout(Duration::from_millis(timeout_ms)))
}

pub(crate) fn parse_url(url: &str) -> Result<KafkaUrl, String> {
    url.parse().map_err(|e: UrlError| e.to_string())
}

/// Write `text` to stdout; a reader that went away (`| head`) is not an
/// error.
pub(crate) fn emit(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing to stdout: {e}")),
    }
}

/// Left-aligned columns separated by two spaces, with a header row.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}
