//! PyTorch zip checkpoints (`torch.save`: the Hub's `diffusion_pytorch_model.bin`, the release's `.pt`), parsed from
//! the few byte ranges a reader fetches ([`open_zip`] and [`read_needed`] drive the reads), the file never held whole: the end
//! of the central directory is found in the last 4 KiB (zip64 too: the official DiT-XL/2 transformer is 3 GB), then
//! the central directory, then `<dir>/data.pkl`, which the safe pickle reader (`weights::pickle`) turns into a tensor
//! list; each storage (`<dir>/data/<key>`, stored uncompressed) is read with its local header in the same range.
//! Every size and offset is checked against the file: a truncated file or a lying header is a `Format` error.
//!
//! Plain functions over bytes, so the fuzz tests reach them without a file.

use super::input::SrcTensor;
use super::pickle::checkpoint_tensors;
use super::range::{check_digest, read_exact, RangeSource};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The first bytes of a zip file (a local file header).
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// A zip record: its signature (as read little-endian) and the length of its fixed part.
struct Record {
    sig: u32,
    len: usize,
}
const LOCAL: Record = Record { sig: 0x0403_4b50, len: 30 };
const CENTRAL: Record = Record { sig: 0x0201_4b50, len: 46 };
const EOCD: Record = Record { sig: 0x0605_4b50, len: 22 };
/// Zip64's end record and the locator that points to it (both before the plain end record).
const ZIP64_EOCD: Record = Record { sig: 0x0606_4b50, len: 56 };
const ZIP64_LOCATOR: Record = Record { sig: 0x0706_4b50, len: 20 };
/// Bytes of the zip64 end-of-central-directory record.
pub const ZIP64_EOCD_LEN: u64 = ZIP64_EOCD.len as u64;
/// The end records lie in the last `TAIL` bytes (a zip comment is at most 65535 bytes).
pub const TAIL: u64 = (EOCD.len + 65535 + ZIP64_LOCATOR.len) as u64;
/// The bytes read first at the end of the file: torch.save writes no zip comment, so its end records are there.
pub const FIRST_TAIL: u64 = 4096;
/// Largest central directory and `data.pkl` accepted (DiT-XL/2's are a few hundred KB).
const MAX_CENTRAL: u64 = 64 << 20;
const MAX_PICKLE: u64 = 256 << 20;

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where the central directory is, from the end records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CentralDir {
    pub entries: u64,
    pub offset: u64,
    pub size: u64,
}

/// What the end-of-central-directory record says: the directory itself, or (zip64) where the zip64 end record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndRecord {
    Plain(CentralDir),
    /// The zip64 end record's offset in the file; the end record proper starts at `eocd`.
    Zip64 {
        record: u64,
        eocd: u64,
    },
}

/// Finds the end records in `tail`, the last bytes of a file of `size` bytes.
pub fn parse_end(file: &str, tail: &[u8], size: u64) -> Result<EndRecord> {
    let bad = |m: &str| Error::format(file, m.to_string());
    let tail_start = size.checked_sub(tail.len() as u64).ok_or_else(|| bad("tail longer than the file"))?;
    // The last signature whose comment length reaches exactly the end of the file.
    let mut at = None;
    let mut i = tail.len().checked_sub(EOCD.len);
    while let Some(p) = i {
        if u32le(tail, p) == EOCD.sig && p + EOCD.len + u16le(tail, p + 20) as usize == tail.len() {
            at = Some(p);
            break;
        }
        i = p.checked_sub(1);
    }
    let Some(p) = at else {
        return Err(bad(
            "not a zip archive: no end of central directory in its last bytes; the file is truncated or is not a \
             PyTorch checkpoint",
        ));
    };
    let eocd = tail_start + p as u64;
    if p >= ZIP64_LOCATOR.len && u32le(tail, p - ZIP64_LOCATOR.len) == ZIP64_LOCATOR.sig {
        let l = p - ZIP64_LOCATOR.len;
        let record = u64le(tail, l + 8);
        if record.checked_add(ZIP64_EOCD_LEN).is_none_or(|e| e > eocd - ZIP64_LOCATOR.len as u64) {
            return Err(bad("the zip64 end record lies outside the file; the file is corrupt"));
        }
        return Ok(EndRecord::Zip64 { record, eocd });
    }
    let dir = CentralDir {
        entries: u16le(tail, p + 10) as u64,
        size: u32le(tail, p + 12) as u64,
        offset: u32le(tail, p + 16) as u64,
    };
    check_dir(file, dir, eocd)?;
    Ok(EndRecord::Plain(dir))
}

