//! The edge's request metrics, counted by the HTTP trigger and rendered in the Prometheus text
//! format by the admin endpoints: requests by component, method and status, and a latency
//! histogram by component (time to the response head).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Default, Debug)]
struct Latency {
    /// Counts per bucket (not cumulative), plus one for +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum_secs: f64,
    count: u64,
}

#[derive(Default, Debug)]
pub struct RequestMetrics {
    /// (component, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
}

impl RequestMetrics {
    /// Counts one answered request.
    pub fn record(&self, component: &str, method: &str, status: u16, elapsed: Duration) {
        // Allocates the keys only the first time a (component, method, status) is seen: this
        // runs on every request.
        {
            let mut requests = self.requests.lock().expect("metrics lock");
            let known = requests.iter_mut().find(|((c, m, s), _)| *s == status && c == component && m == method);
            match known {
                Some((_, n)) => *n += 1,
                None => *requests.entry((component.into(), method.into(), status)).or_default() += 1,
            }
        }
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().expect("metrics lock");
        if !latency.contains_key(component) {
            latency.insert(component.into(), Latency::default());
        }
        let entry = latency.get_mut(component).expect("inserted above");
        let bucket = BUCKETS.iter().position(|bound| secs <= *bound).unwrap_or(BUCKETS.len());
        entry.buckets[bucket] += 1;
        entry.sum_secs += secs;
        entry.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP mp3edge_http_requests_total HTTP requests answered, by component, method and status.\n");
        out.push_str("# TYPE mp3edge_http_requests_total counter\n");
        for ((component, method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "mp3edge_http_requests_total{{component=\"{component}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP mp3edge_http_request_duration_seconds Time to the response head, by component.\n");
        out.push_str("# TYPE mp3edge_http_request_duration_seconds histogram\n");
        for (component, latency) in self.latency.lock().expect("metrics lock").iter() {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += latency.buckets[i];
                let _ = writeln!(out, "mp3edge_http_request_duration_seconds_bucket{{component=\"{component}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "mp3edge_http_request_duration_seconds_bucket{{component=\"{component}\",le=\"+Inf\"}} {}", latency.count);
            let _ = writeln!(out, "mp3edge_http_request_duration_seconds_sum{{component=\"{component}\"}} {}", latency.sum_secs);
            let _ = writeln!(out, "mp3edge_http_request_duration_seconds_count{{component=\"{component}\"}} {}", latency.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_render_as_prometheus_text() {
        let m = RequestMetrics::default();
        m.record("gateway", "GET", 200, Duration::from_millis(3));
        m.record("gateway", "GET", 200, Duration::from_millis(40));
        m.record("auth", "POST", 401, Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains("mp3edge_http_requests_total{component=\"gateway\",method=\"GET\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("mp3edge_http_request_duration_seconds_bucket{component=\"gateway\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("mp3edge_http_request_duration_seconds_bucket{component=\"gateway\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("mp3edge_http_request_duration_seconds_bucket{component=\"auth\",le=\"30\"} 0"), "{text}");
        assert!(text.contains("mp3edge_http_request_duration_seconds_count{component=\"auth\"} 1"), "{text}");
    }
}
