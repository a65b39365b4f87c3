//! A userspace delaying TCP relay for the proximity tests (docs/proximity.md): this kernel has no `netem` qdisc, so
//! delay comes from here. Each accepted connection is forwarded to `upstream`; every chunk read in either direction
//! is written out `delay` after it was read (a reader thread stamps it, a writer thread waits for the stamp), so the
//! delay is added once per direction and does not accumulate over a pipelined stream. The delay can be changed while
//! connections run ([`Relay::set_delay`]); it applies to chunks read from then on.
//!
//! Plain std threads and blocking sockets: nothing here depends on the runtime under test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A running relay; stops accepting when dropped (connections in flight finish on their own).
#[derive(Debug)]
pub struct Relay {
    /// Where agents connect.
    pub addr: SocketAddr,
    delay_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Start relaying connections accepted on `listener` to `upstream`, each way delayed by `delay`.
    pub fn start(
        listener: TcpListener,
        upstream: SocketAddr,
        delay: Duration,
    ) -> std::io::Result<Relay> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let delay_us = Arc::new(AtomicU64::new(delay.as_micros() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (delay_us.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let d = d.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = connect(client, upstream, d) {
                                eprintln!("relay: {e}");
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        eprintln!("relay accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
        Ok(Relay {
            addr,
            delay_us,
            stop,
        })
    }

    /// The delay each way for chunks read from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn connect(
    client: TcpStream,
    upstream: SocketAddr,
    delay_us: Arc<AtomicU64>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    pump(client.try_clone()?, server.try_clone()?, delay_us.clone());
    pump(server, client, delay_us);
    Ok(())
}

/// Copy `from` → `to`, each chunk written `delay` after it was read; EOF is passed on as a write shutdown.
fn pump(mut from: TcpStream, mut to: TcpStream, delay_us: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due =
                        Instant::now() + Duration::from_micros(delay_us.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` ends the writer once it has written everything read.
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(addr: SocketAddr) -> Duration {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            s.write_all(b"ping").expect("write");
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).expect("read");
            assert_eq!(&buf, b"ping");
            best = best.min(t.elapsed());
        }
        best
    }

    #[test]
    fn the_relay_adds_its_delay_once_each_way_and_can_change_it() {
        let echo = echo_server();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = Relay::start(listener, echo, Duration::ZERO).expect("relay");
        let fast = round_trip(relay.addr);
        assert!(fast < Duration::from_millis(10), "{fast:?}");
        relay.set_delay(Duration::from_millis(15));
        let slow = round_trip(relay.addr);
        assert!(slow >= Duration::from_millis(30), "{slow:?}");
        assert!(
            slow < Duration::from_millis(60),
            "{slow:?} (delay must not accumulate)"
        );
    }
}
