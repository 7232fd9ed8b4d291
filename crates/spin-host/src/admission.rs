//! Admission control for the HTTP trigger: how many requests each component serves at once,
//! with a short queue in front, so that no component (and no client flooding one route) can
//! take every instance of the pool, and a component whose work is memory-hungry (password
//! hashing) runs a bounded number of times at once whatever arrives. Beyond the queue, or after
//! waiting too long in it, a request is answered `503` with `Retry-After` by the host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentLimit {
    /// Requests served at once.
    pub concurrent: usize,
    /// Requests waiting for a place, beyond which the host answers 503 at once.
    pub queue: usize,
}

/// The limits of every component: one default, and overrides by name.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub default: ComponentLimit,
    pub overrides: BTreeMap<String, usize>,
    /// Longest wait in the queue.
    pub queue_timeout: Duration,
}

impl AdmissionConfig {
    /// Parses `NAME=N` overrides (`--component-concurrency auth=4`).
    pub fn parse_overrides(values: &[String]) -> Result<BTreeMap<String, usize>> {
        let mut overrides = BTreeMap::new();
        for value in values {
            let (name, n) = value.split_once('=').with_context(|| format!("{value:?} is not NAME=N"))?;
            let n: usize = n.trim().parse().with_context(|| format!("{value:?}: N must be a whole number"))?;
            if n == 0 {
                bail!("{value:?}: a component needs at least one place");
            }
            overrides.insert(name.trim().to_string(), n);
        }
        Ok(overrides)
    }

    pub fn limit(&self, component: &str) -> ComponentLimit {
        match self.overrides.get(component) {
            Some(&concurrent) => ComponentLimit { concurrent, queue: self.default.queue },
            None => self.default,
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full.
    QueueFull,
    /// It waited in the queue for the whole timeout.
    WaitedTooLong,
}

struct Gate {
    places: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// The gates of every component.
pub struct Admission {
    gates: BTreeMap<String, Gate>,
    queue_timeout: Duration,
}

/// Holds a component's place until dropped (when its instance has finished).
pub struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    pub fn new<'a>(config: &AdmissionConfig, components: impl IntoIterator<Item = &'a str>) -> Admission {
        let gates = components
            .into_iter()
            .map(|name| {
                let limit = config.limit(name);
                let gate = Gate { places: Arc::new(Semaphore::new(limit.concurrent)), waiting: AtomicUsize::new(0), queue: limit.queue };
                (name.to_string(), gate)
            })
            .collect();
        Admission { gates, queue_timeout: config.queue_timeout }
    }

    /// Instances the components may run at once in all (to size the instance pool).
    pub fn total(config: &AdmissionConfig, components: &[&str]) -> usize {
        components.iter().map(|c| config.limit(c).concurrent).sum()
    }

    /// Waits for a place for `component`, at most the queue timeout.
    pub async fn admit(&self, component: &str) -> Result<Admitted, Refusal> {
        let Some(gate) = self.gates.get(component) else { return Ok(Admitted { _permit: None }) };
        if let Ok(permit) = gate.places.clone().try_acquire_owned() {
            return Ok(Admitted { _permit: Some(permit) });
        }
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= gate.queue {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::QueueFull);
        }
        let waited = tokio::time::timeout(self.queue_timeout, gate.places.clone().acquire_owned()).await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(Admitted { _permit: Some(permit) }),
            _ => Err(Refusal::WaitedTooLong),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdmissionConfig {
        AdmissionConfig {
            default: ComponentLimit { concurrent: 2, queue: 1 },
            overrides: AdmissionConfig::parse_overrides(&["auth=1".into()]).unwrap(),
            queue_timeout: Duration::from_millis(200),
        }
    }

    #[test]
    fn overrides_parse() {
        assert!(AdmissionConfig::parse_overrides(&["auth".into()]).is_err());
        assert!(AdmissionConfig::parse_overrides(&["auth=0".into()]).is_err());
        assert!(AdmissionConfig::parse_overrides(&["auth=x".into()]).is_err());
        assert_eq!(config().limit("auth").concurrent, 1);
        assert_eq!(config().limit("web"), ComponentLimit { concurrent: 2, queue: 1 });
        assert_eq!(Admission::total(&config(), &["auth", "web"]), 3);
    }

    #[tokio::test]
    async fn places_then_a_short_queue_then_refusal() {
        let admission = Admission::new(&config(), ["web"]);
        let a = admission.admit("web").await.unwrap();
        let _b = admission.admit("web").await.unwrap();
        // The third waits in the queue (one place), the fourth is refused at once.
        let third = admission.admit("web");
        let fourth = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            admission.admit("web").await.err()
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(a);
        };
        let (third, fourth, ()) = tokio::join!(third, fourth, release);
        assert!(third.is_ok());
        assert_eq!(fourth, Some(Refusal::QueueFull));
        // Nobody leaves now: the next waits out the timeout.
        let _c = third.unwrap();
        assert_eq!(admission.admit("web").await.err(), Some(Refusal::WaitedTooLong));
        // Unknown components are not limited.
        assert!(admission.admit("other").await.is_ok());
    }
}
