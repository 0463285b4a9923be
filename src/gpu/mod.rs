//! The one place that talks to wgpu: adapter and device selection, the pipeline cache, buffers, dispatch recording,
//! timing and readback. Everything above this module speaks in [`Tensor`]s and [`Dispatch`]es.

mod choice;
mod tensor;

pub use choice::TuneKey;
pub use tensor::{Arena, DType, Tensor};

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// WGSL read by every kernel that touches fp16 weights, in the variant without `shader-f16`: 4 halves in two `u32`s.
const PRELUDE_PACKED: &str = include_str!("../../shaders/prelude_packed.wgsl");
/// The same interface where the adapter has `shader-f16`: the buffer is read as `vec4<f16>` directly.
const PRELUDE_F16: &str = include_str!("../../shaders/prelude_f16.wgsl");
/// The same interface over f32 operands.
const PRELUDE_F32: &str = include_str!("../../shaders/prelude_f32.wgsl");

/// Which `W4` prelude a kernel is compiled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Prelude {
    /// fp16 weights: packed u32 or shader-f16, as the device reads them.
    #[default]
    Fp16,
    /// f32 operands.
    F32,
}

/// How to choose the fp16 weight-reading path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum F16Mode {
    /// Use `shader-f16` when the adapter offers it.
    #[default]
    Auto,
    /// Always read weights as packed `u32` pairs with `unpack2x16float` (works everywhere).
    Packed,
    /// Require `shader-f16`; fail if the adapter lacks it.
    Native,
}

/// Where linear layers read their weights and inputs from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinearPath {
    /// Textures on CPU adapters, storage buffers elsewhere.
    #[default]
    Auto,
    /// Storage buffers (fp16 weights via the `W4` prelude).
    Buffers,
    /// `rgba16float` weight textures and `rgba32float` staged inputs. On CPU adapters (lavapipe) texel fetches are
    /// vectorised while storage-buffer loads run lane by lane, which makes this path about 10x faster there.
    Textures,
}

/// Options for [`Gpu::new`].
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub f16: F16Mode,
    pub linear_path: LinearPath,
    /// Ask for at most this `maxStorageBufferBindingSize` (tests, or leaving memory to other work).
    pub max_storage_binding: Option<u64>,
    /// Prefer a low-power adapter (integrated GPU) over a discrete one.
    pub low_power: bool,
    /// Leave subgroup operations off even where offered (tests of the kernels without them).
    pub no_subgroups: bool,
}

/// What the adapter is and what it offers, for logs, benchmarks and error messages.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub shader_f16: bool,
    pub f16_weights_path: &'static str,
    pub timestamp_query: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_texture_dimension_2d: u32,
    /// How texture-path kernels read textures: read-only storage textures on lavapipe, sampled elsewhere.
    pub texture_reads: TextureReads,
    /// Whether subgroup operations are enabled (subgroups of at least 8 invocations; native only).
    pub subgroups: bool,
    /// Whether linear layers read weights and inputs through textures (see `ops::linear`).
    pub texture_linears: bool,
}

impl AdapterReport {
    /// Whether the adapter is a CPU implementation (lavapipe, SwiftShader, a browser's fallback adapter).
    pub fn is_cpu(&self) -> bool {
        self.device_type == "Cpu"
    }

    /// Where linear layers read their operands: "buffers", or "textures" with how (e.g. "textures (storage reads,
    /// subgroups)").
    pub fn linear_path(&self) -> String {
        if !self.texture_linears {
            return "buffers".into();
        }
        let reads = match self.texture_reads {
            TextureReads::Sampled => "sampled",
            TextureReads::Storage => "storage reads",
        };
        format!("textures ({reads}{})", if self.subgroups { ", subgroups" } else { "" })
    }
}

/// How kernels on the texture path read their textures. On lavapipe a read-only storage texture's load is inlined
/// address arithmetic, where a sampled texture's `textureLoad` calls a generic fetch function (about twice the cost
/// per linear layer); on SwiftShader it is the other way round (the texture linear kernel fell from 1.9-2.7x to
/// 1.2-1.6x the register-tiled buffer kernel with storage reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextureReads {
    Sampled,
    Storage,
}

/// WGSL that declares a texture the texture-path kernels read, at `binding` under `name`, with
/// `fn load_<name>(texel: vec2<u32>) -> vec4<f32>`: `[sampled, read-only storage]` (see [`TextureReads`]);
/// [`Gpu::texture_decl`] picks one.
#[macro_export]
macro_rules! texture_decl {
    ($binding:literal, $name:literal, $format:literal) => {
        [
            concat!(
                "@group(0) @binding(",
                $binding,
                ") var ",
                $name,
                ": texture_2d<f32>;\n",
                "fn load_",
                $name,
                "(t: vec2<u32>) -> vec4<f32> { return textureLoad(",
                $name,
                ", t, 0); }\n"
            ),
            concat!(
                "@group(0) @binding(",
                $binding,
                ") var ",
                $name,
                ": texture_storage_2d<",
                $format,
                ", read>;\n",
                "fn load_",
                $name,
                "(t: vec2<u32>) -> vec4<f32> { return textureLoad(",
                $name,
                ", t); }\n"
            ),
        ]
    };
}

