//! One large checkpoint used as it is, with no conversion step: a `.safetensors` file, or a PyTorch zip checkpoint
//! (`torch.save`'s `.bin` / `.pt`, read through `weights::torchzip`), told apart by their first bytes. The tensor list
//! is read first (the safetensors header; the zip's central directory and `data.pkl`), the model is planned from it
//! (the same plan as `dit convert`), and the data is read in byte ranges (HTTP Range requests in the browser, file
//! reads natively), each tensor rounded from f32 / bf16 / f16 to fp16 on the fly. Only the tensors the model uses are
//! read (an SD VAE's encoder, the per-block copies of a diffusers DiT's embedders are skipped), unless a sha256 of the
//! whole file is given: then every byte is read, in order, and the digest is checked before the weights are handed
//! back. Peak memory: one range (for a zip, at least one whole storage) plus the tensor being assembled.

use super::index::{IndexMetadata, ModelIndex, FORMAT, FORMAT_VERSION};
use super::input::{decode_f32, parse_header, to_f16, SrcTensor, MAX_HEADER};
use super::plan::{check_pos_embed, plan, set_latent_stats, ConvertOptions, Plan};
#[cfg(not(target_arch = "wasm32"))]
pub use super::range::FileRange;
use super::range::{check_digest, read_exact};
pub use super::range::{MemoryRange, RangeSource};
use super::torchzip::{self, Reading, ZIP_MAGIC};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// The first bytes of a legacy (pre-zip) `torch.save` file: a protocol-2 pickle of its magic number, a long int.
pub const LEGACY_TORCH: &[u8; 3] = b"\x80\x02\x8a";

/// The error for a legacy `torch.save` file.
pub fn legacy_torch(file: &str) -> Error {
    Error::format(
        file,
        "a PyTorch checkpoint in the legacy format (torch.save before 1.6, not a zip); load and save it again with a \
         current PyTorch, or save it as safetensors",
    )
}

/// Default bytes per range read.
pub const DEFAULT_RANGE_BYTES: u64 = 8 << 20;
/// Unused bytes between two needed tensors that are read anyway rather than starting a new range.
const MAX_GAP: u64 = 1 << 20;

/// How to read a single-file checkpoint.
#[derive(Clone, Debug)]
pub struct SingleOptions {
    /// Config overrides, as for `dit convert` (`heads` for a DiT that is not a preset, ...).
    pub convert: ConvertOptions,
    /// The expected sha256 of the whole file (hex). When given, every byte is read and checked.
    pub sha256: Option<String>,
    /// Bytes per range read.
    pub range_bytes: u64,
    /// Runs on the model's index (kind, config) once the file is planned, before any tensor data is read: the
    /// loader refuses there a model that cannot run on the device.
    pub before_tensors: BeforeTensors,
}

impl Default for SingleOptions {
    fn default() -> Self {
        SingleOptions {
            convert: ConvertOptions::default(),
            sha256: None,
            range_bytes: DEFAULT_RANGE_BYTES,
            before_tensors: BeforeTensors::default(),
        }
    }
}

/// A check of a model's index (kind and config, no shards): an error stops the load.
pub type IndexCheck = dyn Fn(&ModelIndex) -> Result<()>;

/// An [`IndexCheck`] run before a model's weights are read; none by default.
#[derive(Clone, Default)]
pub struct BeforeTensors(pub Option<std::rc::Rc<IndexCheck>>);

impl BeforeTensors {
    fn run(&self, index: &ModelIndex) -> Result<()> {
        self.0.as_ref().map_or(Ok(()), |check| check(index))
    }
}

impl std::fmt::Debug for BeforeTensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "BeforeTensors(check)" } else { "BeforeTensors(none)" })
    }
}

