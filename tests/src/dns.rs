//! [`TestDns`]: a real DNS server for one test, so that the names the worker looks up (webhook
//! targets) resolve to what the test says, through the platform's own resolver
//! ([`crate::PlatformOptions::resolv_conf`]). A small RFC 1035 responder, nothing more.

use anyhow::{Result, bail};

/// A DNS server for one test, on port 53 of a loopback address of its own (127.x.y.z), with
/// a `resolv.conf` naming it for [`crate::PlatformOptions::resolv_conf`]. It answers `A` queries
/// from its table (names as the raw bytes of the query, so a UTF-8 name and its ASCII
/// punycode form are different names, as they are in real DNS), `AAAA` queries with no
/// address, anything else with NXDOMAIN, and records every name it was asked. Port 53 because
/// `resolv.conf` has no port: needs root, as the suite runs.
pub struct TestDns {
    pub addr: std::net::Ipv4Addr,
    asked: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub resolv_conf: tempfile::NamedTempFile,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    pub async fn start(table: Vec<(Vec<u8>, std::net::Ipv4Addr)>) -> Result<TestDns> {
        let mut last_error = None;
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        for attempt in 0..20u32 {
            let bits = (clock ^ std::process::id().rotate_left(12)).wrapping_add(attempt.wrapping_mul(0x9e37_79b9)).to_le_bytes();
            // Away from 127.0.0.x, which the other tests use as client addresses.
            let addr = std::net::Ipv4Addr::new(127, bits[0].max(1), bits[1], bits[2].max(1));
            match tokio::net::UdpSocket::bind((addr, 53)).await {
                Ok(socket) => {
                    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                    let task = tokio::spawn(serve_dns(socket, table, asked.clone()));
                    let mut resolv_conf = tempfile::NamedTempFile::new()?;
                    std::io::Write::write_all(&mut resolv_conf, format!("nameserver {addr}\noptions timeout:2 attempts:2\n").as_bytes())?;
                    return Ok(TestDns { addr, asked, resolv_conf, task });
                }
                Err(e) => last_error = Some(e),
            }
        }
        bail!("no loopback address took a DNS server on port 53 (the suite runs as root): {last_error:?}")
    }

    /// Every name asked so far, as sent (lowercase ASCII stays as it is; other bytes are kept).
    pub fn asked(&self) -> Vec<Vec<u8>> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_dns(socket: tokio::net::UdpSocket, table: Vec<(Vec<u8>, std::net::Ipv4Addr)>, asked: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else { return };
        let Some(reply) = dns_reply(&buf[..len], &table, &asked) else { continue };
        let _ = socket.send_to(&reply, from).await;
    }
}

/// The answer to one DNS query (RFC 1035 §4.1), `None` for what is not a query.
fn dns_reply(query: &[u8], table: &[(Vec<u8>, std::net::Ipv4Addr)], asked: &std::sync::Mutex<Vec<Vec<u8>>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels: Vec<&[u8]> = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(query.get(at..at + len)?);
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name: Vec<u8> = labels.join(&b'.').to_ascii_lowercase();
    asked.lock().unwrap().push(name.clone());
    let address = table.iter().find(|(known, _)| known.to_ascii_lowercase() == name).map(|(_, ip)| *ip);
    let rcode = if address.is_some() { 0 } else { 3 };
    let answer = address.filter(|_| qtype == 1);
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[0..2]);
    reply.extend_from_slice(&[0x80 | (query[2] & 0x01), 0x80 | rcode]);
    reply.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if let Some(ip) = answer {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}