/// The kind of one binding of a kernel. Binding 0 is always the kernel's uniform parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// Read-only storage buffer.
    Read,
    /// Read-write storage buffer.
    ReadWrite,
    /// An `rgba32float` texture (staged activations), sampled or read-only storage as the device reads textures
    /// ([`TextureReads`]).
    TexF32,
    /// An `rgba16float` texture (weights), likewise.
    TexF16,
    /// Write-only `rgba16float` storage texture.
    StorageTextureF16,
}

/// A resource bound to a kernel binding.
#[derive(Clone, Copy)]
pub enum Res<'a> {
    Buf(&'a wgpu::Buffer),
    Tex(&'a wgpu::TextureView),
}

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

/// A copy of rows of an f32 buffer into an `rgba32float` texture (4 values per texel), recorded before a dispatch
/// that reads its input through the texture path.
pub struct Stage {
    pub src: wgpu::Buffer,
    pub src_offset: u64,
    /// Texels per row (= values per row / 4).
    pub width: u32,
    pub rows: u32,
    pub dst: wgpu::Texture,
}

/// A kernel description: source files (concatenated in order), entry point, bindings after the uniform,
/// specialisation constants.
#[derive(Clone, Debug)]
pub struct KernelSpec<'a> {
    pub name: &'static str,
    pub source: &'a [&'static str],
    pub entry: &'static str,
    pub binds: &'a [Bind],
    pub constants: Vec<(&'static str, f64)>,
    pub prelude: Prelude,
}

/// A compiled pipeline and its bind group layout.
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
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

