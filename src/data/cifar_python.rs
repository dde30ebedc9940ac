//! Reading the CIFAR-10 "python version" (`cifar-10-batches-py/`) without Python.
//!
//! This module owns a deliberately small pickle reader. It understands only
//! the structures the official files use: pickle protocol 2, a dict with byte
//! string keys `b'batch_label'`, `b'labels'`, `b'data'` and `b'filenames'`,
//! where `data` is a numpy `uint8` array pickled through
//! `numpy.core.multiarray._reconstruct` followed by `BUILD` (`__setstate__`).
//! It executes no code: the only globals it accepts are that constructor, the
//! `numpy.ndarray` and `numpy.dtype` types, and the `_codecs.encode` /
//! `bytes` helpers that Python 3 uses to pickle byte strings under protocol 2.
//! Anything else is refused with an error that names the file, the byte offset
//! and the thing it did not expect.
//!
//! Allocation is bounded by the file size: every length read from the file is
//! checked against the bytes that remain before anything is sliced or copied,
//! so a header that claims a huge string cannot make the reader allocate it.
//!
//! The layout of the official folder is `data_batch_1` ... `data_batch_5`,
//! `test_batch` and `batches.meta`, with no file extensions. Each data row is
//! 3072 bytes in the same order as the binary version: the 1024 red values,
//! then green, then blue, each a 32x32 plane in row-major order.
//!
//! A leaf of `data/`: it imports only the folder layout, which is `spec`'s (the spec
//! infers the format from it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ndarray::Array2;

/// Whether a folder holds the python version (its extensionless batch files): the spec
/// infers the format from it, so it is the spec's.
pub use crate::spec::is_python_dir;

/// The file of the python version that holds the class names.
pub const META_FILE: &str = "batches.meta";

/// Pixel bytes per image: 3 colour planes of 32 x 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// The largest file the reader accepts. An official batch is about 31 MB, so
/// this leaves room for re-pickled variants while refusing to read a
/// multi-gigabyte file into memory by mistake.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The deepest the pickle value stack may grow. The official files need a
/// few thousand entries (labels are appended in runs of 1000).
const MAX_STACK: usize = 1 << 20;

/// Errors from reading a python-version file; each names the file. An I/O
/// error is part of the message (field `cause`), not a `source()`, so that
/// `{:#}` prints it once.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("could not read {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{} is {size} bytes, more than the {limit}-byte limit for a CIFAR-10 python batch; \
         check that it is a CIFAR-10 batch file",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "{} ends early: at byte {offset} the pickle needs {needed} more bytes; \
         the file is incomplete, extract or download it again",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: usize,
        needed: u64,
    },
    #[error(
        "{} uses pickle protocol {protocol}, but only protocol 2 (as in the official \
         cifar-10-python.tar.gz) is supported; use the official files or the binary version",
        path.display()
    )]
    UnsupportedProtocol { path: PathBuf, protocol: u8 },
    #[error(
        "{} has pickle opcode {opcode:#04x} at byte {offset}, which CIFAR-10 python files do \
         not use; use the official files or the binary version",
        path.display()
    )]
    UnsupportedOpcode {
        path: PathBuf,
        opcode: u8,
        offset: usize,
    },
    #[error(
        "{} refers to the python object {module}.{name} at byte {offset}; only numpy arrays \
         and byte strings are loaded, so that reading a file never runs code from it",
        path.display()
    )]
    UnsupportedGlobal {
        path: PathBuf,
        module: String,
        name: String,
        offset: usize,
    },
    #[error("{} is not a valid pickle: {what} at byte {offset}", path.display())]
    Malformed {
        path: PathBuf,
        offset: usize,
        what: String,
    },
    #[error("{} is not a CIFAR-10 python batch: {what}", path.display())]
    Structure { path: PathBuf, what: String },
}

/// Reads one python-version batch (`data_batch_N` or `test_batch`).
///
/// Returns the pixels as an N x 3072 array in the binary version's order
/// (red plane, green plane, blue plane) and the N labels (0-9).
pub fn read_batch(path: &Path) -> Result<(Array2<u8>, Vec<u8>), PickleError> {
    let bytes = read_bounded(path)?;
    batch_from_pickle(&bytes, path)
}

