//! Benchmarks shared by `dit bench` and the browser bench: whole-forward time (median of several runs, CPU clock
//! around submit + wait) and per-op GPU time from timestamp queries (or per-dispatch CPU timing without them).

use crate::error::Result;
use crate::gpu::{AdapterReport, Dispatch, Gpu};
use crate::util::{median, now_seconds};
use serde::Serialize;
use std::collections::BTreeMap;

/// Time and throughput of one op family within a forward.
#[derive(Clone, Debug, Serialize)]
pub struct OpTiming {
    pub dispatches: usize,
    pub ms: f64,
    pub gflop: f64,
    pub gflops_per_s: f64,
}

/// Result of benchmarking a recorded forward.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardBench {
    pub adapter: AdapterReport,
    pub ms_per_forward: f64,
    pub ms_runs: Vec<f64>,
    /// 2 x multiply-adds of the forward (the dispatches' own count).
    pub gflop_per_forward: f64,
    pub gflops_per_s: f64,
    pub dispatches_per_forward: usize,
    /// Per-op GPU time, summed over one forward; `timer` says how it was measured.
    pub ops: BTreeMap<String, OpTiming>,
    pub timer: &'static str,
}

/// Runs `dispatches` `warmup + repeat` times, returning the median wall time and per-op timings.
pub async fn bench_dispatches(
    gpu: &Gpu,
    dispatches: &[Dispatch],
    warmup: usize,
    repeat: usize,
) -> Result<ForwardBench> {
    for _ in 0..warmup {
        gpu.run(dispatches);
        gpu.sync().await?;
    }
    let mut runs = vec![];
    for _ in 0..repeat.max(1) {
        let t0 = now_seconds();
        gpu.run(dispatches);
        gpu.sync().await?;
        runs.push((now_seconds() - t0) * 1e3);
    }
    let refs: Vec<&Dispatch> = dispatches.iter().collect();
    let per = gpu.run_timed(&refs).await?;
    let mut ops: BTreeMap<String, OpTiming> = BTreeMap::new();
    for (d, s) in dispatches.iter().zip(&per) {
        let e =
            ops.entry(d.op.to_string()).or_insert(OpTiming { dispatches: 0, ms: 0.0, gflop: 0.0, gflops_per_s: 0.0 });
        e.dispatches += 1;
        e.ms += s * 1e3;
        e.gflop += d.flops / 1e9;
    }
    for e in ops.values_mut() {
        e.gflops_per_s = if e.ms > 0.0 { e.gflop / (e.ms / 1e3) } else { 0.0 };
    }
    let ms = median(&runs);
    let gflop: f64 = dispatches.iter().map(|d| d.flops).sum::<f64>() / 1e9;
    Ok(ForwardBench {
        adapter: gpu.report.clone(),
        ms_per_forward: ms,
        ms_runs: runs,
        gflop_per_forward: gflop,
        gflops_per_s: gflop / (ms / 1e3),
        dispatches_per_forward: dispatches.len(),
        ops,
        timer: if gpu.report.timestamp_query { "gpu-timestamps" } else { "cpu-per-dispatch" },
    })
}
