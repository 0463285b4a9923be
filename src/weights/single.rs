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
use super::plan::{check_pos_embed, plan, ConvertOptions, Plan};
use super::torchzip::{self, TorchZip, ZIP_MAGIC};
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

/// A file read by byte ranges.
#[allow(async_fn_in_trait)]
pub trait RangeSource {
    /// A short description for messages (a path or URL).
    fn describe(&self) -> String;
    /// The file's size in bytes (read before the end of a zip checkpoint is looked for).
    async fn size(&self) -> Result<u64>;
    /// Bytes `start..end` of the file: exactly `end - start` of them, or an error.
    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>>;
    /// The diffusers `config.json` beside the file, if there is one (it gives a VAE's GroupNorm groups and scaling
    /// factor, a diffusers DiT's heads and sample size, as it does for `dit convert`).
    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// How to read a single-file checkpoint.
#[derive(Clone, Debug)]
pub struct SingleOptions {
    /// Config overrides, as for `dit convert` (`heads` for a DiT that is not a preset, ...).
    pub convert: ConvertOptions,
    /// The expected sha256 of the whole file (hex). When given, every byte is read and checked.
    pub sha256: Option<String>,
    /// Bytes per range read.
    pub range_bytes: u64,
}

impl Default for SingleOptions {
    fn default() -> Self {
        SingleOptions { convert: ConvertOptions::default(), sha256: None, range_bytes: DEFAULT_RANGE_BYTES }
    }
}

/// Splits `url#sha256=HEX&heads=N&input_size=S` into the URL and the options its fragment sets: the whole file's
/// sha256, the attention heads of a DiT that is not a paper preset, the latent side of a DiT stored without its
/// `pos_embed` (as `dit convert --heads / --input-size`).
pub fn parse_location(location: &str) -> Result<(&str, SingleOptions)> {
    let mut opts = SingleOptions::default();
    let Some((url, fragment)) = location.split_once('#') else { return Ok((location, opts)) };
    for kv in fragment.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("sha256", h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                opts.sha256 = Some(h.to_ascii_lowercase())
            }
            Some(("heads", n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => opts.convert.heads = n.parse().ok(),
            Some(("input_size", n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                opts.convert.input_size = n.parse().ok()
            }
            _ => {
                return Err(Error::input(format!(
                "{location}: unknown fragment `{kv}`; a single-file model takes #sha256=<64 hex digits>, &heads=<N> and &input_size=<latent side>"
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

/// One range, checked to be exactly the bytes asked for.
async fn read_exact<R: RangeSource>(src: &R, start: u64, end: u64) -> Result<Vec<u8>> {
    let bytes = src.read_range(start, end).await?;
    if bytes.len() as u64 != end - start {
        return Err(Error::format(
            src.describe(),
            format!(
                "asked for bytes {start}..{end} and got {} bytes; the file is truncated or the server does not honour Range requests",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Opens a PyTorch zip checkpoint of `size` bytes (see `weights::torchzip`): the end records, the central directory
/// and `data.pkl` in three or four reads, and its tensor list.
pub async fn open_zip<R: RangeSource>(src: &R, size: u64) -> Result<TorchZip> {
    use torchzip::{EndRecord, TAIL};
    let file = src.describe();
    // torch.save writes no zip comment: the end records are in the last few KB (which hold none of the storages),
    // else a zip comment hides them further up.
    let mut tail_start = size.saturating_sub(torchzip::FIRST_TAIL);
    let mut tail = read_exact(src, tail_start, size).await?;
    let end = match torchzip::parse_end(&file, &tail, size) {
        Ok(end) => end,
        Err(_) if tail_start > 0 => {
            tail_start = size.saturating_sub(TAIL);
            tail = read_exact(src, tail_start, size).await?;
            torchzip::parse_end(&file, &tail, size)?
        }
        Err(e) => return Err(e),
    };
    let dir = match end {
        EndRecord::Plain(d) => d,
        EndRecord::Zip64 { record, eocd } => {
            let len = torchzip::ZIP64_EOCD_LEN;
            let bytes = match record.checked_sub(tail_start) {
                Some(at) => tail[at as usize..(at + len) as usize].to_vec(),
                None => read_exact(src, record, record + len).await?,
            };
            torchzip::parse_zip64_end(&file, &bytes, eocd)?
        }
    };
    let central = match dir.offset.checked_sub(tail_start) {
        Some(at) => tail[at as usize..(at + dir.size) as usize].to_vec(),
        None => read_exact(src, dir.offset, dir.offset + dir.size).await?,
    };
    let entries = torchzip::parse_central(&file, &central, dir)?;
    let pkl = torchzip::pickle_entry(&file, &entries)?;
    let e = &entries[pkl];
    let span = read_exact(src, e.header, e.end).await?;
    let at = torchzip::data_offset(&file, e, &span)?;
    let tensors = torchzip::list_tensors(&file, &entries, pkl, &span[at..at + e.size as usize])?;
    Ok(TorchZip { size, entries, tensors, central: dir.offset })
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
    on_progress: impl FnMut(u64, u64),
) -> Result<ModelIndex> {
    let file = src.describe();
    let head = read_exact(src, 0, 8).await?;
    let config_json = read_config(src, &file).await?;
    if head[..3] == *LEGACY_TORCH {
        return Err(legacy_torch(&file));
    }
    let plan = if head[..4] == *ZIP_MAGIC {
        let zip = open_zip(src, src.size().await?).await?;
        let plan = plan(&file, &zip.tensors, config_json.as_ref(), &opts.convert)?;
        let asm = Assembler::new(&file, &plan, opts.sha256.is_some(), on_tensor);
        let asm = read_zip(src, &zip, &plan, opts, asm, on_progress).await?;
        finish(&file, &plan, asm)?;
        plan
    } else {
        let (tensors, data_start, header) = read_safetensors_header(src, &head).await?;
        let plan = plan(&file, &tensors, config_json.as_ref(), &opts.convert)?;
        let asm = Assembler::new(&file, &plan, opts.sha256.is_some(), on_tensor);
        let asm = read_safetensors(src, &tensors, data_start, (&head, &header), &plan, opts, asm, on_progress).await?;
        finish(&file, &plan, asm)?;
        plan
    };
    let total_size = plan.items.iter().map(|i| i.planned.bytes()).sum();
    let mut extra = plan.extra;
    extra.insert("source".into(), serde_json::Value::from(file));
    Ok(ModelIndex {
        metadata: IndexMetadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            kind: plan.kind,
            config: plan.config,
            total_size,
            shards: BTreeMap::new(),
            extra,
        },
        weight_map: BTreeMap::new(),
    })
}

/// The first error kept back while hashing, else a check that every tensor was handed on.
fn finish<F>(file: &str, plan: &Plan, asm: Assembler<'_, F>) -> Result<()> {
    if let Some(e) = asm.deferred {
        return Err(e);
    }
    if asm.done != plan.items.len() {
        return Err(Error::format(file, format!("only {} of {} tensors were read", asm.done, plan.items.len())));
    }
    Ok(())
}

/// Checks the digest of everything hashed against the expected one.
fn check_digest(file: &str, hasher: Option<Sha256>, expected: &Option<String>) -> Result<()> {
    if let (Some(h), Some(expected)) = (hasher, expected) {
        let actual = hex::encode(h.finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::Integrity { file: file.to_string(), expected: expected.clone(), actual });
        }
    }
    Ok(())
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

#[allow(clippy::too_many_arguments)]
async fn read_safetensors<'p, R: RangeSource, F: FnMut(&str, &[usize], &[u8]) -> Result<()>>(
    src: &R,
    tensors: &[SrcTensor],
    data_start: u64,
    (head, header): (&[u8], &[u8]),
    plan: &'p Plan,
    opts: &SingleOptions,
    mut asm: Assembler<'p, F>,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<Assembler<'p, F>> {
    let file = src.describe();
    let mut hasher = opts.sha256.as_ref().map(|_| {
        let mut h = Sha256::new();
        h.update(head);
        h.update(header);
        h
    });
    let needed: Vec<&SrcTensor> = if hasher.is_some() {
        let mut all: Vec<&SrcTensor> = tensors.iter().collect();
        all.sort_by_key(|t| t.offset);
        all
    } else {
        plan.sources()
    };
    let file_end = tensors.iter().map(|t| t.offset + (t.numel() * t.dtype.size()) as u64).max().unwrap_or(data_start);
    let ranges = ranges(&needed, data_start, file_end, opts.range_bytes.max(1), hasher.is_some());
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let mut read = 0u64;
    for r in &ranges {
        let bytes = read_exact(src, r.start, r.end).await?;
        if let Some(h) = hasher.as_mut() {
            h.update(&bytes);
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
            asm.take(t, &bytes[at..at + len])?;
        }
        read += r.end - r.start;
        on_progress(read, total);
    }
    check_digest(&file, hasher, &opts.sha256)?;
    Ok(asm)
}

/// Byte ranges over whole zip entries (indices into `zip.entries`): only the needed entries, an entry joining the
/// range before it when it starts where that one ends (so a skipped entry is never read); or, with `contiguous`,
/// every entry from byte 0 to the central directory.
fn zip_ranges(zip: &TorchZip, needed: &[bool], max: u64, contiguous: bool) -> Vec<(u64, u64, Vec<usize>)> {
    let mut out: Vec<(u64, u64, Vec<usize>)> = vec![];
    let mut cursor = 0;
    for (i, e) in zip.entries.iter().enumerate() {
        if !contiguous && !needed[i] {
            continue;
        }
        match out.last_mut() {
            Some(r) if r.1 == e.header && e.end - r.0 <= max => {
                r.1 = e.end;
                r.2.push(i);
            }
            _ => out.push((if contiguous { cursor } else { e.header }, e.end, vec![i])),
        }
        cursor = e.end;
    }
    if contiguous {
        match out.last_mut() {
            Some(r) => r.1 = r.1.max(zip.central),
            None => out.push((0, zip.central, vec![])),
        }
    }
    out
}

/// Reads the storages of the needed tensors of a torch zip, one range of whole entries at a time, each entry's local
/// header parsed from the range that holds its data.
async fn read_zip<'p, R: RangeSource, F: FnMut(&str, &[usize], &[u8]) -> Result<()>>(
    src: &R,
    zip: &TorchZip,
    plan: &'p Plan,
    opts: &SingleOptions,
    mut asm: Assembler<'p, F>,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<Assembler<'p, F>> {
    let file = src.describe();
    let mut by_entry: HashMap<usize, Vec<&SrcTensor>> = HashMap::new();
    for t in plan.sources() {
        by_entry.entry(t.storage.parse().expect("an entry index")).or_default().push(t);
    }
    let needed: Vec<bool> = (0..zip.entries.len()).map(|i| by_entry.contains_key(&i)).collect();
    let mut hasher = opts.sha256.as_ref().map(|_| Sha256::new());
    let ranges = zip_ranges(zip, &needed, opts.range_bytes.max(1), hasher.is_some());
    let mut total: u64 = ranges.iter().map(|r| r.1 - r.0).sum();
    if hasher.is_some() {
        total += zip.size - zip.central;
    }
    let mut read = 0u64;
    for (start, end, entries) in &ranges {
        let bytes = read_exact(src, *start, *end).await?;
        if let Some(h) = hasher.as_mut() {
            h.update(&bytes);
        }
        for i in entries.iter().filter(|&&i| needed[i]) {
            let e = &zip.entries[*i];
            let span = &bytes[(e.header - start) as usize..(e.end - start) as usize];
            let at = torchzip::data_offset(&file, e, span)?;
            let data = &span[at..at + e.size as usize];
            for t in &by_entry[i] {
                let es = t.dtype.size();
                let from = t.offset as usize * es; // checked against the entry's size when the zip was opened
                asm.take(t, &data[from..from + t.numel() * es])?;
            }
        }
        read += end - start;
        on_progress(read, total);
    }
    if let Some(h) = hasher.as_mut() {
        h.update(&read_exact(src, zip.central, zip.size).await?);
        on_progress(total, total);
    }
    check_digest(&file, hasher, &opts.sha256)?;
    Ok(asm)
}

/// A file in memory (tests, or bytes the embedding page already holds), with an optional config.json.
pub struct MemoryRange {
    pub name: String,
    pub bytes: Vec<u8>,
    pub config_json: Option<Vec<u8>>,
}

impl RangeSource for MemoryRange {
    fn describe(&self) -> String {
        self.name.clone()
    }
    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.config_json.clone())
    }
    async fn size(&self) -> Result<u64> {
        Ok(self.bytes.len() as u64)
    }
    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let len = self.bytes.len() as u64;
        if start > end || end > len {
            return Err(Error::format(
                &self.name,
                format!("bytes {start}..{end} are past its end ({len} bytes); the file is truncated"),
            ));
        }
        Ok(self.bytes[start as usize..end as usize].to_vec())
    }
}

/// A file on disk.
#[cfg(not(target_arch = "wasm32"))]
pub struct FileRange(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl RangeSource for FileRange {
    fn describe(&self) -> String {
        self.0.display().to_string()
    }
    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        match self.0.parent().map(|d| d.join("config.json")).filter(|p| p.is_file()) {
            Some(p) => std::fs::read(&p).map(Some).map_err(|e| Error::io(&p, e)),
            None => Ok(None),
        }
    }
    async fn size(&self) -> Result<u64> {
        std::fs::metadata(&self.0).map(|m| m.len()).map_err(|e| Error::io(&self.0, e))
    }
    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.0).map_err(|e| Error::io(&self.0, e))?;
        let len = f.metadata().map_err(|e| Error::io(&self.0, e))?.len();
        if start > end || end > len {
            return Err(Error::format(
                self.describe(),
                format!("bytes {start}..{end} are past its end ({len} bytes); the file is truncated"),
            ));
        }
        let mut buf = vec![0u8; (end - start) as usize];
        f.seek(SeekFrom::Start(start)).and_then(|_| f.read_exact(&mut buf)).map_err(|e| Error::io(&self.0, e))?;
        Ok(buf)
    }
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
