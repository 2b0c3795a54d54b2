//! A backend port that the test holds while the real backend is down, to see
//! a client (a relay) try it: proof that the client noticed the outage and is
//! reconnecting, where a sleep would only hope so.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A listener on 127.0.0.1 that turns every connection away (closes it
/// before any WebSocket handshake), so a client's connect fails as it would
/// against a dead backend, but the test sees each attempt.
#[derive(Debug)]
pub struct HeldPort {
    listener: TcpListener,
    port: u16,
}

impl HeldPort {
    /// A fresh port the OS picks.
    pub fn bind() -> HeldPort {
        Self::take(0)
    }

    /// `port`, just released by a server the test stopped. Retries while the
    /// old socket is still being torn down.
    pub fn take(port: u16) -> HeldPort {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("cannot hold port {port}: {e}"),
            }
        };
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("a bound address").port();
        HeldPort { listener, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the next connection attempt and turns it away. Attempts made
    /// before this call and not yet seen count too.
    pub fn wait_for_attempt(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    drop(stream);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "nothing tried port {} within {within:?}", self.port);
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept on port {} failed: {e}", self.port),
            }
        }
    }

    /// Turns away the attempts already waiting, so the next
    /// [`wait_for_attempt`](Self::wait_for_attempt) sees a new one.
    pub fn turn_away_pending(&self) {
        while self.listener.accept().is_ok() {}
    }

    /// Stops listening and hands the port back for the real server.
    pub fn release(self) -> u16 {
        self.port
    }
}