/// Splits `url#sha256=HEX&heads=N&input_size=S` into the URL and the options its fragment sets: the whole file's
/// sha256, the attention heads of a DiT that is not a paper preset, the latent side of a DiT stored without its
/// `pos_embed`, and the model kind `arch=sit` of a SiT (as `dit convert --heads / --input-size / --arch`).
pub fn parse_location(location: &str) -> Result<(&str, SingleOptions)> {
    let mut opts = SingleOptions::default();
    let Some((url, fragment)) = location.split_once('#') else { return Ok((location, opts)) };
    for kv in fragment.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("sha256", h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                opts.sha256 = Some(h.to_ascii_lowercase())
            }
            Some(("heads", n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => opts.convert.heads = n.parse().ok(),
            Some(("arch", a)) if crate::arch::Family::parse(a).is_ok() => {
                opts.convert.arch = crate::arch::Family::parse(a)?
            }
            Some(("input_size", n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                opts.convert.input_size = n.parse().ok()
            }
            Some(("dmf-depth" | "dmf_depth", n)) if n.parse::<usize>().is_ok() => opts.convert.dmf_depth = n.parse().ok(),
            _ => {
                return Err(Error::input(format!(
                "{location}: unknown fragment `{kv}`; a single-file model takes #sha256=<64 hex digits>, &heads=<N>, &input_size=<latent side>, &arch=dit|sit|meanflow|dmf and &dmf-depth=<N>"
            )))
            }
        }
    }
    Ok((url, opts))
}

/// File name endings of single-file checkpoints: safetensors, and PyTorch's zip checkpoints (`torch.save`).
pub const SINGLE_FILE_SUFFIXES: [&str; 4] = [".safetensors", ".bin", ".pt", ".pth"];

/// Whether a model location names one checkpoint file (rather than a model directory or a diffusers folder).
pub fn is_single_file(location: &str) -> bool {
    let u = location.split(['?', '#']).next().unwrap_or(location);
    SINGLE_FILE_SUFFIXES.iter().any(|s| u.ends_with(s))
}

/// A contiguous byte range and the tensors whose data it holds.
struct Range<'a> {
    start: u64,
    end: u64,
    tensors: Vec<&'a SrcTensor>,
}

/// Groups tensors (sorted by offset) into ranges of about `max` bytes. With `contiguous`, the ranges also cover the
/// bytes between tensors and up to `file_end`, so that together with the header they are the whole file.
fn ranges<'a>(tensors: &[&'a SrcTensor], data_start: u64, file_end: u64, max: u64, contiguous: bool) -> Vec<Range<'a>> {
    let mut out: Vec<Range> = vec![];
    let mut cursor = data_start;
    for &t in tensors {
        let (s, e) = (t.offset, t.offset + (t.numel() * t.dtype.size()) as u64);
        let start = if contiguous { cursor } else { s };
        match out.last_mut() {
            Some(r) if (contiguous || s.saturating_sub(r.end) <= MAX_GAP) && e - r.start <= max => {
                r.end = r.end.max(e);
                r.tensors.push(t);
            }
            _ => out.push(Range { start, end: e, tensors: vec![t] }),
        }
        cursor = cursor.max(e);
    }
    if contiguous {
        match out.last_mut() {
            Some(r) => r.end = r.end.max(file_end),
            None if file_end > data_start => out.push(Range { start: data_start, end: file_end, tensors: vec![] }),
            None => {}
        }
    }
    out
}

/// Keeps the first value error until the digest is known (when there is one), else returns it.
fn defer(e: Error, deferred: &mut Option<Error>, hashing: bool) -> Result<()> {
    if !hashing {
        return Err(e);
    }
    deferred.get_or_insert(e);
    Ok(())
}

/// Puts the source tensors read so far together into the model's tensors: checks the stored position embedding,
/// concatenates parts (diffusers' q, k, v), rounds to fp16 and hands each finished tensor on. With a digest to check,
/// a bad value is kept until the digest is known (a corrupt file is an integrity error, whichever tensor it hit).
struct Assembler<'p, F> {
    file: String,
    plan: &'p Plan,
    /// Which item each source tensor feeds.
    feeds: HashMap<&'p str, usize>,
    gathered: HashMap<usize, BTreeMap<usize, Vec<f32>>>,
    /// The latent statistics' values, once read (mean, var).
    stats: [Option<Vec<f32>>; 2],
    done: usize,
    hashing: bool,
    deferred: Option<Error>,
    on_tensor: F,
}

