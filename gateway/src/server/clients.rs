//! Calls in flight and work done per client address, so the reserved places of
//! `max_in_flight` go to clients that hold few calls, however they spread their streams over
//! connections, and a busy gateway's time is shared fairly between clients (`fairness`).
//!
//! A client is an IPv4 address or an IPv6 /64 (one host's usual allocation: a client that owns
//! a /64 could otherwise be 2^64 clients). An entry lives as long as one of its connections.
//!
//! Addresses that cancelled too many calls (`max_address_resets`) are kept apart, for as long
//! as their penalty: their new connections are closed at once.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::super::runtime::lock;
use super::fairness::Share;

/// Whom calls are counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4([u8; 4]),
    /// The first 64 bits of the address.
    V6([u8; 8]),
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => ClientKey::V6(prefix_64(v6)),
            },
        }
    }
}

fn prefix_64(v6: Ipv6Addr) -> [u8; 8] {
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&v6.octets()[..8]);
    prefix
}

/// The clients of one listener.
#[derive(Debug, Default)]
pub(super) struct Clients {
    by_key: Mutex<HashMap<ClientKey, Weak<Client>>>,
    /// Entries of `by_key`, readable without the lock.
    count: AtomicUsize,
    /// Addresses whose new connections are refused, and until when.
    penalties: Mutex<HashMap<ClientKey, Instant>>,
    /// Entries of `penalties`: nearly always none, and then an accept reads only this.
    penalized: AtomicUsize,
}

/// At most this many addresses are penalized at once: clients owning many addresses cannot grow
/// the table without bound (past it, expired entries go, and new ones are not kept).
const MAX_PENALTIES: usize = 4_096;

/// Events counted in a window that starts again at the first event `window` or more after its
/// start: the cancelled calls of a connection or of a client address.
#[derive(Debug)]
pub(super) struct WindowCount(Mutex<(Instant, u32)>);

impl WindowCount {
    pub(super) fn new(now: Instant) -> WindowCount {
        WindowCount(Mutex::new((now, 0)))
    }

    /// Counts one event at `now`; returns the count of its window, this one included.
    pub(super) fn add(&self, now: Instant, window: Duration) -> u32 {
        let mut count = lock(&self.0);
        if now.saturating_duration_since(count.0) >= window {
            *count = (now, 0);
        }
        count.1 = count.1.saturating_add(1);
        count.1
    }
}

/// One client's count, shared by its connections.
#[derive(Debug)]
pub(super) struct Client {
    /// Calls of this client whose response has not ended, over all its connections.
    pub(super) in_flight: AtomicUsize,
    /// What the gateway does for this client, and how much it may while the gateway is busy.
    pub(super) share: Share,
    /// Calls of this client cancelled, over all its connections.
    resets: WindowCount,
    key: ClientKey,
    clients: Weak<Clients>,
}

impl Clients {
    /// The entry of the client at `ip`, shared with its other open connections.
    pub(super) fn client(self: &Arc<Self>, ip: IpAddr) -> Arc<Client> {
        let key = ClientKey::of(ip);
        let mut by_key = lock(&self.by_key);
        if let Some(client) = by_key.get(&key).and_then(Weak::upgrade) {
            return client;
        }
        let client = Arc::new(Client {
            in_flight: AtomicUsize::new(0),
            share: Share::default(),
            resets: WindowCount::new(Instant::now()),
            key,
            clients: Arc::downgrade(self),
        });
        by_key.insert(key, Arc::downgrade(&client));
        self.count.store(by_key.len(), Relaxed);
        client
    }

    /// Whether a new connection from `ip` is to be closed at once: its address is penalized
    /// (see [`Client::cancelled`]).
    pub(super) fn refuses(&self, ip: IpAddr) -> bool {
        if self.penalized.load(Relaxed) == 0 {
            return false;
        }
        let key = ClientKey::of(ip);
        let mut penalties = lock(&self.penalties);
        let refused = match penalties.get(&key) {
            Some(&until) if until > Instant::now() => true,
            Some(_) => {
                penalties.remove(&key);
                false
            }
            None => false,
        };
        self.penalized.store(penalties.len(), Relaxed);
        refused
    }

    fn penalize(&self, key: ClientKey, until: Instant) {
        let mut penalties = lock(&self.penalties);
        if penalties.len() >= MAX_PENALTIES {
            let now = Instant::now();
            penalties.retain(|_, until| *until > now);
        }
        if penalties.len() < MAX_PENALTIES || penalties.contains_key(&key) {
            penalties.insert(key, until);
        }
        self.penalized.store(penalties.len(), Relaxed);
    }

