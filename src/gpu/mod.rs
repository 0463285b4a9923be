//! The one place that talks to wgpu: adapter and device selection, the pipeline cache, buffers, dispatch recording,
//! timing and readback. Everything above this module speaks in [`Tensor`]s and [`Dispatch`]es.
//!
//! This file holds [`Gpu`] (device, queue, adapter report and the caches of the files below), opens the device and
//! collects its errors ([`Gpu::check`]). Its other methods live with their concern:
//! - `adapter.rs`: the options for opening a device ([`GpuOptions`], [`F16Mode`], [`LinearPath`]) and the
//!   [`AdapterReport`] (with [`KernelPath`], the kernels the ops run, and [`TextureReads`]);
//! - `kernel.rs`: the WGSL preludes, [`texture_decl!`](crate::texture_decl), kernel descriptions ([`KernelSpec`],
//!   [`Bind`], [`Prelude`]) and the pipeline cache ([`Gpu::kernel`]);
//! - `dispatch.rs`: [`Dispatch`]es ([`Res`], [`Stage`], [`grid`]), their encoding and submission, timing and
//!   [`Gpu::sync`];
//! - `memory.rs`: storage and uniform buffers, staging ([`Staging`]) and weight textures, scratch, writes and
//!   readback;
//! - `choice.rs`: the device's kernel choices ([`TuneKey`], [`Gpu::choice`]);
//! - `tensor.rs`: [`Tensor`], [`DType`] and the activation [`Arena`];
//! - `live.rs`: the counted [`Buffer`] and [`Texture`] handles and the device's [`LiveCounts`] ([`Gpu::live`]).

mod adapter;
mod choice;
mod dispatch;
mod kernel;
mod live;
mod memory;
mod tensor;

pub use adapter::{AdapterReport, F16Mode, GpuOptions, KernelPath, LimitsMode, LinearPath, TextureReads};
pub use choice::TuneKey;
pub use dispatch::{grid, Dispatch, Res, Stage};
pub use kernel::{Bind, CompiledKernel, Kernel, KernelSpec, PipelineStats, Prelude, Specialisation, INDEX_WGSL};
pub use live::{Buffer, Counted, LiveCounts, Texture};
pub use memory::Staging;
pub use tensor::{Arena, DType, Tensor};

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Device, queue, capabilities and the pipeline cache.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    f16: bool,
    timestamps: bool,
    kernels: RefCell<kernel::Kernels>,
    staging: RefCell<HashMap<(u32, u32, u32), Texture>>,
    choices: RefCell<BTreeMap<TuneKey, usize>>,
    scratch: RefCell<Option<Buffer>>,
    live: Arc<live::Live>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Lost>>,
}

/// Whether the device was lost (wgpu's device-lost callback: `GPUDevice.lost` in a browser), and who waits for it.
#[derive(Default)]
struct Lost {
    reason: Option<String>,
    waiting: Vec<futures_channel::oneshot::Sender<String>>,
}

