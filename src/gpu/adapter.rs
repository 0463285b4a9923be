//! What the caller asks of the device ([`GpuOptions`]: the fp16 weight path, the linear path, limits) and what the
//! adapter turned out to be ([`AdapterReport`], with the kernels the ops run there, [`KernelPath`], and how
//! texture-path kernels read textures).

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

/// Where linear layers read their weights and inputs from (the package's `linear` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum LinearPath {
    /// Textures on CPU adapters, storage buffers elsewhere.
    #[default]
    Auto,
    /// Storage buffers (fp16 weights via the `W4` prelude).
    Buffers,
    /// `rgba16float` weight textures and `rgba32float` staged inputs ([`KernelPath::Textures`]).
    Textures,
}

/// Which kernels the op families run on a device: decided once, when it is opened (from [`LinearPath`] and whether the
/// adapter is a CPU implementation), and read by every op (linear, attention, norm, conv) and by the tuner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPath {
    /// GPUs: storage buffers; the workgroup-tiled linear kernel and the split attention, both tuned at load; one
    /// workgroup per LayerNorm row.
    Gpu,
    /// A CPU adapter on storage buffers (`LinearPath::Buffers`): the register-tiled linear kernel and one invocation
    /// per attention query (enough parallel work there), nothing to tune; LayerNorm as on GPUs.
    CpuBuffers,
    /// The CPU-adapter kernels: linear and conv weights in `rgba16float` textures, their inputs and attention's qkv
    /// staged into textures where the shapes allow, one invocation per LayerNorm row; what stays in buffers runs the
    /// `CpuBuffers` kernels. On CPU adapters (lavapipe) texel fetches are vectorised while storage-buffer loads run
    /// lane by lane, which makes this path about 10x faster there.
    Textures,
}

impl KernelPath {
    /// The path for a device opened with `linear` on an adapter that is (`cpu`) or is not a CPU implementation.
    pub fn choose(linear: LinearPath, cpu: bool) -> KernelPath {
        match (linear, cpu) {
            (LinearPath::Textures, _) | (LinearPath::Auto, true) => KernelPath::Textures,
            (LinearPath::Buffers, true) => KernelPath::CpuBuffers,
            (LinearPath::Auto | LinearPath::Buffers, false) => KernelPath::Gpu,
        }
    }

    /// Whether weights and activations go through textures where their shapes allow.
    pub fn textures(self) -> bool {
        self == KernelPath::Textures
    }

    /// Whether the GPU kernels run: the workgroup-tiled linear kernel and the split attention, tuned at load.
    pub fn gpu(self) -> bool {
        self == KernelPath::Gpu
    }
}

/// Which limits the device is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum LimitsMode {
    /// The larger limits large models use (storage binding and buffer size, workgroup storage and invocations,
    /// storage buffers per stage, texture size) raised to what the adapter offers.
    #[default]
    Adapter,
    /// None above WebGPU's defaults (128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup storage,
    /// 256 invocations per workgroup, 8 storage buffers per stage, 8192 texels per texture side): what Safari and many
    /// Android devices give, so that a run here shows what runs there.
    Default,
}

impl LimitsMode {
    /// `adapter` or `default`.
    pub fn parse(s: &str) -> crate::error::Result<LimitsMode> {
        crate::util::from_name(s).ok_or_else(|| {
            crate::error::Error::input(format!(
                "limits `{s}`: use `adapter` (what the adapter offers) or `default` (WebGPU's defaults)"
            ))
        })
    }

    /// The name [`LimitsMode::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            LimitsMode::Adapter => "adapter",
            LimitsMode::Default => "default",
        }
    }
}

/// Options for [`Gpu::new`](super::Gpu::new).
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub f16: F16Mode,
    pub linear_path: LinearPath,
    /// Ask for what the adapter offers (default) or for WebGPU's default limits only.
    pub limits: LimitsMode,
    /// Ask for at most this `maxStorageBufferBindingSize` (tests, or leaving memory to other work).
    pub max_storage_binding: Option<u64>,
    /// Prefer a low-power adapter (integrated GPU) over a discrete one.
    pub low_power: bool,
    /// Leave subgroup operations off even where offered (tests of the kernels without them).
    pub no_subgroups: bool,
}

/// What the adapter is and what it offers, as the device was opened: for logs, benchmarks and error messages (the
/// package's `AdapterInfo`).
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct AdapterReport {
    pub name: String,
    /// wgpu's backend: "BrowserWebGpu" in a browser.
    pub backend: String,
    /// wgpu's device type: "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu" or "Other".
    pub device_type: String,
    pub driver: String,
    pub shader_f16: bool,
    /// How fp16 weights are read: "shader-f16" or "packed-u32".
    pub f16_weights_path: &'static str,
    pub timestamp_query: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_texture_dimension_2d: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    /// Which limits were asked for: "adapter" (what the adapter offers) or "default" (WebGPU's defaults).
    pub limits: LimitsMode,
    /// How texture-path kernels read textures: read-only storage textures on lavapipe, sampled elsewhere.
    pub texture_reads: TextureReads,
    /// Whether subgroup operations are enabled (subgroups of at least 8 invocations; native only).
    pub subgroups: bool,
    /// Which kernels the ops run: what the code decides by.
    #[serde(skip)]
    pub kernels: KernelPath,
    /// Whether the ops run the texture kernels (`kernels` is [`KernelPath::Textures`]); kept under this name for the
    /// package's `AdapterInfo`.
    pub texture_linears: bool,
}

impl AdapterReport {
    /// Whether the adapter is a CPU implementation (lavapipe, SwiftShader, a browser's fallback adapter).
    pub fn is_cpu(&self) -> bool {
        self.device_type == "Cpu"
    }

    /// The storage binding limit's name for errors, saying when it is WebGPU's default because the defaults were asked
    /// for ([`LimitsMode::Default`]).
    pub fn binding_limit_name(&self) -> &'static str {
        if self.limits == LimitsMode::Default {
            "maxStorageBufferBindingSize at WebGPU's default limits, as asked"
        } else {
            "maxStorageBufferBindingSize"
        }
    }

    /// Where linear layers read their operands: "buffers", or "textures" with how (e.g. "textures (storage reads,
    /// subgroups)").
    pub fn linear_path(&self) -> String {
        if !self.kernels.textures() {
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
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum TextureReads {
    Sampled,
    Storage,
}