    /// Clients with an open connection (or whose last one is closing right now).
    pub(super) fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Every client with an open connection, into `live`.
    pub(super) fn collect(&self, live: &mut Vec<Arc<Client>>) {
        let by_key = lock(&self.by_key);
        live.extend(by_key.values().filter_map(Weak::upgrade));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.lock().map_or(0, |by_key| by_key.len())
    }
}

impl Client {
    /// Counts one call of this client cancelled at `now`. The `max`+1st within `window` has
    /// its address refused new connections for `window` from now; returns whether this one
    /// did. `max` 0: never.
    pub(super) fn cancelled(&self, now: Instant, max: u32, window: Duration) -> bool {
        if max == 0 {
            return false;
        }
        if self.resets.add(now, window) != max.saturating_add(1) {
            return false;
        }
        if let Some(clients) = self.clients.upgrade() {
            clients.penalize(self.key, now + window);
        }
        true
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let Some(clients) = self.clients.upgrade() else {
            return;
        };
        let mut by_key = lock(&clients.by_key);
        // A new connection of the same client may have replaced the entry meanwhile.
        if by_key
            .get(&self.key)
            .is_some_and(|entry| entry.strong_count() == 0)
        {
            by_key.remove(&self.key);
            clients.count.store(by_key.len(), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_cancelling_too_many_calls_is_refused_for_the_window() {
        let clients = Arc::new(Clients::default());
        let (storming, other): (IpAddr, IpAddr) = (
            "127.0.0.2".parse().expect("ip"),
            "127.0.0.1".parse().expect("ip"),
        );
        let window = Duration::from_secs(10);
        let start = Instant::now();
        {
            let client = clients.client(storming);
            // Three per window are allowed, over however many connections.
            for _ in 0..3 {
                assert!(!client.cancelled(start, 3, window));
            }
            assert!(!clients.refuses(storming));
            assert!(client.cancelled(start, 3, window), "the fourth");
            assert!(!client.cancelled(start, 3, window), "penalized once");
        }
        // The penalty outlives the client's connections, and is the address's alone.
        assert_eq!(clients.count(), 0);
        assert!(clients.refuses(storming));
        assert!(!clients.refuses(other));
        // A new window starts the count again; `max` 0 never penalizes.
        let client = clients.client(other);
        assert!(!client.cancelled(start, 0, window));
        let later = start + window;
        for _ in 0..3 {
            assert!(!client.cancelled(later, 3, window));
        }
    }

    #[test]
    fn expired_penalties_are_forgotten_and_the_table_is_bounded() {
        let clients = Clients::default();
        let past = Instant::now();
        clients.penalize(ClientKey::of("10.0.0.1".parse().expect("ip")), past);
        assert!(!clients.refuses("10.0.0.1".parse().expect("ip")), "expired");
        assert_eq!(clients.penalized.load(Relaxed), 0);
        let until = Instant::now() + Duration::from_secs(60);
        for n in 0..MAX_PENALTIES as u32 + 10 {
            clients.penalize(ClientKey::V4(n.to_be_bytes()), until);
        }
        assert_eq!(clients.penalized.load(Relaxed), MAX_PENALTIES);
    }

    #[test]
    fn connections_of_one_client_share_its_count() {
        let clients = Arc::new(Clients::default());
        let a = clients.client("127.0.0.2".parse().expect("ip"));
        let b = clients.client("::ffff:127.0.0.2".parse().expect("ip"));
        a.in_flight.fetch_add(3, Relaxed);
        assert_eq!(
            b.in_flight.load(Relaxed),
            3,
            "an IPv4-mapped address is the same client"
        );
        let c = clients.client("127.0.0.3".parse().expect("ip"));
        assert_eq!(c.in_flight.load(Relaxed), 0);
        let d = clients.client("2001:db8:1:2::1".parse().expect("ip"));
        let e = clients.client("2001:db8:1:2:ffff::9".parse().expect("ip"));
        assert!(Arc::ptr_eq(&d, &e), "one IPv6 /64 is one client");
        let f = clients.client("2001:db8:1:3::1".parse().expect("ip"));
        assert!(!Arc::ptr_eq(&d, &f));
        assert_eq!(clients.len(), 4);
        drop((a, c, d, e, f));
        assert_eq!(clients.len(), 1, "entries go with their last connection");
        drop(b);
        assert_eq!(clients.len(), 0);
    }
}
