//! NumPy `.npy` files as [`Tensor`]s: the usual way to hand arrays to and from Python.
//!
//! [`decode`] reads format versions 1.0, 2.0 and 3.0 of little-endian, C-ordered arrays of the dtypes
//! that have a wasi-nn tensor type:
//!
//! | dtype (`descr`) | NumPy | [`TensorType`] |
//! | --- | --- | --- |
//! | `<f2` | `float16` | [`F16`](TensorType::F16) |
//! | `<f4` | `float32` | [`F32`](TensorType::F32) |
//! | `<f8` | `float64` | [`F64`](TensorType::F64) |
//! | `\|u1` (or `<u1`) | `uint8` | [`U8`](TensorType::U8) |
//! | `<i4` | `int32` | [`I32`](TensorType::I32) |
//! | `<i8` | `int64` | [`I64`](TensorType::I64) |
//!
//! A 0-d array (shape `()`) becomes a tensor of shape `[]`. [`encode`] writes format 1.0 with the header
//! padded so the data starts at a multiple of 64 bytes, as `numpy.save` does; `bf16` tensors, which have
//! no NumPy dtype, are written as `<f4` (exactly: every bfloat16 is an f32).
//!
//! In Python: `np.save("x.npy", np.asarray(a, dtype=np.float32))` writes a file [`decode`] reads, and
//! `np.load("y.npy")` reads what [`encode`] writes.
//!
//! [`Array`] reads and writes the same files without going through a tensor type, for every fixed-size
//! numeric [`Dtype`] (`int8` to `uint64`, `float16` to `float64`): what GPU jobs use, since `uint32`,
//! WGSL's `u32`, has no wasi-nn tensor type.

use std::path::Path;

use crate::nn::{Tensor, TensorType};

pub use array::{Array, Dtype, Element};
use header::parse_header;

mod array;
mod header;

/// The first six bytes of every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What is wrong with a `.npy` file. Messages start with `npy:` and say how to fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with [`MAGIC`].
    #[error(
        "npy: not a .npy file (it does not start with \\x93NUMPY); save arrays with numpy.save"
    )]
    NotNpy,
    /// The file ends before its header does.
    #[error("npy: file is truncated: it ends inside the {0}")]
    Truncated(&'static str),
    /// A format version other than 1.0, 2.0 and 3.0.
    #[error("npy: unsupported format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)")]
    UnsupportedVersion {
        /// The major version byte.
        major: u8,
        /// The minor version byte.
        minor: u8,
    },
    /// The header dictionary could not be parsed; the message says where.
    #[error("npy: bad header: {0}")]
    Header(String),
    /// A dtype without a wasi-nn tensor type, or in big-endian byte order.
    #[error("npy: unsupported dtype '{descr}' ({reason}); {hint}")]
    UnsupportedDtype {
        /// The header's `descr`, e.g. `>f4`.
        descr: String,
        /// Why it is refused, e.g. `big-endian`.
        reason: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// The array is stored in Fortran (column-major) order.
    #[error(
        "npy: fortran_order is True (column-major data); save a C-ordered array, \
         e.g. numpy.save(path, numpy.ascontiguousarray(a))"
    )]
    FortranOrder,
    /// An [`Array`] was asked for elements of another dtype than its own.
    #[error("npy: the array's dtype is {actual}, not {expected}")]
    DtypeMismatch {
        /// The array's dtype, e.g. `i32`.
        actual: &'static str,
        /// The dtype asked for, e.g. `u32`.
        expected: &'static str,
    },
    /// The data after the header is not the size the shape and dtype call for.
    #[error("npy: data is {actual} bytes but shape {shape:?} of {dtype} needs {needed}")]
    DataLength {
        /// The bytes after the header.
        actual: usize,
        /// The bytes the shape and dtype call for.
        needed: usize,
        /// The header's shape.
        shape: Vec<usize>,
        /// The dtype without its byte-order character, e.g. `f4`.
        dtype: String,
    },
}

