//! Calls in flight and work done per client address, so the reserved places of
//! `max_in_flight` go to clients that hold few calls, however they spread their streams over
//! connections, and a busy gateway's time is shared fairly between clients (`fairness`).
//!
//! A client is an IPv4 address or an IPv6 /64 (one host's usual allocation: a client that owns
//! a /64 could otherwise be 2^64 clients). An entry lives as long as one of its connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

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
}

/// One client's count, shared by its connections.
#[derive(Debug)]
pub(super) struct Client {
    /// Calls of this client whose response has not ended, over all its connections.
    pub(super) in_flight: AtomicUsize,
    /// What the gateway does for this client, and how much it may while the gateway is busy.
    pub(super) share: Share,
    key: ClientKey,
    clients: Weak<Clients>,
}

impl Clients {
    /// The entry of the client at `ip`, shared with its other open connections.
    pub(super) fn client(self: &Arc<Self>, ip: IpAddr) -> Arc<Client> {
        let key = ClientKey::of(ip);
        // A poisoned lock only means another connection's accept panicked; the map is intact.
        let mut by_key = self
            .by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = by_key.get(&key).and_then(Weak::upgrade) {
            return client;
        }
        let client = Arc::new(Client {
            in_flight: AtomicUsize::new(0),
            share: Share::default(),
            key,
            clients: Arc::downgrade(self),
        });
        by_key.insert(key, Arc::downgrade(&client));
        self.count.store(by_key.len(), Relaxed);
        client
    }

    /// Clients with an open connection (or whose last one is closing right now).
    pub(super) fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Every client with an open connection, into `live`.
    pub(super) fn collect(&self, live: &mut Vec<Arc<Client>>) {
        let by_key = self
            .by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        live.extend(by_key.values().filter_map(Weak::upgrade));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.lock().map_or(0, |by_key| by_key.len())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let Some(clients) = self.clients.upgrade() else {
            return;
        };
        let mut by_key = clients
            .by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