/// Reads the zip64 end record (56 bytes) that ends before `eocd`.
pub fn parse_zip64_end(file: &str, record: &[u8], eocd: u64) -> Result<CentralDir> {
    if record.len() < ZIP64_EOCD.len || u32le(record, 0) != ZIP64_EOCD.sig {
        return Err(Error::format(file, "the zip64 end record is missing; the file is corrupt"));
    }
    let dir = CentralDir { entries: u64le(record, 32), size: u64le(record, 40), offset: u64le(record, 48) };
    check_dir(file, dir, eocd)?;
    Ok(dir)
}

fn check_dir(file: &str, d: CentralDir, end: u64) -> Result<()> {
    let fits = d.offset.checked_add(d.size).is_some_and(|e| e <= end);
    if !fits || d.size > MAX_CENTRAL || d.entries > d.size / CENTRAL.len as u64 {
        return Err(Error::format(
            file,
            format!(
                "the zip's central directory ({} entries, {} bytes at {}) does not fit the file; it is truncated or \
                 corrupt",
                d.entries, d.size, d.offset
            ),
        ));
    }
    Ok(())
}

/// One file in the zip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// Offset of its local header.
    pub header: u64,
    /// Bytes of data (stored: compressed and uncompressed sizes agree).
    pub size: u64,
    /// Where the next entry's local header (or the central directory) starts: its header and data lie before this.
    pub end: u64,
}

/// Parses the central directory (`dir.entries` records) into entries sorted by offset, each with its `end`.
/// Compressed entries, overlapping entries and entries past the directory are errors.
pub fn parse_central(file: &str, bytes: &[u8], dir: CentralDir) -> Result<Vec<Entry>> {
    let bad = |m: String| Error::format(file, m);
    let mut out = vec![];
    let mut p = 0usize;
    for _ in 0..dir.entries {
        if p + CENTRAL.len > bytes.len() || u32le(bytes, p) != CENTRAL.sig {
            return Err(bad("the zip's central directory is cut short or corrupt".into()));
        }
        let method = u16le(bytes, p + 10);
        let mut csize = u32le(bytes, p + 20) as u64;
        let mut usize_ = u32le(bytes, p + 24) as u64;
        let (nl, el, cl) =
            (u16le(bytes, p + 28) as usize, u16le(bytes, p + 30) as usize, u16le(bytes, p + 32) as usize);
        let mut header = u32le(bytes, p + 42) as u64;
        let name_end = p + CENTRAL.len + nl;
        let next = name_end + el + cl;
        if next > bytes.len() {
            return Err(bad("the zip's central directory is cut short or corrupt".into()));
        }
        let name = String::from_utf8_lossy(&bytes[p + CENTRAL.len..name_end]).into_owned();
        // The zip64 extra field holds, in order, whichever of the three values are 0xFFFFFFFF here.
        let mut extra = &bytes[name_end..name_end + el];
        while extra.len() >= 4 {
            let (id, len) = (u16le(extra, 0), u16le(extra, 2) as usize);
            let body = extra.get(4..4 + len).ok_or_else(|| bad(format!("`{name}`: a zip extra field is cut short")))?;
            if id == 1 {
                let mut vals = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
                for v in [&mut usize_, &mut csize, &mut header] {
                    if *v == u32::MAX as u64 {
                        *v = vals.next().ok_or_else(|| bad(format!("`{name}`: the zip64 field is cut short")))?;
                    }
                }
            }
            extra = &extra[4 + len..];
        }
        if method != 0 || csize != usize_ {
            return Err(bad(format!(
                "`{name}` is compressed (method {method}); PyTorch checkpoints store their entries uncompressed"
            )));
        }
        out.push(Entry { name, header, size: csize, end: 0 });
        p = next;
    }
    out.sort_by_key(|e| e.header);
    for i in 0..out.len() {
        let end = out.get(i + 1).map_or(dir.offset, |n| n.header);
        let e = &mut out[i];
        let min = e.header.checked_add((LOCAL.len + e.name.len()) as u64).and_then(|x| x.checked_add(e.size));
        if min.is_none_or(|m| m > end) {
            return Err(bad(format!(
                "zip entry `{}` ({} bytes at {}) overlaps the next one; the file is corrupt",
                e.name, e.size, e.header
            )));
        }
        e.end = end;
    }
    Ok(out)
}

