//! Flow-control benchmarks: how closely the pacer holds `link.bandwidth`, and how priorities
//! keep a telemetry channel's latency low while a bulk channel fills the link.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir::harness::drive::{send_datagrams, send_stream_unhashed};

use super::bench::{latencies, percentile, start_pair, PairOptions};

const CEILING_BPS: f64 = 1e9;

/// Streams into a 1 Gbit/s link for 11 s and measures the wire rate at the relay over the
/// last 10 s (IPv4 + UDP headers included, as the pacer counts), and the largest excess over
/// the rate in any 100 ms window.
pub fn pacing() -> anyhow::Result<()> {
    let pair = start_pair(&PairOptions {
        label: "pacing",
        relay: true,
        bandwidth: "1 Gbit/s",
        ..PairOptions::default()
    })?;
    let Some(relay) = pair.relay.as_ref() else {
        anyhow::bail!("the pacing case needs the relay");
    };
    let tcp_in = pair.tcp_in;
    std::thread::spawn(move || send_stream_unhashed(tcp_in, 4 << 30, 1));
    let wire = || {
        relay.counters.forwarded_bytes.load(Ordering::Relaxed)
            + 28 * relay.counters.forwarded.load(Ordering::Relaxed)
    };
    std::thread::sleep(Duration::from_secs(1));
    let (start, t0) = (wire(), Instant::now());
    let mut samples = vec![(t0, start)];
    while t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        samples.push((Instant::now(), wire()));
    }
    let (t1, end) = samples.last().copied().unwrap_or((t0, start));
    let rate = (end - start) as f64 * 8.0 / t1.duration_since(t0).as_secs_f64();
    let excess = samples
        .windows(2)
        .filter_map(|w| match w {
            [(ta, a), (tb, b)] => {
                Some((b - a) as f64 - CEILING_BPS / 8.0 * tb.duration_since(*ta).as_secs_f64())
            }
            _ => None,
        })
        .fold(0.0f64, f64::max);
    println!();
    println!(
        "pacing    ceiling 1 Gbit/s: measured {:.4} Gbit/s over {:.1} s ({:+.2} %); largest excess in a 100 ms window {:.0} KiB (burst {} KiB)",
        rate / 1e9,
        t1.duration_since(t0).as_secs_f64(),
        (rate / CEILING_BPS - 1.0) * 100.0,
        excess.max(0.0) / 1024.0,
        2 * weir::net::SEND_BATCH_BYTES / 1024,
    );
    Ok(())
}

/// A bulk TCP channel fills a 1 Gbit/s link while a telemetry channel sends 100 datagrams of
/// 100 bytes a second for 10 s; prints the telemetry p50/p99/max latency with the telemetry at
/// priority 1 and the bulk at 3, then with both at the default priority for comparison.
pub fn priority() -> anyhow::Result<()> {
    println!();
    for (label, stream_extra, datagram_extra) in [
        ("prio 1 vs 3", "priority = 3", "priority = 1"),
        ("both prio 2", "", ""),
    ] {
        let pair = start_pair(&PairOptions {
            label: "priority",
            bandwidth: "1 Gbit/s",
            stream_extra,
            datagram_extra,
            ..PairOptions::default()
        })?;
        let tcp_in = pair.tcp_in;
        std::thread::spawn(move || send_stream_unhashed(tcp_in, 4 << 30, 2));
        std::thread::sleep(Duration::from_secs(1));
        let sent = send_datagrams(pair.udp_in, 1000, 100..=100, 100, 3)?;
        pair.udp_out.wait_for(1000, Duration::from_secs(5));
        let lat = latencies(&pair.udp_out, &sent);
        let pct = |p: f64| percentile(&lat, p);
        println!(
            "priority  {label}: bulk fills 1 Gbit/s; telemetry {} of 1000 arrived, p50 {:?}, p99 {:?}, max {:?}",
            lat.len(),
            pct(0.5),
            pct(0.99),
            lat.last().copied().unwrap_or_default(),
        );
    }
    Ok(())
}
