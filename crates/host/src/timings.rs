//! Request timings, when asked for: with `EVENTPLANE_TIMINGS=<seconds>` in its environment, the
//! host reports on stderr, every that many seconds (and whenever it receives `SIGUSR1`), for
//! each component that served requests since the last report, how long its requests took
//! inside the host, in percentiles:
//!
//! - **head**: from the request reaching its component to the response head the component
//!   sent (instantiation, the component's work, and its waits for the key-value store);
//! - **writes**: of that, the time spent in key-value writes (applied in memory: waiting for
//!   other writes, and past the limit of unwritten values for a commit; see `kv_store`);
//! - **durable**: after it, waiting until what the instance saw is on disk (module docs of
//!   [`crate::kv_store`]);
//! - **host**: head and durable together, the request's time in the host;
//!
//! and the key-value operations its requests made, on average, by kind (reads, lists, writes,
//! batch writes, increments, swaps; see [`OpCounts`]): what one request costs any store, the
//! same on Spin (the components are the same), where each changing operation is a transaction.
//!
//! What a client measures beyond `host` is the time its request spent reaching the handler
//! and its response spent reaching it back: on a busy machine, mostly waiting for a core.
//! This is for finding where the time goes (the benchmark scripts turn it on); nothing is
//! recorded without the variable.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::stores::OpCounts;

/// The environment variable that turns timings on: the reporting interval in seconds.
pub const TIMINGS_VAR: &str = "EVENTPLANE_TIMINGS";

/// The most requests kept per component and interval; later ones are counted, not timed.
const MAX_SAMPLES: usize = 1 << 20;

/// How long one request took in each phase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) head: Duration,
    pub(crate) writes: Duration,
    pub(crate) durable: Duration,
    pub(crate) ops: OpCounts,
}

#[derive(Default)]
struct Interval {
    samples: Vec<Sample>,
    untimed: usize,
}

/// The timings of the current interval, by component.
pub(crate) struct Timings {
    components: Mutex<HashMap<String, Interval>>,
}

impl Timings {
    /// Timings reported every `EVENTPLANE_TIMINGS` seconds, if `env` sets it to a positive
    /// number (anything else is refused, so that a typo does not go unnoticed).
    pub(crate) fn from_env(env: &HashMap<String, String>) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(value) = env.get(TIMINGS_VAR) else {
            return Ok(None);
        };
        let seconds: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s > 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("{TIMINGS_VAR} must be a positive number of seconds, not {value:?}")
            })?;
        let timings = Arc::new(Self {
            components: Mutex::default(),
        });
        let weak = Arc::downgrade(&timings);
        std::thread::Builder::new()
            .name("timings".into())
            .spawn(move || report_every(Duration::from_secs_f64(seconds), &weak))?;
        Ok(Some(timings))
    }

    /// Records one request of `component`.
    pub(crate) fn record(&self, component: &str, sample: Sample) {
        let mut components = self
            .components
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let interval = match components.get_mut(component) {
            Some(interval) => interval,
            None => components.entry(component.to_owned()).or_default(),
        };
        if interval.samples.len() < MAX_SAMPLES {
            interval.samples.push(sample);
        } else {
            interval.untimed += 1;
        }
    }

    /// The report of the interval now ending (one line per component, by name), and a new
    /// interval begun.
    fn take_report(&self) -> Vec<String> {
        let components = std::mem::take(
            &mut *self
                .components
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let mut lines: Vec<String> = components
            .into_iter()
            .map(|(component, interval)| report(&component, interval))
            .collect();
        lines.sort();
        lines
    }
}

/// Reports, and starts a new interval, each time the process receives `SIGUSR1` (a benchmark
/// sends one before and one after each run). Must be called inside the Tokio runtime.
pub(crate) fn report_on_signal(timings: Arc<Timings>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut signals = signal(SignalKind::user_defined1())?;
        let timings = Arc::downgrade(&timings);
        tokio::spawn(async move {
            while signals.recv().await.is_some() {
                let Some(timings) = timings.upgrade() else {
                    return;
                };
                print_report(&timings, true);
            }
        });
    }
    #[cfg(not(unix))]
    let _ = timings;
    Ok(())
}

/// Prints the report of the interval now ending; `say_if_empty`: even when nothing was served.
fn print_report(timings: &Timings, say_if_empty: bool) {
    let lines = timings.take_report();
    if lines.is_empty() && say_if_empty {
        eprintln!("timings: no requests");
    }
    for line in lines {
        eprintln!("{line}");
    }
}

/// Reports until the timings are dropped (the application is gone).
fn report_every(interval: Duration, timings: &Weak<Timings>) {
    loop {
        std::thread::sleep(interval);
        let Some(timings) = timings.upgrade() else {
            return;
        };
        print_report(&timings, false);
    }
}

