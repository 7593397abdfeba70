//! The fan-out floor of a machine: how long a server takes to answer many
//! requests that arrive at the same moment, whatever it does per answer.
//! `viewers` kept-alive connections (spread over loopback source addresses
//! like the fan-out's viewers) each send one GET of the same URL at the
//! same instant; each answer's time from that instant is recorded, for
//! `rounds` rounds. Pointed at a plain nginx serving a small file, it
//! gives the least any server on this machine could do for a wave of
//! waiters; pointed at the edge, the same for the edge's cached answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Barrier, Mutex};
use url::Url;

use super::conn::Conn;
use super::{percentile, source, TIMEOUT};

/// What to run.
#[derive(Clone, Debug)]
pub struct BurstOptions {
    pub url: Url,
    pub viewers: usize,
    pub rounds: usize,
    pub per_address: usize,
}

/// The answers' times from the moment of each round's requests.
#[derive(Debug, Default, Serialize)]
pub struct BurstReport {
    pub viewers: usize,
    pub rounds: usize,
    pub answers: usize,
    pub errors: usize,
    pub ms_p50: f64,
    pub ms_p90: f64,
    pub ms_p99: f64,
    pub ms_max: f64,
    /// The median over rounds of the last answer's time (the wave).
    pub wave_ms_median: f64,
}

pub async fn burst(o: BurstOptions) -> BurstReport {
    let barrier = Arc::new(Barrier::new(o.viewers + 1));
    let times = Arc::new(Mutex::new(Vec::<(usize, f64)>::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // the round's instant, sent once every connection waits for it
    let (go, ready) = tokio::sync::watch::channel(Instant::now());
    let mut tasks = Vec::new();
    for i in 0..o.viewers {
        let mut c = match Conn::new(&o.url, Some(source(i / o.per_address.max(1)))) {
            Ok(c) => c,
            Err(e) => panic!("{}: {e}", o.url),
        };
        let (url, barrier, times, errors, mut ready) = (
            o.url.clone(),
            Arc::clone(&barrier),
            Arc::clone(&times),
            Arc::clone(&errors),
            ready.clone(),
        );
        let rounds = o.rounds;
        tasks.push(tokio::spawn(async move {
            // connected and warm before the first round
            let _ = c.get(&url, None, TIMEOUT).await;
            for round in 0..rounds {
                barrier.wait().await;
                if ready.changed().await.is_err() {
                    return;
                }
                let t0 = *ready.borrow_and_update();
                match c.get(&url, None, TIMEOUT).await {
                    Ok((200, _)) => times
                        .lock()
                        .await
                        .push((round, t0.elapsed().as_secs_f64() * 1e3)),
                    _ => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                // every answer in before the next round
                barrier.wait().await;
            }
        }));
    }
    for _ in 0..o.rounds {
        // every connection ready (connected, its last answer in)
        barrier.wait().await;
        // a moment for the waiting tasks to park on the channel
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = go.send(Instant::now());
        barrier.wait().await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let times = std::mem::take(&mut *times.lock().await);
    let mut all: Vec<f64> = times.iter().map(|(_, t)| *t).collect();
    all.sort_by(f64::total_cmp);
    let mut waves: Vec<f64> = (0..o.rounds)
        .filter_map(|r| {
            times
                .iter()
                .filter(|(round, _)| *round == r)
                .map(|(_, t)| *t)
                .max_by(f64::total_cmp)
        })
        .collect();
    waves.sort_by(f64::total_cmp);
    BurstReport {
        viewers: o.viewers,
        rounds: o.rounds,
        answers: all.len(),
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        ms_p50: percentile(&all, 0.50),
        ms_p90: percentile(&all, 0.90),
        ms_p99: percentile(&all, 0.99),
        ms_max: all.last().copied().unwrap_or(0.0),
        wave_ms_median: percentile(&waves, 0.50),
    }
}
