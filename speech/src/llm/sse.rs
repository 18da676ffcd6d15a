//! Incremental parser for server-sent events (the `text/event-stream` format), sans-IO:
//! feed it body bytes as they arrive, in pieces of any size, and take out complete events.
//!
//! Follows the WHATWG event-stream rules that matter for chat streams: lines end in LF, CRLF
//! or CR; `data:` lines of one event are joined with `\n`; a blank line ends an event; lines
//! starting with `:` are comments; other fields (`event`, `id`, `retry`) are ignored.

/// Longest line accepted; a peer sending more without a line end is broken or hostile.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why the byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("event-stream line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// A `data` line that is not UTF-8.
    #[error("event-stream data is not UTF-8")]
    NotUtf8,
}

/// The incremental event-stream parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes received but not yet ending in a line terminator.
    pending: Vec<u8>,
    /// The previous chunk ended in CR: a following LF belongs to that line end.
    skip_lf: bool,
    /// `data` of the event being assembled.
    data: String,
    /// Whether any `data` line was seen for the event being assembled.
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes and returns the data of every event they complete, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        if self.skip_lf {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
                self.skip_lf = false;
            } else if !bytes.is_empty() {
                self.skip_lf = false;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let terminator = bytes.get(end).copied();
            let line_part = bytes.get(..end).unwrap_or_default();
            let rest = bytes.get(end + 1..).unwrap_or_default();
            bytes = if terminator == Some(b'\r') {
                match rest.first() {
                    Some(b'\n') => rest.get(1..).unwrap_or_default(),
                    Some(_) => rest,
                    None => {
                        self.skip_lf = true;
                        rest
                    }
                }
            } else {
                rest
            };
            if self.pending.len() + line_part.len() > MAX_LINE_BYTES {
                return Err(SseError::LineTooLong);
            }
            let line = if self.pending.is_empty() {
                line_part.to_vec()
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(line_part);
                line
            };
            if let Some(event) = self.line(&line)? {
                events.push(event);
            }
        }
        if self.pending.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(SseError::LineTooLong);
        }
        self.pending.extend_from_slice(bytes);
        Ok(events)
    }

    /// Ends the stream: an unterminated last line and event are taken as complete (lenient:
    /// some servers close right after `data: [DONE]` without the blank line).
    pub fn finish(&mut self) -> Result<Option<String>, SseError> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            if let Some(event) = self.line(&line)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<String>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.first() == Some(&b':') {
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (line.get(..colon).unwrap_or_default(), value)
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            let value = std::str::from_utf8(value).map_err(|_| SseError::NotUtf8)?;
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<String> {
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(std::mem::take(&mut self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata: {\"b\":\"é ✓\"}\n\nevent: x\nid: 7\ndata:line1\ndata: line2\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<String> {
        vec![
            "{\"a\":1}".to_owned(),
            "{\"b\":\"é ✓\"}".to_owned(),
            "line1\nline2".to_owned(),
            "[DONE]".to_owned(),
        ]
    }

    #[test]
    fn whole_body_at_once() {
        let mut parser = SseParser::new();
        let events = parser.feed(BODY.as_bytes()).expect("valid");
        assert_eq!(events, expected());
        assert_eq!(parser.finish(), Ok(None));
    }

    #[test]
    fn every_split_position_and_piece_size_gives_the_same_events() {
        let bytes = BODY.as_bytes();
        for size in 1..=9 {
            for offset in 0..size {
                let mut parser = SseParser::new();
                let mut events = parser.feed(&bytes[..offset]).expect("valid");
                for piece in bytes[offset..].chunks(size) {
                    events.extend(parser.feed(piece).expect("valid"));
                }
                events.extend(parser.finish().expect("valid"));
                assert_eq!(events, expected(), "size {size} offset {offset}");
            }
        }
    }

    #[test]
    fn bare_cr_line_ends() {
        let mut parser = SseParser::new();
        let mut events = parser.feed(b"data: one\r\r").expect("valid");
        events.extend(parser.feed(b"data: two\r").expect("valid"));
        events.extend(parser.feed(b"\r").expect("valid"));
        assert_eq!(events, vec!["one".to_owned(), "two".to_owned()]);
    }

    #[test]
    fn unterminated_last_event_is_taken_at_finish() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: [DONE]").expect("valid").is_empty());
        assert_eq!(parser.finish(), Ok(Some("[DONE]".to_owned())));
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut parser = SseParser::new();
        let chunk = vec![b'x'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=(MAX_LINE_BYTES / chunk.len()) {
            result = parser.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::LineTooLong));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut parser = SseParser::new();
        assert_eq!(parser.feed(b"data: \xff\xfe\n\n"), Err(SseError::NotUtf8));
    }
}