/// Device, queue, capabilities and the pipeline cache.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    f16: bool,
    timestamps: bool,
    kernels: RefCell<HashMap<String, Rc<Kernel>>>,
    staging: RefCell<HashMap<(u32, u32, u32), wgpu::Texture>>,
    choices: RefCell<BTreeMap<TuneKey, usize>>,
    scratch: RefCell<Option<wgpu::Buffer>>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
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
        let offered = adapter.limits();
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
        // Start from the WebGPU defaults and raise only what large models use, to what the adapter offers.
        let mut limits = wgpu::Limits::default().or_worse_values_from(&offered);
        limits.max_buffer_size = offered.max_buffer_size;
        limits.max_storage_buffer_binding_size = offered.max_storage_buffer_binding_size;
        if let Some(cap) = opts.max_storage_binding {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        limits.max_compute_workgroup_storage_size = offered.max_compute_workgroup_storage_size;
        limits.max_compute_invocations_per_workgroup = offered.max_compute_invocations_per_workgroup;
        limits.max_storage_buffers_per_shader_stage = offered.max_storage_buffers_per_shader_stage;
        limits.max_texture_dimension_2d = offered.max_texture_dimension_2d;
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
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = lost_sink.lock() {
                *v = Some(format!("{reason:?}: {msg}"));
            }
        });

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
            subgroups,
            texture_reads: if info.name.contains("llvmpipe") { TextureReads::Storage } else { TextureReads::Sampled },
            texture_linears: match opts.linear_path {
                LinearPath::Auto => info.device_type == wgpu::DeviceType::Cpu,
                LinearPath::Buffers => false,
                LinearPath::Textures => true,
            },
        };
        Ok(Gpu {
            device,
            queue,
            report,
            f16,
            timestamps,
            kernels: RefCell::new(HashMap::new()),
            staging: RefCell::new(HashMap::new()),
            choices: RefCell::new(BTreeMap::new()),
            scratch: RefCell::new(None),
            errors,
            lost,
        })
    }

    /// The kernel variant recorded for a problem shape on this device (`tune::tune_linear` and
    /// `tune::tune_attention` time the candidates and record the fastest), if one was.
    pub fn choice(&self, key: &TuneKey) -> Option<usize> {
        self.choices.borrow().get(key).copied()
    }

    /// Records the variant to use for a problem shape (see [`Gpu::choice`]).
    pub fn set_choice(&self, key: TuneKey, variant: usize) {
        self.choices.borrow_mut().insert(key, variant);
    }

    /// Every recorded choice, sorted by key.
    pub fn choices(&self) -> Vec<(TuneKey, usize)> {
        self.choices.borrow().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Whether weights are read as `f16` (true) or as packed `u32` pairs (false).
    pub fn uses_f16(&self) -> bool {
        self.f16
    }

    /// Returns the first GPU error since the last check, if any (validation, out of memory, device lost).
    pub fn check(&self) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|v| v.clone()) {
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

    /// Compiles (once) and returns a kernel. Sources that read fp16 weights get the prelude for this adapter.
    pub fn kernel(&self, spec: &KernelSpec<'_>) -> Result<Rc<Kernel>> {
        let mut key = format!("{}:{}:{}:{:?}", spec.name, spec.entry, self.f16, spec.prelude);
        // Sources are static strings: their addresses identify them (variants share a name and entry point).
        for src in spec.source {
            key.push_str(&format!(":{:p}", src.as_ptr()));
        }
        for (k, v) in &spec.constants {
            key.push_str(&format!(":{k}={v}"));
        }
        if let Some(k) = self.kernels.borrow().get(&key) {
            return Ok(k.clone());
        }
        let prelude = match spec.prelude {
            Prelude::F32 => PRELUDE_F32,
            Prelude::Fp16 if self.f16 => PRELUDE_F16,
            Prelude::Fp16 => PRELUDE_PACKED,
        };
        let source = std::iter::once(prelude).chain(spec.source.iter().copied()).collect::<Vec<_>>().join("\n");
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, b) in spec.binds.iter().enumerate() {
            let ty = match b {
                Bind::Read | Bind::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *b == Bind::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Bind::TexF32 | Bind::TexF16 if self.report.texture_reads == TextureReads::Sampled => {
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    }
                }
                Bind::TexF32 | Bind::TexF16 => wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::ReadOnly,
                    format: if *b == Bind::TexF32 {
                        wgpu::TextureFormat::Rgba32Float
                    } else {
                        wgpu::TextureFormat::Rgba16Float
                    },
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                Bind::StorageTextureF16 => wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::WriteOnly,
                    format: wgpu::TextureFormat::Rgba16Float,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
            };
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty,
                count: None,
            });
        }
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.name), entries: &entries });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &spec.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        self.check().map_err(|e| Error::Gpu(format!("kernel `{}` ({}): {e}", spec.name, spec.entry)))?;
        let k = Rc::new(Kernel { pipeline, layout });
        self.kernels.borrow_mut().insert(key, k.clone());
        Ok(k)
    }

    /// The form of a [`texture_decl!`] this device reads.
    pub fn texture_decl(&self, decl: [&'static str; 2]) -> &'static str {
        decl[(self.report.texture_reads == TextureReads::Storage) as usize]
    }

    /// Number of compiled pipelines.
    pub fn kernel_count(&self) -> usize {
        self.kernels.borrow().len()
    }

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

    /// An `rgba32float` texture of `width` x `height` texels for staging kernel inputs, shared by every dispatch
    /// that stages that shape into that slot (they run one after another on one queue), with a view of it.
    pub fn staging_texture(&self, width: u32, height: u32, slot: Staging) -> (wgpu::Texture, wgpu::TextureView) {
        let tex = self
            .staging
            .borrow_mut()
            .entry((width, height, slot as u32))
            .or_insert_with(|| {
                self.device.create_texture(&wgpu::TextureDescriptor {
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
                })
            })
            .clone();
        let view = tex.create_view(&Default::default());
        (tex, view)
    }

    /// An `rgba16float` texture of `width` x `height` texels for weights, written once by a compute pass (storage
    /// binding) and read by the kernels (texture binding), with its view.
    pub fn weight_texture(&self, label: &str, width: u32, height: u32) -> (wgpu::Texture, wgpu::TextureView) {
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
        (tex, view)
    }

    /// A storage buffer of at least `bytes` for intermediate results that live within one dispatch pair (the split-K
    /// linear's partial sums), shared by every such pair (they run one after another on one queue).
    pub fn scratch(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let mut cached = self.scratch.borrow_mut();
        if let Some(b) = cached.as_ref().filter(|b| b.size() >= bytes) {
            return Ok(b.clone());
        }
        let b = self.storage("split-K partial sums", bytes)?;
        *cached = Some(b.clone());
        Ok(b)
    }

    /// A uniform buffer holding `bytes` (padded to 16).
    pub fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
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
        buf
    }

    /// A storage buffer of at least `bytes` (rounded up to 16), checked against the binding limit.
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let size = bytes.div_ceil(16).max(1) * 16;
        let limit = self.report.max_storage_buffer_binding_size;
        if size > limit {
            return Err(Error::Limit {
                what: label.to_string(),
                need: size,
                limit,
                limit_name: "maxStorageBufferBindingSize",
            });
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `bytes`.
    pub fn upload(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
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
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: n as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
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
    fn poll(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    #[cfg(target_arch = "wasm32")]
    fn poll(&self) {}

    /// Copies `bytes` from the start of a buffer back to the CPU.
    pub async fn read_bytes(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.poll();
        rx.await
            .map_err(|_| Error::Gpu("device dropped during readback".into()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let data = {
            let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
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
