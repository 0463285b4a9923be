//! Kernels: the WGSL preludes, the [`texture_decl!`](crate::texture_decl) declarations, kernel descriptions
//! ([`KernelSpec`], [`Bind`]) and the pipeline cache ([`Gpu::kernel`]).

use super::{Gpu, TextureReads};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The text of a kernel file under `shaders/`, by its path there without the extension: `shader!("linear/buffer")`.
#[macro_export]
macro_rules! shader {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path, ".wgsl"))
    };
}

/// `flat_index` and `flat_workgroup` (`shaders/common/index.wgsl`): the 1D index of a grid folded into 2D by
/// [`grid`](super::grid), shared by the op kernels and the sampler step.
pub const INDEX_WGSL: &str = crate::shader!("common/index");

/// WGSL read by every kernel that touches fp16 weights, in the variant without `shader-f16`: 4 halves in two `u32`s.
const PRELUDE_PACKED: &str = crate::shader!("common/prelude_packed");
/// The same interface where the adapter has `shader-f16`: the buffer is read as `vec4<f16>` directly.
const PRELUDE_F16: &str = crate::shader!("common/prelude_f16");
/// The same interface over f32 operands.
const PRELUDE_F32: &str = crate::shader!("common/prelude_f32");

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

/// A kernel description: which kernel (`name`, under which its pipelines are counted, and `variant`, which of its
/// compositions), its source files (concatenated in order after the prelude), entry point, bindings after the uniform,
/// and specialisation (override constants). On one device, `name`, `variant` and `prelude` name one source, and with
/// `entry` and `constants` one pipeline: [`Gpu::kernel`] caches pipelines by exactly that.
#[derive(Clone, Debug, Default)]
pub struct KernelSpec<'a> {
    pub name: &'static str,
    /// Which composition of the kernel (empty where it has one): e.g. `workgroup` or `texture_subgroup` of `linear`,
    /// `split_hd72` of the attention generated per head dim.
    pub variant: Cow<'static, str>,
    pub source: &'a [&'a str],
    pub entry: &'static str,
    pub binds: &'a [Bind],
    pub constants: Vec<(&'static str, f64)>,
    pub prelude: Prelude,
}

impl KernelSpec<'_> {
    /// Where the source of this kernel is written by `dit kernels --dump` (its name, variant and, for f32 operands,
    /// `-f32`): the source's identity on a device.
    pub fn path(&self) -> String {
        let mut path = self.name.to_string();
        if !self.variant.is_empty() {
            path = format!("{path}/{}", self.variant);
        }
        if self.prelude == Prelude::F32 {
            path.push_str("-f32");
        }
        path
    }

    /// The specialisation this spec compiles: its entry point and override constants.
    fn specialisation(&self) -> Specialisation {
        Specialisation { entry: self.entry, constants: self.constants.clone() }
    }
}

/// One pipeline of a kernel: the entry point and the values of its override constants.
#[derive(Clone, Debug, PartialEq)]
pub struct Specialisation {
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
}

