//! `allowed_outbound_hosts` applied to `wasi:sockets`, as Spin applies it: a TCP connection to
//! `ip:port` needs an entry allowing scheme `tcp` (or `*`) for that address and port, a UDP
//! datagram one allowing `udp`; names never match an address (`*://127.0.0.0/24:7` allows the
//! addresses, `*://localhost:7` does not). Components may not listen: explicit binds,
//! `listen` and `accept` are refused; only the implicit bind of an outgoing socket (the
//! unspecified address, port 0) passes. Name lookup is allowed to a component that may reach
//! anything at all, since it only resolves; what it may then connect to is checked above.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::outbound::OutboundPolicy;

/// Whether the component may use `addr` for `use_`.
pub fn allows(policy: &OutboundPolicy, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    let implicit_bind = addr.ip().is_unspecified() && addr.port() == 0;
    let scheme = match use_ {
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => return implicit_bind,
        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => return false,
        SocketAddrUse::TcpConnect => "tcp",
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => "udp",
    };
    policy.allows(scheme, &addr.ip().to_string(), Some(addr.port()))
}

/// Applies the component's policy to the sockets of a WASI context being built.
pub fn apply(builder: &mut WasiCtxBuilder, policy: &OutboundPolicy) {
    let allow_any = !policy.is_empty();
    builder.allow_tcp(allow_any).allow_udp(allow_any).allow_ip_name_lookup(allow_any);
    let policy = Arc::new(policy.clone());
    builder.socket_addr_check(move |addr, use_| {
        let allowed = allows(&policy, addr, use_);
        if !allowed {
            tracing::debug!(%addr, ?use_, "socket use denied by allowed_outbound_hosts");
        }
        Box::pin(async move { allowed })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connects_only_where_allowed_and_never_listens() {
        let p = policy(&["*://127.0.0.0/24:7000", "tcp://10.0.0.1:8000..8010"]);
        assert!(allows(&p, addr("127.0.0.1:7000"), SocketAddrUse::TcpConnect));
        assert!(allows(&p, addr("127.0.0.9:7000"), SocketAddrUse::UdpSend));
        assert!(!allows(&p, addr("127.0.0.1:7001"), SocketAddrUse::TcpConnect));
        assert!(!allows(&p, addr("127.0.1.1:7000"), SocketAddrUse::TcpConnect));
        assert!(allows(&p, addr("10.0.0.1:8005"), SocketAddrUse::TcpConnect));
        assert!(!allows(&p, addr("10.0.0.1:8005"), SocketAddrUse::UdpSend));
        assert!(allows(&p, addr("0.0.0.0:0"), SocketAddrUse::TcpBind), "the implicit bind of a connect");
        assert!(!allows(&p, addr("127.0.0.1:7000"), SocketAddrUse::TcpBind));
        assert!(!allows(&p, addr("0.0.0.0:7000"), SocketAddrUse::TcpListen));
        assert!(!allows(&policy(&["tcp://127.0.0.2:6001"]), addr("127.0.0.1:6001"), SocketAddrUse::TcpConnect));
        assert!(!allows(&policy(&["tcp://127.0.0.1:6002"]), addr("127.0.0.1:6001"), SocketAddrUse::TcpConnect));
    }
}
