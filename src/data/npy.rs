//! Reading users' `.npy` arrays safely: the header is checked against the file's real
//! length before anything is allocated, and the dtype is dispatched to the element types
//! `sweep` accepts. A leaf of `data/`: imports only its [`super::error`] and [`super::io`].

use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::ReadNpyExt;
use ndarray_npy::npy::header::Header;

use super::error::DataError;
use super::io::read_limited;

/// Largest `.npy` file `sweep` reads (the whole file is held in memory once).
const MAX_NPY_BYTES: u64 = 16 << 30;

fn npy_err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Npy {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The length the preamble of an `.npy` file gives its header (format versions 1 to 3), if
/// the bytes start like one: the header parser allocates that much before reading it.
fn header_len(bytes: &[u8]) -> Option<u64> {
    let (magic, version) = (bytes.get(..6)?, *bytes.get(6)?);
    if magic != b"\x93NUMPY" {
        return None;
    }
    if version == 1 {
        Some(u64::from(u16::from_le_bytes(
            bytes.get(8..10)?.try_into().ok()?,
        )))
    } else {
        Some(u64::from(u32::from_le_bytes(
            bytes.get(8..12)?.try_into().ok()?,
        )))
    }
}

/// The file's bytes and its parsed header, with the claimed size checked.
fn open(path: &Path, rank: usize, what: &str) -> Result<(Vec<u8>, Header, String), DataError> {
    let bytes = read_limited(path, MAX_NPY_BYTES)?;
    if let Some(len) = header_len(&bytes)
        && len > bytes.len() as u64
    {
        return Err(npy_err(
            path,
            format!(
                "its header claims {len} bytes but the file has only {}; is it truncated?",
                bytes.len()
            ),
        ));
    }
    let mut rest = &bytes[..];
    let header = Header::from_reader(&mut rest).map_err(|e| {
        npy_err(
            path,
            format!("not a valid .npy file ({e}); save it with numpy.save"),
        )
    })?;
    let descr = header
        .type_descriptor
        .to_string()
        .trim_matches('\'')
        .to_string();
    if header.shape.len() != rank {
        return Err(npy_err(
            path,
            format!(
                "{what} must have {rank} dimension(s), found shape {:?}",
                header.shape
            ),
        ));
    }
    if header.layout.is_fortran() {
        return Err(npy_err(
            path,
            "array is in Fortran order; save it with numpy.save(np.ascontiguousarray(a))",
        ));
    }
    let item = descr
        .get(2..)
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| npy_err(path, format!("unsupported dtype {descr}")))?;
    let claimed = header
        .shape
        .iter()
        .try_fold(item, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| npy_err(path, format!("shape {:?} overflows", header.shape)))?;
    let data_len = rest.len() as u64;
    if claimed > data_len {
        return Err(npy_err(
            path,
            format!(
                "header claims shape {:?} ({claimed} bytes of data) but the file has only {data_len}; is it truncated?",
                header.shape
            ),
        ));
    }
    Ok((bytes, header, descr))
}

fn parse<A: ReadNpyExt>(path: &Path, bytes: &[u8]) -> Result<A, DataError> {
    A::read_npy(bytes).map_err(|e| npy_err(path, format!("cannot read array: {e}")))
}

/// Reads an N x d feature matrix. uint8 input is flagged so it is scaled by 1/255.
pub fn read_features(path: &Path) -> Result<(Array2<f32>, bool), DataError> {
    let (bytes, header, descr) = open(path, 2, "X")?;
    let x = match descr.as_str() {
        "|u1" => return Ok((parse::<Array2<u8>>(path, &bytes)?.mapv(f32::from), true)),
        "<f4" => parse::<Array2<f32>>(path, &bytes)?,
        "<f8" => parse::<Array2<f64>>(path, &bytes)?.mapv(|v| v as f32),
        other => {
            return Err(npy_err(
                path,
                format!(
                    "X has dtype {other}; use uint8, float32 or float64 (X.astype(np.float32))"
                ),
            ));
        }
    };
    if header.shape[0] == 0 || header.shape[1] == 0 {
        return Err(npy_err(
            path,
            format!("X is empty (shape {:?})", header.shape),
        ));
    }
    if let Some(pos) = x.iter().position(|v| !v.is_finite()) {
        return Err(npy_err(
            path,
            format!(
                "X has a non-finite value at row {}, column {}",
                pos / x.ncols(),
                pos % x.ncols()
            ),
        ));
    }
    Ok((x, false))
}