/// The offset of an entry's data within `span`, the bytes `[entry.header, entry.end)`, from its local header.
pub fn data_offset(file: &str, entry: &Entry, span: &[u8]) -> Result<usize> {
    let bad = || Error::format(file, format!("zip entry `{}`: its local header is corrupt", entry.name));
    if span.len() < LOCAL.len || u32le(span, 0) != LOCAL.sig {
        return Err(bad());
    }
    let (nl, el) = (u16le(span, 26) as usize, u16le(span, 28) as usize);
    let start = LOCAL.len + nl + el;
    if span.get(LOCAL.len..LOCAL.len + nl) != Some(entry.name.as_bytes())
        || start as u64 + entry.size > span.len() as u64
    {
        return Err(bad());
    }
    Ok(start)
}

/// The tensors of `data.pkl` (`pkl`, the data of entry `pkl_entry`), each checked to lie inside its storage entry;
/// a tensor's `storage` becomes the index of that entry in `entries`.
pub fn list_tensors(file: &str, entries: &[Entry], pkl_entry: usize, pkl: &[u8]) -> Result<Vec<SrcTensor>> {
    let prefix = entries[pkl_entry].name.trim_end_matches("data.pkl");
    let mut tensors = checkpoint_tensors(file, pkl)?;
    for t in &mut tensors {
        let name = format!("{prefix}data/{}", t.storage);
        let i = entries.iter().position(|e| e.name == name).ok_or_else(|| {
            Error::format(file, format!("tensor `{}`: its storage `{name}` is not in the zip", t.name))
        })?;
        let es = t.dtype.size() as u64;
        let numel = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let end = t.offset.checked_mul(es).and_then(|s| s.checked_add(numel?.checked_mul(es)?));
        if end.is_none_or(|e| e > entries[i].size) {
            return Err(Error::format(
                file,
                format!(
                    "tensor `{}` ({:?}, {:?} from element {}) does not fit its storage `{name}` of {} bytes",
                    t.name, t.dtype, t.shape, t.offset, entries[i].size
                ),
            ));
        }
        t.storage = i.to_string();
    }
    Ok(tensors)
}

/// The entry of `<dir>/data.pkl`, the checkpoint's pickle.
pub fn pickle_entry(file: &str, entries: &[Entry]) -> Result<usize> {
    let i = entries
        .iter()
        .position(|e| e.name.ends_with("/data.pkl") && e.name.matches('/').count() == 1)
        .ok_or_else(|| Error::format(file, "not a PyTorch checkpoint (no <dir>/data.pkl in the zip)"))?;
    if entries[i].size > MAX_PICKLE {
        return Err(Error::format(file, format!("data.pkl has {} bytes, over {MAX_PICKLE}", entries[i].size)));
    }
    Ok(i)
}

/// A torch zip checkpoint: its entries, tensors and where each tensor's storage is.
#[derive(Clone, Debug)]
pub struct TorchZip {
    pub size: u64,
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// The tensors of `data.pkl`; `storage` is the index in `entries` of each one's storage, as a string.
    pub tensors: Vec<SrcTensor>,
    /// Where the central directory starts (entries lie before it).
    pub central: u64,
}

impl TorchZip {
    /// The entry holding a tensor's storage.
    pub fn entry_of(&self, t: &SrcTensor) -> &Entry {
        &self.entries[t.storage.parse::<usize>().expect("storage set by open")]
    }
}

/// Opens a PyTorch zip checkpoint of `size` bytes (see `weights::torchzip`): the end records, the central directory
/// and `data.pkl` in three or four reads, and its tensor list.
pub async fn open_zip<R: RangeSource>(src: &R, size: u64) -> Result<TorchZip> {
    let file = src.describe();
    // torch.save writes no zip comment: the end records are in the last few KB (which hold none of the storages),
    // else a zip comment hides them further up.
    let mut tail_start = size.saturating_sub(FIRST_TAIL);
    let mut tail = read_exact(src, tail_start, size).await?;
    let end = match parse_end(&file, &tail, size) {
        Ok(end) => end,
        Err(_) if tail_start > 0 => {
            tail_start = size.saturating_sub(TAIL);
            tail = read_exact(src, tail_start, size).await?;
            parse_end(&file, &tail, size)?
        }
        Err(e) => return Err(e),
    };
    let dir = match end {
        EndRecord::Plain(d) => d,
        EndRecord::Zip64 { record, eocd } => {
            let len = ZIP64_EOCD_LEN;
            let bytes = match record.checked_sub(tail_start) {
                Some(at) => tail[at as usize..(at + len) as usize].to_vec(),
                None => read_exact(src, record, record + len).await?,
            };
            parse_zip64_end(&file, &bytes, eocd)?
        }
    };
    let central = match dir.offset.checked_sub(tail_start) {
        Some(at) => tail[at as usize..(at + dir.size) as usize].to_vec(),
        None => read_exact(src, dir.offset, dir.offset + dir.size).await?,
    };
    let entries = parse_central(&file, &central, dir)?;
    let pkl = pickle_entry(&file, &entries)?;
    let e = &entries[pkl];
    let span = read_exact(src, e.header, e.end).await?;
    let at = data_offset(&file, e, &span)?;
    let tensors = list_tensors(&file, &entries, pkl, &span[at..at + e.size as usize])?;
    Ok(TorchZip { size, entries, tensors, central: dir.offset })
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

/// How a reader reads a file: bytes per range, the expected sha256 of the whole file (then every byte is read and
/// checked, else only the needed ones), and what it calls on each source tensor and after each range.
pub struct Reading<'a> {
    pub range_bytes: u64,
    pub sha256: &'a Option<String>,
    /// Called with each needed source tensor and its raw bytes.
    pub on_source: &'a mut dyn FnMut(&SrcTensor, &[u8]) -> Result<()>,
    /// Called with (bytes read, bytes to read) after each range.
    pub on_progress: &'a mut dyn FnMut(u64, u64),
}

