//! The Stable Diffusion VAE decoder (diffusers `AutoencoderKL.decode`: `post_quant_conv`, then `Decoder`), on NHWC
//! activations. Names and shapes are diffusers'. [`Vae::plan`] builds every dispatch of one decode for a latent size;
//! activations live in a few buffers sized for the largest level and viewed with each level's shape.
//!
//! An activation larger than one storage binding (`maxStorageBufferBindingSize`, 128 MiB by default in WebGPU: the
//! 256-channel 512x512 f32 tensors of a 512 px decode are 256 MiB) is kept in channel parts, each in its own buffer,
//! each holding whole GroupNorm groups. GroupNorm then runs per part (its statistics never cross a group), and a conv
//! runs once per (output part, input part), the later input parts accumulating into the output part. Nothing is
//! approximated: the sums are the same, only their order of addition changes.

use super::store::GpuWeights;
use crate::arch::{ResnetTensors, VaeConfig, VaeTensors, WeightBias};
use crate::error::{Error, Result};
use crate::gpu::{AdapterReport, Arena, Dispatch, Gpu, Tensor};
use crate::ops::{self, Conv2d, ConvSlice, Epilogue, GroupNorm, Linear, LinearKernel};

struct Norm {
    gamma: Tensor,
    beta: Tensor,
}

struct ResBlock {
    norm1: Norm,
    conv1: Conv2d,
    norm2: Norm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    cin: usize,
    cout: usize,
}

