//! A safe reader for the pickle of PyTorch checkpoints (`torch.save`: a zip with `data.pkl` and one entry per storage;
//! the zip itself is read by `weights::torchzip`).
//!
//! The pickle is interpreted as data, never executed: the opcodes build plain values. The globals that rebuild tensors
//! (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, the float `torch.*Storage` types) and
//! `collections.OrderedDict` are evaluated as data; any other class or function that a training snapshot pickles
//! (its config objects, `argparse.Namespace`, a visualiser's state, integer or bool tensors) becomes an inert value that
//! is stepped over and never constructed or called. Globals that only code would name (`os.system`, `builtins.eval`,
//! `subprocess`, ...) are refused outright, with a message that says so: a checkpoint cannot run code here.

use super::input::{SrcDType, SrcTensor};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// A value built by the pickle machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An accepted global, not called yet.
    Global(&'static str),
    /// A storage reference from a persistent id: dtype and the zip entry key.
    Storage(SrcDType, String),
    Tensor {
        dtype: SrcDType,
        storage: String,
        offset: usize,
        shape: Vec<usize>,
    },
    /// An object that is kept as data and never constructed (argparse.Namespace).
    Opaque(&'static str),
    /// Any other class or function a checkpoint names (`module.name`): never called; what it would build is an
    /// [`Value::Object`].
    Class(String),
    /// What a [`Value::Class`] would have built: stepped over.
    Object(String),
    /// A storage or tensor of a type the models never read (integers, bools): stepped over.
    OtherStorage(String),
    OtherTensor(String),
}

/// Modules and builtins that only code would name: a checkpoint that names them is refused rather than stepped over.
fn refused_global(module: &str, name: &str) -> bool {
    const MODULES: [&str; 22] = [
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "shutil",
        "socket",
        "importlib",
        "runpy",
        "pty",
        "ctypes",
        "webbrowser",
        "code",
        "codeop",
        "marshal",
        "pickle",
        "_pickle",
        "shelve",
        "multiprocessing",
        "signal",
        "commands",
        "popen2",
    ];
    const BUILTINS: [&str; 14] = [
        "eval",
        "exec",
        "execfile",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "__import__",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
    ];
    let root = module.split('.').next().unwrap_or(module);
    MODULES.contains(&root) || (matches!(module, "builtins" | "__builtin__") && BUILTINS.contains(&name))
}

/// The value a GLOBAL names: an accepted global, an inert class, or a refusal.
fn global(file: &str, module: &str, name: &str) -> Result<Value> {
    if let Some(g) = allowed_global(module, name) {
        return Ok(Value::Global(g));
    }
    if refused_global(module, name) {
        return Err(Error::format(
            file,
            format!("refuses the pickle global `{module}.{name}`: only tensors and dicts are read from checkpoints"),
        ));
    }
    Ok(Value::Class(format!("{module}.{name}")))
}

/// The globals a checkpoint may name, mapped to what they become.
fn allowed_global(module: &str, name: &str) -> Option<&'static str> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => "OrderedDict",
        ("torch._utils", "_rebuild_tensor_v2") => "rebuild_tensor",
        ("torch._utils", "_rebuild_parameter") => "rebuild_parameter",
        ("torch", "FloatStorage") => "F32",
        ("torch", "HalfStorage") => "F16",
        ("torch", "BFloat16Storage") => "BF16",
        ("torch", "DoubleStorage") => "F64",
        ("argparse", "Namespace") => "Namespace",
        _ => return None,
    })
}

fn storage_dtype(g: &str) -> Option<SrcDType> {
    Some(match g {
        "F32" => SrcDType::F32,
        "F16" => SrcDType::F16,
        "BF16" => SrcDType::BF16,
        "F64" => SrcDType::F64,
        _ => return None,
    })
}

