//! PyTorch zip checkpoints (`torch.save`: the Hub's `diffusion_pytorch_model.bin`, the release's `.pt`), parsed from
//! the few byte ranges a reader fetches (`weights::single::open_zip` drives it), the file never held whole: the end
//! of the central directory is found in the last 4 KiB (zip64 too: the official DiT-XL/2 transformer is 3 GB), then
//! the central directory, then `<dir>/data.pkl`, which the safe pickle reader (`weights::pickle`) turns into a tensor
//! list; each storage (`<dir>/data/<key>`, stored uncompressed) is read with its local header in the same range.
//! Every size and offset is checked against the file: a truncated file or a lying header is a `Format` error.
//!
//! Plain functions over bytes, so the fuzz tests reach them without a file.

use super::input::SrcTensor;
use super::pickle::checkpoint_tensors;
use crate::error::{Error, Result};

/// The first bytes of a zip file (a local file header).
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_LEN: u64 = 20;
/// Bytes of the zip64 end-of-central-directory record.
pub const ZIP64_EOCD_LEN: u64 = 56;
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
/// The end records lie in the last `TAIL` bytes (a zip comment is at most 65535 bytes).
pub const TAIL: u64 = EOCD_LEN + 65535 + ZIP64_LOCATOR_LEN;
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
    let mut i = tail.len().checked_sub(EOCD_LEN as usize);
    while let Some(p) = i {
        if u32le(tail, p) == EOCD_SIG && p + EOCD_LEN as usize + u16le(tail, p + 20) as usize == tail.len() {
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
    if p >= ZIP64_LOCATOR_LEN as usize && u32le(tail, p - ZIP64_LOCATOR_LEN as usize) == ZIP64_LOCATOR_SIG {
        let l = p - ZIP64_LOCATOR_LEN as usize;
        let record = u64le(tail, l + 8);
        if record.checked_add(ZIP64_EOCD_LEN).is_none_or(|e| e > eocd - ZIP64_LOCATOR_LEN) {
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
    if record.len() < ZIP64_EOCD_LEN as usize || u32le(record, 0) != ZIP64_EOCD_SIG {
        return Err(Error::format(file, "the zip64 end record is missing; the file is corrupt"));
    }
    let dir = CentralDir { entries: u64le(record, 32), size: u64le(record, 40), offset: u64le(record, 48) };
    check_dir(file, dir, eocd)?;
    Ok(dir)
}

fn check_dir(file: &str, d: CentralDir, end: u64) -> Result<()> {
    let fits = d.offset.checked_add(d.size).is_some_and(|e| e <= end);
    if !fits || d.size > MAX_CENTRAL || d.entries > d.size / CENTRAL_LEN as u64 {
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
        if p + CENTRAL_LEN > bytes.len() || u32le(bytes, p) != CENTRAL_SIG {
            return Err(bad("the zip's central directory is cut short or corrupt".into()));
        }
        let method = u16le(bytes, p + 10);
        let mut csize = u32le(bytes, p + 20) as u64;
        let mut usize_ = u32le(bytes, p + 24) as u64;
        let (nl, el, cl) =
            (u16le(bytes, p + 28) as usize, u16le(bytes, p + 30) as usize, u16le(bytes, p + 32) as usize);
        let mut header = u32le(bytes, p + 42) as u64;
        let name_end = p + CENTRAL_LEN + nl;
        let next = name_end + el + cl;
        if next > bytes.len() {
            return Err(bad("the zip's central directory is cut short or corrupt".into()));
        }
        let name = String::from_utf8_lossy(&bytes[p + CENTRAL_LEN..name_end]).into_owned();
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
        let min = e.header.checked_add((LOCAL_LEN + e.name.len()) as u64).and_then(|x| x.checked_add(e.size));
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
    if span.len() < LOCAL_LEN || u32le(span, 0) != LOCAL_SIG {
        return Err(bad());
    }
    let (nl, el) = (u16le(span, 26) as usize, u16le(span, 28) as usize);
    let start = LOCAL_LEN + nl + el;
    if span.get(LOCAL_LEN..LOCAL_LEN + nl) != Some(entry.name.as_bytes())
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
        rec.extend(CENTRAL_SIG.to_le_bytes());
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