impl<'p, F: FnMut(&str, &[usize], &[u8]) -> Result<()>> Assembler<'p, F> {
    fn new(file: &str, plan: &'p Plan, hashing: bool, on_tensor: F) -> Self {
        let mut feeds = HashMap::new();
        for (i, item) in plan.items.iter().enumerate() {
            for p in &item.parts {
                feeds.insert(p.name.as_str(), i);
            }
        }
        Assembler {
            file: file.to_string(),
            plan,
            feeds,
            gathered: HashMap::new(),
            stats: [None, None],
            done: 0,
            hashing,
            deferred: None,
            on_tensor,
        }
    }

    /// One source tensor's raw bytes.
    fn take(&mut self, t: &SrcTensor, raw: &[u8]) -> Result<()> {
        if self.deferred.is_some() {
            return Ok(());
        }
        if let Some((pe, cfg)) = &self.plan.pos_embed {
            if pe.name == t.name {
                if let Err(e) = check_pos_embed(&self.file, pe, &decode_f32(&t.name, t.dtype, raw), cfg) {
                    defer(e, &mut self.deferred, self.hashing)?;
                }
                return Ok(());
            }
        }
        if let Some((mean, var)) = &self.plan.latent_stats {
            if let Some(k) = [mean, var].iter().position(|s| s.name == t.name) {
                self.stats[k] = Some(decode_f32(&t.name, t.dtype, raw));
                return Ok(());
            }
        }
        let Some(&i) = self.feeds.get(t.name.as_str()) else { return Ok(()) };
        let item = &self.plan.items[i];
        let part = item.parts.iter().position(|p| p.name == t.name).expect("a part of its item");
        let parts = self.gathered.entry(i).or_default();
        parts.insert(part, decode_f32(&t.name, t.dtype, raw));
        if parts.len() == item.parts.len() {
            let values: Vec<f32> = self.gathered.remove(&i).expect("gathered").into_values().flatten().collect();
            match to_f16(&item.planned.name, &values) {
                Ok(h) => {
                    (self.on_tensor)(&item.planned.name, &item.planned.shape, bytemuck::cast_slice(&h))?;
                    self.done += 1;
                }
                Err(e) => defer(e, &mut self.deferred, self.hashing)?,
            }
        }
        Ok(())
    }
}

/// Parses the diffusers `config.json` beside the file, if any, and refuses one that describes another architecture.
async fn read_config<R: RangeSource>(src: &R, file: &str) -> Result<Option<serde_json::Value>> {
    let Some(b) = src.config_json().await? else { return Ok(None) };
    let what = format!("config.json beside {file}");
    let v = serde_json::from_slice::<serde_json::Value>(&b)
        .map_err(|e| Error::format(&what, format!("not valid JSON ({e})")))?;
    super::diffusers::classify_value(&what, &v, None)?;
    Ok(Some(v))
}

