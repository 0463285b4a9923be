//! What a checkpoint holds, read off its tensor list alone: the model kind, its config, and for every tensor the
//! model loads, the source tensors it is made of (in the release's, diffusers' or ldm's names). `dit convert` (files on
//! disk) and the single-file loader (one `.safetensors` read by HTTP Range requests) share it, so both give the same
//! fp16 values.

use super::index::ModelKind;
use super::input::{SrcDType, SrcTensor};
use super::writer::DEFAULT_SHARD_MIB;
use crate::arch::{
    dit_tensors, pos_embed_2d, vae_tensors, DitConfig, Family, LatentStats, TensorSpec, VaeConfig, SD_SCALING_FACTOR,
};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};

/// Options of `dit convert`.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub shard_mib: u64,
    /// Attention heads, needed when depth and width are not a paper preset.
    pub heads: Option<usize>,
    /// Latent side, when the checkpoint has no `pos_embed` to read it from (default 32, i.e. 256 px).
    pub input_size: Option<usize>,
    /// VAE GroupNorm groups, when no config.json says (default 32).
    pub norm_groups: Option<usize>,
    /// Names of the classes (stored as `class_names` in the index metadata; the page shows them).
    pub class_names: Option<Vec<String>>,
    /// What a DiT network was trained as (`dit`, `sit`, `meanflow` or `dmf`): the weights cannot tell.
    pub arch: crate::arch::Family,
    /// A DMF's split (`--dmf-depth`): the checkpoint does not hold it.
    pub dmf_depth: Option<usize>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            shard_mib: DEFAULT_SHARD_MIB,
            heads: None,
            input_size: None,
            norm_groups: None,
            class_names: None,
            arch: crate::arch::Family::Dit,
            dmf_depth: None,
        }
    }
}

/// The diffusers name of a VAE tensor from any of the layouts users have: diffusers (current `to_q` and legacy
/// `query` attention names) and the original ldm checkpoint (optionally under `first_stage_model.`, as in a full SD
/// checkpoint). `None` for tensors the decoder does not use (encoder, quant_conv, loss, EMA, the rest of SD).
/// `levels` is the number of decoder levels (ldm numbers them bottom-up, diffusers top-down).
pub fn vae_canonical_name(name: &str, full_sd: bool, levels: usize) -> Option<String> {
    let name = if full_sd { name.strip_prefix("first_stage_model.")? } else { name };
    if !(name.starts_with("decoder.") || name.starts_with("post_quant_conv.")) {
        return None;
    }
    let mut n = name.to_string();
    // Legacy diffusers attention names.
    for (old, new) in [(".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.")]
    {
        if n.contains(".attentions.0") {
            n = n.replace(old, new);
        }
    }
    // Original ldm names.
    if let Some(rest) = n.strip_prefix("decoder.mid.") {
        let rest = rest
            .replacen("block_1.", "resnets.0.", 1)
            .replacen("block_2.", "resnets.1.", 1)
            .replacen("attn_1.norm.", "attentions.0.group_norm.", 1)
            .replacen("attn_1.q.", "attentions.0.to_q.", 1)
            .replacen("attn_1.k.", "attentions.0.to_k.", 1)
            .replacen("attn_1.v.", "attentions.0.to_v.", 1)
            .replacen("attn_1.proj_out.", "attentions.0.to_out.0.", 1);
        n = format!("decoder.mid_block.{rest}");
    } else if let Some(rest) = n.strip_prefix("decoder.up.") {
        let (level, rest) = rest.split_once('.')?;
        let i = levels.checked_sub(1 + level.parse::<usize>().ok()?)?;
        let rest = if let Some(r) = rest.strip_prefix("block.") {
            format!("resnets.{r}")
        } else {
            rest.replacen("upsample.conv.", "upsamplers.0.conv.", 1)
        };
        n = format!("decoder.up_blocks.{i}.{rest}");
    } else if let Some(rest) = n.strip_prefix("decoder.norm_out.") {
        n = format!("decoder.conv_norm_out.{rest}");
    }
    Some(n.replace(".nin_shortcut.", ".conv_shortcut."))
}

