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
    let mut m = Machine { file, data, pos: 0, stack: vec![], marks: vec![], memo: HashMap::new() };
    loop {
        let op = m.take(1)?[0];
        if op == b'.' {
            break; // STOP
        }
        m.op(op)?;
    }
    m.pop()
}

/// The pickle machine: its stack, marks and memo over `data`, read from `pos`.
struct Machine<'a> {
    file: &'a str,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl<'a> Machine<'a> {
    fn bad(&self, m: impl Into<String>) -> Error {
        Error::format(self.file, m.into())
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let data = self.data;
        let end = self.pos.checked_add(n).filter(|&e| e <= data.len()).ok_or_else(|| self.bad("truncated pickle"))?;
        let s = &data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn take_u32(&mut self) -> Result<u32> {
        Ok(u32le(self.take(4)?))
    }

    fn take_u64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        usize::try_from(n).map_err(|_| self.bad("a length longer than memory"))
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.bad("pickle stack underflow"))
    }

    /// The values pushed since the last MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| self.bad("pickle MARK missing"))?;
        if m > self.stack.len() {
            return Err(self.bad("pickle MARK past the stack"));
        }
        Ok(self.stack.split_off(m))
    }

    /// Runs one opcode.
    fn op(&mut self, op: u8) -> Result<()> {
        match op {
            0x80 => drop(self.take(1)?), // PROTO
            0x95 => drop(self.take(8)?), // FRAME
            b'(' => self.marks.push(self.stack.len()),
            b'0' => drop(self.pop()?),
            b'}' | b']' | b')' | b'N' | 0x88 | 0x89 | 0x8f => self.stack.push(constant(op)),
            b'J' | b'K' | b'M' | 0x8a | 0x8b | b'G' => self.number(op)?,
            b'X' | 0x8c | 0x8d | b'B' | b'C' | 0x8e | 0x96 => self.string(op)?,
            b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo_op(op)?,
            b'c' | 0x93 => self.global(op)?,
            b't' | 0x85..=0x87 | b'a' | b'e' | b's' | b'u' | 0x90 | 0x91 => self.collection(op)?,
            b'Q' => self.persistent_id()?,
            b'R' => self.reduce()?,
            b'b' => self.build()?,
            0x81 | 0x92 => self.new_object(op)?,
            _ => return Err(self.bad(format!("pickle opcode 0x{op:02x} is not supported in a checkpoint"))),
        }
        Ok(())
    }

    /// BININT, BININT1, BININT2, LONG1, LONG4, BINFLOAT.
    fn number(&mut self, op: u8) -> Result<()> {
        let v = match op {
            b'J' => Value::Int(i32::from_le_bytes(self.take(4)?.try_into().expect("4")) as i64),
            b'K' => Value::Int(self.take(1)?[0] as i64),
            b'M' => Value::Int(u16::from_le_bytes(self.take(2)?.try_into().expect("2")) as i64),
            b'G' => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().expect("8"))),
            0x8a => {
                let n = self.take(1)?[0] as usize;
                Value::Int(long(self.take(n)?).ok_or_else(|| self.bad("integer wider than 64 bits"))?)
            }
            _ => {
                // LONG4: an integer this wide is never a size; kept as an inert value.
                let n = self.take_u32()? as usize;
                self.take(n)?;
                Value::Object("int".into())
            }
        };
        self.stack.push(v);
        Ok(())
    }

    /// BINUNICODE, SHORT_BINUNICODE, BINUNICODE8; BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8.
    fn string(&mut self, op: u8) -> Result<()> {
        let n = match op {
            b'X' | b'B' => self.take_u32()? as usize,
            0x8c | b'C' => self.take(1)?[0] as usize,
            _ => self.take_u64()?,
        };
        let bytes = self.take(n)?;
        let v = match op {
            b'X' | 0x8c | 0x8d => {
                Value::Str(std::str::from_utf8(bytes).map_err(|_| self.bad("invalid UTF-8 in pickle"))?.to_string())
            }
            _ => Value::Bytes(bytes.to_vec()),
        };
        self.stack.push(v);
        Ok(())
    }

    /// BINPUT, LONG_BINPUT, MEMOIZE (store the top); BINGET, LONG_BINGET (push a stored value).
    fn memo_op(&mut self, op: u8) -> Result<()> {
        let key = match op {
            b'q' | b'h' => self.take(1)?[0] as u32,
            b'r' | b'j' => self.take_u32()?,
            _ => self.memo.len() as u32,
        };
        if matches!(op, b'h' | b'j') {
            let v = self.memo.get(&key).cloned().ok_or_else(|| self.bad(format!("pickle memo {key} missing")))?;
            self.stack.push(v);
        } else {
            let top = self.stack.last().cloned().ok_or_else(|| self.bad("a memo store on an empty stack"))?;
            self.memo.insert(key, top);
        }
        Ok(())
    }

    /// GLOBAL ("module\nname\n") and STACK_GLOBAL: an accepted global, an inert class, or a refusal.
    fn global(&mut self, op: u8) -> Result<()> {
        let (module, name) = if op == b'c' {
            (self.line()?, self.line()?)
        } else {
            let (name, module) = (self.pop()?, self.pop()?);
            let (Value::Str(module), Value::Str(name)) = (module, name) else {
                return Err(self.bad("STACK_GLOBAL without strings"));
            };
            (module, name)
        };
        let v = global(self.file, &module, &name)?;
        self.stack.push(v);
        Ok(())
    }

    /// One newline-ended line of a GLOBAL.
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n =
            rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.bad("pickle GLOBAL line runs past the end"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    /// TUPLE, TUPLE1..3; APPEND, APPENDS, SETITEM, SETITEMS, ADDITEMS (sets kept as lists), FROZENSET.
    fn collection(&mut self, op: u8) -> Result<()> {
        match op {
            b't' | 0x91 => {
                let items = self.pop_mark()?;
                self.stack.push(if op == b't' { Value::Tuple(items) } else { Value::List(items) });
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let at = self.stack.len().checked_sub(n).ok_or_else(|| self.bad("pickle stack underflow"))?;
                let items = self.stack.split_off(at);
                self.stack.push(Value::Tuple(items));
            }
            b'a' | b's' => {
                let v = self.pop()?;
                let items = if op == b'a' { vec![v] } else { vec![self.pop()?, v] };
                self.extend_top(op, items)?;
            }
            _ => {
                let items = self.pop_mark()?;
                self.extend_top(op, items)?;
            }
        }
        Ok(())
    }

    /// Adds `items` to the list (APPEND, APPENDS, ADDITEMS) or dict (SETITEM, SETITEMS: key, value pairs) on top.
    fn extend_top(&mut self, op: u8, items: Vec<Value>) -> Result<()> {
        let top = self.stack.last_mut();
        match (op, top) {
            (b'a' | b'e' | 0x90, Some(Value::List(l))) => l.extend(items),
            (b's' | b'u', Some(Value::Dict(d))) if items.len().is_multiple_of(2) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            (b's' | b'u', Some(Value::Dict(_))) => return Err(self.bad("SETITEMS with an odd count")),
            _ => return Err(self.bad(format!("pickle opcode 0x{op:02x} on a value that is not its collection"))),
        }
        Ok(())
    }

    /// BINPERSID: ('storage', storage_type, key, location, numel).
    fn persistent_id(&mut self) -> Result<()> {
        let Value::Tuple(t) = self.pop()? else { return Err(self.bad("persistent id is not a tuple")) };
        let v = match t.as_slice() {
            [Value::Str(tag), Value::Global(ty), key, ..] if tag == "storage" => {
                let dtype =
                    storage_dtype(ty).ok_or_else(|| self.bad(format!("storage type {ty} is not a float storage")))?;
                let key = match key {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(self.bad("storage key is not a string")),
                };
                Value::Storage(dtype, key)
            }
            // An integer or bool storage (a step counter, a flag): never read.
            [Value::Str(tag), Value::Class(ty), ..] if tag == "storage" => Value::OtherStorage(ty.clone()),
            _ => return Err(self.bad("unexpected persistent id")),
        };
        self.stack.push(v);
        Ok(())
    }

    /// REDUCE: only the accepted callables, evaluated as data; any other class gives an inert object.
    fn reduce(&mut self) -> Result<()> {
        let args = self.pop()?;
        let f = self.pop()?;
        let Value::Tuple(args) = args else { return Err(self.bad("REDUCE arguments are not a tuple")) };
        let v = match f {
            Value::Global("OrderedDict") => Value::Dict(vec![]),
            Value::Global("rebuild_tensor") => match args.first() {
                Some(Value::OtherStorage(ty)) => Value::OtherTensor(ty.clone()),
                _ => rebuild_tensor(self.file, &args)?,
            },
            Value::Global("rebuild_parameter") => args.into_iter().next().ok_or_else(|| self.bad("empty parameter"))?,
            Value::Global("Namespace") => Value::Opaque("Namespace"),
            Value::Class(c) | Value::Object(c) => Value::Object(c),
            other => return Err(self.bad(format!("REDUCE of {other:?} is not allowed"))),
        };
        self.stack.push(v);
        Ok(())
    }

    /// BUILD: state for an object; only the inert ones take state (ignored).
    fn build(&mut self) -> Result<()> {
        let _state = self.pop()?;
        match self.stack.last() {
            Some(
                Value::Opaque(_) | Value::Dict(_) | Value::Tensor { .. } | Value::Object(_) | Value::OtherTensor(_),
            ) => Ok(()),
            _ => Err(self.bad("BUILD on an object that is not allowed")),
        }
    }

    /// NEWOBJ, NEWOBJ_EX (cls, args[, kwargs]): an inert object, never constructed.
    fn new_object(&mut self, op: u8) -> Result<()> {
        if op == 0x92 {
            self.pop()?;
        }
        let _args = self.pop()?;
        let v = match self.pop()? {
            Value::Global("Namespace") => Value::Opaque("Namespace"),
            Value::Class(c) => Value::Object(c),
            other => return Err(self.bad(format!("NEWOBJ of {other:?} is not allowed"))),
        };
        self.stack.push(v);
        Ok(())
    }
}

/// The value an argument-less opcode pushes: EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, NONE, NEWTRUE, NEWFALSE, EMPTY_SET.
fn constant(op: u8) -> Value {
    match op {
        b'}' => Value::Dict(vec![]),
        b']' | 0x8f => Value::List(vec![]),
        b')' => Value::Tuple(vec![]),
        0x88 => Value::Bool(true),
        0x89 => Value::Bool(false),
        _ => Value::None,
    }
}

/// A little-endian two's-complement integer of up to 8 bytes (LONG1), or None when wider.
fn long(b: &[u8]) -> Option<i64> {
    let n = b.len();
    if n > 8 {
        return None;
    }
    let mut v: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as i64) << (8 * i);
    }
    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
        v -= 1i64 << (8 * n);
    }
    Some(v)
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
