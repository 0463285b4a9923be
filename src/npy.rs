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

fn open(path: &Path) -> Result<(npyz::NpyFile<std::io::BufReader<std::fs::File>>, String)> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(f))
        .map_err(|e| Error::format(&name, format!("not a .npy file ({e})")))?;
    if npy.order() == npyz::Order::Fortran && npy.shape().len() > 1 {
        return Err(Error::format(&name, "is in Fortran order; save it with np.ascontiguousarray"));
    }
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(Error::format(&name, "holds a structured array; expected plain numbers"));
    };
    Ok((npy, ts.to_string()))
}

fn read_as<T: npyz::Deserialize, U>(
    npy: npyz::NpyFile<std::io::BufReader<std::fs::File>>,
    name: &str,
    f: impl Fn(T) -> U,
) -> Result<Array<U>> {
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec::<T>().map_err(|e| Error::format(name, format!("unreadable data ({e})")))?;
    Ok(Array { shape, data: data.into_iter().map(f).collect() })
}

/// Reads any float or integer array as f32.
pub fn read_f32(path: &Path) -> Result<Array<f32>> {
    let (npy, ts) = open(path)?;
    let name = path.display().to_string();
    match ts.trim_start_matches(['<', '|', '=']) {
        "f4" => read_as::<f32, _>(npy, &name, |v| v),
        "f8" => read_as::<f64, _>(npy, &name, |v| v as f32),
        "i8" => read_as::<i64, _>(npy, &name, |v| v as f32),
        "i4" => read_as::<i32, _>(npy, &name, |v| v as f32),
        "i2" => read_as::<i16, _>(npy, &name, |v| v as f32),
        "u1" => read_as::<u8, _>(npy, &name, |v| v as f32),
        other => Err(Error::format(&name, format!("dtype {other} is not a little-endian float or integer type"))),
    }
}

/// Reads an integer array (class labels).
pub fn read_int(path: &Path) -> Result<Array<i64>> {
    let (npy, ts) = open(path)?;
    let name = path.display().to_string();
    match ts.trim_start_matches(['<', '|', '=']) {
        "i8" => read_as::<i64, _>(npy, &name, |v| v),
        "i4" => read_as::<i32, _>(npy, &name, i64::from),
        "i2" => read_as::<i16, _>(npy, &name, i64::from),
        "u1" => read_as::<u8, _>(npy, &name, i64::from),
        "u4" => read_as::<u32, _>(npy, &name, i64::from),
        "u8" => read_as::<u64, _>(npy, &name, |v| v.min(i64::MAX as u64) as i64),
        other => Err(Error::format(&name, format!("dtype {other}: expected integers (int32 or int64)"))),
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