/// Reads the ten class names from a python-version `batches.meta` file.
pub fn read_label_names(path: &Path) -> Result<Vec<String>, PickleError> {
    let bytes = read_bounded(path)?;
    let top = Vm::new(&bytes, path).run()?;
    let names = dict_get(&top, "label_names", path)?;
    let Value::List(items) = names else {
        return Err(structure(path, "b'label_names' is not a list"));
    };
    let items = items.borrow();
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bytes(b) => String::from_utf8(b.to_vec())
                .map_err(|_| structure(path, format!("class name {i} is not UTF-8"))),
            Value::Str(s) => Ok(s.to_string()),
            _ => Err(structure(path, format!("class name {i} is not a string"))),
        })
        .collect()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, PickleError> {
    let io = |cause| PickleError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(PickleError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(io)
}

fn structure(path: &Path, what: impl Into<String>) -> PickleError {
    PickleError::Structure {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn batch_from_pickle(bytes: &[u8], path: &Path) -> Result<(Array2<u8>, Vec<u8>), PickleError> {
    let top = Vm::new(bytes, path).run()?;
    let data = dict_get(&top, "data", path)?;
    let Value::Array(array) = data else {
        return Err(structure(path, "b'data' is not a numpy array"));
    };
    let array = array.borrow();
    let Some(state) = array.state.as_ref() else {
        return Err(structure(path, "b'data' is a numpy array with no contents"));
    };
    if state.dtype != "u1" {
        return Err(structure(
            path,
            format!("b'data' has dtype '{}', expected 'u1' (uint8)", state.dtype),
        ));
    }
    if state.fortran_order {
        return Err(structure(
            path,
            "b'data' is stored in Fortran order; the CIFAR-10 files use C order",
        ));
    }
    let &[rows, cols] = state.shape.as_slice() else {
        return Err(structure(
            path,
            format!("b'data' has shape {:?}, expected (N, 3072)", state.shape),
        ));
    };
    if cols != IMAGE_BYTES {
        return Err(structure(
            path,
            format!("b'data' has shape ({rows}, {cols}), expected (N, 3072)"),
        ));
    }
    let expected_len = rows.checked_mul(cols);
    if expected_len != Some(state.data.len()) {
        return Err(structure(
            path,
            format!(
                "b'data' has shape ({rows}, {cols}) but holds {} bytes",
                state.data.len()
            ),
        ));
    }
    let labels = labels_from(dict_get(&top, "labels", path)?, path)?;
    if labels.len() != rows {
        return Err(structure(
            path,
            format!("{} labels for {rows} images", labels.len()),
        ));
    }
    let pixels = Array2::from_shape_vec((rows, cols), state.data.to_vec())
        .map_err(|e| structure(path, format!("b'data' does not fit its shape: {e}")))?;
    Ok((pixels, labels))
}

fn labels_from(value: Value, path: &Path) -> Result<Vec<u8>, PickleError> {
    let Value::List(items) = value else {
        return Err(structure(path, "b'labels' is not a list"));
    };
    let items = items.borrow();
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Int(n) if (0..=9).contains(n) => Ok(*n as u8),
            Value::Int(n) => Err(structure(
                path,
                format!("label {i} is {n}, outside the classes 0-9"),
            )),
            _ => Err(structure(path, format!("label {i} is not an integer"))),
        })
        .collect()
}

/// Looks a key up in the top-level dict, accepting a byte-string key (as in
/// the official files) or a text key (as a Python 3 re-pickle might write).
fn dict_get(top: &Value, key: &str, path: &Path) -> Result<Value, PickleError> {
    let Value::Dict(entries) = top else {
        return Err(structure(path, "the pickle does not hold a dict"));
    };
    entries
        .borrow()
        .iter()
        .find(|(k, _)| match k {
            Value::Bytes(b) => b.as_slice() == key.as_bytes(),
            Value::Str(s) => &**s == key,
            _ => false,
        })
        .map(|(_, v)| v.clone())
        .ok_or_else(|| structure(path, format!("the dict has no key b'{key}'")))
}

/// The Python values the CIFAR-10 pickles are made of. Containers are shared
/// (`Rc`) because the pickle memo may refer to an object that is later
/// mutated in place by `APPENDS`, `SETITEMS` or `BUILD`.
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Bytes(Rc<Vec<u8>>),
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Dtype(Rc<RefCell<Dtype>>),
    Array(Rc<RefCell<NdArray>>),
}