/// Reads the storages of the `needed` source tensors of a torch zip, one range of whole entries at a time, each
/// entry's local header parsed from the range that holds its data.
pub async fn read_needed<R: RangeSource>(
    src: &R,
    zip: &TorchZip,
    needed: &[&SrcTensor],
    how: Reading<'_>,
) -> Result<()> {
    let file = src.describe();
    let mut by_entry: HashMap<usize, Vec<&SrcTensor>> = HashMap::new();
    for &t in needed {
        by_entry.entry(t.storage.parse().expect("an entry index")).or_default().push(t);
    }
    let needed: Vec<bool> = (0..zip.entries.len()).map(|i| by_entry.contains_key(&i)).collect();
    let mut hasher = how.sha256.as_ref().map(|_| Sha256::new());
    let ranges = zip_ranges(zip, &needed, how.range_bytes.max(1), hasher.is_some());
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
            let at = data_offset(&file, e, span)?;
            let data = &span[at..at + e.size as usize];
            for t in &by_entry[i] {
                let es = t.dtype.size();
                let from = t.offset as usize * es; // checked against the entry's size when the zip was opened
                (how.on_source)(t, &data[from..from + t.numel() * es])?;
            }
        }
        read += end - start;
        (how.on_progress)(read, total);
    }
    if let Some(h) = hasher.as_mut() {
        h.update(&read_exact(src, zip.central, zip.size).await?);
        (how.on_progress)(total, total);
    }
    check_digest(&file, hasher, how.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A central directory record as a zip64 writer makes it for an entry past 4 GiB: sizes and offset 0xFFFFFFFF,
    /// the values in a zip64 extra field.
    #[test]
    fn zip64_fields_of_a_central_record() {
        let name = b"archive/data/7";
        let mut extra = vec![1, 0, 24, 0];
        for v in [5_000_000_000u64, 5_000_000_000, 6_000_000_000] {
            extra.extend(v.to_le_bytes());
        }
        let mut rec = vec![];
        rec.extend(CENTRAL.sig.to_le_bytes());
        rec.extend([0u8; 6]); // versions, flags
        rec.extend([0u8; 2]); // method: stored
        rec.extend([0u8; 8]); // time, date, crc
        rec.extend([0xFF; 8]); // compressed, uncompressed size
        rec.extend((name.len() as u16).to_le_bytes());
        rec.extend((extra.len() as u16).to_le_bytes());
        rec.extend([0u8; 10]); // comment length, disk, attributes
        rec.extend([0xFF; 4]); // local header offset
        rec.extend(name);
        rec.extend(&extra);
        let dir = CentralDir { entries: 1, offset: 12_000_000_000, size: rec.len() as u64 };
        let e = parse_central("z", &rec, dir).unwrap();
        assert_eq!(
            e,
            [Entry { name: "archive/data/7".into(), header: 6_000_000_000, size: 5_000_000_000, end: 12_000_000_000 }]
        );
        // The same record claiming more data than lies before the directory.
        let short = CentralDir { offset: 9_000_000_000, ..dir };
        assert!(parse_central("z", &rec, short).unwrap_err().to_string().contains("overlaps"));
        // Cut inside the extra field.
        let cut = &rec[..rec.len() - 4];
        assert!(parse_central("z", cut, CentralDir { size: cut.len() as u64, ..dir }).is_err());
    }
}
