//! The physical floor: a raw TCP ping-pong on loopback with `TCP_NODELAY`, 64-byte messages,
//! blocking sockets and no runtime. Nothing a transport does can be faster than this round trip
//! on the same machine at the same moment, so transport latencies are reported as ratios to it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub const MESSAGE_BYTES: usize = 64;

/// An echo peer on `127.0.0.1:0` and a connected client, both with `TCP_NODELAY`.
pub struct PingPong {
    client: TcpStream,
    echo: Option<thread::JoinHandle<()>>,
}

impl PingPong {
    pub fn start() -> io::Result<PingPong> {
        let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
        let addr = listener.local_addr()?;
        let echo = thread::Builder::new()
            .name("floor-echo".into())
            .spawn(move || {
                let Ok((mut peer, _)) = listener.accept() else {
                    return;
                };
                let _ = peer.set_nodelay(true);
                let mut buf = [0u8; MESSAGE_BYTES];
                while peer.read_exact(&mut buf).is_ok() {
                    if peer.write_all(&buf).is_err() {
                        return;
                    }
                }
            })?;
        let client = TcpStream::connect(addr)?;
        client.set_nodelay(true)?;
        client.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(PingPong {
            client,
            echo: Some(echo),
        })
    }

    /// One round trip of a 64-byte message.
    pub fn round_trip(&mut self) -> io::Result<Duration> {
        let msg = [0x5au8; MESSAGE_BYTES];
        let mut buf = [0u8; MESSAGE_BYTES];
        let start = Instant::now();
        self.client.write_all(&msg)?;
        self.client.read_exact(&mut buf)?;
        Ok(start.elapsed())
    }

    /// `samples` round trips after `warmup` unrecorded ones, in nanoseconds.
    pub fn measure(&mut self, warmup: usize, samples: usize) -> io::Result<Histogram<u64>> {
        let mut hist = new_histogram();
        for _ in 0..warmup {
            self.round_trip()?;
        }
        for _ in 0..samples {
            let rtt = self.round_trip()?;
            let _ = hist.record(rtt.as_nanos().max(1) as u64);
        }
        Ok(hist)
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        let _ = self.client.shutdown(std::net::Shutdown::Both);
        if let Some(echo) = self.echo.take() {
            let _ = echo.join();
        }
    }
}

/// A histogram of nanoseconds from 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail at run time.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}