/// Parses a `.npy` file into a tensor.
///
/// # Errors
///
/// An [`Error`] naming the problem: no magic, a truncated file, an unknown format version, a header that
/// is not a Python dict literal with `descr`, `fortran_order` and `shape`, an unsupported or big-endian
/// dtype, Fortran order, or data that is not exactly the size the shape calls for.
pub fn decode(bytes: &[u8]) -> Result<Tensor, Error> {
    let (header, data) = split(bytes)?;
    let (ty, dtype) = dtype(&header.descr)?;
    check_len(&header.shape, ty.element_size(), dtype, data.len())?;
    Ok(Tensor::new(header.shape, ty, data.to_vec()).expect("the length was checked above"))
}

/// Splits a `.npy` file into its parsed header (C order) and the bytes after it.
fn split(bytes: &[u8]) -> Result<(header::Header, &[u8]), Error> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(Error::NotNpy)?;
    let (&[major, minor], rest) = rest
        .split_first_chunk::<2>()
        .ok_or(Error::Truncated("version"))?;
    let (header_len, rest) = match (major, minor) {
        (1, 0) => {
            let (len, rest) = rest
                .split_first_chunk::<2>()
                .ok_or(Error::Truncated("header length"))?;
            (usize::from(u16::from_le_bytes(*len)), rest)
        }
        (2 | 3, 0) => {
            let (len, rest) = rest
                .split_first_chunk::<4>()
                .ok_or(Error::Truncated("header length"))?;
            let len = usize::try_from(u32::from_le_bytes(*len))
                .map_err(|_| Error::Header("header length overflows".into()))?;
            (len, rest)
        }
        _ => return Err(Error::UnsupportedVersion { major, minor }),
    };
    if rest.len() < header_len {
        return Err(Error::Truncated("header"));
    }
    let (header, data) = rest.split_at(header_len);
    let header = std::str::from_utf8(header)
        .map_err(|_| Error::Header("the header is not ASCII/UTF-8 text".into()))?;
    let header = parse_header(header)?;
    if header.fortran_order {
        return Err(Error::FortranOrder);
    }
    Ok((header, data))
}

/// Checks that `actual` bytes of data are what `shape` of elements of `element_size` bytes need.
fn check_len(
    shape: &[usize],
    element_size: usize,
    dtype: &str,
    actual: usize,
) -> Result<(), Error> {
    let needed = shape
        .iter()
        .try_fold(element_size, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Header(format!("shape {shape:?} is too large")))?;
    if actual != needed {
        return Err(Error::DataLength {
            actual,
            needed,
            shape: shape.to_vec(),
            dtype: dtype.to_owned(),
        });
    }
    Ok(())
}

/// Writes a tensor as a `.npy` file (format 1.0; 2.0 only if the header would not fit 64 KiB).
///
/// The header is padded with spaces and a newline so the data starts at a multiple of 64 bytes, as
/// `numpy.save` does. `bf16` tensors are widened to `<f4`, which holds every bfloat16 value exactly.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let (descr, data): (&str, std::borrow::Cow<'_, [u8]>) = match tensor.ty() {
        TensorType::F16 => ("<f2", tensor.bytes().into()),
        TensorType::F32 => ("<f4", tensor.bytes().into()),
        TensorType::F64 => ("<f8", tensor.bytes().into()),
        TensorType::U8 => ("|u1", tensor.bytes().into()),
        TensorType::I32 => ("<i4", tensor.bytes().into()),
        TensorType::I64 => ("<i8", tensor.bytes().into()),
        TensorType::BF16 => ("<f4", widen_bf16(tensor.bytes()).into()),
    };
    write(descr, tensor.shape(), &data)
}

