//! Kernels: the WGSL preludes, the [`texture_decl!`](crate::texture_decl) declarations, kernel descriptions
//! ([`KernelSpec`], [`Bind`]) and the pipeline cache ([`Gpu::kernel`]).

use super::{Gpu, TextureReads};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::rc::Rc;

/// WGSL read by every kernel that touches fp16 weights, in the variant without `shader-f16`: 4 halves in two `u32`s.
/// `flat_index` and `flat_workgroup` (`shaders/common/index.wgsl`): the 1D index of a grid folded into 2D by
/// [`grid`](super::grid), shared by the op kernels and the sampler step.
pub const INDEX_WGSL: &str = include_str!("../../shaders/common/index.wgsl");

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
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    /// Seconds its creation took (shader module, layouts, pipeline).
    compile_s: f64,
}

impl Gpu {
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
        let t0 = crate::util::now_seconds();
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
        let k = Rc::new(Kernel { pipeline, layout, compile_s: crate::util::now_seconds() - t0 });
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

    /// The pipelines compiled so far on this device: how many, the time their creation took, and each kernel's
    /// name with how many variants of it and their creation time. Where the driver compiles in the calling thread
    /// (native wgpu, Dawn) the time is the compile's; a browser may compile in its GPU process, finishing at the
    /// pipeline's first use.
    pub fn pipeline_stats(&self) -> PipelineStats {
        let (mut kernels, mut kernel_ms) = (BTreeMap::new(), BTreeMap::new());
        for (key, k) in self.kernels.borrow().iter() {
            let name = key.split(':').next().unwrap_or_default().to_string();
            *kernels.entry(name.clone()).or_insert(0) += 1;
            *kernel_ms.entry(name).or_insert(0.0) += k.compile_s * 1e3;
        }
        let compile_ms = kernel_ms.values().sum();
        PipelineStats { count: self.kernel_count(), compile_ms, kernels, kernel_ms }
    }
}

/// What [`Gpu::pipeline_stats`] reports (serialised for the package's `info().pipelines` and the benchmarks).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct PipelineStats {
    pub count: usize,
    pub compile_ms: f64,
    /// Pipelines per kernel name.
    pub kernels: BTreeMap<String, usize>,
    /// Creation time per kernel name, all its variants together.
    pub kernel_ms: BTreeMap<String, f64>,
}