/// Runs the pickle in `data` (protocol 2 to 5) and returns the top value.
pub fn unpickle(file: &str, data: &[u8]) -> Result<Value> {
    let bad = |m: String| Error::format(file, m);
    let mut stack: Vec<Value> = vec![];
    let mut marks: Vec<usize> = vec![];
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let end = pos.checked_add(n).filter(|&e| e <= data.len()).ok_or_else(|| bad("truncated pickle".into()))?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let pop = |stack: &mut Vec<Value>| stack.pop().ok_or_else(|| bad("pickle stack underflow".into()));
    let pop_mark = |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>> {
        let m = marks.pop().ok_or_else(|| bad("pickle MARK missing".into()))?;
        if m > stack.len() {
            return Err(bad("pickle MARK past the stack".into()));
        }
        Ok(stack.split_off(m))
    };
    loop {
        let op = *take(&mut pos, 1)?.first().expect("one byte");
        match op {
            0x80 => {
                take(&mut pos, 1)?; // PROTO
            }
            0x95 => {
                take(&mut pos, 8)?; // FRAME
            }
            b'.' => break, // STOP
            b'(' => marks.push(stack.len()),
            b'}' => stack.push(Value::Dict(vec![])),
            b']' => stack.push(Value::List(vec![])),
            b')' => stack.push(Value::Tuple(vec![])),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'J' => stack.push(Value::Int(i32::from_le_bytes(take(&mut pos, 4)?.try_into().expect("4")) as i64)),
            b'K' => stack.push(Value::Int(take(&mut pos, 1)?[0] as i64)),
            b'M' => {
                let b = take(&mut pos, 2)?;
                stack.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64))
            }
            0x8a => {
                // LONG1
                let n = take(&mut pos, 1)?[0] as usize;
                let b = take(&mut pos, n)?;
                if n > 8 {
                    return Err(bad("integer wider than 64 bits".into()));
                }
                let mut v: i64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(take(&mut pos, 8)?.try_into().expect("8")))),
            b'X' | 0x8c | 0x8d => {
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let n = match op {
                    b'X' => u32le(take(&mut pos, 4)?) as usize,
                    0x8c => take(&mut pos, 1)?[0] as usize,
                    _ => u64::from_le_bytes(take(&mut pos, 8)?.try_into().expect("8")) as usize,
                };
                let s = std::str::from_utf8(take(&mut pos, n)?).map_err(|_| bad("invalid UTF-8 in pickle".into()))?;
                stack.push(Value::Str(s.to_string()));
            }
            b'B' | b'C' => {
                let n = if op == b'B' { u32le(take(&mut pos, 4)?) as usize } else { take(&mut pos, 1)?[0] as usize };
                stack.push(Value::Bytes(take(&mut pos, n)?.to_vec()));
            }
            b'q' => {
                let k = take(&mut pos, 1)?[0] as u32;
                memo.insert(k, stack.last().cloned().ok_or_else(|| bad("BINPUT on an empty stack".into()))?);
            }
            b'r' => {
                let k = u32le(take(&mut pos, 4)?);
                memo.insert(k, stack.last().cloned().ok_or_else(|| bad("LONG_BINPUT on an empty stack".into()))?);
            }
            0x94 => {
                let k = memo.len() as u32; // MEMOIZE
                memo.insert(k, stack.last().cloned().ok_or_else(|| bad("MEMOIZE on an empty stack".into()))?);
            }
            b'h' | b'j' => {
                let k = if op == b'h' { take(&mut pos, 1)?[0] as u32 } else { u32le(take(&mut pos, 4)?) };
                stack.push(memo.get(&k).cloned().ok_or_else(|| bad(format!("pickle memo {k} missing")))?);
            }
            b'c' => {
                // GLOBAL "module\nname\n"
                let mut line = || -> Result<String> {
                    let start = pos;
                    while pos < data.len() && data[pos] != b'\n' {
                        pos += 1;
                    }
                    if pos >= data.len() {
                        return Err(bad("pickle GLOBAL line runs past the end of the data".into()));
                    }
                    let s = String::from_utf8_lossy(&data[start..pos]).into_owned();
                    pos += 1;
                    Ok(s)
                };
                let (module, name) = (line()?, line()?);
                stack.push(global(file, &module, &name)?);
            }
            0x93 => {
                // STACK_GLOBAL
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(bad("STACK_GLOBAL without strings".into()));
                };
                stack.push(global(file, &module, &name)?);
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(bad("pickle stack underflow".into()));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err(bad("APPEND to a non-list".into())),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err(bad("APPENDS to a non-list".into())),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    _ => return Err(bad("SETITEM on a non-dict".into())),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                if items.len() % 2 != 0 {
                    return Err(bad("SETITEMS with an odd count".into()));
                }
                match stack.last_mut() {
                    Some(Value::Dict(d)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return Err(bad("SETITEMS on a non-dict".into())),
                }
            }
            b'Q' => {
                // BINPERSID: ('storage', storage_type, key, location, numel)
                let pid = pop(&mut stack)?;
                let Value::Tuple(t) = pid else { return Err(bad("persistent id is not a tuple".into())) };
                match t.as_slice() {
                    [Value::Str(tag), Value::Global(ty), key, ..] if tag == "storage" => {
                        let dtype = storage_dtype(ty)
                            .ok_or_else(|| bad(format!("storage type {ty} is not a float storage")))?;
                        let key = match key {
                            Value::Str(s) => s.clone(),
                            Value::Int(i) => i.to_string(),
                            _ => return Err(bad("storage key is not a string".into())),
                        };
                        stack.push(Value::Storage(dtype, key));
                    }
                    // An integer or bool storage (a step counter, a flag): never read.
                    [Value::Str(tag), Value::Class(ty), ..] if tag == "storage" => {
                        stack.push(Value::OtherStorage(ty.clone()))
                    }
                    _ => return Err(bad("unexpected persistent id".into())),
                }
            }
            b'R' => {
                // REDUCE: only the accepted callables, evaluated as data.
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                let Value::Tuple(args) = args else { return Err(bad("REDUCE arguments are not a tuple".into())) };
                let v = match f {
                    Value::Global("OrderedDict") => Value::Dict(vec![]),
                    Value::Global("rebuild_tensor") => match args.first() {
                        Some(Value::OtherStorage(ty)) => Value::OtherTensor(ty.clone()),
                        _ => rebuild_tensor(file, &args)?,
                    },
                    Value::Global("rebuild_parameter") => {
                        args.into_iter().next().ok_or_else(|| bad("empty parameter".into()))?
                    }
                    Value::Global("Namespace") => Value::Opaque("Namespace"),
                    Value::Class(c) | Value::Object(c) => Value::Object(c),
                    other => return Err(bad(format!("REDUCE of {other:?} is not allowed"))),
                };
                stack.push(v);
            }
            b'b' => {
                // BUILD: state for an object; only the inert ones take state (ignored).
                let _state = pop(&mut stack)?;
                match stack.last() {
                    Some(Value::Opaque(_) | Value::Dict(_) | Value::Tensor { .. } | Value::Object(_))
                    | Some(Value::OtherTensor(_)) => {}
                    _ => return Err(bad("BUILD on an object that is not allowed".into())),
                }
            }
            b'0' => {
                pop(&mut stack)?;
            }
            0x81 | 0x92 => {
                // NEWOBJ, NEWOBJ_EX (cls, args[, kwargs]): an inert object, never constructed.
                if op == 0x92 {
                    pop(&mut stack)?;
                }
                let _args = pop(&mut stack)?;
                match pop(&mut stack)? {
                    Value::Global("Namespace") => stack.push(Value::Opaque("Namespace")),
                    Value::Class(c) => stack.push(Value::Object(c)),
                    other => return Err(bad(format!("NEWOBJ of {other:?} is not allowed"))),
                }
            }
            0x8f => stack.push(Value::List(vec![])), // EMPTY_SET, kept as a list
            0x90 => {
                // ADDITEMS
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err(bad("ADDITEMS to a non-set".into())),
                }
            }
            0x91 => {
                // FROZENSET
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items));
            }
            0x8b => {
                // LONG4: an integer this wide is never a size; kept as an inert value.
                let n = u32le(take(&mut pos, 4)?) as usize;
                take(&mut pos, n)?;
                stack.push(Value::Object("int".into()));
            }
            0x8e | 0x96 => {
                // BINBYTES8, BYTEARRAY8
                let n = u64::from_le_bytes(take(&mut pos, 8)?.try_into().expect("8"));
                let n = usize::try_from(n).map_err(|_| bad("byte string longer than memory".into()))?;
                stack.push(Value::Bytes(take(&mut pos, n)?.to_vec()));
            }
            _ => return Err(bad(format!("pickle opcode 0x{op:02x} is not supported in a checkpoint"))),
        }
    }
    stack.pop().ok_or_else(|| bad("empty pickle".into()))
}