/// A `.npy` file (format 1.0; 2.0 only if the header would not fit 64 KiB) of `data` with `descr` and
/// `shape`, the header padded so the data starts at a multiple of 64 bytes.
fn write(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [] => "()".to_owned(),
        [one] => format!("({one},)"),
        dims => {
            let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Version 1.0 has a 2-byte header length, 2.0 a 4-byte one; the preamble is magic + version + length.
    let preamble = if header.len() + 64 < usize::from(u16::MAX) {
        10
    } else {
        12
    };
    let total = (preamble + header.len() + 1).next_multiple_of(64);
    header.extend(std::iter::repeat_n(
        ' ',
        total - preamble - header.len() - 1,
    ));
    header.push('\n');

    let mut out = Vec::with_capacity(total + data.len());
    out.extend_from_slice(MAGIC);
    if preamble == 10 {
        out.extend_from_slice(&[1, 0]);
        let len = u16::try_from(header.len()).expect("checked above");
        out.extend_from_slice(&len.to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        let len = u32::try_from(header.len()).expect("a header of a few rank-sized numbers");
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Reads and [`decode`]s the `.npy` file at `path`.
///
/// # Errors
///
/// [`crate::Error::Io`] when the file cannot be read, [`crate::Error::NpyFile`] naming the path when it
/// is not a usable `.npy` file.
pub fn read_file(path: impl AsRef<Path>) -> crate::Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| crate::Error::io(path, source))?;
    decode(&bytes).map_err(|source| crate::Error::NpyFile {
        path: path.to_owned(),
        source,
    })
}

/// Writes `tensor` as the `.npy` output file `name` (relative to [`OUTPUT_DIR`](crate::OUTPUT_DIR)).
///
/// # Errors
///
/// [`crate::Error::Io`] when the file cannot be written.
pub fn write_output(name: &str, tensor: &Tensor) -> crate::Result<()> {
    crate::write_output(name, &encode(tensor))
}

/// bfloat16 bytes to f32 bytes: a bfloat16 is the upper half of an f32.
fn widen_bf16(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks_exact(2)
        .flat_map(|b| [0, 0, b[0], b[1]])
        .collect()
}

/// The tensor type of a `descr`, with the dtype name without its byte-order character.
fn dtype(descr: &str) -> Result<(TensorType, &str), Error> {
    let refuse = |reason, hint| {
        Err(Error::UnsupportedDtype {
            descr: descr.to_owned(),
            reason,
            hint,
        })
    };
    let (order, name) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => descr.split_at(1),
        _ => ("", descr),
    };
    let ty = match name {
        "f2" => TensorType::F16,
        "f4" => TensorType::F32,
        "f8" => TensorType::F64,
        "u1" => TensorType::U8,
        "i4" => TensorType::I32,
        "i8" => TensorType::I64,
        "i1" => {
            return refuse(
                "int8",
                "convert it with a.astype(numpy.uint8) or numpy.int32",
            );
        }
        "b1" => return refuse("bool", "convert it with a.astype(numpy.uint8)"),
        "i2" | "u2" | "u4" | "u8" => {
            return refuse(
                "no wasi-nn tensor type",
                "convert it with a.astype(numpy.int32) or numpy.int64",
            );
        }
        _ => {
            return refuse(
                "not a wasi-nn tensor type",
                "use float16/32/64, uint8, int32 or int64",
            );
        }
    };
    match order {
        "<" | "|" => Ok((ty, name)),
        _ if ty.element_size() == 1 => Ok((ty, name)),
        ">" => refuse(
            "big-endian",
            "save little-endian arrays, e.g. a.astype('<f4')",
        ),
        _ => refuse(
            "no explicit byte order",
            "save little-endian arrays, e.g. a.astype('<f4')",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file with `header` (padded as numpy does) and `data`, in format `version`.
    fn npy(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        let header = format!("{header}\n");
        if version == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn reads_versions_1_2_and_3() {
        let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        for version in [1, 2, 3] {
            let file = npy(
                version,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                &data,
            );
            let t = decode(&file).unwrap();
            assert_eq!((t.shape(), t.ty()), (&[2, 3][..], TensorType::F32));
            assert_eq!(t.to_f32().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
    }

    #[test]
    fn reads_every_supported_dtype() {
        let cases: [(&str, TensorType); 7] = [
            ("<f2", TensorType::F16),
            ("<f4", TensorType::F32),
            ("<f8", TensorType::F64),
            ("|u1", TensorType::U8),
            ("<u1", TensorType::U8),
            ("<i4", TensorType::I32),
            ("<i8", TensorType::I64),
        ];
        for (descr, ty) in cases {
            let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}");
            let t = decode(&npy(1, &header, &vec![7; 3 * ty.element_size()])).unwrap();
            assert_eq!((t.ty(), t.shape()), (ty, &[3][..]), "{descr}");
        }
    }

    #[test]
    fn header_syntax_variants() {
        // Double quotes, keys in another order, no trailing comma, Python 2 longs, extra spaces.
        let file = npy(
            1,
            "{\"shape\": ( 2L , 1 ) , \"fortran_order\":False,\"descr\":\"<i8\"}   ",
            &[0; 16],
        );
        assert_eq!(decode(&file).unwrap().shape(), [2, 1]);
    }

    #[test]
    fn scalars_and_empty_arrays() {
        let t = decode(&npy(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
            &[0; 8],
        ))
        .unwrap();
        assert_eq!((t.shape(), t.len()), (&[][..], 1));
        let t = decode(&npy(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }",
            &[],
        ))
        .unwrap();
        assert_eq!((t.shape(), t.len()), (&[0, 5][..], 0));
    }

    #[test]
    fn round_trips_and_aligns_like_numpy() {
        let tensors = [
            Tensor::from_f32([2, 3], &[1.0, -2.0, 3.5, 0.0, 5.0, 6.0]).unwrap(),
            Tensor::from_i64([4], &[1, -2, 3, i64::MAX]).unwrap(),
            Tensor::from_u8(Vec::new(), &[9]).unwrap(),
            Tensor::from_i32([1, 1, 2], &[1, 2]).unwrap(),
            Tensor::from_f64([0], &[]).unwrap(),
            Tensor::new([2], TensorType::F16, vec![0, 0x3c, 0, 0xc0]).unwrap(),
        ];
        for t in tensors {
            let file = t.to_npy();
            let header_len = usize::from(u16::from_le_bytes([file[8], file[9]]));
            assert_eq!((10 + header_len) % 64, 0, "{t:?}");
            assert_eq!(file[9 + header_len], b'\n');
            assert_eq!(Tensor::from_npy(&file).unwrap(), t);
        }
    }

    #[test]
    fn writes_the_header_numpy_writes() {
        // What `np.save` writes for np.zeros((2, 3), np.float32), byte for byte.
        let file = encode(&Tensor::from_f32([2, 3], &[0.0; 6]).unwrap());
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        expected.extend_from_slice(format!("{header:<117}\n").as_bytes());
        expected.extend_from_slice(&[0; 24]);
        assert_eq!(file, expected);
        let one_d = encode(&Tensor::from_i64([5], &[0; 5]).unwrap());
        assert!(
            std::str::from_utf8(&one_d[10..128])
                .unwrap()
                .contains("'shape': (5,), }")
        );
        let byte = encode(&Tensor::from_u8([1], &[0]).unwrap());
        assert!(
            std::str::from_utf8(&byte[10..64])
                .unwrap()
                .contains("'descr': '|u1'")
        );
    }

    #[test]
    fn bf16_is_written_as_exact_f32() {
        let bf16 = Tensor::new([2], TensorType::BF16, vec![0x80, 0x3f, 0x20, 0xc1]).unwrap();
        let back = decode(&encode(&bf16)).unwrap();
        assert_eq!(back.to_f32().unwrap(), [1.0, -10.0]);
    }

    fn err(file: &[u8]) -> String {
        decode(file).unwrap_err().to_string()
    }

    #[test]
    fn rejects_non_npy_and_truncated_files() {
        assert_eq!(
            err(b"PK\x03\x04 a zip"),
            "npy: not a .npy file (it does not start with \\x93NUMPY); save arrays with numpy.save"
        );
        assert_eq!(
            err(b"\x93NUMPY\x01"),
            "npy: file is truncated: it ends inside the version"
        );
        assert_eq!(
            err(b"\x93NUMPY\x01\x00\x10"),
            "npy: file is truncated: it ends inside the header length"
        );
        assert_eq!(
            err(b"\x93NUMPY\x01\x00\x10\x00{'descr'"),
            "npy: file is truncated: it ends inside the header"
        );
        assert_eq!(
            err(b"\x93NUMPY\x04\x00\x10\x00"),
            "npy: unsupported format version 4.0 (1.0, 2.0 and 3.0 are supported)"
        );
    }

    #[test]
    fn rejects_big_endian_and_unsupported_dtypes() {
        let with = |descr: &str| {
            let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
            err(&npy(1, &header, &[0; 8]))
        };
        assert_eq!(
            with(">f4"),
            "npy: unsupported dtype '>f4' (big-endian); save little-endian arrays, e.g. a.astype('<f4')"
        );
        assert_eq!(
            with("|i1"),
            "npy: unsupported dtype '|i1' (int8); convert it with a.astype(numpy.uint8) or numpy.int32"
        );
        assert!(with("|b1").contains("(bool)"));
        assert!(with("<u4").contains("(no wasi-nn tensor type)"));
        assert!(with("<c8").contains("'<c8' (not a wasi-nn tensor type)"));
        assert!(with("<U10").contains("not a wasi-nn tensor type"));
        assert!(with("=f4").contains("(no explicit byte order)"));
        // One-byte types have no byte order to get wrong.
        assert!(
            decode(&npy(
                1,
                "{'descr': '>u1', 'fortran_order': False, 'shape': (1,), }",
                &[5]
            ))
            .is_ok()
        );
    }

    #[test]
    fn rejects_fortran_order() {
        let file = npy(
            1,
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            &[0; 16],
        );
        let message = err(&file);
        assert!(
            message.starts_with("npy: fortran_order is True"),
            "{message}"
        );
        assert!(message.contains("ascontiguousarray"), "{message}");
    }

    #[test]
    fn rejects_data_of_the_wrong_size() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(
            err(&npy(1, header, &[0; 12])),
            "npy: data is 12 bytes but shape [2, 3] of f4 needs 24"
        );
        assert_eq!(
            err(&npy(1, header, &[0; 28])),
            "npy: data is 28 bytes but shape [2, 3] of f4 needs 24"
        );
        let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 2), }";
        assert!(err(&npy(1, huge, &[])).contains("too large"));
    }

    #[test]
    fn rejects_bad_headers() {
        let bad = |header: &str| err(&npy(1, header, &[0; 4]));
        assert!(bad("{'descr': '<f4', 'shape': (1,), }").contains("no 'fortran_order' key"));
        assert!(bad("{'fortran_order': False, 'shape': (1,), }").contains("no 'descr' key"));
        assert!(bad("{'descr': '<f4', 'fortran_order': False}").contains("no 'shape' key"));
        assert!(
            bad("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}")
                .contains("expected a string")
        );
        assert!(
            bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}")
                .contains("non-negative")
        );
        assert!(
            bad("{'descr': '<f4', 'fortran_order': False, 'shape': 'x'}")
                .contains("'shape' is the string 'x'")
        );
        assert!(
            bad("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}")
                .contains("structured")
        );
        assert!(
            bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x")
                .contains("after the closing")
        );
        assert!(bad("'descr': '<f4'").contains("expected '{'"));
        assert!(bad("{'descr: '<f4'}").contains("expected ':'"));
    }

    #[test]
    fn reads_files_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, b"not npy").unwrap();
        let message = read_file(&path).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: npy: not a .npy file (it does not start with \\x93NUMPY); save arrays with numpy.save",
                path.display()
            )
        );
        let t = Tensor::from_i32([2], &[4, 5]).unwrap();
        std::fs::write(&path, t.to_npy()).unwrap();
        assert_eq!(read_file(&path).unwrap(), t);
    }
}
