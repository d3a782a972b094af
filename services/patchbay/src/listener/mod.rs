//! Where connections come in: the TCP listener, with TLS when it is configured
//! (`tls.rs`). The accept loop hands tonic ready connections, so a slow or failing TLS
//! handshake never holds up the others: each runs on its own task, bounded in time (the
//! ClientHello within a few seconds, the whole handshake within ten) and in number, in
//! all and per client address, so that one host holding idle sockets cannot take every
//! handshake slot (per client network, an IPv4 /24 or IPv6 /48).

pub mod tls;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

pub use tls::{ReloadingTls, TlsError, TlsSettings};

/// Longest a client may take to send its ClientHello.
const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a whole TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once; connections beyond are closed at once.
const MAX_HANDSHAKES: usize = 512;
/// TLS handshakes in progress at once from one network, unless configured
/// (`--tls-handshakes-per-network`).
pub const HANDSHAKES_PER_NETWORK: usize = 32;
/// Refused connections are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// An accepted connection, plain or TLS.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Connection::Plain(stream) => stream.connect_info(),
            Connection::Tls(stream) => stream.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(stream) => stream.is_write_vectored(),
            Connection::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// The connections accepted on `listener`, as tonic takes them. The loop ends, and the
/// listening socket closes, when `stop` turns true (shutdown: new clients are refused
/// at once and go to another replica) or the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    per_network: usize,
    stop: watch::Receiver<bool>,
) -> ReceiverStream<Result<Connection, io::Error>> {
    let (sender, receiver) = mpsc::channel(64);
    let slots = HandshakeSlots::new(per_network);
    tokio::spawn(accept_loop(listener, tls, slots, sender, stop));
    ReceiverStream::new(receiver)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    slots: HandshakeSlots,
    sender: mpsc::Sender<Result<Connection, io::Error>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client went away between SYN and accept: nothing to wait for.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(tls) = &tls else {
            if sender.send(Ok(Connection::Plain(stream))).await.is_err() {
                return;
            }
            continue;
        };
        let Some(slot) = slots.take(peer.ip()) else {
            slots.log_refusal(peer.ip());
            continue;
        };
        let tls = tls.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match handshake(stream, &tls).await {
                Ok(stream) => {
                    let _ = sender.send(Ok(Connection::Tls(Box::new(stream)))).await;
                }
                Err(reason) => tracing::debug!(%peer, reason, "TLS handshake failed"),
            }
        });
    }
}

/// The ClientHello within [`CLIENT_HELLO_TIMEOUT`], then the rest of the handshake with
/// the configuration of this moment, all within [`HANDSHAKE_TIMEOUT`].
async fn handshake(stream: TcpStream, tls: &ReloadingTls) -> Result<TlsStream<TcpStream>, String> {
    let started = Instant::now();
    let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = tokio::time::timeout(CLIENT_HELLO_TIMEOUT, hello)
        .await
        .map_err(|_| "no ClientHello in time".to_owned())?
        .map_err(|err| err.to_string())?;
    let rest = HANDSHAKE_TIMEOUT.saturating_sub(started.elapsed());
    tokio::time::timeout(rest, start.into_stream(tls.current()))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|err| err.to_string())
}

/// Handshake slots: [`MAX_HANDSHAKES`] in all, `per_network` per client network (an
/// IPv4 /24, an IPv6 /48: a client holding many addresses of one network counts once),
/// so that idle sockets from a few networks cannot lock every new TLS client out.
/// A refusal costs no task and no allocation beyond the socket, closed at once.
#[derive(Clone)]
struct HandshakeSlots {
    all: Arc<Semaphore>,
    per_network: usize,
    counts: Arc<Mutex<HashMap<Network, usize>>>,
    last_refusal_log: Arc<Mutex<Option<Instant>>>,
}

/// A client's network: the /24 of an IPv4 address (IPv4-mapped IPv6 ones included),
/// the /48 of an IPv6 one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Network {
    V4([u8; 3]),
    V6([u16; 3]),
}

impl Network {
    fn of(address: IpAddr) -> Network {
        match address {
            IpAddr::V4(v4) => Self::v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::v4(v4),
                None => {
                    let [a, b, c, ..] = v6.segments();
                    Network::V6([a, b, c])
                }
            },
        }
    }

    fn v4(address: std::net::Ipv4Addr) -> Network {
        let [a, b, c, _] = address.octets();
        Network::V4([a, b, c])
    }
}

impl HandshakeSlots {
    fn new(per_network: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            per_network: per_network.max(1),
            counts: Arc::default(),
            last_refusal_log: Arc::default(),
        }
    }
}

/// A taken slot, given back when the handshake ends.
struct Slot {
    _all: tokio::sync::OwnedSemaphorePermit,
    network: Network,
    counts: Arc<Mutex<HashMap<Network, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = crate::locks::lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.network) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.network);
            }
        }
    }
}

impl HandshakeSlots {
    fn take(&self, address: IpAddr) -> Option<Slot> {
        let network = Network::of(address);
        let mut counts = crate::locks::lock(&self.counts);
        let held = counts.get(&network).copied().unwrap_or(0);
        if held >= self.per_network {
            return None;
        }
        let all = self.all.clone().try_acquire_owned().ok()?;
        counts.insert(network, held + 1);
        Some(Slot {
            _all: all,
            network,
            counts: self.counts.clone(),
        })
    }

    fn log_refusal(&self, address: IpAddr) {
        let mut last = crate::locks::lock(&self.last_refusal_log);
        if last.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                %address,
                "too many TLS handshakes in progress; new connections are closed \
                 (logged at most every 10 seconds)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_one_network_share_its_slots_and_mapped_ipv4_is_ipv4() {
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert_eq!(Network::of(ip("10.1.2.3")), Network::of(ip("10.1.2.200")));
        assert_ne!(Network::of(ip("10.1.2.3")), Network::of(ip("10.1.3.3")));
        assert_eq!(
            Network::of(ip("::ffff:10.1.2.3")),
            Network::of(ip("10.1.2.9"))
        );
        assert_eq!(
            Network::of(ip("2001:db8:1:2::1")),
            Network::of(ip("2001:db8:1:ffff::9"))
        );
        assert_ne!(
            Network::of(ip("2001:db8:1::1")),
            Network::of(ip("2001:db8:2::1"))
        );
        let slots = HandshakeSlots::new(2);
        let first = slots.take(ip("10.1.2.3")).expect("a slot");
        let _second = slots.take(ip("10.1.2.4")).expect("a slot");
        assert!(slots.take(ip("10.1.2.5")).is_none(), "the /24 is full");
        assert!(slots.take(ip("10.1.3.5")).is_some(), "another /24 is not");
        drop(first);
        assert!(slots.take(ip("10.1.2.5")).is_some(), "a slot given back");
        assert!(crate::locks::lock(&slots.counts).len() <= 2);
    }
}