fn rebuild_tensor(file: &str, args: &[Value]) -> Result<Value> {
    let bad = |m: &str| Error::format(file, format!("tensor rebuild: {m}"));
    let [Value::Storage(dtype, storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..] = args
    else {
        return Err(bad("unexpected arguments"));
    };
    let ints = |v: &[Value]| -> Result<Vec<usize>> {
        v.iter()
            .map(|x| match x {
                Value::Int(i) if *i >= 0 => Ok(*i as usize),
                _ => Err(bad("sizes must be non-negative integers")),
            })
            .collect()
    };
    let shape = ints(size)?;
    let strides = ints(stride)?;
    let mut expect = 1usize;
    for (d, s) in shape.iter().zip(&strides).rev() {
        if *d > 1 && *s != expect {
            return Err(bad("non-contiguous tensors are not supported; save with .contiguous()"));
        }
        expect = expect.saturating_mul(*d);
    }
    Ok(Value::Tensor { dtype: *dtype, storage: storage.clone(), offset: *offset as usize, shape })
}

/// The tensors of a checkpoint's `data.pkl` (run by [`unpickle`]): a state dict, or the `ema` (else `model`) entry
/// of a training checkpoint. Each names its storage (the zip entry `<dir>/data/<storage>`) and its element offset in it.
pub fn checkpoint_tensors(file: &str, pkl: &[u8]) -> Result<Vec<SrcTensor>> {
    let top = unpickle(file, pkl)?;
    let dict = state_dict(file, top)?;
    let mut tensors = vec![];
    for (k, v) in dict {
        match (k, v) {
            (Value::Str(k), Value::Tensor { dtype, storage, offset, shape }) => {
                tensors.push(SrcTensor { name: k, shape, dtype, offset: offset as u64, storage })
            }
            // An integer or bool tensor (a flag such as `are_ldm_stats_inited`): no model reads one.
            (Value::Str(_), Value::OtherTensor(_)) => {}
            _ => return Err(Error::format(file, "the state dict holds something other than named tensors")),
        }
    }
    Ok(tensors)
}

/// The tensors of a checkpoint: a state dict, or the `ema` (else `model`) entry of a training checkpoint.
fn state_dict(file: &str, top: Value) -> Result<Vec<(Value, Value)>> {
    let Value::Dict(d) = top else {
        return Err(Error::format(file, "the checkpoint is not a dict of tensors"));
    };
    for key in ["ema", "model", "state_dict"] {
        if let Some((_, Value::Dict(inner))) = d.iter().find(|(k, _)| *k == Value::Str(key.into())) {
            return Ok(inner.clone());
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_code() {
        // cos.system("echo pwned") in protocol 2: GLOBAL os system, args, REDUCE.
        let evil = b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        let e = unpickle("evil.pt", evil).unwrap_err().to_string();
        assert!(e.contains("refuses the pickle global `os.system`"), "{e}");
        let evil2 = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.";
        assert!(unpickle("evil.pt", evil2).unwrap_err().to_string().contains("builtins.eval"));
        let evil3 = b"\x80\x02csubprocess.popen\nx\n.";
        assert!(unpickle("evil.pt", evil3).unwrap_err().to_string().contains("subprocess.popen.x"));
    }

    #[test]
    fn steps_over_objects_of_unknown_classes() {
        // {'vis': train.Vis() with state {'a': 1}, 'ema': {'w': <int64 tensor>}}: an object built by NEWOBJ + BUILD and
        // a LongStorage tensor, both inert.
        let pkl = [
            &b"\x80\x02}q\x00(X\x03\x00\x00\x00visctrain\nVis\n)\x81}X\x01\x00\x00\x00aK\x01sb"[..],
            b"X\x03\x00\x00\x00ema}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage",
            b"ctorch\nLongStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00K\x01\x85K\x01\x85\x89",
            b"ccollections\nOrderedDict\n)RtRsu.",
        ]
        .concat();
        let v = unpickle("snapshot.pt", &pkl).unwrap();
        let Value::Dict(d) = v else { panic!("{v:?}") };
        assert_eq!(d[0], (Value::Str("vis".into()), Value::Object("train.Vis".into())));
        let Value::Dict(ema) = &d[1].1 else { panic!("{d:?}") };
        assert_eq!(ema[0].1, Value::OtherTensor("torch.LongStorage".into()));
    }

    #[test]
    fn garbage_never_panics() {
        let mut r = crate::util::SplitMix64(5);
        for len in 0..300 {
            let data: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
            let _ = unpickle("fuzz", &data);
        }
    }
}