impl std::fmt::Display for Specialisation {
    /// `entry NAME=value ...`, the form the dump's `// pipeline:` lines take.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.entry)?;
        for (k, v) in &self.constants {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A compiled pipeline and its bind group layout.
pub struct Kernel {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    /// Seconds its creation took (shader module, layouts, pipeline).
    compile_s: f64,
}

/// The kernels compiled on a device: per source (a [`KernelSpec::path`]), the composed WGSL and its pipelines.
#[derive(Default)]
pub(super) struct Kernels {
    sources: BTreeMap<String, Compiled>,
}

struct Compiled {
    name: &'static str,
    wgsl: Rc<str>,
    pipelines: Vec<(Specialisation, Rc<Kernel>)>,
}

/// A kernel source compiled on a device and its specialisations ([`Gpu::compiled_kernels`]).
#[derive(Clone, Debug)]
pub struct CompiledKernel {
    /// [`KernelSpec::path`].
    pub path: String,
    /// The WGSL given to the device: the prelude and the kernel's files.
    pub wgsl: Rc<str>,
    pub specialisations: Vec<Specialisation>,
}

impl Gpu {
    /// Compiles (once per source and specialisation) and returns a kernel. Sources that read fp16 weights get the
    /// prelude for this adapter. A spec whose source differs from the one compiled under its path is an error.
    pub fn kernel(&self, spec: &KernelSpec<'_>) -> Result<Rc<Kernel>> {
        let path = spec.path();
        let wgsl = self.compose(spec);
        let specialisation = spec.specialisation();
        if let Some(c) = self.kernels.borrow().sources.get(&path) {
            if *c.wgsl != *wgsl {
                return Err(Error::Gpu(format!("kernel `{path}` was compiled from another source")));
            }
            if let Some((_, k)) = c.pipelines.iter().find(|(s, _)| *s == specialisation) {
                return Ok(k.clone());
            }
        }
        let t0 = crate::util::now_seconds();
        let layout = self.bind_group_layout(spec);
        let pipeline = self.pipeline(spec, &wgsl, &layout);
        self.check().map_err(|e| Error::Gpu(format!("kernel `{path}` ({specialisation}): {e}")))?;
        let k = Rc::new(Kernel { pipeline, layout, compile_s: crate::util::now_seconds() - t0 });
        let mut kernels = self.kernels.borrow_mut();
        let compiled = kernels.sources.entry(path).or_insert_with(|| Compiled {
            name: spec.name,
            wgsl: wgsl.into(),
            pipelines: vec![],
        });
        compiled.pipelines.push((specialisation, k.clone()));
        Ok(k)
    }

    /// The WGSL of a spec: the prelude it reads weights through, then its files in order.
    fn compose(&self, spec: &KernelSpec<'_>) -> String {
        let prelude = match spec.prelude {
            Prelude::F32 => PRELUDE_F32,
            Prelude::Fp16 if self.f16 => PRELUDE_F16,
            Prelude::Fp16 => PRELUDE_PACKED,
        };
        std::iter::once(prelude).chain(spec.source.iter().copied()).collect::<Vec<_>>().join("\n")
    }

    /// The bind group layout of a spec: its uniform at binding 0, then its bindings in order.
    fn bind_group_layout(&self, spec: &KernelSpec<'_>) -> wgpu::BindGroupLayout {
        let uniform = wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let types = std::iter::once(uniform).chain(spec.binds.iter().map(|b| self.binding_type(*b)));
        let entries: Vec<_> = types
            .enumerate()
            .map(|(i, ty)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty,
                count: None,
            })
            .collect();
        self.device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.name), entries: &entries })
    }

    fn binding_type(&self, b: Bind) -> wgpu::BindingType {
        let storage_texture = |access, format| wgpu::BindingType::StorageTexture {
            access,
            format,
            view_dimension: wgpu::TextureViewDimension::D2,
        };
        match b {
            Bind::Read | Bind::ReadWrite => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: b == Bind::Read },
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
            Bind::TexF32 => storage_texture(wgpu::StorageTextureAccess::ReadOnly, wgpu::TextureFormat::Rgba32Float),
            Bind::TexF16 => storage_texture(wgpu::StorageTextureAccess::ReadOnly, wgpu::TextureFormat::Rgba16Float),
            Bind::StorageTextureF16 => {
                storage_texture(wgpu::StorageTextureAccess::WriteOnly, wgpu::TextureFormat::Rgba16Float)
            }
        }
    }

    fn pipeline(&self, spec: &KernelSpec<'_>, wgsl: &str, layout: &wgpu::BindGroupLayout) -> wgpu::ComputePipeline {
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.name),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.name),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &spec.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        })
    }

    /// The form of a [`texture_decl!`] this device reads.
    pub fn texture_decl(&self, decl: [&'static str; 2]) -> &'static str {
        decl[(self.report.texture_reads == TextureReads::Storage) as usize]
    }

    /// Number of compiled pipelines.
    pub fn kernel_count(&self) -> usize {
        self.kernels.borrow().sources.values().map(|c| c.pipelines.len()).sum()
    }

    /// Every kernel source compiled on this device so far, with its specialisations (what `dit kernels --dump`
    /// writes), in path order.
    pub fn compiled_kernels(&self) -> Vec<CompiledKernel> {
        let kernels = self.kernels.borrow();
        kernels
            .sources
            .iter()
            .map(|(path, c)| CompiledKernel {
                path: path.clone(),
                wgsl: c.wgsl.clone(),
                specialisations: c.pipelines.iter().map(|(s, _)| s.clone()).collect(),
            })
            .collect()
    }

    /// The pipelines compiled so far on this device: how many, the time their creation took, and each kernel's
    /// name with how many variants of it and their creation time. Where the driver compiles in the calling thread
    /// (native wgpu, Dawn) the time is the compile's; a browser may compile in its GPU process, finishing at the
    /// pipeline's first use.
    pub fn pipeline_stats(&self) -> PipelineStats {
        let (mut kernels, mut kernel_ms) = (BTreeMap::new(), BTreeMap::new());
        for c in self.kernels.borrow().sources.values() {
            for (_, k) in &c.pipelines {
                *kernels.entry(c.name.to_string()).or_insert(0) += 1;
                *kernel_ms.entry(c.name.to_string()).or_insert(0.0) += k.compile_s * 1e3;
            }
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
