//! Dispatches and their recording: the resources bound to a kernel ([`Res`]), staging copies ([`Stage`]), the
//! recorded [`Dispatch`], workgroup grids, and command encoding, submission, timing and waiting.

use super::{Gpu, Kernel};
use crate::error::{Error, Result};
use std::rc::Rc;

/// A resource bound to a kernel binding.
#[derive(Clone, Copy)]
pub enum Res<'a> {
    Buf(&'a wgpu::Buffer),
    Tex(&'a wgpu::TextureView),
}

/// A copy of rows of an f32 buffer into an `rgba32float` texture (4 values per texel), recorded before a dispatch
/// that reads its input through the texture path.
pub struct Stage {
    pub src: super::Buffer,
    pub src_offset: u64,
    /// Texels per row (= values per row / 4).
    pub width: u32,
    pub rows: u32,
    pub dst: super::Texture,
}

/// One recorded compute dispatch: a pipeline, its bindings and a grid. Built once at load, recorded every step.
pub struct Dispatch {
    /// Op family, for per-op timings ("linear", "attention", ...).
    pub op: &'static str,
    /// Floating-point operations (2 per multiply-add) this dispatch performs.
    pub flops: f64,
    kernel: Rc<Kernel>,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
    /// Copies to record before this dispatch (outside any compute pass).
    pub stage: Vec<Stage>,
}

impl Dispatch {
    /// Records this dispatch into a compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
    }

    /// Records this dispatch's staging copies.
    pub fn record_stage(&self, enc: &mut wgpu::CommandEncoder) {
        for s in &self.stage {
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &s.src,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: s.src_offset,
                        bytes_per_row: Some(s.width * 16),
                        rows_per_image: Some(s.rows),
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &s.dst,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d { width: s.width, height: s.rows, depth_or_array_layers: 1 },
            );
        }
    }
}

impl Gpu {
    /// Builds a dispatch: `params` goes in a uniform at binding 0, `buffers` at bindings 1.. in order.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        kernel: &Rc<Kernel>,
        op: &'static str,
        params: &P,
        resources: &[Res<'_>],
        groups: [u32; 3],
        flops: f64,
    ) -> Result<Dispatch> {
        let uniform = self.uniform(op, bytemuck::bytes_of(params));
        self.dispatch_with_uniform(kernel, op, &uniform, resources, groups, flops)
    }

    /// Like [`Gpu::dispatch`], with a caller-owned uniform buffer at binding 0 that the caller rewrites between runs
    /// (the sampler's per-step scalars).
    pub fn dispatch_with_uniform(
        &self,
        kernel: &Rc<Kernel>,
        op: &'static str,
        uniform: &wgpu::Buffer,
        resources: &[Res<'_>],
        groups: [u32; 3],
        flops: f64,
    ) -> Result<Dispatch> {
        let max = self.device.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Config(format!(
                "{op}: grid {groups:?} exceeds {max} workgroups per dimension; use a smaller batch"
            )));
        }
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, r) in resources.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: match r {
                    Res::Buf(b) => b.as_entire_binding(),
                    Res::Tex(v) => wgpu::BindingResource::TextureView(v),
                },
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(op),
            layout: &kernel.layout,
            entries: &entries,
        });
        Ok(Dispatch { op, flops, kernel: kernel.clone(), bind_group, groups, stage: vec![] })
    }

    /// Records dispatches into command buffers: consecutive dispatches share a compute pass, and a dispatch with a
    /// staging copy starts a new command buffer with the copy first. (On lavapipe a texture written by a copy and
    /// read by a compute pass of the same command buffer read as zeros; separate command buffers of one submission
    /// are ordered correctly everywhere.) With `timestamps`, each dispatch gets its own pass with begin/end queries.
    /// Returns the finished buffers and the still-open last encoder, for the caller to append to.
    pub fn encode<'a>(
        &self,
        dispatches: impl IntoIterator<Item = &'a Dispatch>,
        timestamps: Option<&wgpu::QuerySet>,
    ) -> (Vec<wgpu::CommandBuffer>, wgpu::CommandEncoder) {
        let new_encoder = || self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dit") });
        let mut done = vec![];
        let mut enc = new_encoder();
        let mut it = dispatches.into_iter().enumerate().peekable();
        while let Some((i, first)) = it.next() {
            if !first.stage.is_empty() {
                done.push(std::mem::replace(&mut enc, new_encoder()).finish());
                first.record_stage(&mut enc);
            }
            let timestamp_writes = timestamps.map(|set| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            });
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(first.op), timestamp_writes });
            first.record(&mut pass);
            if timestamps.is_none() {
                while let Some((_, d)) = it.next_if(|(_, d)| d.stage.is_empty()) {
                    d.record(&mut pass);
                }
            }
        }
        (done, enc)
    }

    /// Records `dispatches` (see [`Gpu::encode`]) and submits them in one submission.
    pub fn run<'a>(&self, dispatches: impl IntoIterator<Item = &'a Dispatch>) {
        let (mut bufs, enc) = self.encode(dispatches, None);
        bufs.push(enc.finish());
        self.queue.submit(bufs);
    }

    /// Runs each dispatch in its own pass with GPU timestamps and returns the seconds each took (staging copies are
    /// outside the timed passes). Where the adapter has no timestamp queries, each dispatch is submitted alone and
    /// timed on the CPU instead.
    pub async fn run_timed(&self, dispatches: &[&Dispatch]) -> Result<Vec<f64>> {
        if dispatches.is_empty() {
            return Ok(vec![]);
        }
        if !self.timestamps {
            return self.run_timed_cpu(dispatches).await;
        }
        let n = dispatches.len() as u32 * 2;
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let resolve = self.counted(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: n as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }));
        let (mut bufs, mut enc) = self.encode(dispatches.iter().copied(), Some(&set));
        enc.resolve_query_set(&set, 0..n, &resolve, 0);
        bufs.push(enc.finish());
        self.queue.submit(bufs);
        let raw = self.read_bytes(&resolve, n as u64 * 8).await?;
        let ticks: &[u64] = bytemuck::cast_slice(&raw);
        let period = self.queue.get_timestamp_period() as f64 * 1e-9;
        Ok(ticks.chunks(2).map(|c| c[1].saturating_sub(c[0]) as f64 * period).collect())
    }

    /// Seconds per dispatch measured on the CPU clock: each dispatch submitted alone and waited for.
    pub async fn run_timed_cpu(&self, dispatches: &[&Dispatch]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(dispatches.len());
        for d in dispatches {
            let t0 = crate::util::now_seconds();
            self.run([*d]);
            self.sync().await?;
            out.push(crate::util::now_seconds() - t0);
        }
        Ok(out)
    }

    /// Waits until the GPU has finished all submitted work.
    pub async fn sync(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.poll();
        rx.await.map_err(|_| Error::Gpu("device dropped while waiting".into()))?;
        self.check()
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn poll(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    #[cfg(target_arch = "wasm32")]
    pub(super) fn poll(&self) {}
}

/// A workgroup grid for `n` workgroups in one flat index space, folded into x and y when it passes the per-dimension
/// limit (65535). Kernels recover the flat index as `wg.y * num_workgroups.x + wg.x` and skip indices past `n`.
pub fn grid(n: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if n <= MAX {
        [n.max(1), 1, 1]
    } else {
        [MAX, n.div_ceil(MAX), 1]
    }
}
