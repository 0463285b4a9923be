//! `.npy` input and output for the CLI (through `npyz`): numeric arrays in, f32 arrays out, with messages that name
//! the file.

#![cfg(not(target_arch = "wasm32"))]

use crate::error::{Error, Result};
use std::path::Path;

/// An array read from a `.npy` file.
#[derive(Debug, Clone)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

type Npy<'a> = npyz::NpyFile<&'a [u8]>;

fn open<'a>(name: &str, bytes: &'a [u8]) -> Result<(Npy<'a>, String)> {
    check_shape(name, bytes)?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| Error::format(name, format!("not a .npy file ({e})")))?;
    if npy.order() == npyz::Order::Fortran && npy.shape().len() > 1 {
        return Err(Error::format(name, "is in Fortran order; save it with np.ascontiguousarray"));
    }
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(Error::format(name, "holds a structured array; expected plain numbers"));
    };
    Ok((npy, ts.to_string()))
}

/// Refuses a header whose shape holds more elements than the file has bytes, or whose dimensions multiply past u64
/// (npyz multiplies them without checking for overflow). What is not a readable header is left to npyz.
fn check_shape(name: &str, bytes: &[u8]) -> Result<()> {
    let (start, len): (usize, usize) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        Some(2 | 3) if bytes.len() >= 12 => {
            (12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize)
        }
        _ => return Ok(()),
    };
    let Some(header) = bytes.get(start..start.saturating_add(len)).and_then(|h| std::str::from_utf8(h).ok()) else {
        return Ok(());
    };
    let Some(tuple) = header.split_once("'shape'").and_then(|(_, rest)| rest.split_once('(')) else {
        return Ok(());
    };
    let Some((dims, _)) = tuple.1.split_once(')') else {
        return Ok(());
    };
    let mut dims_read = vec![];
    for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(d) = d.parse::<u64>() else {
            return Ok(());
        };
        dims_read.push(d);
    }
    // npyz's strides multiply the dimensions after each one, so the product must fit with the zeros left out too.
    let nonzero = dims_read.iter().filter(|&&d| d > 0).try_fold(1u64, |c, &d| c.checked_mul(d));
    let count = nonzero.map(|n| if dims_read.contains(&0) { 0 } else { n });
    let data = (bytes.len() - start - len) as u64;
    match count {
        Some(n) if n <= data => Ok(()),
        _ => Err(Error::format(
            name,
            format!("its header's shape ({}) holds more values than the file's {data} bytes of data", dims.trim()),
        )),
    }
}

fn read_as<T: npyz::Deserialize, U>(npy: Npy, name: &str, f: impl Fn(T) -> U) -> Result<Array<U>> {
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec::<T>().map_err(|e| Error::format(name, format!("unreadable data ({e})")))?;
    Ok(Array { shape, data: data.into_iter().map(f).collect() })
}

/// Reads any float or integer array as f32.
pub fn read_f32(path: &Path) -> Result<Array<f32>> {
    parse_f32(&path.display().to_string(), &std::fs::read(path).map_err(|e| Error::io(path, e))?)
}

/// Reads an integer array (class labels).
pub fn read_int(path: &Path) -> Result<Array<i64>> {
    parse_int(&path.display().to_string(), &std::fs::read(path).map_err(|e| Error::io(path, e))?)
}

/// [`read_f32`] from the bytes of a `.npy` file (`name` is what messages call it).
pub fn parse_f32(name: &str, bytes: &[u8]) -> Result<Array<f32>> {
    let (npy, ts) = open(name, bytes)?;
    match ts.trim_start_matches(['<', '|', '=']) {
        "f4" => read_as::<f32, _>(npy, name, |v| v),
        "f8" => read_as::<f64, _>(npy, name, |v| v as f32),
        "i8" => read_as::<i64, _>(npy, name, |v| v as f32),
        "i4" => read_as::<i32, _>(npy, name, |v| v as f32),
        "i2" => read_as::<i16, _>(npy, name, |v| v as f32),
        "u1" => read_as::<u8, _>(npy, name, |v| v as f32),
        other => Err(Error::format(name, format!("dtype {other} is not a little-endian float or integer type"))),
    }
}

/// [`read_int`] from the bytes of a `.npy` file.
pub fn parse_int(name: &str, bytes: &[u8]) -> Result<Array<i64>> {
    let (npy, ts) = open(name, bytes)?;
    match ts.trim_start_matches(['<', '|', '=']) {
        "i8" => read_as::<i64, _>(npy, name, |v| v),
        "i4" => read_as::<i32, _>(npy, name, i64::from),
        "i2" => read_as::<i16, _>(npy, name, i64::from),
        "u1" => read_as::<u8, _>(npy, name, i64::from),
        "u4" => read_as::<u32, _>(npy, name, i64::from),
        "u8" => read_as::<u64, _>(npy, name, |v| v.min(i64::MAX as u64) as i64),
        other => Err(Error::format(name, format!("dtype {other}: expected integers (int32 or int64)"))),
    }
}

/// Writes an f32 array.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    use npyz::WriterBuilder;
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let io = |e: std::io::Error| Error::io(path, e);
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(f))
        .begin_nd()
        .map_err(io)?;
    w.extend(data.iter().copied()).map_err(io)?;
    w.finish().map_err(io)
}