/// Reads the decoder config off the shapes (and an optional diffusers config.json).
pub fn infer_vae_config(
    by_name: &HashMap<String, &SrcTensor>,
    json: Option<&serde_json::Value>,
    opts: &ConvertOptions,
) -> Result<VaeConfig> {
    let shape = |n: &str| by_name.get(n).map(|t| t.shape.clone()).ok_or_else(|| Error::MissingTensor(n.into()));
    let conv_in = shape("decoder.conv_in.weight")?;
    let conv_out = shape("decoder.conv_out.weight")?;
    let mut rev = vec![];
    while let Ok(s) = shape(&format!("decoder.up_blocks.{}.resnets.0.conv2.weight", rev.len())) {
        rev.push(s[0]);
    }
    let mut resnets = 0;
    while by_name.contains_key(&format!("decoder.up_blocks.0.resnets.{resnets}.conv1.weight")) {
        resnets += 1;
    }
    if rev.is_empty() || resnets == 0 || conv_in.len() != 4 || conv_out.len() != 4 {
        return Err(Error::Config("VAE decoder: cannot find its up blocks (decoder.up_blocks.0.resnets.0...)".into()));
    }
    let from_json = |k: &str| json.and_then(|j| j.get(k)).and_then(|v| v.as_f64());
    let cfg = VaeConfig {
        latent_channels: conv_in[1],
        out_channels: conv_out[0],
        block_out_channels: rev.iter().rev().copied().collect(),
        layers_per_block: resnets - 1,
        norm_num_groups: opts.norm_groups.or(from_json("norm_num_groups").map(|v| v as usize)).unwrap_or(32),
        scaling_factor: from_json("scaling_factor").unwrap_or(SD_SCALING_FACTOR),
        mid_block_add_attention: by_name.contains_key("decoder.mid_block.attentions.0.to_q.weight"),
    };
    cfg.validate()?;
    Ok(cfg)
}

fn shape_of<'a>(by_name: &HashMap<&str, &'a SrcTensor>, name: &str) -> Result<&'a [usize]> {
    by_name.get(name).map(|t| t.shape.as_slice()).ok_or_else(|| Error::MissingTensor(name.into()))
}

