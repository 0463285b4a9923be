//! Files read by byte ranges: the source every single-checkpoint reader takes (`single`, `torchzip`), with a file on
//! disk and bytes in memory here and HTTP Range requests in the browser (`url`).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

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

/// One range, checked to be exactly the bytes asked for.
pub async fn read_exact<R: RangeSource>(src: &R, start: u64, end: u64) -> Result<Vec<u8>> {
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

/// Checks the digest of everything hashed against the expected one.
pub fn check_digest(file: &str, hasher: Option<Sha256>, expected: &Option<String>) -> Result<()> {
    if let (Some(h), Some(expected)) = (hasher, expected) {
        let actual = hex::encode(h.finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::Integrity { file: file.to_string(), expected: expected.clone(), actual });
        }
    }
    Ok(())
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

#[cfg(not(target_arch = "wasm32"))]
pub use file::FileRange;

#[cfg(not(target_arch = "wasm32"))]
mod file {
    use super::RangeSource;
    use crate::error::{Error, Result};

    /// A file on disk.
    pub struct FileRange(pub std::path::PathBuf);

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
}
