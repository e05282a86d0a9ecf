//! A client connection's socket as hyper sees it: the bytes read while sniffing the protocol
//! come first, and writes are gathered until a flush.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;

/// The HTTP/2 connection preface (RFC 9113 §3.4): a connection that starts with it is HTTP/2.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads a new connection's first bytes until they say HTTP/2 (the whole preface) or not (the
/// first byte that differs), as hyper-util's auto builder does, so a caller can bound it with
/// a timeout (hyper-util's own sniffing has none). The bytes read are returned, to be read
/// again by hyper through [`Gathered`]; empty when the client closed without sending any.
pub(super) async fn sniff<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> io::Result<Bytes> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    while filled < buf.len() {
        let read = stream.read(&mut buf[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
        if buf[..filled] != H2_PREFACE[..filled] {
            break;
        }
    }
    Ok(Bytes::copy_from_slice(&buf[..filled]))
}

/// A client connection's socket that reports no vectored writes and gathers writes until a
/// flush, so a connection's ready frames leave in one system call.
///
/// With vectored writes, h2 keeps each DATA frame of 256 bytes or more as a separate buffer
/// and flushes it before queueing the next frame: one `writev` per response message (a
/// streamed gRPC response: one per message). Without, it copies frames under 1 KiB into its
/// write buffer, so the headers, data and trailers of all the streams ready on the
/// connection go out together. Larger frames still come as their own writes, followed by a
/// flush; gathering them here (copied up to `GATHER_MAX`, larger ones sent with `writev`
/// next to what is gathered) keeps those at one system call per flush, as before.
/// Nothing waits: everything gathered is written at the next flush, which h2 and hyper do
/// whenever they have written what is ready.
///
/// The bytes [`sniff`] read come first on the read side.
pub(super) struct Gathered<I> {
    io: I,
    gathered: BytesMut,
    sniffed: Bytes,
}

/// Writes up to this size are copied; larger ones go straight to the socket.
const GATHER_MAX: usize = 16 * 1024;

impl<I> Gathered<I> {
    /// `io`, with the `sniffed` bytes read before it.
    pub(super) fn new(io: I, sniffed: Bytes) -> Self {
        Gathered {
            io,
            gathered: BytesMut::new(),
            sniffed,
        }
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for Gathered<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.sniffed.is_empty() {
            let take = self.sniffed.len().min(buf.remaining());
            buf.put_slice(&self.sniffed[..take]);
            self.sniffed.advance(take);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for Gathered<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.len() < GATHER_MAX && this.gathered.len() < GATHER_MAX {
            this.gathered.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        loop {
            if this.gathered.is_empty() {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            }
            let bufs = [IoSlice::new(&this.gathered), IoSlice::new(buf)];
            let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, &bufs))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let gathered = this.gathered.len();
            if written > gathered {
                this.gathered.clear();
                return Poll::Ready(Ok(written - gathered));
            }
            this.gathered.advance(written);
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while !this.gathered.is_empty() {
            let written = ready!(Pin::new(&mut this.io).poll_write(cx, &this.gathered))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.gathered.advance(written);
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use hyper::rt::Write;

    use super::{GATHER_MAX, Gathered};

    /// A socket that records its write calls and takes at most `limit` bytes per call.
    struct Recorder {
        calls: Vec<Vec<u8>>,
        limit: usize,
    }

    impl Write for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.calls.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            let n = all.len().min(self.limit);
            self.calls.push(all[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn gathered(limit: usize) -> Gathered<Recorder> {
        Gathered::new(
            Recorder {
                calls: Vec::new(),
                limit,
            },
            bytes::Bytes::new(),
        )
    }

    /// Writes all of `buf` as a caller would (again after a partial write).
    fn write_all(io: &mut Gathered<Recorder>, mut buf: &[u8]) {
        let mut cx = Context::from_waker(Waker::noop());
        while !buf.is_empty() {
            match Pin::new(&mut *io).poll_write(&mut cx, buf) {
                Poll::Ready(Ok(n)) if n > 0 => buf = &buf[n..],
                other => panic!("write: {other:?}"),
            }
        }
    }

    fn flush(io: &mut Gathered<Recorder>) {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            Pin::new(&mut *io).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }

    #[test]
    fn small_writes_leave_together_at_the_flush() {
        let mut io = gathered(usize::MAX);
        write_all(&mut io, &[1; 100]);
        write_all(&mut io, &[2; 300]);
        assert!(io.io.calls.is_empty());
        flush(&mut io);
        assert_eq!(io.io.calls, [[[1; 100].as_slice(), &[2; 300]].concat()]);
        flush(&mut io);
        assert_eq!(io.io.calls.len(), 1);
    }

    #[test]
    fn a_large_write_goes_out_with_what_is_gathered_in_one_call() {
        let mut io = gathered(usize::MAX);
        write_all(&mut io, &[1; 100]);
        let large = vec![2; GATHER_MAX];
        write_all(&mut io, &large);
        assert_eq!(io.io.calls, [[[1; 100].as_slice(), &large].concat()]);
        flush(&mut io);
        assert_eq!(io.io.calls.len(), 1);
    }

    #[test]
    fn partial_writes_keep_the_bytes_in_order() {
        let mut io = gathered(70);
        write_all(&mut io, &[1; 100]);
        write_all(&mut io, &vec![2; GATHER_MAX]);
        write_all(&mut io, &[3; 50]);
        flush(&mut io);
        let sent: Vec<u8> = io.io.calls.concat();
        let expected = [[1; 100].as_slice(), &vec![2; GATHER_MAX], &[3; 50]].concat();
        assert_eq!(sent, expected);
        assert!(io.io.calls.iter().all(|call| call.len() <= 70));
    }
}