/// Reads the DiT config off the tensor shapes of a checkpoint with the release's names.
pub fn infer_dit_config(tensors: &[SrcTensor], opts: &ConvertOptions) -> Result<DitConfig> {
    let by_name: HashMap<&str, &SrcTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let bad = |m: String| Error::Config(m);
    let &[d, c, p, p2] = shape_of(&by_name, "x_embedder.proj.weight")? else {
        return Err(bad("x_embedder.proj.weight is not [D, C, p, p]".into()));
    };
    if p != p2 {
        return Err(bad(format!("non-square patch {p}x{p2}")));
    }
    let depth = tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blocks.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let &[final_rows, _] = shape_of(&by_name, "final_layer.linear.weight")? else {
        return Err(bad("final_layer.linear.weight is not 2-D".into()));
    };
    let cout = final_rows / (p * p);
    let learn_sigma = match cout {
        x if x == 2 * c => true,
        x if x == c => false,
        _ => return Err(bad(format!("final layer gives {cout} channels for {c} input channels"))),
    };
    let &[rows, _] = shape_of(&by_name, "y_embedder.embedding_table.weight")? else {
        return Err(bad("y_embedder.embedding_table.weight is not 2-D".into()));
    };
    let &[mlp, _] = shape_of(&by_name, "blocks.0.mlp.fc1.weight")? else {
        return Err(bad("blocks.0.mlp.fc1.weight is not 2-D".into()));
    };
    let num_heads = match (opts.heads, DitConfig::preset_heads(depth, d)) {
        (Some(h), _) => h,
        (None, Some(h)) => h,
        (None, None) => {
            return Err(Error::input(format!(
                "depth {depth} and width {d} are not a DiT preset: pass --heads N (head dim = {d} / N)"
            )))
        }
    };
    let from_pos = by_name.get("pos_embed").and_then(|t| {
        let g = (t.shape.get(1).copied().unwrap_or(0) as f64).sqrt() as usize;
        (g * g == t.shape.get(1).copied().unwrap_or(0)).then_some(g * p)
    });
    let cfg = DitConfig {
        depth,
        hidden_size: d,
        num_heads,
        patch_size: p,
        in_channels: c,
        learn_sigma,
        num_classes: rows.saturating_sub(1),
        input_size: opts.input_size.or(from_pos).unwrap_or(32),
        mlp_ratio: mlp as f64 / d as f64,
        arch: opts.arch,
        dmf_depth: opts.dmf_depth,
        qk_norm: by_name.contains_key("blocks.0.attn.q_norm.scale"),
        latent_stats: None,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// The release's DiT names of a diffusers `DiTTransformer2DModel`: the per-block copies of the embedders are read from
/// block 0, q/k/v are concatenated (in that order) into qkv.
pub fn diffusers_dit_parts(src: &[SrcTensor]) -> Result<Vec<(String, Vec<SrcTensor>)>> {
    let by: HashMap<&str, &SrcTensor> = src.iter().map(|t| (t.name.as_str(), t)).collect();
    let get = |n: &str| by.get(n).map(|t| (*t).clone()).ok_or_else(|| Error::MissingTensor(n.to_string()));
    let depth = src
        .iter()
        .filter_map(|t| t.name.strip_prefix("transformer_blocks.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let e = "transformer_blocks.0.norm1.emb.";
    let mut out = vec![];
    for part in ["weight", "bias"] {
        out.push((format!("x_embedder.proj.{part}"), vec![get(&format!("pos_embed.proj.{part}"))?]));
        out.push((format!("t_embedder.mlp.0.{part}"), vec![get(&format!("{e}timestep_embedder.linear_1.{part}"))?]));
        out.push((format!("t_embedder.mlp.2.{part}"), vec![get(&format!("{e}timestep_embedder.linear_2.{part}"))?]));
        out.push((format!("final_layer.adaLN_modulation.1.{part}"), vec![get(&format!("proj_out_1.{part}"))?]));
        out.push((format!("final_layer.linear.{part}"), vec![get(&format!("proj_out_2.{part}"))?]));
        for i in 0..depth {
            let b = format!("transformer_blocks.{i}.");
            let o = format!("blocks.{i}.");
            out.push((format!("{o}adaLN_modulation.1.{part}"), vec![get(&format!("{b}norm1.linear.{part}"))?]));
            let qkv = ["to_q", "to_k", "to_v"]
                .iter()
                .map(|s| get(&format!("{b}attn1.{s}.{part}")))
                .collect::<Result<Vec<_>>>()?;
            out.push((format!("{o}attn.qkv.{part}"), qkv));
            out.push((format!("{o}attn.proj.{part}"), vec![get(&format!("{b}attn1.to_out.0.{part}"))?]));
            out.push((format!("{o}mlp.fc1.{part}"), vec![get(&format!("{b}ff.net.0.proj.{part}"))?]));
            out.push((format!("{o}mlp.fc2.{part}"), vec![get(&format!("{b}ff.net.2.{part}"))?]));
        }
    }
    out.push((
        "y_embedder.embedding_table.weight".into(),
        vec![get(&format!("{e}class_embedder.embedding_table.weight"))?],
    ));
    Ok(out)
}

/// One tensor the model loads and the source tensors it is made of, concatenated along the first dimension (one
/// part, except diffusers' separate q, k and v).
#[derive(Clone, Debug)]
pub struct Item {
    pub planned: TensorSpec,
    pub parts: Vec<SrcTensor>,
}

/// What to build from a checkpoint.
#[derive(Clone, Debug)]
pub struct Plan {
    pub kind: ModelKind,
    pub config: serde_json::Value,
    pub extra: BTreeMap<String, serde_json::Value>,
    /// In the canonical order of the model directory format.
    pub items: Vec<Item>,
    /// A stored position embedding to check against the fixed one (`check_pos_embed`) before use.
    pub pos_embed: Option<(SrcTensor, DitConfig)>,
    /// A MeanFlow / α-Flow checkpoint's latent statistics (`autoencoder_mean`, `autoencoder_var`), read into the
    /// config's `latent_stats` ([`set_latent_stats`]).
    pub latent_stats: Option<(SrcTensor, SrcTensor)>,
}

impl Plan {
    /// Source tensors read, in the order of their data in the file.
    pub fn sources(&self) -> Vec<&SrcTensor> {
        let stats = self.latent_stats.iter().flat_map(|(m, v)| [m, v]);
        let mut v: Vec<&SrcTensor> = self
            .items
            .iter()
            .flat_map(|i| &i.parts)
            .chain(self.pos_embed.as_ref().map(|p| &p.0))
            .chain(stats)
            .collect();
        v.sort_by(|a, b| (&a.storage, a.offset).cmp(&(&b.storage, b.offset)));
        v
    }
}

/// Recognises the checkpoint (`describe` names it in errors) and plans the model. `config_json`: a diffusers
/// config.json found beside the weights, if any.
pub fn plan(
    describe: &str,
    tensors: &[SrcTensor],
    config_json: Option<&serde_json::Value>,
    opts: &ConvertOptions,
) -> Result<Plan> {
    match opts.arch {
        Family::Meanflow => return plan_meanflow(describe, tensors, opts),
        Family::Dmf => {
            // DMF's state dict is flat; upstream's `strict=False` load also skips its log-variance head and (in the
            // base SiT+REPA files) the REPA projectors.
            check_flat(describe, tensors)?;
            let kept: Vec<(String, Vec<SrcTensor>)> = tensors
                .iter()
                .filter(|t| !t.name.starts_with("logvar_linear.") && !t.name.starts_with("projectors."))
                .map(|t| (t.name.clone(), vec![t.clone()]))
                .collect();
            return plan_dit(describe, kept, opts);
        }
        Family::Dit | Family::Sit => {}
    }
    if tensors.iter().any(|t| t.name == "x_embedder.proj.weight") {
        let parts = tensors.iter().map(|t| (t.name.clone(), vec![t.clone()])).collect();
        plan_dit(describe, parts, opts)
    } else if tensors.iter().any(|t| t.name == "transformer_blocks.0.norm1.emb.timestep_embedder.linear_1.weight") {
        let parts = diffusers_dit_parts(tensors)?;
        let mut opts = opts.clone();
        if let Some(j) = config_json {
            opts.heads = opts.heads.or(j["num_attention_heads"].as_u64().map(|v| v as usize));
            opts.input_size = opts.input_size.or(j["sample_size"].as_u64().map(|v| v as usize));
        }
        plan_dit(describe, parts, &opts)
    } else if tensors.iter().any(|t| t.name.ends_with("decoder.conv_in.weight")) {
        plan_vae(describe, tensors, config_json, opts)
    } else {
        Err(Error::format(
            describe,
            "not a recognised checkpoint: expected DiT tensors with the release's names (x_embedder.proj.weight, ...), \
             the diffusers DiT layout, or a VAE decoder (decoder.conv_in.weight, ...)",
        ))
    }
}

fn plan_vae(
    describe: &str,
    tensors: &[SrcTensor],
    config_json: Option<&serde_json::Value>,
    opts: &ConvertOptions,
) -> Result<Plan> {
    let full_sd = tensors.iter().any(|t| t.name.starts_with("first_stage_model."));
    // ldm numbers up levels bottom-up; count them to map to diffusers' top-down order.
    let prefix = if full_sd { "first_stage_model.decoder.up." } else { "decoder.up." };
    let levels = tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let mut by_name: HashMap<String, &SrcTensor> = HashMap::new();
    for t in tensors {
        if let Some(n) = vae_canonical_name(&t.name, full_sd, levels) {
            if by_name.insert(n.clone(), t).is_some() {
                return Err(Error::format(describe, format!("two tensors map to `{n}`")));
            }
        }
    }
    let cfg = infer_vae_config(&by_name, config_json, opts)?;
    let planned = vae_tensors(&cfg);
    let mut items = vec![];
    for p in planned.iter() {
        let t = by_name.get(&p.name).ok_or_else(|| Error::MissingTensor(p.name.clone()))?;
        // ldm stores the attention projections as 1x1 convs: the same values as the [C, C] linear.
        let same = t.shape == p.shape || (t.shape.len() == 4 && t.shape[2..] == [1, 1] && t.shape[..2] == p.shape[..]);
        if !same {
            return Err(Error::Shape { name: p.name.clone(), expected: p.shape.clone(), found: t.shape.clone() });
        }
        items.push(Item { planned: p.clone(), parts: vec![(*t).clone()] });
    }
    let known: std::collections::HashSet<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    if let Some(extra) = by_name.keys().find(|k| !known.contains(k.as_str())) {
        return Err(Error::format(describe, format!("unexpected decoder tensor `{extra}` for the inferred config")));
    }
    let config = serde_json::to_value(&cfg).expect("config serializes");
    Ok(Plan { kind: ModelKind::VaeDecoder, config, extra: BTreeMap::new(), items, pos_embed: None, latent_stats: None })
}

/// A flat DiT-shaped state dict has the tensors its config is read from; else the error lists those missing and, where
/// the weights sit under a prefix (a wrapped state dict, which upstream's `strict=False` load would silently skip),
/// names it.
fn check_flat(describe: &str, tensors: &[SrcTensor]) -> Result<()> {
    const NEEDED: [&str; 6] = [
        "x_embedder.proj.weight",
        "t_embedder.mlp.0.weight",
        "y_embedder.embedding_table.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.0.mlp.fc1.weight",
        "final_layer.linear.weight",
    ];
    let has = |n: &str| tensors.iter().any(|t| t.name == n);
    let missing: Vec<&str> = NEEDED.iter().copied().filter(|n| !has(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let prefix = tensors.iter().find_map(|t| t.name.strip_suffix("x_embedder.proj.weight").filter(|p| !p.is_empty()));
    let hint = match prefix {
        Some(p) => format!("; the weights sit under `{p}` (a wrapped state dict: upstream's strict=False load would load nothing from it)"),
        None => String::new(),
    };
    Err(Error::format(describe, format!("missing tensors of the model: {}{hint}", missing.join(", "))))
}

/// The latent statistics of a MeanFlow / α-Flow checkpoint, `[1, C, H, W]` each.
pub const LATENT_MEAN: &str = "autoencoder_mean";
pub const LATENT_VAR: &str = "autoencoder_var";

/// A MeanFlow / α-Flow checkpoint: the release's training snapshot keeps the network under `model.` in its `ema` dict
/// (a flat state dict is read as it is) beside a whole SD VAE (`autoencoder.*`, not used: the VAE is given on its own)
/// and the latent statistics, which are required.
fn plan_meanflow(describe: &str, tensors: &[SrcTensor], opts: &ConvertOptions) -> Result<Plan> {
    let wrapped = tensors.iter().any(|t| t.name.starts_with("model."));
    let stat = |name: &str| tensors.iter().find(|t| t.name == name || t.name == format!("model.{name}")).cloned();
    let (Some(mean), Some(var)) = (stat(LATENT_MEAN), stat(LATENT_VAR)) else {
        return Err(Error::format(
            describe,
            format!(
                "a MeanFlow / α-Flow checkpoint holds the latent statistics `{LATENT_MEAN}` and `{LATENT_VAR}` that its \
                 images are decoded with; this one has none (for a DiT-shaped flow map without them use --arch dmf)"
            ),
        ));
    };
    let parts: Vec<(String, Vec<SrcTensor>)> = tensors
        .iter()
        .filter_map(|t| {
            let name = if wrapped { t.name.strip_prefix("model.")? } else { t.name.as_str() };
            let skip = name.starts_with("autoencoder") || name == "are_ldm_stats_inited";
            (!skip).then(|| (name.to_string(), vec![t.clone()]))
        })
        .collect();
    let mut plan = plan_dit(describe, parts, opts)?;
    let cfg: DitConfig = serde_json::from_value(plan.config.clone()).expect("a planned config");
    let want = cfg.in_channels * cfg.input_size * cfg.input_size;
    for t in [&mean, &var] {
        if t.numel() != want {
            return Err(Error::Shape {
                name: t.name.clone(),
                expected: vec![1, cfg.in_channels, cfg.input_size, cfg.input_size],
                found: t.shape.clone(),
            });
        }
    }
    plan.latent_stats = Some((mean, var));
    Ok(plan)
}

/// Writes the latent statistics read from a checkpoint into its planned config (checked as the config is).
pub fn set_latent_stats(plan: &mut Plan, mean: Vec<f32>, var: Vec<f32>) -> Result<()> {
    let mut cfg: DitConfig = serde_json::from_value(plan.config.clone()).expect("a planned config");
    cfg.latent_stats = Some(LatentStats { mean, var });
    cfg.validate()?;
    plan.config = serde_json::to_value(&cfg).expect("config serializes");
    Ok(())
}

/// Plans a DiT given as release names -> source parts (concatenated along the first dimension).
fn plan_dit(describe: &str, parts: Vec<(String, Vec<SrcTensor>)>, opts: &ConvertOptions) -> Result<Plan> {
    // The tensors as the release names them: shapes of the concatenations.
    let tensors: Vec<SrcTensor> = parts
        .iter()
        .map(|(name, p)| {
            let mut t = p[0].clone();
            t.name = name.clone();
            t.shape[0] = p.iter().map(|x| x.shape[0]).sum();
            t
        })
        .collect();
    let cfg = infer_dit_config(&tensors, opts)?;
    let planned = dit_tensors(&cfg);
    let by_name: HashMap<&str, &SrcTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let parts_of: HashMap<&str, &Vec<SrcTensor>> = parts.iter().map(|(n, p)| (n.as_str(), p)).collect();
    let missing: Vec<&str> = planned.iter().map(|p| p.name.as_str()).filter(|n| !by_name.contains_key(n)).collect();
    match missing[..] {
        [] => {}
        [one] => return Err(Error::MissingTensor(one.to_string())),
        _ => {
            let shown = missing.iter().take(12).copied().collect::<Vec<_>>().join(", ");
            let more = if missing.len() > 12 { format!(" and {} more", missing.len() - 12) } else { String::new() };
            return Err(Error::format(
                describe,
                format!(
                    "{} of the model's {} tensors are missing: {shown}{more} (a state dict wrapped under another key, \
                     or a checkpoint of another architecture?)",
                    missing.len(),
                    planned.len()
                ),
            ));
        }
    }
    let mut items = vec![];
    for p in &planned {
        let t = by_name.get(p.name.as_str()).ok_or_else(|| Error::MissingTensor(p.name.clone()))?;
        if t.shape != p.shape {
            return Err(Error::Shape { name: p.name.clone(), expected: p.shape.clone(), found: t.shape.clone() });
        }
        items.push(Item { planned: p.clone(), parts: parts_of[p.name.as_str()].clone() });
    }
    let known: std::collections::HashSet<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    let mut pos_embed = None;
    for t in &tensors {
        if t.name == "pos_embed" {
            let g = cfg.input_size / cfg.patch_size;
            if t.shape != [1, g * g, cfg.hidden_size] {
                return Err(Error::Shape {
                    name: t.name.clone(),
                    expected: vec![1, g * g, cfg.hidden_size],
                    found: t.shape.clone(),
                });
            }
            pos_embed = Some((parts_of["pos_embed"][0].clone(), cfg.clone()));
        } else if !known.contains(t.name.as_str()) {
            return Err(Error::format(
                describe,
                format!("unexpected tensor `{}` for {} blocks of width {}", t.name, cfg.depth, cfg.hidden_size),
            ));
        }
    }
    let mut extra = BTreeMap::new();
    if let Some(name) = cfg.preset_name() {
        extra.insert("preset".to_string(), serde_json::Value::from(name));
    }
    if let Some(names) = &opts.class_names {
        if names.len() != cfg.num_classes {
            return Err(Error::input(format!(
                "{} class names for a model of {} classes",
                names.len(),
                cfg.num_classes
            )));
        }
        extra.insert("class_names".to_string(), serde_json::Value::from(names.clone()));
    }
    let config = serde_json::to_value(&cfg).expect("config serializes");
    Ok(Plan { kind: ModelKind::Dit, config, extra, items, pos_embed, latent_stats: None })
}

/// The release stores the fixed position embedding; it must be the 2D sin-cos one that the model computes.
pub fn check_pos_embed(describe: &str, t: &SrcTensor, stored: &[f32], cfg: &DitConfig) -> Result<()> {
    let ours = pos_embed_2d(cfg.hidden_size, cfg.input_size / cfg.patch_size);
    let diff = stored.iter().zip(&ours).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // |values| <= 1: allow the rounding of the stored dtype.
    let tol = match t.dtype {
        SrcDType::F16 => 1e-3,
        SrcDType::BF16 => 8e-3,
        SrcDType::F32 | SrcDType::F64 => 1e-4,
    };
    if diff > tol {
        return Err(Error::format(
            describe,
            format!("pos_embed differs from the fixed 2D sin-cos embedding by {diff}; this is not a DiT checkpoint this project can run"),
        ));
    }
    Ok(())
}
