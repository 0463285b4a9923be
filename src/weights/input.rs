//! Checkpoint inputs for conversion: tensors listed from a header, read one at a time and rounded to fp16.

use crate::error::{Error, Result};
use half::{bf16, f16};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest safetensors header accepted (the format's own bound).
pub const MAX_HEADER: u64 = 100 << 20;

/// Element types a checkpoint may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrcDType {
    F16,
    BF16,
    F32,
    F64,
}

impl SrcDType {
    pub fn size(self) -> usize {
        match self {
            SrcDType::F16 | SrcDType::BF16 => 2,
            SrcDType::F32 => 4,
            SrcDType::F64 => 8,
        }
    }
}

/// One tensor of an input checkpoint.
#[derive(Clone, Debug)]
pub struct SrcTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: SrcDType,
    /// Absolute byte offset of the data in the file (safetensors), or element offset in the storage (`.pt`).
    pub offset: u64,
    /// The zip entry holding the data (`.pt` checkpoints); empty for safetensors.
    pub storage: String,
}

impl SrcTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Converts little-endian raw values to f32.
pub fn decode_f32(name: &str, dtype: SrcDType, raw: &[u8]) -> Vec<f32> {
    let _ = name;
    match dtype {
        SrcDType::F16 => raw.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        SrcDType::BF16 => raw.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        SrcDType::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        SrcDType::F64 => {
            raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
        }
    }
}

/// Rounds f32 values to fp16 (nearest, ties to even). A finite value beyond the fp16 range is an error rather than a
/// silent infinity.
pub fn to_f16(name: &str, values: &[f32]) -> Result<Vec<f16>> {
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        let h = f16::from_f32(v);
        if h.is_infinite() && v.is_finite() {
            return Err(Error::format(
                name,
                format!("value {v} is beyond the fp16 range (65504); this checkpoint cannot be stored in fp16"),
            ));
        }
        out.push(h);
    }
    Ok(out)
}

/// A `.safetensors` file on disk, read tensor by tensor (the file is never loaded whole).
pub struct SafetensorsFile {
    pub path: PathBuf,
    file: File,
    pub tensors: Vec<SrcTensor>,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|_| Error::format(&name, "not a safetensors file (shorter than its 8-byte header length)"))?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER || n + 8 > len {
            return Err(Error::format(
                &name,
                format!("not a safetensors file (header length {n} for a file of {len} bytes)"),
            ));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
        let tensors = parse_header(&name, &header, len - 8 - n)?
            .into_iter()
            .map(|mut t| {
                t.offset += 8 + n;
                t
            })
            .collect();
        Ok(SafetensorsFile { path: path.to_path_buf(), file, tensors })
    }

    /// Reads one tensor as f32 values.
    pub fn read_f32(&mut self, t: &SrcTensor) -> Result<Vec<f32>> {
        let mut raw = vec![0u8; t.numel() * t.dtype.size()];
        self.file
            .seek(SeekFrom::Start(t.offset))
            .and_then(|_| self.file.read_exact(&mut raw))
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(decode_f32(&t.name, t.dtype, &raw))
    }
}

/// Parses a safetensors JSON header into tensors with data offsets relative to the data section, checking dtypes,
/// shapes against byte ranges, and that every range lies inside `data_len`.
pub fn parse_header(file: &str, header: &[u8], data_len: u64) -> Result<Vec<SrcTensor>> {
    let bad = |m: String| Error::format(file, m);
    let meta: safetensors::tensor::Metadata =
        serde_json::from_slice(header).map_err(|e| bad(format!("malformed safetensors header ({e})")))?;
    let mut out = vec![];
    for name in meta.offset_keys() {
        let info = meta.info(&name).ok_or_else(|| bad(format!("tensor `{name}` vanished from the header")))?;
        let dtype = match info.dtype {
            safetensors::Dtype::F16 => SrcDType::F16,
            safetensors::Dtype::BF16 => SrcDType::BF16,
            safetensors::Dtype::F32 => SrcDType::F32,
            safetensors::Dtype::F64 => SrcDType::F64,
            other => {
                return Err(bad(format!(
                    "tensor `{name}` has dtype {other:?}; only F16, BF16, F32 and F64 are weights"
                )))
            }
        };
        let (start, end) = info.data_offsets;
        let numel = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let expected = numel.and_then(|n| n.checked_mul(dtype.size()));
        if expected != Some(end.wrapping_sub(start)) || end < start || end as u64 > data_len {
            return Err(bad(format!(
                "tensor `{name}`: byte range {start}..{end} does not fit shape {:?} of {dtype:?} in {data_len} data bytes; the file is truncated or corrupt",
                info.shape
            )));
        }
        out.push(SrcTensor { name, shape: info.shape.clone(), dtype, offset: start as u64, storage: String::new() });
    }
    Ok(out)
}
