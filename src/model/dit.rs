//! DiT forward, as in the release's `models.py` (Peebles & Xie, "Scalable Diffusion Models with Transformers"):
//! patch embed + fixed 2D sin-cos positions, timestep and label embedding, `depth` adaLN-Zero blocks, final layer.
//! The flow maps keep these blocks and change only the conditioning: MeanFlow / α-Flow add a second timestep embedder
//! of the gap t - r to every block's c; Decoupled MeanFlow conditions its last blocks and the final layer on the end
//! time r instead of t (`arch::Family`).
//!
//! [`Dit::load`] takes the weights; [`Dit::plan`] allocates activations and builds every dispatch for one batch size
//! and latent size; [`DitPlan`] then runs a forward as one command encoder with no readback until the output.

use super::store::GpuWeights;
use crate::arch::{null_class, pos_embed_2d, DitConfig, DitTensors, Family, WeightBias, FREQ_DIM};
use crate::error::{Error, Result};
use crate::gpu::{Arena, DType, Dispatch, Gpu, Tensor};
use crate::ops::{self, Epilogue, LabelMix, Linear, LinearKernel, LABEL_WORDS};

/// Column offsets of the six adaLN-Zero chunks in a block's modulation vector, in units of D (the release's
/// `chunk(6)` order).
const SHIFT_MSA: usize = 0;
const SCALE_MSA: usize = 1;
const GATE_MSA: usize = 2;
const SHIFT_MLP: usize = 3;
const SCALE_MLP: usize = 4;
const GATE_MLP: usize = 5;

struct Block {
    ada: Linear,
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
    /// q and k RMSNorm scales (a DiT with `qk_norm`).
    qk_norm: Option<(Tensor, Tensor)>,
}

/// A loaded DiT.
pub struct Dit {
    pub cfg: DitConfig,
    x_embed: Linear,
    t_fc1: Linear,
    t_fc2: Linear,
    /// MeanFlow's second timestep embedder (of the gap t - r).
    t2: Option<(Linear, Linear)>,
    y_table: Tensor,
    blocks: Vec<Block>,
    final_ada: Linear,
    final_linear: Linear,
    kernel: LinearKernel,
}