/// The only callables a CIFAR-10 pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    Reconstruct,
    NdarrayType,
    DtypeType,
    CodecsEncode,
    BytesType,
}

impl Global {
    fn lookup(module: &str, name: &str) -> Option<Self> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Some(Self::Reconstruct)
            }
            ("numpy", "ndarray") => Some(Self::NdarrayType),
            ("numpy", "dtype") => Some(Self::DtypeType),
            ("_codecs", "encode") => Some(Self::CodecsEncode),
            ("__builtin__" | "builtins", "bytes") => Some(Self::BytesType),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Dtype {
    descr: String,
}

#[derive(Debug, Default)]
struct NdArray {
    state: Option<ArrayState>,
}

#[derive(Debug)]
struct ArrayState {
    shape: Vec<usize>,
    dtype: String,
    fortran_order: bool,
    data: Rc<Vec<u8>>,
}

/// A pickle machine restricted to the opcodes of protocol 2 that CIFAR-10
/// files use (plus protocol 3's byte-string opcodes, which are harmless).
struct Vm<'a> {
    input: &'a [u8],
    pos: usize,
    path: &'a Path,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Vm<'a> {
    fn new(input: &'a [u8], path: &'a Path) -> Self {
        Self {
            input,
            pos: 0,
            path,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn malformed(&self, offset: usize, what: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            path: self.path.to_path_buf(),
            offset,
            what: what.into(),
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let remaining = (self.input.len() - self.pos) as u64;
        if n > remaining {
            return Err(PickleError::Truncated {
                path: self.path.to_path_buf(),
                offset: self.pos,
                needed: n - remaining,
            });
        }
        let n = n as usize;
        let slice = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated {
                path: self.path.to_path_buf(),
                offset: start,
                needed: 1,
            });
        };
        self.pos = start + end + 1;
        std::str::from_utf8(&rest[..end])
            .map_err(|_| self.malformed(start, "a global name is not UTF-8"))
    }

    fn push(&mut self, v: Value, offset: usize) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(self.malformed(offset, "the value stack grows past 1048576 entries"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, offset: usize) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.malformed(offset, "an opcode pops from an empty stack"));
        }
        Ok(self
            .stack
            .pop()
            .expect("stack is longer than the mark floor"))
    }

    fn pop_mark(&mut self, offset: usize) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.malformed(offset, "an opcode needs a MARK that is not there"));
        };
        Ok(self.stack.split_off(mark))
    }

    fn top(&self, offset: usize) -> Result<&Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.malformed(offset, "an opcode needs a value on an empty stack"));
        }
        Ok(self
            .stack
            .last()
            .expect("stack is longer than the mark floor"))
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let offset = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let protocol = self.u8()?;
                    if !(2..=3).contains(&protocol) {
                        return Err(PickleError::UnsupportedProtocol {
                            path: self.path.to_path_buf(),
                            protocol,
                        });
                    }
                }
                b'.' => {
                    let v = self.pop(offset)?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(self.malformed(offset, "STOP with values left on the stack"));
                    }
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.push(Value::Dict(Rc::default()), offset)?,
                b']' => self.push(Value::List(Rc::default()), offset)?,
                b')' => self.push(Value::Tuple(Rc::default()), offset)?,
                b't' => {
                    let items = self.pop_mark(offset)?;
                    self.push(Value::Tuple(Rc::new(items)), offset)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(offset)?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)), offset)?;
                }
                b'N' => self.push(Value::None, offset)?,
                0x88 => self.push(Value::Bool(true), offset)?,
                0x89 => self.push(Value::Bool(false), offset)?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)), offset)?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)), offset)?;
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)), offset)?;
                }
                0x8a => {
                    let n = self.u8()?;
                    if n > 8 {
                        return Err(self.malformed(offset, "an integer wider than 64 bits"));
                    }
                    let b = self.take(u64::from(n))?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..b.len()].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(buf)), offset)?;
                }
                b'U' | b'C' => {
                    let n = self.u8()?;
                    let b = self.take(u64::from(n))?;
                    self.push(Value::Bytes(Rc::new(b.to_vec())), offset)?;
                }
                b'T' | b'B' => {
                    let n = self.u32()?;
                    let b = self.take(u64::from(n))?;
                    self.push(Value::Bytes(Rc::new(b.to_vec())), offset)?;
                }
                b'X' => {
                    let n = self.u32()?;
                    let b = self.take(u64::from(n))?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| self.malformed(offset, "a BINUNICODE string is not UTF-8"))?;
                    self.push(Value::Str(Rc::from(s)), offset)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = Global::lookup(module, name).ok_or_else(|| {
                        PickleError::UnsupportedGlobal {
                            path: self.path.to_path_buf(),
                            module: module.to_string(),
                            name: name.to_string(),
                            offset,
                        }
                    })?;
                    self.push(Value::Global(global), offset)?;
                }
                b'R' => {
                    let args = self.pop(offset)?;
                    let callable = self.pop(offset)?;
                    let v = self.reduce(callable, args, offset)?;
                    self.push(v, offset)?;
                }
                b'b' => {
                    let state = self.pop(offset)?;
                    let target = self.top(offset)?.clone();
                    self.build(&target, state, offset)?;
                }
                b'q' => {
                    let idx = u32::from(self.u8()?);
                    let v = self.top(offset)?.clone();
                    self.memo.insert(idx, v);
                }
                b'r' => {
                    let idx = self.u32()?;
                    let v = self.top(offset)?.clone();
                    self.memo.insert(idx, v);
                }
                b'h' | b'j' => {
                    let idx = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.u32()?
                    };
                    let v =
                        self.memo.get(&idx).cloned().ok_or_else(|| {
                            self.malformed(offset, format!("memo {idx} is not set"))
                        })?;
                    self.push(v, offset)?;
                }
                b'a' => {
                    let v = self.pop(offset)?;
                    let Value::List(list) = self.top(offset)? else {
                        return Err(self.malformed(offset, "APPEND to something not a list"));
                    };
                    list.borrow_mut().push(v);
                }
                b'e' => {
                    let items = self.pop_mark(offset)?;
                    let Value::List(list) = self.top(offset)? else {
                        return Err(self.malformed(offset, "APPENDS to something not a list"));
                    };
                    list.borrow_mut().extend(items);
                }
                b's' => {
                    let v = self.pop(offset)?;
                    let k = self.pop(offset)?;
                    let Value::Dict(dict) = self.top(offset)? else {
                        return Err(self.malformed(offset, "SETITEM on something not a dict"));
                    };
                    dict.borrow_mut().push((k, v));
                }
                b'u' => {
                    let items = self.pop_mark(offset)?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed(offset, "SETITEMS with an odd item count"));
                    }
                    let Value::Dict(dict) = self.top(offset)? else {
                        return Err(self.malformed(offset, "SETITEMS on something not a dict"));
                    };
                    let mut dict = dict.borrow_mut();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        dict.push((k, v));
                    }
                }
                _ => {
                    return Err(PickleError::UnsupportedOpcode {
                        path: self.path.to_path_buf(),
                        opcode: op,
                        offset,
                    });
                }
            }
        }
    }

    /// Applies one of the allowed callables. Each arm checks its arguments
    /// against the exact form numpy and Python write, and nothing else runs.
    fn reduce(&self, callable: Value, args: Value, offset: usize) -> Result<Value, PickleError> {
        let Value::Global(global) = callable else {
            return Err(self.malformed(offset, "REDUCE on something that is not a global"));
        };
        let Value::Tuple(args) = args else {
            return Err(self.malformed(offset, "REDUCE arguments are not a tuple"));
        };
        match (global, args.as_slice()) {
            (Global::CodecsEncode, [Value::Str(text), Value::Str(encoding)])
                if &**encoding == "latin1" || &**encoding == "latin-1" =>
            {
                let bytes: Option<Vec<u8>> = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect();
                bytes.map(|b| Value::Bytes(Rc::new(b))).ok_or_else(|| {
                    self.malformed(offset, "a latin1 byte string has a character above U+00FF")
                })
            }
            (Global::BytesType, []) => Ok(Value::Bytes(Rc::default())),
            (Global::Reconstruct, [Value::Global(Global::NdarrayType), _, _]) => {
                Ok(Value::Array(Rc::default()))
            }
            (Global::DtypeType, [descr, align, copy])
                if is_flag(align, false) && is_flag(copy, true) =>
            {
                let descr = text_of(descr)
                    .ok_or_else(|| self.malformed(offset, "a numpy dtype name is not a string"))?;
                Ok(Value::Dtype(Rc::new(RefCell::new(Dtype { descr }))))
            }
            (global, _) => Err(self.malformed(
                offset,
                format!("unexpected arguments for {global:?} ({} given)", args.len()),
            )),
        }
    }

    /// Applies `__setstate__` for the two numpy objects that have state.
    fn build(&self, target: &Value, state: Value, offset: usize) -> Result<(), PickleError> {
        let Value::Tuple(state) = state else {
            return Err(self.malformed(offset, "BUILD state is not a tuple"));
        };
        match target {
            Value::Dtype(_) => {
                // A uint8 dtype's state is (3, '|', None, None, None, -1, -1, 0).
                // Only the byte order matters here, and '|' or '=' is the
                // only one that makes sense for a single-byte type.
                let order = state.get(1).and_then(text_of);
                match order.as_deref() {
                    Some("|" | "=" | "<" | ">") => Ok(()),
                    _ => Err(self.malformed(offset, "a numpy dtype state has no byte order")),
                }
            }
            Value::Array(array) => {
                let [version, shape, dtype, fortran, data] = state.as_slice() else {
                    return Err(self.malformed(
                        offset,
                        format!("a numpy array state has {} fields, expected 5", state.len()),
                    ));
                };
                if !matches!(version, Value::Int(1)) {
                    return Err(self.malformed(offset, "a numpy array state is not version 1"));
                }
                let Value::Tuple(dims) = shape else {
                    return Err(self.malformed(offset, "a numpy array shape is not a tuple"));
                };
                let shape = dims
                    .iter()
                    .map(|d| match d {
                        Value::Int(n) => usize::try_from(*n).ok(),
                        _ => None,
                    })
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| self.malformed(offset, "a numpy array dimension is invalid"))?;
                let Value::Dtype(dtype) = dtype else {
                    return Err(self.malformed(offset, "a numpy array has no dtype"));
                };
                let fortran_order = match fortran {
                    Value::Bool(b) => *b,
                    Value::Int(n) => *n != 0,
                    _ => return Err(self.malformed(offset, "a numpy array order flag is invalid")),
                };
                let Value::Bytes(data) = data else {
                    return Err(self.malformed(
                        offset,
                        "a numpy array's contents are not a byte string (object arrays are not \
                         supported)",
                    ));
                };
                array.borrow_mut().state = Some(ArrayState {
                    shape,
                    dtype: dtype.borrow().descr.clone(),
                    fortran_order,
                    data: Rc::clone(data),
                });
                Ok(())
            }
            _ => Err(self.malformed(offset, "BUILD on an object that has no state")),
        }
    }
}