struct AttnBlock {
    norm: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

struct UpBlock {
    resnets: Vec<ResBlock>,
    upsample: Option<Conv2d>,
}

/// A loaded VAE decoder.
pub struct Vae {
    pub cfg: VaeConfig,
    post_quant: Linear,
    conv_in: Conv2d,
    mid: [ResBlock; 2],
    attn: Option<AttnBlock>,
    up: Vec<UpBlock>,
    norm_out: Norm,
    conv_out: Conv2d,
}

fn norm(p: WeightBias<Tensor>) -> Norm {
    Norm { gamma: p.weight, beta: p.bias }
}

fn conv(gpu: &Gpu, p: WeightBias<Tensor>) -> Result<Conv2d> {
    Conv2d::new(gpu, &p.weight, &p.bias)
}

/// A 1x1 conv or a linear layer [out, in(, 1, 1)] as a [`Linear`] over NHWC rows.
fn linear(gpu: &Gpu, mut p: WeightBias<Tensor>) -> Result<Linear> {
    p.weight.shape.truncate(2);
    Linear::new(p.weight, p.bias)?.for_device(gpu)
}

fn resnet(gpu: &Gpu, r: ResnetTensors<Tensor>) -> Result<ResBlock> {
    Ok(ResBlock {
        norm1: norm(r.norm1),
        conv1: conv(gpu, r.conv1)?,
        norm2: norm(r.norm2),
        conv2: conv(gpu, r.conv2)?,
        // A 1x1 conv rather than a linear layer: it takes channel parts like the 3x3 convs.
        shortcut: r.shortcut.map(|p| conv(gpu, p)).transpose()?,
        cin: r.cin,
        cout: r.cout,
    })
}

impl Vae {
    pub fn load(gpu: &Gpu, cfg: VaeConfig, mut w: GpuWeights) -> Result<Vae> {
        cfg.validate()?;
        let t = VaeTensors::take(&cfg, &mut w)?;
        w.finish()?;
        let [mid0, mid1] = t.mid;
        let attn = t
            .attn
            .map(|a| {
                let [q, k, v, out] = a.proj.map(|p| linear(gpu, p));
                Ok::<_, Error>(AttnBlock { norm: norm(a.norm), q: q?, k: k?, v: v?, out: out? })
            })
            .transpose()?;
        let up =
            t.up.into_iter()
                .map(|u| {
                    Ok(UpBlock {
                        resnets: u.resnets.into_iter().map(|r| resnet(gpu, r)).collect::<Result<Vec<_>>>()?,
                        upsample: u.upsample.map(|p| conv(gpu, p)).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        let vae = Vae {
            post_quant: linear(gpu, t.post_quant)?,
            conv_in: conv(gpu, t.conv_in)?,
            mid: [resnet(gpu, mid0)?, resnet(gpu, mid1)?],
            attn,
            up,
            norm_out: norm(t.norm_out),
            conv_out: conv(gpu, t.conv_out)?,
            cfg,
        };
        gpu.check()?;
        Ok(vae)
    }

    /// Builds one decode of a latent [1, C, h, w] (as the sampler returns it) into an image [1, H, W, 4] NHWC
    /// (channels 0..3 RGB in about [-1, 1]).
    pub fn plan(&self, gpu: &Gpu, h: usize, w: usize) -> Result<VaePlan> {
        let cfg = &self.cfg;
        let (oh, ow) = (h * cfg.upscale(), w * cfg.upscale());
        let Memory { arena, bufs, stats, latent, attn, max_parts } = self.memory(gpu, h, w)?;
        let mut b = Builder { gpu, d: vec![], stats, groups: cfg.norm_num_groups };
        let x = self.input(&mut b, &latent, &bufs, h, w)?;
        let (x, spare) = self.body(&mut b, x, &bufs, attn.as_ref())?;
        // GroupNorm + SiLU, conv_out (3 channels padded to 4, in one part: checked above).
        let a = bufs.t1.act(x.h, x.w, cfg.block_out_channels[0])?;
        b.norm(&self.norm_out, &x, &a, true)?;
        let image = spare.bufs[0].view(&[1, oh, ow, self.conv_out.cout_pad]);
        let image_act = Act { parts: vec![image.clone()], h: oh, w: ow, c: self.conv_out.cout_pad };
        b.conv(&a, &self.conv_out, &image_act, false, None)?;
        gpu.check()?;
        Ok(VaePlan {
            latent,
            image,
            out_channels: cfg.out_channels,
            activation_bytes: arena.bytes(),
            max_parts,
            dispatches: b.d,
            _keep: bufs,
            _attn: attn,
        })
    }

    /// The decode's buffers for a latent of h x w: four pool slots of activations (each `max_parts` buffers as large
    /// as the largest part, never over one binding), GroupNorm statistics, the latent, the mid attention's.
    fn memory(&self, gpu: &Gpu, h: usize, w: usize) -> Result<Memory> {
        let cfg = &self.cfg;
        let limit = gpu.report.max_storage_buffer_binding_size;
        let Layout { split, largest, max_parts } = layout(cfg, h, w, &gpu.report)?;
        attention_fits(cfg, h, w, &split)?;
        let chunk = largest.min((limit / 4) as usize);
        let mut arena = Arena::new();
        let mut slot = |label: &str| -> Result<Slot> {
            let bufs = (0..max_parts)
                .map(|j| arena.f32(gpu, &format!("{label}.{j}"), &[chunk]))
                .collect::<Result<Vec<_>>>()?;
            Ok(Slot { bufs, split })
        };
        let bufs = Bufs { x: slot("vae x")?, y: slot("vae y")?, t1: slot("vae t1")?, t2: slot("vae t2")? };
        let stats = arena.f32(gpu, "gn stats", &[cfg.norm_num_groups * 2])?;
        let latent = arena.f32(gpu, "latent", &[1, cfg.latent_channels, h, w])?;
        let (top, hw) = (*cfg.block_out_channels.last().expect("validated"), h * w);
        let attn = match &self.attn {
            Some(_) => Some(AttnBufs {
                q: arena.f32(gpu, "attn q", &[hw, top])?,
                k: arena.f32(gpu, "attn k", &[hw, top])?,
                v: arena.f32(gpu, "attn v", &[hw, top])?,
                vt: arena.f32(gpu, "attn vt", &[top, hw])?,
                scores: arena.f32(gpu, "attn scores", &[hw, hw])?,
            }),
            None => None,
        };
        Ok(Memory { arena, bufs, stats, latent, attn, max_parts })
    }

    /// z / scaling_factor, NCHW -> NHWC, then post_quant_conv (1x1) and conv_in: the first activation, in `bufs.x`.
    fn input(&self, b: &mut Builder, latent: &Tensor, bufs: &Bufs, h: usize, w: usize) -> Result<Act> {
        let (cfg, gpu) = (&self.cfg, b.gpu);
        let lat = cfg.latent_channels;
        let z = bufs.t1.bufs[0].view(&[1, h, w, lat]);
        b.d.push(ops::nchw_to_nhwc(gpu, latent, &z, (1.0 / cfg.scaling_factor) as f32)?);
        let zq = bufs.t2.bufs[0].view(&[h * w, lat]);
        let z = z.view(&[h * w, lat]);
        b.d.extend(ops::linear(gpu, &z, &self.post_quant, &zq, Epilogue::Bias, LinearKernel::Tiled)?);
        let x = bufs.x.act(h, w, *cfg.block_out_channels.last().expect("validated"))?;
        let zq = Act { parts: vec![zq.view(&[1, h, w, lat])], h, w, c: lat };
        b.conv(&zq, &self.conv_in, &x, false, None)?;
        Ok(x)
    }

    /// The mid block (ResNet, attention in place, ResNet) and the up blocks (each but the last ending with a nearest
    /// x2 upsample + conv, fused) from `x` in `bufs.x`: the last activation, and the slot it does not occupy.
    fn body<'b>(
        &self,
        b: &mut Builder,
        mut x: Act,
        bufs: &'b Bufs,
        attn: Option<&AttnBufs>,
    ) -> Result<(Act, &'b Slot)> {
        // `cur` holds the current activation, `spare` receives the next one; they swap after every step.
        let (mut cur, mut spare) = (&bufs.x, &bufs.y);
        x = b.resnet(&self.mid[0], &x, spare, bufs)?;
        std::mem::swap(&mut cur, &mut spare);
        if let (Some(a), Some(ab)) = (&self.attn, attn) {
            b.attention(a, &x, bufs, ab, *self.cfg.block_out_channels.last().expect("validated"))?;
        }
        x = b.resnet(&self.mid[1], &x, spare, bufs)?;
        std::mem::swap(&mut cur, &mut spare);
        for blk in &self.up {
            for r in &blk.resnets {
                x = b.resnet(r, &x, spare, bufs)?;
                std::mem::swap(&mut cur, &mut spare);
            }
            if let Some(conv) = &blk.upsample {
                let out = spare.act(2 * x.h, 2 * x.w, conv.cout)?;
                b.conv(&x, conv, &out, true, None)?;
                x = out;
                std::mem::swap(&mut cur, &mut spare);
            }
        }
        Ok((x, spare))
    }
}

/// The buffers of one decode plan (`Vae::memory`).
struct Memory {
    arena: Arena,
    bufs: Bufs,
    stats: Tensor,
    latent: Tensor,
    attn: Option<AttnBufs>,
    max_parts: usize,
}

impl Vae {
    /// Checks, from the config alone (no weights, no GPU work), that a decode of a latent [1, C, h, w] fits this
    /// device's storage bindings as [`Vae::plan`] lays it out: every activation in channel parts of whole GroupNorm
    /// groups, the image, the mid attention's input, scores and projections in one binding each, and every weight.
    /// The loader asks before any weights are fetched; the error names the tensor and the limit.
    pub fn check_fit(report: &AdapterReport, cfg: &VaeConfig, h: usize, w: usize) -> Result<()> {
        let Layout { split, .. } = layout(cfg, h, w, report)?;
        attention_fits(cfg, h, w, &split)?;
        let (top, hw) = (*cfg.block_out_channels.last().unwrap_or(&0) as u64, (h * w) as u64);
        if cfg.mid_block_add_attention {
            split.one_binding(format!("VAE attention scores [{hw}, {hw}]"), hw * hw * 4)?;
            split.one_binding(format!("VAE attention q, k, v [{hw}, {top}]"), hw * top * 4)?;
        }
        for t in crate::arch::vae_tensors(cfg) {
            split.one_binding(format!("VAE weight `{}` {:?}", t.name, t.shape), t.bytes())?;
        }
        Ok(())
    }
}

/// How a decode lays out its activations on one device: the split into channel parts, the largest activation
/// (elements) and the most parts any one is kept in.
struct Layout {
    split: Split,
    largest: usize,
    max_parts: usize,
}

/// The [`Layout`] of a decode of a latent [1, C, h, w]: the widest channel count at each resolution (a level's input,
/// upsampled from the level before, has that level's channels), conv_out's padded 4 channels included (in one part).
fn layout(cfg: &VaeConfig, h: usize, w: usize, report: &AdapterReport) -> Result<Layout> {
    let limit = report.max_storage_buffer_binding_size;
    let limit_name = report.binding_limit_name();
    let split = Split { groups: cfg.norm_num_groups, limit, limit_name };
    let (oh, ow) = (h * cfg.upscale(), w * cfg.upscale());
    let mut largest = 0usize;
    let mut max_parts = 1usize;
    let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
    for (i, &c) in rev.iter().enumerate() {
        let prev = if i == 0 { c } else { rev[i - 1] };
        let (hh, ww) = (h << i, w << i);
        largest = largest.max(hh * ww * c.max(prev));
        max_parts = max_parts.max(split.parts(hh, ww, c.max(prev))?);
    }
    largest = largest.max(oh * ow * 4);
    split.one_binding(format!("VAE image [1, {oh}, {ow}, 4]"), (oh * ow * 4 * 4) as u64)?;
    Ok(Layout { split, largest, max_parts })
}

/// The mid attention (when the config has it) reads its input [1, h, w, C] in one binding.
fn attention_fits(cfg: &VaeConfig, h: usize, w: usize, split: &Split) -> Result<()> {
    let top = *cfg.block_out_channels.last().unwrap_or(&0);
    if cfg.mid_block_add_attention && split.parts(h, w, top)? > 1 {
        split.one_binding(format!("VAE attention input [1, {h}, {w}, {top}]"), (h * w * top * 4) as u64)?;
    }
    Ok(())
}

/// How activations are split into channel parts for one device.
#[derive(Clone, Copy)]
struct Split {
    groups: usize,
    /// Bytes one storage binding may hold, and the limit's name in errors.
    limit: u64,
    limit_name: &'static str,
}

impl Split {
    /// The fewest channel parts, each of whole GroupNorm groups, in which [1, h, w, c] f32 fits one binding.
    fn parts(&self, h: usize, w: usize, c: usize) -> Result<usize> {
        let bytes = |p: usize| h as u64 * w as u64 * (c / p) as u64 * 4;
        (1..=self.groups).find(|&p| self.groups.is_multiple_of(p) && bytes(p) <= self.limit).ok_or_else(|| {
            Error::Limit {
                what: format!("VAE activation [1, {h}, {w}, {}] (one GroupNorm group)", c / self.groups),
                need: bytes(self.groups),
                limit: self.limit,
                limit_name: self.limit_name,
            }
        })
    }

    /// `what`, of `need` bytes, must fit one binding.
    fn one_binding(&self, what: String, need: u64) -> Result<()> {
        if need > self.limit {
            return Err(Error::Limit { what, need, limit: self.limit, limit_name: self.limit_name });
        }
        Ok(())
    }
}

/// An activation [1, h, w, c], kept in `parts.len()` channel parts of c / parts channels, each in its own buffer.
#[derive(Clone)]
struct Act {
    parts: Vec<Tensor>,
    h: usize,
    w: usize,
    c: usize,
}

impl Act {
    fn part_channels(&self) -> usize {
        self.c / self.parts.len()
    }

    /// The activation as one tensor of `shape` (the attention block works on the whole [h w, c] matrix; `plan`
    /// checks that its input fits one binding).
    fn whole(&self, shape: &[usize]) -> Tensor {
        debug_assert_eq!(self.parts.len(), 1);
        self.parts[0].view(shape)
    }
}

/// A pool slot: the buffers an activation's parts are viewed in.
struct Slot {
    bufs: Vec<Tensor>,
    split: Split,
}

impl Slot {
    fn act(&self, h: usize, w: usize, c: usize) -> Result<Act> {
        let p = self.split.parts(h, w, c)?;
        Ok(Act { parts: self.bufs[..p].iter().map(|b| b.view(&[1, h, w, c / p])).collect(), h, w, c })
    }
}

/// The reusable activation buffers of a decode.
struct Bufs {
    x: Slot,
    y: Slot,
    t1: Slot,
    t2: Slot,
}

struct AttnBufs {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    vt: Tensor,
    scores: Tensor,
}

trait View {
    fn view(&self, shape: &[usize]) -> Tensor;
}

impl View for Tensor {
    /// The same buffer seen with another shape (no larger than the buffer).
    fn view(&self, shape: &[usize]) -> Tensor {
        debug_assert!(shape.iter().product::<usize>() * 4 <= self.buf.size() as usize);
        Tensor { buf: self.buf.clone(), shape: shape.to_vec(), dtype: self.dtype }
    }
}

struct Builder<'a> {
    gpu: &'a Gpu,
    d: Vec<Dispatch>,
    stats: Tensor,
    groups: usize,
}

impl Builder<'_> {
    /// GroupNorm (+ SiLU) of x into y (same parts): each part holds whole groups, so each is normalised alone.
    fn norm(&mut self, n: &Norm, x: &Act, y: &Act, silu: bool) -> Result<()> {
        let p = x.parts.len();
        let pc = x.part_channels();
        for (j, (xp, yp)) in x.parts.iter().zip(&y.parts).enumerate() {
            let norm = GroupNorm { gamma: &n.gamma, beta: &n.beta, groups: self.groups / p, silu };
            self.d.extend(ops::group_norm_part(self.gpu, &norm, j * pc, xp, &self.stats, yp)?);
        }
        Ok(())
    }

    /// y = conv(x) + bias (+ res): one dispatch per (output part, input part); input parts after the first add
    /// their partial sums into the output part.
    fn conv(&mut self, x: &Act, conv: &Conv2d, y: &Act, upsample: bool, res: Option<&Act>) -> Result<()> {
        let (xc, yc) = (x.part_channels(), y.part_channels());
        for (o, yp) in y.parts.iter().enumerate() {
            for (i, xp) in x.parts.iter().enumerate() {
                let slice = ConvSlice { ci0: i * xc, co0: o * yc, accumulate: i > 0 };
                let r = if i == 0 { res.map(|r| &r.parts[o]) } else { None };
                self.d.push(ops::conv2d_slice(self.gpu, xp, conv, yp, upsample, r, slice)?);
            }
        }
        Ok(())
    }

    /// out = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))), written into `out`; returns it.
    fn resnet(&mut self, r: &ResBlock, x: &Act, out: &Slot, bufs: &Bufs) -> Result<Act> {
        let (h, w) = (x.h, x.w);
        let a = bufs.t1.act(h, w, r.cin)?;
        self.norm(&r.norm1, x, &a, true)?;
        let bt = bufs.t2.act(h, w, r.cout)?;
        self.conv(&a, &r.conv1, &bt, false, None)?;
        let a2 = bufs.t1.act(h, w, r.cout)?;
        self.norm(&r.norm2, &bt, &a2, true)?;
        // The 1x1 shortcut reuses t2 (conv1's output is consumed by norm2 above).
        let res = match &r.shortcut {
            Some(sc) => {
                let s = bufs.t2.act(h, w, r.cout)?;
                self.conv(x, sc, &s, false, None)?;
                s
            }
            None => x.clone(),
        };
        let o = out.act(h, w, r.cout)?;
        self.conv(&a2, &r.conv2, &o, false, Some(&res))?;
        Ok(o)
    }

    /// x += to_out(softmax(q k^T / sqrt(C)) v), q/k/v = to_q/k/v(GroupNorm(x)): one head over all pixels, in place.
    fn attention(&mut self, a: &AttnBlock, x: &Act, bufs: &Bufs, ab: &AttnBufs, c: usize) -> Result<()> {
        let hw = x.h * x.w;
        let rows = x.whole(&[hw, c]);
        let normed = bufs.t1.bufs[0].view(&[hw, c]);
        let norm = GroupNorm { gamma: &a.norm.gamma, beta: &a.norm.beta, groups: self.groups, silu: false };
        self.d.extend(ops::group_norm(
            self.gpu,
            &norm,
            &rows.view(&[1, hw, c]),
            &self.stats,
            &normed.view(&[1, hw, c]),
        )?);
        for (l, t) in [(&a.q, &ab.q), (&a.k, &ab.k), (&a.v, &ab.v)] {
            self.d.extend(ops::linear(self.gpu, &normed, l, t, Epilogue::Bias, LinearKernel::Tiled)?);
        }
        self.d.push(ops::transpose(self.gpu, &ab.v, &ab.vt)?);
        self.d.extend(ops::matmul(self.gpu, &ab.q, &ab.k, &ab.scores, Epilogue::Bias)?);
        self.d.push(ops::softmax_rows(self.gpu, &ab.scores, 1.0 / (c as f32).sqrt())?);
        let o = bufs.t2.bufs[0].view(&[hw, c]);
        self.d.extend(ops::matmul(self.gpu, &ab.scores, &ab.vt, &o, Epilogue::Bias)?);
        self.d.extend(ops::linear(self.gpu, &o, &a.out, &rows, Epilogue::Residual, LinearKernel::Tiled)?);
        Ok(())
    }
}

/// One decode for a fixed latent size.
pub struct VaePlan {
    /// Input latent [1, C, h, w] (NCHW, as sampled; divided by the scaling factor inside).
    pub latent: Tensor,
    /// Output [1, H, W, 4] NHWC, channels 0..3 RGB (channel 3 is padding).
    pub image: Tensor,
    out_channels: usize,
    pub activation_bytes: u64,
    /// The most channel parts one activation is kept in (1 when every activation fits one storage binding).
    pub max_parts: usize,
    dispatches: Vec<Dispatch>,
    _keep: Bufs,
    _attn: Option<AttnBufs>,
}

impl VaePlan {
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// Decodes one latent [C*h*w] (NCHW) into an image [3, H, W] f32, roughly in [-1, 1] (not clamped).
    pub async fn decode(&self, gpu: &Gpu, latent: &[f32]) -> Result<Vec<f32>> {
        if latent.len() != self.latent.numel() {
            return Err(Error::input(format!(
                "latent has {} values, the VAE plan takes {:?}",
                latent.len(),
                self.latent.shape
            )));
        }
        gpu.write(&self.latent.buf, 0, bytemuck::cast_slice(latent));
        gpu.run(&self.dispatches);
        let nhwc = gpu.read_f32(&self.image).await?;
        let (h, w, cp) = (self.image.dim(1), self.image.dim(2), self.image.dim(3));
        let c = self.out_channels;
        let mut chw = vec![0f32; c * h * w];
        for p in 0..h * w {
            for ch in 0..c {
                chw[ch * h * w + p] = nhwc[p * cp + ch];
            }
        }
        Ok(chw)
    }
}
