//! The lab's users: publishers that reconnect as OBS does, and a probe
//! that keeps trying to start a new stream, so that a fault's effect on
//! new publishes is measured, not only on running ones.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtmp_live_testkit::publish::test_source;

/// An encoder that publishes to one ingest URL and, like OBS's automatic
/// reconnect, starts again 2 s after its connection ended.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    pub reconnects: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    pub fn start(url: String, size: &'static str) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let reconnects = Arc::new(AtomicUsize::new(0));
        let (s, r) = (stop.clone(), reconnects.clone());
        let thread = std::thread::spawn(move || {
            let mut first = true;
            while !s.load(Ordering::SeqCst) {
                if !first {
                    r.fetch_add(1, Ordering::SeqCst);
                }
                first = false;
                let mut p = test_source(&url, size, 25, None);
                while p.is_running() && !s.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                p.stop();
                sleep_unless(&s, Duration::from_secs(2));
            }
        });
        Publisher {
            stop,
            reconnects,
            thread: Some(thread),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tries, again and again, to start a short new stream on one of the
/// origins (the one at `target`): an attempt still running after 3 s was
/// accepted (a refused publish ends within a second or two). Each attempt
/// uses a key no one used before (`url(origin, attempt)`), so that no
/// component's memory of recent keys answers for the API.
pub struct Probe {
    stop: Arc<AtomicBool>,
    pub target: Arc<AtomicUsize>,
    /// (when the attempt started, accepted)
    pub attempts: Arc<Mutex<Vec<(Instant, bool)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Probe {
    pub fn start(url: impl Fn(usize, usize) -> String + Send + 'static) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let target = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let (s, t, a) = (stop.clone(), target.clone(), attempts.clone());
        let thread = std::thread::spawn(move || {
            let mut attempt = 0;
            while !s.load(Ordering::SeqCst) {
                let url = url(t.load(Ordering::SeqCst), attempt);
                attempt += 1;
                let started = Instant::now();
                let mut p = test_source(&url, "160x90", 10, Some(5));
                while started.elapsed() < Duration::from_secs(3) && p.is_running() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let accepted = p.is_running();
                p.stop();
                a.lock().unwrap().push((started, accepted));
                sleep_unless(&s, Duration::from_millis(500));
            }
        });
        Probe {
            stop,
            target,
            attempts,
            thread: Some(thread),
        }
    }

    /// The first accepted attempt that started at or after `since`.
    pub fn accepted_since(&self, since: Instant) -> Option<Instant> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .find(|(t, ok)| *t >= since && *ok)
            .map(|(t, _)| *t)
    }

    /// Attempts refused at or after `since`.
    pub fn refused_since(&self, since: Instant) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, ok)| *t >= since && !ok)
            .count()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
