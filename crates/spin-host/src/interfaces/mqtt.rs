//! Outbound MQTT: the `fermyon:spin/mqtt@2.0.0` host interface, on `rumqttc`.
//!
//! A component opens `mqtt://host:port?client_id=...` only if its `allowed_outbound_hosts`
//! permits it; any other address is `connection-failed("address ... is not permitted")`, as in
//! Spin. Each connection is the component's own (MQTT client ids are per connection) and lives
//! as long as its resource; `publish` returns once the message has left for the broker (QoS 0)
//! or the broker has acknowledged it (QoS 1 and 2).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use wasmtime::component::Resource;

use crate::handles::HandleTable;

use host_world::fermyon::spin::mqtt::{self, Error, Qos};
use crate::state::ComponentState;

/// Messages a connection may have in flight towards the broker.
const CHANNEL_CAPACITY: usize = 16;
/// The longest a publish may wait for the broker.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ConnectionHandle {
    client: AsyncClient,
    events: EventLoop,
}

/// The options of a connection to `address` (`mqtt://host:port?client_id=...`).
fn options(address: &str, username: &str, password: &str, keep_alive_secs: u64) -> Result<MqttOptions, Error> {
    let mut options = MqttOptions::parse_url(address).map_err(|_| Error::InvalidAddress)?;
    if !username.is_empty() || !password.is_empty() {
        options.set_credentials(username, password);
    }
    options.set_keep_alive(Duration::from_secs(keep_alive_secs.max(5)));
    Ok(options)
}

fn qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// Drives the connection until the message is sent (QoS 0) or acknowledged (QoS 1, 2).
async fn deliver(events: &mut EventLoop, qos: QoS) -> Result<(), Error> {
    loop {
        let event = events.poll().await.map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        let done = match (qos, event) {
            (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_))) => true,
            (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_))) => true,
            (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_))) => true,
            _ => false,
        };
        if done {
            return Ok(());
        }
    }
}

impl mqtt::Host for ComponentState {}

impl mqtt::HostConnection for ComponentState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<mqtt::Connection>, Error>> {
        if !self.grants.outbound.allows_url(&address) {
            tracing::warn!(component = %self.grants.component, %address, "outbound MQTT denied by allowed_outbound_hosts");
            return Ok(Err(Error::ConnectionFailed(format!("address {address} is not permitted"))));
        }
        let options = match options(&address, &username, &password, keep_alive_interval_in_secs) {
            Ok(options) => options,
            Err(e) => return Ok(Err(e)),
        };
        let (client, events) = AsyncClient::new(options, CHANNEL_CAPACITY);
        Ok(Ok(self.table.push_handle(ConnectionHandle { client, events })?))
    }

    async fn publish(
        &mut self,
        this: Resource<mqtt::Connection>,
        topic: String,
        payload: Vec<u8>,
        qos_: Qos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let handle = self.table.handle_mut::<_, ConnectionHandle>(&this)?;
        let qos = qos(qos_);
        if let Err(e) = handle.client.publish(topic, qos, false, payload).await {
            return Ok(Err(Error::Other(e.to_string())));
        }
        Ok(match tokio::time::timeout(PUBLISH_TIMEOUT, deliver(&mut handle.events, qos)).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectionFailed("the broker did not acknowledge in time".into())),
        })
    }

    async fn drop(&mut self, this: Resource<mqtt::Connection>) -> wasmtime::Result<()> {
        let handle = self.table.delete_handle::<_, ConnectionHandle>(this)?;
        let _ = handle.client.try_disconnect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_client_id_and_credentials_are_optional() {
        assert!(options("mqtt://localhost:1883?client_id=spintest", "user", "password", 30).is_ok());
        assert!(options("mqtt://localhost:1883?client_id=spintest", "", "", 0).is_ok());
        assert!(matches!(options("mqtt://localhost:1883", "", "", 30), Err(Error::InvalidAddress)));
        assert!(matches!(options("not an address", "", "", 30), Err(Error::InvalidAddress)));
    }
}