impl Gpu {
    /// Opens the default adapter (a real GPU when there is one) with the limits the model needs, never more than the
    /// adapter offers.
    pub async fn new(opts: &GpuOptions) -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: if opts.low_power {
                    wgpu::PowerPreference::LowPower
                } else {
                    wgpu::PowerPreference::HighPerformance
                },
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "{e}; this needs a GPU driver with Vulkan, Metal or DX12 (or a browser with WebGPU)"
                ))
            })?;
        Self::from_adapter(adapter, opts).await
    }

    /// Opens a device on a given adapter.
    pub async fn from_adapter(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let have = adapter.features();
        let has_f16 = have.contains(wgpu::Features::SHADER_F16);
        let f16 = match opts.f16 {
            F16Mode::Auto => has_f16,
            F16Mode::Packed => false,
            F16Mode::Native if has_f16 => true,
            F16Mode::Native => return Err(Error::Device(format!("adapter `{}` does not offer shader-f16", info.name))),
        };
        let timestamps = have.contains(wgpu::Features::TIMESTAMP_QUERY);
        let mut features = wgpu::Features::empty();
        if f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        if timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        // Subgroups of at least 8 invocations let the texture linear and attention kernels load each weight or
        // key/value texel once per subgroup and broadcast it (wgpu offers the feature natively only).
        let subgroups = have.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8 && !opts.no_subgroups;
        if subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        let limits = requested_limits(&adapter.limits(), opts);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("dit-wasm"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device(e.to_string()))?;

        let (errors, lost) = watch_errors(&device);

        let kernels = KernelPath::choose(opts.linear_path, info.device_type == wgpu::DeviceType::Cpu);
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            shader_f16: has_f16,
            f16_weights_path: if f16 { "shader-f16" } else { "packed-u32" },
            timestamp_query: timestamps,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_texture_dimension_2d: limits.max_texture_dimension_2d,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            limits: opts.limits,
            subgroups,
            texture_reads: if info.name.contains("llvmpipe") { TextureReads::Storage } else { TextureReads::Sampled },
            kernels,
            texture_linears: kernels.textures(),
        };
        Ok(Gpu {
            device,
            queue,
            report,
            f16,
            timestamps,
            kernels: RefCell::default(),
            staging: RefCell::new(HashMap::new()),
            choices: RefCell::new(BTreeMap::new()),
            scratch: RefCell::new(None),
            live: Arc::default(),
            errors,
            lost,
        })
    }

    /// Whether weights are read as `f16` (true) or as packed `u32` pairs (false).
    pub fn uses_f16(&self) -> bool {
        self.f16
    }

    /// Why the device was lost, once it was (a driver reset, the browser's GPU process restarting, [`Gpu::destroy`]).
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|v| v.reason.clone())
    }

    /// Resolves with the reason when the device is lost (at once if it already was); never, while it is not. It holds
    /// no borrow of `self`, so a caller can wait on it beside other work.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        if let Ok(mut v) = self.lost.lock() {
            match &v.reason {
                Some(why) => {
                    let _ = tx.send(why.clone());
                }
                None => v.waiting.push(tx),
            }
        }
        async move {
            match rx.await {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Releases the device and its memory now rather than when the browser collects it; the device then counts as
    /// lost (reason `Destroyed`).
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// The buffers and textures alive on this device (made through this `Gpu` and not yet dropped), with their bytes.
    pub fn live(&self) -> LiveCounts {
        self.live.counts()
    }

    /// Returns the first GPU error since the last check, if any (validation, out of memory, device lost).
    pub fn check(&self) -> Result<()> {
        if let Some(msg) = self.lost_reason() {
            return Err(Error::DeviceLost(msg));
        }
        let mut errs = self.errors.lock().map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if errs.is_empty() {
            Ok(())
        } else {
            let first = errs.remove(0);
            errs.clear();
            Err(Error::Gpu(first))
        }
    }
}

/// The limits a device is opened with: the WebGPU defaults, raised for what large models use to what the adapter
/// offers (unless asked for the defaults alone: `LimitsMode::Default`), the storage binding capped where asked.
fn requested_limits(offered: &wgpu::Limits, opts: &GpuOptions) -> wgpu::Limits {
    // Start from the WebGPU defaults and raise only what large models use, to what the adapter offers (unless
    // asked for the defaults alone: `LimitsMode::Default`).
    let mut limits = wgpu::Limits::default().or_worse_values_from(offered);
    if opts.limits == LimitsMode::Adapter {
        limits.max_buffer_size = offered.max_buffer_size;
        limits.max_storage_buffer_binding_size = offered.max_storage_buffer_binding_size;
        limits.max_compute_workgroup_storage_size = offered.max_compute_workgroup_storage_size;
        limits.max_compute_invocations_per_workgroup = offered.max_compute_invocations_per_workgroup;
        limits.max_storage_buffers_per_shader_stage = offered.max_storage_buffers_per_shader_stage;
        limits.max_texture_dimension_2d = offered.max_texture_dimension_2d;
    }
    if let Some(cap) = opts.max_storage_binding {
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
    }
    limits
}

/// Collects a device's uncaptured errors (read by [`Gpu::check`]) and its loss.
fn watch_errors(device: &wgpu::Device) -> (Arc<Mutex<Vec<String>>>, Arc<Mutex<Lost>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        let msg = match &e {
            wgpu::Error::Validation { description, .. } => format!("validation: {description}"),
            wgpu::Error::OutOfMemory { .. } => "out of GPU memory".to_string(),
            wgpu::Error::Internal { description, .. } => format!("internal: {description}"),
        };
        if let Ok(mut v) = sink.lock() {
            v.push(msg.trim().to_string());
        }
    }));
    let lost = Arc::new(Mutex::new(Lost::default()));
    let lost_sink = lost.clone();
    device.set_device_lost_callback(move |reason, msg| {
        if let Ok(mut v) = lost_sink.lock() {
            let why = format!("{reason:?}: {msg}");
            for w in v.waiting.drain(..) {
                let _ = w.send(why.clone());
            }
            v.reason = Some(why);
        }
    });
    (errors, lost)
}
