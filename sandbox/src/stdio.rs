//! Guest stdout/stderr capture: bounded, never inherited from the host process.
//! What the guest prints is turned into log actions (counted against the log
//! quota) and, on a trap, appended to the failure message (panic text).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi_io::bytes::Bytes;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{OutputStream, StreamResult};

/// Bytes kept per stream between drains; the rest is dropped.
const CAPTURE_BYTES: usize = 4 << 10;

/// A bounded in-memory sink for one guest output stream.
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedOutput {
    /// Takes what was captured since the last call, as lossy UTF-8.
    pub(crate) fn drain(&self) -> String {
        match self.buffer.lock() {
            Ok(mut buffer) => {
                let text = String::from_utf8_lossy(&buffer).into_owned();
                buffer.clear();
                text
            }
            Err(_) => String::new(),
        }
    }

    fn append(&self, bytes: &[u8]) {
        if let Ok(mut buffer) = self.buffer.lock() {
            let room = CAPTURE_BYTES.saturating_sub(buffer.len());
            buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(CAPTURE_BYTES)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded_and_drained() {
        let out = CapturedOutput::default();
        let mut stream = out.p2_stream();
        stream.write(Bytes::from_static(b"hello ")).unwrap();
        stream
            .write(Bytes::from(vec![b'x'; CAPTURE_BYTES * 2]))
            .unwrap();
        let text = out.drain();
        assert!(text.starts_with("hello x"));
        assert_eq!(text.len(), CAPTURE_BYTES);
        assert_eq!(out.drain(), "");
    }
}