/// Reads a vector of N integer labels, each in `0..classes` (labels are kept as bytes, so
/// `classes` is at most 256).
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, DataError> {
    let classes = classes.min(256);
    let (bytes, _header, descr) = open(path, 1, "y")?;
    let y: Vec<i64> = match descr.as_str() {
        "|u1" => parse::<Array1<u8>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "|i1" => parse::<Array1<i8>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "<i2" => parse::<Array1<i16>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "<u2" => parse::<Array1<u16>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "<i4" => parse::<Array1<i32>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "<u4" => parse::<Array1<u32>>(path, &bytes)?.mapv(i64::from).to_vec(),
        "<i8" => parse::<Array1<i64>>(path, &bytes)?.to_vec(),
        other => {
            return Err(npy_err(
                path,
                format!("y has dtype {other}; labels must be integers (y.astype(np.int64))"),
            ));
        }
    };
    if y.is_empty() {
        return Err(npy_err(path, "y is empty"));
    }
    if let Some((i, &l)) = y
        .iter()
        .enumerate()
        .find(|&(_, &l)| l < 0 || l >= classes as i64)
    {
        let hint = if classes >= 256 {
            "labels are held as bytes, so at most 256 classes (0..=255) are supported".to_string()
        } else {
            format!(
                "`classes = {classes}` in [data] allows 0..={}; raise it, or fix the labels",
                classes - 1
            )
        };
        return Err(npy_err(
            path,
            format!(
                "label {l} at index {i} is not a class 0..={}: {hint}",
                classes - 1
            ),
        ));
    }
    Ok(y.into_iter().map(|l| l as u8).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::WriteNpyExt;

    fn write<A: WriteNpyExt>(dir: &Path, name: &str, a: &A) -> std::path::PathBuf {
        let p = dir.join(name);
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        p
    }

    #[test]
    fn reads_each_accepted_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let xu = write(dir.path(), "xu.npy", &Array2::<u8>::from_elem((2, 3), 255));
        assert_eq!(
            read_features(&xu).unwrap(),
            (Array2::from_elem((2, 3), 255.0), true)
        );
        let xf = write(dir.path(), "xf.npy", &Array2::<f64>::from_elem((2, 3), 0.5));
        assert_eq!(
            read_features(&xf).unwrap(),
            (Array2::from_elem((2, 3), 0.5), false)
        );
        let y = write(dir.path(), "y.npy", &Array1::<i64>::from(vec![0, 9]));
        assert_eq!(read_labels(&y, 10).unwrap(), vec![0, 9]);
    }

    #[test]
    fn rejects_wrong_rank_dtype_labels_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let x1 = write(dir.path(), "x1.npy", &Array1::<f32>::zeros(3));
        assert!(
            read_features(&x1)
                .unwrap_err()
                .to_string()
                .contains("2 dimension")
        );
        let xi = write(dir.path(), "xi.npy", &Array2::<i64>::zeros((2, 2)));
        assert!(
            read_features(&xi)
                .unwrap_err()
                .to_string()
                .contains("dtype <i8")
        );
        let yb = write(dir.path(), "yb.npy", &Array1::<i64>::from(vec![0, 10]));
        assert!(
            read_labels(&yb, 10)
                .unwrap_err()
                .to_string()
                .contains("label 10 at index 1")
        );
        let yf = write(dir.path(), "yf.npy", &Array1::<f32>::zeros(2));
        assert!(
            read_labels(&yf, 10)
                .unwrap_err()
                .to_string()
                .contains("integers")
        );
        let big = write(dir.path(), "big.npy", &Array2::<f32>::zeros((4, 4)));
        let bytes = std::fs::read(&big).unwrap();
        std::fs::write(&big, &bytes[..bytes.len() - 4]).unwrap();
        assert!(
            read_features(&big)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn huge_claimed_header_length_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.npy", &Array2::<f32>::zeros((1, 1)));
        let mut bytes = std::fs::read(&p).unwrap();
        // Version 2 (a 4-byte header length), claiming about 660 MB.
        bytes[6] = 2;
        bytes.splice(8..10, 662_372_470u32.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let err = read_features(&p).unwrap_err().to_string();
        assert!(err.contains("header claims 662372470 bytes"), "{err}");
    }

    #[test]
    fn huge_claimed_shape_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.npy", &Array2::<f32>::zeros((1, 1)));
        let text = std::fs::read(&p).unwrap();
        let patched = String::from_utf8_lossy(&text).replace("(1, 1)", "(999999999999, 999999)");
        std::fs::write(&p, patched.as_bytes()).unwrap();
        let err = read_features(&p).unwrap_err().to_string();
        assert!(
            err.contains("claims") || err.contains("overflows") || err.contains("valid"),
            "{err}"
        );
    }
}