fn is_flag(v: &Value, want: bool) -> bool {
    match v {
        Value::Bool(b) => *b == want,
        Value::Int(n) => (*n != 0) == want,
        _ => false,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("test.pkl")
    }

    /// A py2-style pickle of `{b'data': array, b'labels': labels}` written by
    /// hand, mirroring the opcodes of the official files.
    fn tiny_batch(rows: u16, data: &[u8], labels: &[u8]) -> Vec<u8> {
        let mut out = b"\x80\x02}q\x01(U\x04data".to_vec();
        out.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n");
        out.extend_from_slice(b"K\x00\x85U\x01b\x87R(K\x01M");
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(b"M\x00\x0c\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R");
        out.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"tbU\x06labels](");
        for &l in labels {
            out.extend_from_slice(&[b'K', l]);
        }
        out.extend_from_slice(b"eu.");
        out
    }

    #[test]
    fn reads_a_hand_written_py2_style_batch() {
        let data: Vec<u8> = (0..2 * IMAGE_BYTES).map(|i| (i % 251) as u8).collect();
        let (pixels, labels) = batch_from_pickle(&tiny_batch(2, &data, &[3, 9]), p()).unwrap();
        assert_eq!(pixels.dim(), (2, IMAGE_BYTES));
        assert_eq!(pixels.as_slice().unwrap(), data.as_slice());
        assert_eq!(labels, vec![3, 9]);
    }

    #[test]
    fn a_huge_length_claim_is_an_error_not_an_allocation() {
        // BINSTRING claiming 4 GiB - 1 bytes in a 20-byte file.
        let pickle = b"\x80\x02}(U\x04dataT\xff\xff\xff\xffabc".to_vec();
        let err = batch_from_pickle(&pickle, p()).unwrap_err();
        assert!(
            matches!(err, PickleError::Truncated { needed, .. } if needed > 4_000_000_000),
            "{err}"
        );
    }

    #[test]
    fn shape_that_disagrees_with_the_data_is_rejected() {
        let data = vec![0u8; IMAGE_BYTES];
        let err = batch_from_pickle(&tiny_batch(2, &data, &[1, 2]), p()).unwrap_err();
        assert!(matches!(err, PickleError::Structure { .. }), "{err}");
        assert!(err.to_string().contains("holds 3072 bytes"), "{err}");
    }

    #[test]
    fn label_count_must_match_rows() {
        let data = vec![0u8; IMAGE_BYTES];
        let err = batch_from_pickle(&tiny_batch(1, &data, &[1, 2]), p()).unwrap_err();
        assert!(err.to_string().contains("2 labels for 1 images"), "{err}");
    }

    #[test]
    fn out_of_range_label_is_rejected() {
        let data = vec![0u8; IMAGE_BYTES];
        let err = batch_from_pickle(&tiny_batch(1, &data, &[10]), p()).unwrap_err();
        assert!(err.to_string().contains("label 0 is 10"), "{err}");
    }

    #[test]
    fn arbitrary_globals_are_refused() {
        // The classic exploit: os.system('echo hi').
        let pickle = b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.".to_vec();
        let err = batch_from_pickle(&pickle, p()).unwrap_err();
        assert!(
            matches!(&err, PickleError::UnsupportedGlobal { module, name, .. }
                if module == "os" && name == "system"),
            "{err}"
        );
    }

    #[test]
    fn other_protocols_and_opcodes_are_refused() {
        let err = batch_from_pickle(b"\x80\x04\x95", p()).unwrap_err();
        assert!(
            matches!(err, PickleError::UnsupportedProtocol { protocol: 4, .. }),
            "{err}"
        );
        // GET (text memo index, protocol 0) is not in the supported subset.
        let err = batch_from_pickle(b"\x80\x02g1\n.", p()).unwrap_err();
        assert!(
            matches!(
                err,
                PickleError::UnsupportedOpcode {
                    opcode: b'g',
                    offset: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn stack_underflow_and_missing_mark_are_errors() {
        let err = batch_from_pickle(b"\x80\x02.", p()).unwrap_err();
        assert!(matches!(err, PickleError::Malformed { .. }), "{err}");
        let err = batch_from_pickle(b"\x80\x02]K\x01e.", p()).unwrap_err();
        assert!(err.to_string().contains("MARK"), "{err}");
        let err = batch_from_pickle(b"\x80\x02h\x05.", p()).unwrap_err();
        assert!(err.to_string().contains("memo 5 is not set"), "{err}");
    }

    #[test]
    fn every_truncation_of_a_valid_pickle_is_an_error() {
        let data = vec![7u8; IMAGE_BYTES];
        let full = tiny_batch(1, &data, &[4]);
        for cut in 0..full.len() {
            assert!(
                batch_from_pickle(&full[..cut], p()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn missing_data_key_is_named() {
        let err = batch_from_pickle(b"\x80\x02}.", p()).unwrap_err();
        assert!(err.to_string().contains("no key b'data'"), "{err}");
    }

    #[test]
    fn error_names_the_file() {
        let err = read_batch(Path::new("/nonexistent/data_batch_1")).unwrap_err();
        assert!(matches!(err, PickleError::Io { .. }));
        assert!(
            err.to_string().contains("/nonexistent/data_batch_1"),
            "{err}"
        );
    }
}