impl Dit {
    /// Takes the model's tensors from `w` (all of them: a leftover tensor is an error).
    pub fn load(gpu: &Gpu, cfg: DitConfig, mut w: GpuWeights) -> Result<Dit> {
        cfg.validate()?;
        let t = DitTensors::take(&cfg, &mut w)?;
        w.finish()?;
        // Every linear layer goes to the layout this device reads best (storage buffer or texture).
        let lin = |p: WeightBias<Tensor>| Linear::new(p.weight, p.bias)?.for_device(gpu);
        // Layers that run on one row per sample (the conditioning) have their own rule.
        let per_sample = |p: WeightBias<Tensor>| Linear::new(p.weight, p.bias)?.for_device_per_sample(gpu);
        // The patch-embedding conv (kernel = stride = p) is a linear map on patches flattened in (c, ky, kx) order:
        // the same bytes viewed as [D, C*p*p].
        let mut x_embed = t.x_embed;
        x_embed.weight.shape = vec![cfg.hidden_size, cfg.in_channels * cfg.patch_size * cfg.patch_size];
        let blocks = t
            .blocks
            .into_iter()
            .map(|b| {
                Ok(Block {
                    ada: per_sample(b.ada)?,
                    qkv: lin(b.qkv)?,
                    proj: lin(b.proj)?,
                    fc1: lin(b.fc1)?,
                    fc2: lin(b.fc2)?,
                    qk_norm: b.qk_norm,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let t2 = match t.t2 {
            Some((fc1, fc2)) => Some((per_sample(fc1)?, per_sample(fc2)?)),
            None => None,
        };
        let dit = Dit {
            x_embed: lin(x_embed)?,
            t_fc1: per_sample(t.t_fc1)?,
            t_fc2: per_sample(t.t_fc2)?,
            t2,
            y_table: t.y_table,
            blocks,
            final_ada: per_sample(t.final_ada)?,
            final_linear: lin(t.final_linear)?,
            kernel: LinearKernel::Tiled,
            cfg,
        };
        gpu.check()?;
        Ok(dit)
    }

    /// Chooses the linear kernel for plans built after this call (the simple one is the benchmark baseline).
    pub fn set_linear_kernel(&mut self, k: LinearKernel) {
        self.kernel = k;
    }

    /// The distinct (M, K, N) shapes of the linear layers a forward of `batch` samples of side `latent` runs.
    pub fn linear_shapes(&self, batch: usize, latent: usize) -> Vec<(usize, usize, usize)> {
        let p = self.cfg.patch_size;
        let m = batch * (latent / p.max(1)).pow(2);
        let b = &self.blocks;
        let mut layers = vec![(m, &self.x_embed), (batch, &self.t_fc1), (batch, &self.t_fc2), (m, &self.final_linear)];
        layers.push((batch, &self.final_ada));
        if let Some(b) = b.first() {
            layers.extend([(batch, &b.ada), (m, &b.qkv), (m, &b.proj), (m, &b.fc1), (m, &b.fc2)]);
        }
        let mut shapes: Vec<_> = layers.iter().map(|(m, l)| (*m, l.in_features(), l.out_features())).collect();
        shapes.sort_unstable();
        shapes.dedup();
        shapes
    }

    /// Allocates activations and records every dispatch of a forward for `batch` samples of side `latent`.
    pub fn plan(&self, gpu: &Gpu, batch: usize, latent: usize) -> Result<DitPlan> {
        let cfg = &self.cfg;
        let (d, p) = (cfg.hidden_size, cfg.patch_size);
        if batch == 0 || latent == 0 || !latent.is_multiple_of(p) {
            return Err(Error::input(format!(
                "latent side {latent} must be a positive multiple of the patch size {p}"
            )));
        }
        let g = latent / p;
        let t = g * g;
        let m = batch * t;
        let mut arena = Arena::new();
        let flow_map = cfg.arch.is_flow_map();
        let mut a = |label: &str, shape: &[usize]| arena.f32(gpu, label, shape);
        // A flow map's second time (MeanFlow: the gap t - r; DMF: r) and what it conditions.
        let second = match flow_map {
            true => Some(Second {
                t2_in: a("t2_in", &[batch])?,
                freqs: a("t2_freqs", &[batch, FREQ_DIM])?,
                hidden: a("t2_hidden", &[batch, d])?,
                emb: a("t2_emb", &[batch, d])?,
                silu_c: a("silu_c2", &[batch, d])?,
            }),
            false => None,
        };
        let acts = Acts {
            x_in: a("x_in", &[batch, cfg.in_channels, latent, latent])?,
            t_in: a("t_in", &[batch])?,
            patches: a("patches", &[m, cfg.in_channels * p * p])?,
            pos: Tensor::from_f32(gpu, "pos_embed", &[t, d], &pos_embed_2d(d, g))?,
            freqs: a("t_freqs", &[batch, FREQ_DIM])?,
            t_hidden: a("t_hidden", &[batch, d])?,
            t_emb: a("t_emb", &[batch, d])?,
            silu_c: a("silu_c", &[batch, d])?,
            modv: a("mod", &[batch, 6 * d])?,
            mod_final: a("mod_final", &[batch, 2 * d])?,
            x: a("x", &[m, d])?,
            h: a("h", &[m, d])?,
            qkv: a("qkv", &[m, 3 * d])?,
            attn: a("attn", &[m, d])?,
            mlp: a("mlp", &[m, cfg.mlp_hidden()])?,
            tok_out: a("tokens_out", &[m, p * p * cfg.out_channels()])?,
            out: a("out", &[batch, cfg.out_channels(), latent, latent])?,
            tokens: t,
            second,
        };
        let y_in = arena.alloc(gpu, "y_in", &[batch, LABEL_WORDS], DType::U32)?;
        let mut plan = vec![];
        self.embed(gpu, &acts, &y_in, &mut plan)?;
        // DMF's decoder blocks and final layer read the conditioning of r; every other block that of t.
        let c_late = match (&acts.second, cfg.arch) {
            (Some(s), Family::Dmf) => &s.silu_c,
            _ => &acts.silu_c,
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let c = if i < cfg.decoder_start() { &acts.silu_c } else { c_late };
            self.block(gpu, b, &acts, c, &mut plan)?;
        }
        self.final_layer(gpu, &acts, c_late, &mut plan)?;
        gpu.check()?;
        Ok(DitPlan {
            batch,
            latent,
            num_classes: cfg.num_classes,
            arch: cfg.arch,
            activation_bytes: arena.bytes(),
            x: acts.x_in,
            t: acts.t_in,
            t2: acts.second.map(|s| s.t2_in),
            y: y_in,
            out: acts.out,
            dispatches: plan,
        })
    }

    /// x = PatchEmbed(x) + pos;  silu(c) with c = TimestepEmbedder(t) + LabelEmbedder(y), where a row's y may blend
    /// two classes' table rows ([`LabelMix`]). A flow map's second time: MeanFlow adds its second embedder of the gap
    /// to c; DMF embeds r with the same embedder into a second conditioning, c_r = E(r) + Y(y).
    fn embed(&self, gpu: &Gpu, a: &Acts, y: &Tensor, d: &mut Vec<Dispatch>) -> Result<()> {
        let k = self.kernel;
        d.push(ops::patchify(gpu, &a.x_in, &a.patches, self.cfg.patch_size)?);
        d.extend(ops::linear(
            gpu,
            &a.patches,
            &self.x_embed,
            &a.x,
            Epilogue::AddTable { table: &a.pos, tokens: a.tokens },
            k,
        )?);
        d.push(ops::timestep_freqs(gpu, &a.t_in, &self.y_table, &a.freqs)?);
        d.extend(ops::linear(gpu, &a.freqs, &self.t_fc1, &a.t_hidden, Epilogue::Silu, k)?);
        d.extend(ops::linear(gpu, &a.t_hidden, &self.t_fc2, &a.t_emb, Epilogue::Bias, k)?);
        if let Some(s) = &a.second {
            let (fc1, fc2, epilogue, emb) = match &self.t2 {
                Some((fc1, fc2)) => (fc1, fc2, Epilogue::Residual, &a.t_emb), // MeanFlow: t_emb += E2(t - r)
                None => (&self.t_fc1, &self.t_fc2, Epilogue::Bias, &s.emb),   // DMF: E(r) on its own
            };
            d.push(ops::timestep_freqs(gpu, &s.t2_in, &self.y_table, &s.freqs)?);
            d.extend(ops::linear(gpu, &s.freqs, fc1, &s.hidden, Epilogue::Silu, k)?);
            d.extend(ops::linear(gpu, &s.hidden, fc2, emb, epilogue, k)?);
            if self.t2.is_none() {
                d.push(ops::condition(gpu, y, &self.y_table, &s.emb, &s.silu_c)?);
            }
        }
        d.push(ops::condition(gpu, y, &self.y_table, &a.t_emb, &a.silu_c)?);
        Ok(())
    }

    /// One adaLN-Zero block:
    ///   x += gate_msa * Attn(modulate(LN(x), shift_msa, scale_msa))
    ///   x += gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))
    /// `c` is silu of the block's conditioning.
    fn block(&self, gpu: &Gpu, b: &Block, a: &Acts, c: &Tensor, d: &mut Vec<Dispatch>) -> Result<()> {
        let (k, t, w) = (self.kernel, a.tokens, self.cfg.hidden_size);
        let gate = |chunk: usize| Epilogue::GatedResidual { gate: &a.modv, tokens: t, offset: chunk * w };
        d.extend(ops::linear(gpu, c, &b.ada, &a.modv, Epilogue::Bias, k)?); // (N, 6D)
        d.push(ops::layernorm_modulate(gpu, &a.x, &a.modv, &a.h, t, SHIFT_MSA * w, SCALE_MSA * w)?);
        d.extend(ops::linear(gpu, &a.h, &b.qkv, &a.qkv, Epilogue::Bias, k)?); // (N*T, 3D)
        if let Some((q_scale, k_scale)) = &b.qk_norm {
            d.push(ops::qk_rms_norm(gpu, &a.qkv, q_scale, k_scale, self.cfg.head_dim())?);
        }
        d.push(ops::attention(gpu, &a.qkv, &a.attn, t, self.cfg.num_heads)?); // (N*T, D)
        d.extend(ops::linear(gpu, &a.attn, &b.proj, &a.x, gate(GATE_MSA), k)?);
        d.push(ops::layernorm_modulate(gpu, &a.x, &a.modv, &a.h, t, SHIFT_MLP * w, SCALE_MLP * w)?);
        d.extend(ops::linear(gpu, &a.h, &b.fc1, &a.mlp, Epilogue::Gelu, k)?); // (N*T, 4D)
        d.extend(ops::linear(gpu, &a.mlp, &b.fc2, &a.x, gate(GATE_MLP), k)?);
        Ok(())
    }

    /// out = unpatchify(Linear(modulate(LN(x), shift, scale))), (shift, scale) = Linear(silu(c)), shift first.
    fn final_layer(&self, gpu: &Gpu, a: &Acts, c: &Tensor, d: &mut Vec<Dispatch>) -> Result<()> {
        let (k, t, w) = (self.kernel, a.tokens, self.cfg.hidden_size);
        d.extend(ops::linear(gpu, c, &self.final_ada, &a.mod_final, Epilogue::Bias, k)?); // (N, 2D)
        d.push(ops::layernorm_modulate(gpu, &a.x, &a.mod_final, &a.h, t, 0, w)?);
        d.extend(ops::linear(gpu, &a.h, &self.final_linear, &a.tok_out, Epilogue::Bias, k)?);
        d.push(ops::unpatchify(gpu, &a.tok_out, &a.out, self.cfg.patch_size)?);
        Ok(())
    }
}

/// Activation buffers of one plan.
struct Acts {
    x_in: Tensor,
    t_in: Tensor,
    patches: Tensor,
    pos: Tensor,
    freqs: Tensor,
    t_hidden: Tensor,
    t_emb: Tensor,
    silu_c: Tensor,
    modv: Tensor,
    mod_final: Tensor,
    x: Tensor,
    h: Tensor,
    qkv: Tensor,
    attn: Tensor,
    mlp: Tensor,
    tok_out: Tensor,
    out: Tensor,
    tokens: usize,
    second: Option<Second>,
}

/// A flow map's second time input and the buffers of its embedding.
struct Second {
    t2_in: Tensor,
    freqs: Tensor,
    hidden: Tensor,
    emb: Tensor,
    silu_c: Tensor,
}

/// A DiT forward for a fixed batch and latent size: input and output buffers plus the recorded dispatches.
pub struct DitPlan {
    pub batch: usize,
    pub latent: usize,
    num_classes: usize,
    arch: Family,
    /// Bytes of activation buffers this plan holds.
    pub activation_bytes: u64,
    /// Input latent [N, C, H, W] f32.
    pub x: Tensor,
    /// Timesteps [N] f32 (the original 0..999 timestep; a flow's or flow map's t in [0, 1]).
    pub t: Tensor,
    /// A flow map's second time [N] f32 (`Family::second_time`: MeanFlow the gap t - r, DMF r); none otherwise.
    pub t2: Option<Tensor>,
    /// Class conditioning [N, 3]: one [`LabelMix`] per row (num_classes = the null class).
    pub y: Tensor,
    /// Output [N, Cout, H, W] f32: channels 0..C are eps, C..2C the variance interpolation v.
    pub out: Tensor,
    dispatches: Vec<Dispatch>,
}

impl DitPlan {
    /// The recorded dispatches, in order.
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// Checks and uploads inputs: x [N*C*H*W] finite, t in 0..=999, labels in 0..=num_classes.
    pub fn set_inputs(&self, gpu: &Gpu, x: &[f32], t: &[f32], y: &[u32]) -> Result<()> {
        let mixes: Vec<LabelMix> = y.iter().map(|&c| LabelMix::class(c)).collect();
        self.set_inputs_mixed(gpu, x, t, &mixes)
    }

    /// [`DitPlan::set_inputs`] with each row's label embedding a blend of two classes' rows.
    pub fn set_inputs_mixed(&self, gpu: &Gpu, x: &[f32], t: &[f32], y: &[LabelMix]) -> Result<()> {
        let n = self.batch;
        if x.len() != self.x.numel() {
            return Err(Error::input(format!(
                "x has {} values, expected {:?} = {}",
                x.len(),
                self.x.shape,
                self.x.numel()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!("x[{i}] is {}: the latent must be finite", x[i])));
        }
        if t.len() != n || y.len() != n {
            return Err(Error::input(format!("need {n} timesteps and {n} labels, got {} and {}", t.len(), y.len())));
        }
        if let Some(v) = t.iter().find(|v| !(0.0..=999.0).contains(*v)) {
            return Err(Error::input(format!("timestep {v} is outside 0..999")));
        }
        self.write_labels(gpu, y)?;
        gpu.write(&self.x.buf, 0, bytemuck::cast_slice(x));
        gpu.write(&self.t.buf, 0, bytemuck::cast_slice(t));
        Ok(())
    }

    /// Uploads a flow map's end times r [N] for the start times `t` [N] (as its network takes them: the gap t - r for
    /// MeanFlow, r for DMF; both in [0, 1] with r <= t). An error for a model that is not a flow map.
    pub fn set_end_times(&self, gpu: &Gpu, t: &[f32], r: &[f32]) -> Result<()> {
        let Some(t2) = &self.t2 else {
            return Err(Error::input(format!(
                "a {} model takes no end time r: only a flow map does",
                self.arch.name()
            )));
        };
        if t.len() != self.batch || r.len() != self.batch {
            return Err(Error::input(format!(
                "need {} start and end times, got {} and {}",
                self.batch,
                t.len(),
                r.len()
            )));
        }
        if let Some((a, b)) = t.iter().zip(r).find(|(a, b)| !(0.0..=1.0).contains(*a) || !(0.0..=**a).contains(*b)) {
            return Err(Error::input(format!(
                "times t = {a}, r = {b}: a flow map jumps from t to r with 0 <= r <= t <= 1"
            )));
        }
        let v: Vec<f32> = t.iter().zip(r).map(|(&a, &b)| self.arch.second_time(a as f64, b as f64) as f32).collect();
        gpu.write(&t2.buf, 0, bytemuck::cast_slice(&v));
        Ok(())
    }

    /// Checks and uploads the class conditioning alone: [N] rows, classes in 0..=num_classes, alpha in [0, 1].
    pub fn write_labels(&self, gpu: &Gpu, y: &[LabelMix]) -> Result<()> {
        if y.len() != self.batch {
            return Err(Error::input(format!("need {} labels, got {}", self.batch, y.len())));
        }
        if let Some(v) = y.iter().flat_map(|m| [m.a, m.b]).find(|&v| v as usize > self.num_classes) {
            return Err(Error::input(format!(
                "class label {v} is out of range: use 0..{} or {} for the null class",
                self.num_classes - 1,
                null_class(self.num_classes)
            )));
        }
        y.iter().try_for_each(|m| LabelMix::check_alpha(m.alpha))?;
        gpu.write(&self.y.buf, 0, bytemuck::cast_slice(y));
        Ok(())
    }

    /// Runs the forward on the current inputs (one command encoder).
    pub fn run(&self, gpu: &Gpu) {
        gpu.run(&self.dispatches);
    }

    /// Uploads inputs, runs, and reads back the output [N, Cout, H, W].
    pub async fn forward(&self, gpu: &Gpu, x: &[f32], t: &[f32], y: &[u32]) -> Result<Vec<f32>> {
        self.set_inputs(gpu, x, t, y)?;
        self.run(gpu);
        gpu.read_f32(&self.out).await
    }

    /// [`DitPlan::forward`] with blended label embeddings.
    pub async fn forward_mixed(&self, gpu: &Gpu, x: &[f32], t: &[f32], y: &[LabelMix]) -> Result<Vec<f32>> {
        self.set_inputs_mixed(gpu, x, t, y)?;
        self.run(gpu);
        gpu.read_f32(&self.out).await
    }
}