/// Reads the checkpoint (a `.safetensors` file, or a PyTorch zip checkpoint `.bin` / `.pt`: chosen by its first
/// bytes), calling `on_tensor(name, shape, fp16 bytes)` for every tensor the model loads and `on_progress(bytes read,
/// bytes to read)` after each range. Returns an index describing the model (kind, config; no shards).
pub async fn load_single<R: RangeSource>(
    src: &R,
    opts: &SingleOptions,
    on_tensor: impl FnMut(&str, &[usize], &[u8]) -> Result<()>,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<ModelIndex> {
    let file = src.describe();
    let head = read_exact(src, 0, 8).await?;
    let config_json = read_config(src, &file).await?;
    if head[..3] == *LEGACY_TORCH {
        return Err(legacy_torch(&file));
    }
    let plan = if head[..4] == *ZIP_MAGIC {
        let zip = torchzip::open_zip(src, src.size().await?).await?;
        let plan = plan(&file, &zip.tensors, config_json.as_ref(), &opts.convert)?;
        opts.before_tensors.run(&index_of(&plan, &file))?;
        let mut asm = Assembler::new(&file, &plan, opts.sha256.is_some(), on_tensor);
        let on_source = &mut |t: &SrcTensor, raw: &[u8]| asm.take(t, raw);
        let on_progress = &mut on_progress;
        let how = Reading { range_bytes: opts.range_bytes, sha256: &opts.sha256, on_source, on_progress };
        torchzip::read_needed(src, &zip, &plan.sources(), how).await?;
        let stats = finish(&file, &plan, asm)?;
        with_stats(plan, stats)?
    } else {
        let (tensors, data_start, header) = read_safetensors_header(src, &head).await?;
        let plan = plan(&file, &tensors, config_json.as_ref(), &opts.convert)?;
        opts.before_tensors.run(&index_of(&plan, &file))?;
        let mut asm = Assembler::new(&file, &plan, opts.sha256.is_some(), on_tensor);
        let on_source = &mut |t: &SrcTensor, raw: &[u8]| asm.take(t, raw);
        let on_progress = &mut on_progress;
        let how = Reading { range_bytes: opts.range_bytes, sha256: &opts.sha256, on_source, on_progress };
        let header = SafetensorsHeader { head: &head, header: &header, data_start, tensors: &tensors };
        read_safetensors(src, header, &plan.sources(), how).await?;
        let stats = finish(&file, &plan, asm)?;
        with_stats(plan, stats)?
    };
    Ok(index_of(&plan, &file))
}

/// The index describing a planned file's model (kind, config, bytes, the file as its source; no shards).
fn index_of(plan: &Plan, file: &str) -> ModelIndex {
    let total_size = plan.items.iter().map(|i| i.planned.bytes()).sum();
    let mut extra = plan.extra.clone();
    extra.insert("source".into(), serde_json::Value::from(file));
    ModelIndex {
        metadata: IndexMetadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            kind: plan.kind,
            config: plan.config.clone(),
            total_size,
            shards: BTreeMap::new(),
            extra,
        },
        weight_map: BTreeMap::new(),
    }
}

/// The first error kept back while hashing, else a check that every tensor was handed on; the latent statistics read.
fn finish<F>(file: &str, plan: &Plan, asm: Assembler<'_, F>) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    if let Some(e) = asm.deferred {
        return Err(e);
    }
    if asm.done != plan.items.len() {
        return Err(Error::format(file, format!("only {} of {} tensors were read", asm.done, plan.items.len())));
    }
    match (&plan.latent_stats, asm.stats) {
        (None, _) => Ok(None),
        (Some(_), [Some(mean), Some(var)]) => Ok(Some((mean, var))),
        (Some(_), _) => Err(Error::format(file, "the latent statistics were not read")),
    }
}

/// The plan with the latent statistics read from the file in its config.
fn with_stats(mut plan: Plan, stats: Option<(Vec<f32>, Vec<f32>)>) -> Result<Plan> {
    if let Some((mean, var)) = stats {
        set_latent_stats(&mut plan, mean, var)?;
    }
    Ok(plan)
}

/// The safetensors header after the 8 bytes of `head`: tensors with absolute offsets, the data start, the header.
async fn read_safetensors_header<R: RangeSource>(src: &R, head: &[u8]) -> Result<(Vec<SrcTensor>, u64, Vec<u8>)> {
    let file = src.describe();
    let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(Error::format(&file, format!("not a safetensors file (header length {n} is over {MAX_HEADER})")));
    }
    let header = read_exact(src, 8, 8 + n).await?;
    let data_start = 8 + n;
    // The data length is not known before reading it: a range past the end fails then.
    let tensors: Vec<SrcTensor> = parse_header(&file, &header, u64::MAX - data_start)?
        .into_iter()
        .map(|mut t| {
            t.offset += data_start;
            t
        })
        .collect();
    Ok((tensors, data_start, header))
}