/// One phase of a request, read from its sample.
type Phase = fn(&Sample) -> Duration;

/// `timings <component>: <n> requests; head p50 … p90 … p99 … max … ms; writes …; …`
fn report(component: &str, interval: Interval) -> String {
    let Interval { samples, untimed } = interval;
    let mut line = format!("timings {component}: {} requests", samples.len() + untimed);
    if untimed > 0 {
        let _ = write!(line, " ({untimed} not timed)");
    }
    let phases: [(&str, Phase); 4] = [
        ("head", |s| s.head),
        ("writes", |s| s.writes),
        ("durable", |s| s.durable),
        ("host", |s| s.head + s.durable),
    ];
    for (name, phase) in phases {
        let mut times: Vec<Duration> = samples.iter().map(phase).collect();
        times.sort_unstable();
        let _ = write!(
            line,
            "; {name} p50 {} p90 {} p99 {} max {} ms",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 90)),
            ms(percentile(&times, 99)),
            ms(times.last().copied().unwrap_or_default()),
        );
    }
    if !samples.is_empty() {
        let _ = write!(line, "; {}", mean_ops(&samples));
    }
    line
}

/// `store ops per request: reads …, …, transactions …` (means over `samples`, not empty).
fn mean_ops(samples: &[Sample]) -> String {
    type Count = fn(&OpCounts) -> u32;
    let kinds: [(&str, Count); 7] = [
        ("reads", |o| o.reads),
        ("lists", |o| o.lists),
        ("writes", |o| o.writes),
        ("batches", |o| o.batches),
        ("increments", |o| o.increments),
        ("swaps", |o| o.swaps),
        ("transactions", OpCounts::transactions),
    ];
    #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
    let mean = |count: Count| {
        samples
            .iter()
            .map(|s| f64::from(count(&s.ops)))
            .sum::<f64>()
            / samples.len() as f64
    };
    let parts: Vec<String> = kinds
        .iter()
        .map(|(name, count)| format!("{name} {:.2}", mean(*count)))
        .collect();
    format!("store ops per request: {}", parts.join(", "))
}

/// The `p`th percentile of `sorted` (nearest rank); zero when there is nothing.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_sample(head: u64, writes: u64, durable: u64) -> Sample {
        Sample {
            head: Duration::from_millis(head),
            writes: Duration::from_millis(writes),
            durable: Duration::from_millis(durable),
            ops: OpCounts::default(),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&times, 50), Duration::from_millis(100));
        assert_eq!(percentile(&times, 99), Duration::from_millis(198));
        assert_eq!(percentile(&times[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    /// Each component gets a line with every phase; an interval starts empty after a report.
    #[test]
    fn a_report_covers_each_component_and_starts_over() -> anyhow::Result<()> {
        let env = HashMap::from([(TIMINGS_VAR.to_owned(), "3600".to_owned())]);
        let Some(timings) = Timings::from_env(&env)? else {
            anyhow::bail!("timings are on");
        };
        for i in 1..=100 {
            let mut sample = ms_sample(i, i / 2, 1);
            sample.ops = OpCounts {
                reads: 5,
                increments: 2,
                batches: u32::from(i % 2 == 0),
                ..OpCounts::default()
            };
            timings.record("gateway", sample);
        }
        timings.record("registry", ms_sample(7, 0, 0));
        let lines = timings.take_report();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "timings gateway: 100 requests; head p50 50.00 p90 90.00 p99 99.00 max 100.00 ms; \
             writes p50 25.00 p90 45.00 p99 49.00 max 50.00 ms; \
             durable p50 1.00 p90 1.00 p99 1.00 max 1.00 ms; \
             host p50 51.00 p90 91.00 p99 100.00 max 101.00 ms; \
             store ops per request: reads 5.00, lists 0.00, writes 0.00, batches 0.50, \
             increments 2.00, swaps 0.00, transactions 2.50"
        );
        assert!(lines[1].starts_with("timings registry: 1 requests; head p50 7.00"));
        assert!(timings.take_report().is_empty());
        Ok(())
    }

    #[test]
    fn timings_are_off_unless_asked_for_and_refuse_nonsense() {
        assert!(matches!(Timings::from_env(&HashMap::new()), Ok(None)));
        for bad in ["0", "-1", "soon", "NaN", ""] {
            let env = HashMap::from([(TIMINGS_VAR.to_owned(), bad.to_owned())]);
            let err = Timings::from_env(&env).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(TIMINGS_VAR)),
                "{bad:?}: {err:?}"
            );
        }
    }
}
