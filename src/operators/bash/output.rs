//! The bash operator's output: each stream copied into the try's log line by line, bounded
//! per line, with the last non-empty line kept for XCom.
//!
//! Invariant: never buffers more than one line ([`MAX_LINE`]) and never waits for end of file
//! longer than [`READER_GRACE`] after the command's processes are gone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

use super::super::{Stream, TaskLog};

/// How long to keep reading output after the command's processes are gone. A process that
/// escaped the try (or inherited the pipe elsewhere) may keep it open; the try must not wait.
pub(super) const READER_GRACE: Duration = Duration::from_secs(2);

/// Lines longer than this are split: a command printing binary data without line breaks must
/// not make Updraft buffer it all.
const MAX_LINE: usize = 64 * 1024;

/// A task copying one output stream into the log, line by line.
pub(super) struct Reader {
    handle: JoinHandle<()>,
    /// The last non-empty line so far: kept outside the task so that it survives an abort.
    last: Arc<Mutex<Option<String>>>,
}

impl Reader {
    pub(super) fn spawn(
        output: impl AsyncRead + Unpin + Send + 'static,
        stream: Stream,
        log: &TaskLog,
    ) -> Reader {
        let last = Arc::new(Mutex::new(None));
        let handle = tokio::spawn(pump(output, stream, log.clone(), last.clone()));
        Reader { handle, last }
    }

    /// The last non-empty line, waiting at most [`READER_GRACE`] for end of file.
    pub(super) async fn finish(reader: Option<Reader>) -> Option<String> {
        let mut reader = reader?;
        if tokio::time::timeout(READER_GRACE, &mut reader.handle).await.is_err() {
            // A leftover background process holds the pipe: stop reading, keep going.
            reader.handle.abort();
        }
        reader.last.lock().ok().and_then(|l| l.clone())
    }

    pub(super) fn abort(self) {
        self.handle.abort();
    }
}

async fn pump(
    output: impl AsyncRead + Unpin,
    stream: Stream,
    log: TaskLog,
    last: Arc<Mutex<Option<String>>>,
) {
    let mut reader = BufReader::new(output);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_bounded(&mut reader, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                log.output(stream, line);
                if !line.trim().is_empty()
                    && let Ok(mut l) = last.lock()
                {
                    *l = Some(line.to_string());
                }
            }
        }
    }
}

/// Reads up to and including `\n`, or [`MAX_LINE`] bytes, whichever comes first.
async fn read_line_bounded<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let room = MAX_LINE - buf.len();
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ if available.len() >= room => (room, true),
            _ => (available.len(), false),
        };
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(buf.len());
        }
    }
}