/// A safetensors file's first 8 bytes and header (hashed first when the whole file is checked), where its data
/// starts and its tensors (offsets absolute).
struct SafetensorsHeader<'a> {
    head: &'a [u8],
    header: &'a [u8],
    data_start: u64,
    tensors: &'a [SrcTensor],
}

/// Reads the `needed` tensors' data in ranges of about `how.range_bytes` (every byte, with a digest to check).
async fn read_safetensors<R: RangeSource>(
    src: &R,
    h: SafetensorsHeader<'_>,
    needed: &[&SrcTensor],
    how: Reading<'_>,
) -> Result<()> {
    let file = src.describe();
    let mut hasher = how.sha256.as_ref().map(|_| {
        let mut d = Sha256::new();
        d.update(h.head);
        d.update(h.header);
        d
    });
    let mut all: Vec<&SrcTensor> = h.tensors.iter().collect();
    all.sort_by_key(|t| t.offset);
    let needed = if hasher.is_some() { &all[..] } else { needed };
    let file_end =
        h.tensors.iter().map(|t| t.offset + (t.numel() * t.dtype.size()) as u64).max().unwrap_or(h.data_start);
    let ranges = ranges(needed, h.data_start, file_end, how.range_bytes.max(1), hasher.is_some());
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let mut read = 0u64;
    for r in &ranges {
        let bytes = read_exact(src, r.start, r.end).await?;
        if let Some(d) = hasher.as_mut() {
            d.update(&bytes);
        }
        for t in &r.tensors {
            let len = t.numel() * t.dtype.size();
            let at = t.offset.checked_sub(r.start).map(|a| a as usize).filter(|&a| a + len <= bytes.len());
            let Some(at) = at else {
                return Err(Error::format(
                    &file,
                    format!("tensor `{}` overlaps another one; the header is corrupt", t.name),
                ));
            };
            (how.on_source)(t, &bytes[at..at + len])?;
        }
        read += r.end - r.start;
        (how.on_progress)(read, total);
    }
    check_digest(&file, hasher, how.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::input::SrcDType;

    fn t(name: &str, offset: u64, n: usize) -> SrcTensor {
        SrcTensor { name: name.into(), shape: vec![n], dtype: SrcDType::F32, offset, storage: String::new() }
    }

    #[test]
    fn ranges_skip_unneeded_data_unless_hashing() {
        let (a, b, c) = (t("a", 100, 10), t("b", 140, 10), t("c", 100 + (4 << 20), 10));
        let v = [&a, &b, &c];
        let r = ranges(&v, 100, 100 + (4 << 20) + 40, 1 << 20, false);
        assert_eq!(
            r.iter().map(|r| (r.start, r.end, r.tensors.len())).collect::<Vec<_>>(),
            [(100, 180, 2), (c.offset, c.offset + 40, 1)]
        );
        let r = ranges(&v, 100, 100 + (4 << 20) + 50, 1 << 20, true);
        assert_eq!(r.first().unwrap().start, 100);
        assert!(r.windows(2).all(|w| w[0].end == w[1].start), "contiguous");
        assert_eq!(r.last().unwrap().end, 100 + (4 << 20) + 50);
    }

    #[test]
    fn urls() {
        assert!(is_single_file("https://x/y/DiT-XL-2-256.safetensors"));
        assert!(is_single_file("./a.safetensors?download=1#sha256=AB"));
        assert!(!is_single_file("https://x/models/dit"));
        assert!(is_single_file("https://x/resolve/main/transformer/diffusion_pytorch_model.bin"));
        assert!(is_single_file("DiT-XL-2-256x256.pt#heads=16"));
        let h = "AB".repeat(32);
        let loc = format!("a.safetensors#sha256={h}&heads=3");
        let (u, o) = parse_location(&loc).unwrap();
        assert_eq!((u, o.sha256, o.convert.heads), ("a.safetensors", Some(h.to_ascii_lowercase()), Some(3)));
        assert!(parse_location("a.safetensors#sha256=12").is_err());
        assert!(parse_location("a.safetensors#run=1").is_err());
    }
}
