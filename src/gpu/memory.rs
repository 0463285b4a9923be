//! GPU memory: storage and uniform buffers, the shared staging textures and scratch buffer, weight textures, writes
//! and readback.

use super::{Buffer, Counted, DType, Gpu, Tensor, Texture};
use crate::error::{Error, Result};

/// The slots of the shared staging textures ([`Gpu::staging_texture`]). Dispatches that stage the same shape into the
/// same slot share one texture; a dispatch that stages two operands puts them in two slots, and LayerNorm's two keep
/// slots of their own, apart from the linear kernels' 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Staging {
    /// The (first) input of a linear, matmul or attention kernel.
    Input = 0,
    /// The second operand of a matmul.
    SecondInput = 1,
    /// LayerNorm's x.
    NormInput = 2,
    /// LayerNorm's modulation (shift, scale).
    NormModulation = 3,
}

impl Gpu {
    /// An `rgba32float` texture of `width` x `height` texels for staging kernel inputs, shared by every dispatch
    /// that stages that shape into that slot (they run one after another on one queue), with a view of it.
    pub fn staging_texture(&self, width: u32, height: u32, slot: Staging) -> (Texture, wgpu::TextureView) {
        let tex = self
            .staging
            .borrow_mut()
            .entry((width, height, slot as u32))
            .or_insert_with(|| {
                let tex = self.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("staging"),
                    size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: wgpu::TextureFormat::Rgba32Float,
                    usage: wgpu::TextureUsages::TEXTURE_BINDING
                        | wgpu::TextureUsages::STORAGE_BINDING
                        | wgpu::TextureUsages::COPY_DST
                        | wgpu::TextureUsages::COPY_SRC,
                    view_formats: &[],
                });
                Counted::new(&self.live, tex, width as u64 * height as u64 * 16, true)
            })
            .clone();
        let view = tex.create_view(&Default::default());
        (tex, view)
    }

    /// An `rgba16float` texture of `width` x `height` texels for weights, written once by a compute pass (storage
    /// binding) and read by the kernels (texture binding), with its view.
    pub fn weight_texture(&self, label: &str, width: u32, height: u32) -> (Texture, wgpu::TextureView) {
        let tex = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba16Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::STORAGE_BINDING,
            view_formats: &[],
        });
        let view = tex.create_view(&Default::default());
        (Counted::new(&self.live, tex, width as u64 * height as u64 * 8, true), view)
    }

    /// A storage buffer of at least `bytes` for intermediate results that live within one dispatch pair (the split-K
    /// linear's partial sums), shared by every such pair (they run one after another on one queue).
    pub fn scratch(&self, bytes: u64) -> Result<Buffer> {
        let mut cached = self.scratch.borrow_mut();
        if let Some(b) = cached.as_ref().filter(|b| b.size() >= bytes) {
            return Ok(b.clone());
        }
        let b = self.storage("split-K partial sums", bytes)?;
        *cached = Some(b.clone());
        Ok(b)
    }

    /// A uniform buffer holding `bytes` (padded to 16).
    pub fn uniform(&self, label: &str, bytes: &[u8]) -> Buffer {
        let size = (bytes.len() as u64).div_ceil(16).max(1) * 16;
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut padded = bytes.to_vec();
        padded.resize(size as usize, 0);
        self.queue.write_buffer(&buf, 0, &padded);
        self.counted(buf)
    }

    /// A storage buffer of at least `bytes` (rounded up to 16), checked against the binding limit.
    pub fn storage(&self, label: &str, bytes: u64) -> Result<Buffer> {
        let size = bytes.div_ceil(16).max(1) * 16;
        let limit = self.report.max_storage_buffer_binding_size;
        if size > limit {
            return Err(Error::Limit {
                what: label.to_string(),
                need: size,
                limit,
                limit_name: self.report.binding_limit_name(),
            });
        }
        Ok(self.counted(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })))
    }

    /// A buffer counted in [`Gpu::live`] until its last handle drops.
    pub(super) fn counted(&self, buf: wgpu::Buffer) -> Buffer {
        let bytes = buf.size();
        Counted::new(&self.live, buf, bytes, false)
    }

    /// A storage buffer holding `bytes`.
    pub fn upload(&self, label: &str, bytes: &[u8]) -> Result<Buffer> {
        let buf = self.storage(label, bytes.len() as u64)?;
        self.write(&buf, 0, bytes);
        Ok(buf)
    }

    /// Writes bytes into a buffer, padding the tail to the 4-byte copy alignment.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        if bytes.len().is_multiple_of(4) {
            self.queue.write_buffer(buf, offset, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().div_ceil(4) * 4, 0);
            self.queue.write_buffer(buf, offset, &padded);
        }
    }

    /// Copies `bytes` from the start of a buffer back to the CPU.
    pub async fn read_bytes(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.div_ceil(4) * 4;
        let staging = self.counted(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }));
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.poll();
        // A readback fails when the device is lost: that is then the error to report.
        let failed = |what: String| self.check().err().unwrap_or(Error::Gpu(what));
        rx.await
            .map_err(|_| failed("device dropped during readback".into()))?
            .map_err(|e| failed(format!("readback failed: {e}")))?;
        let data = {
            let view = staging.get_mapped_range(..).map_err(|e| failed(format!("readback failed: {e}")))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        self.check()?;
        Ok(data)
    }

    /// Reads a tensor back as f32 values.
    pub async fn read_f32(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(&t.buf, t.numel() as u64 * t.dtype.size() as u64).await?;
        Ok(match t.dtype {
            DType::F32 => bytemuck::pod_collect_to_vec(&bytes),
            DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes).into_iter().map(f32::from).collect(),
            DType::U32 => bytemuck::pod_collect_to_vec::<u8, u32>(&bytes).into_iter().map(|v| v as f32).collect(),
        })
    }
}
