//! [`Array`]: a `.npy` array of any fixed-size numeric dtype, kept as bytes (what GPU buffers hold).

use std::{fmt, path::Path};

use bytemuck::Pod;
use serde::Serialize;

use super::Error;

/// The element type of an [`Array`]: NumPy's fixed-size numeric dtypes, little-endian.
///
/// [`Display`](fmt::Display) and serde give the short name (`f32`, `u32`, ...); [`Dtype::from_name`]
/// also takes NumPy's names (`float32`, `uint32`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Dtype {
    /// `int8` (`|i1`).
    I8,
    /// `uint8` (`|u1`).
    U8,
    /// `int16` (`<i2`).
    I16,
    /// `uint16` (`<u2`).
    U16,
    /// `int32` (`<i4`).
    I32,
    /// `uint32` (`<u4`).
    U32,
    /// `int64` (`<i8`).
    I64,
    /// `uint64` (`<u8`).
    U64,
    /// `float16` (`<f2`), as raw IEEE half-precision bits.
    F16,
    /// `float32` (`<f4`).
    F32,
    /// `float64` (`<f8`).
    F64,
}

impl Dtype {
    /// Every dtype, smallest first.
    pub const ALL: [Self; 11] = [
        Self::I8,
        Self::U8,
        Self::I16,
        Self::U16,
        Self::F16,
        Self::I32,
        Self::U32,
        Self::F32,
        Self::I64,
        Self::U64,
        Self::F64,
    ];

    /// The size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 | Self::F16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }

    /// The short name: `i8`, `u8`, `i16`, `u16`, `i32`, `u32`, `i64`, `u64`, `f16`, `f32` or `f64`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::I8 => "i8",
            Self::U8 => "u8",
            Self::I16 => "i16",
            Self::U16 => "u16",
            Self::I32 => "i32",
            Self::U32 => "u32",
            Self::I64 => "i64",
            Self::U64 => "u64",
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }

    /// NumPy's name: `int8`, `uint8`, ..., `float16`, `float32`, `float64`.
    pub const fn numpy_name(self) -> &'static str {
        match self {
            Self::I8 => "int8",
            Self::U8 => "uint8",
            Self::I16 => "int16",
            Self::U16 => "uint16",
            Self::I32 => "int32",
            Self::U32 => "uint32",
            Self::I64 => "int64",
            Self::U64 => "uint64",
            Self::F16 => "float16",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    /// The `.npy` header's `descr`, e.g. `<f4` or `|u1`.
    pub const fn descr(self) -> &'static str {
        match self {
            Self::I8 => "|i1",
            Self::U8 => "|u1",
            Self::I16 => "<i2",
            Self::U16 => "<u2",
            Self::I32 => "<i4",
            Self::U32 => "<u4",
            Self::I64 => "<i8",
            Self::U64 => "<u8",
            Self::F16 => "<f2",
            Self::F32 => "<f4",
            Self::F64 => "<f8",
        }
    }

    /// The dtype named `name`: a short name (`f32`) or NumPy's (`float32`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == name || d.numpy_name() == name)
    }

    /// The dtype of a `.npy` `descr`.
    fn from_descr(descr: &str) -> Result<Self, Error> {
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
        let Some(dtype) = Self::ALL.into_iter().find(|d| &d.descr()[1..] == name) else {
            return refuse(
                "not a fixed-size numeric dtype",
                "use an int, uint or float dtype of 8 to 64 bits",
            );
        };
        match order {
            "<" | "|" => Ok(dtype),
            _ if dtype.size() == 1 => Ok(dtype),
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
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that is the element type of an [`Array`] of [`Element::DTYPE`]. Implemented for the
/// primitive integers and floats of 8 to 64 bits; it cannot be implemented outside the SDK.
pub trait Element: Pod + private::Sealed {
    /// The dtype of arrays of this type.
    const DTYPE: Dtype;
}

mod private {
    /// Keeps [`super::Element`] closed to the SDK's own implementations.
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $dtype:ident),* $(,)?) => {
        $(
            impl private::Sealed for $t {}
            impl Element for $t {
                const DTYPE: Dtype = Dtype::$dtype;
            }
        )*
    };
}

element!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64,
    f32 => F32, f64 => F64);

/// An n-dimensional array of any [`Dtype`], row-major (C order), its elements as little-endian bytes.
///
/// Unlike [`Tensor`](crate::nn::Tensor), which holds only what wasi-nn has a type for, an `Array` holds
/// every fixed-size numeric dtype, `uint32` included: the natural currency of GPU buffers
/// ([`Buffer::from_bytes`](crate::gpu::Buffer::from_bytes) and [`Array::bytes`]).
///
/// ```
/// use netmind_sdk::npy::{Array, Dtype};
///
/// let counts = Array::from_values([2, 2], &[1u32, 2, 3, 4]).unwrap();
/// let file = counts.encode(); // what numpy.load reads as a (2, 2) uint32 array
/// let back = Array::decode(&file).unwrap();
/// assert_eq!(back.dtype(), Dtype::U32);
/// assert_eq!(back.to_vec::<u32>().unwrap(), [1, 2, 3, 4]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Array {
    shape: Vec<usize>,
    dtype: Dtype,
    data: Vec<u8>,
}

impl Array {
    /// An array of `shape` and `dtype` holding `data`, little-endian bytes in C order.
    ///
    /// # Errors
    ///
    /// [`Error::DataLength`] when `data` is not exactly the size `shape` calls for.
    pub fn new(shape: impl Into<Vec<usize>>, dtype: Dtype, data: Vec<u8>) -> Result<Self, Error> {
        let shape = shape.into();
        super::check_len(&shape, dtype.size(), dtype.name(), data.len())?;
        Ok(Self { shape, dtype, data })
    }

    /// An array of `shape` holding `values`.
    ///
    /// # Errors
    ///
    /// [`Error::DataLength`] when there are not exactly as many values as `shape` calls for.
    pub fn from_values<T: Element>(
        shape: impl Into<Vec<usize>>,
        values: &[T],
    ) -> Result<Self, Error> {
        Self::new(shape, T::DTYPE, bytemuck::cast_slice(values).to_vec())
    }

    /// An array of `shape` and `dtype`, all zeros.
    ///
    /// # Errors
    ///
    /// [`Error::Header`] when the shape's size overflows.
    pub fn zeros(shape: impl Into<Vec<usize>>, dtype: Dtype) -> Result<Self, Error> {
        let shape = shape.into();
        let len = shape
            .iter()
            .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
            .ok_or_else(|| Error::Header(format!("shape {shape:?} is too large")))?;
        Ok(Self {
            shape,
            dtype,
            data: vec![0; len],
        })
    }

    /// The dimensions; empty for a 0-d array.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The number of elements (the product of the dimensions; 1 for a 0-d array).
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The elements as little-endian bytes, without copying.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// The same elements under another shape.
    ///
    /// # Errors
    ///
    /// [`Error::DataLength`] when `shape` holds a different number of elements.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self, Error> {
        Self::new(shape, self.dtype, self.data)
    }

    /// The elements as `T`, which must be the array's dtype.
    ///
    /// # Errors
    ///
    /// [`Error::DtypeMismatch`] when the array's dtype is not `T`'s.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, Error> {
        if self.dtype != T::DTYPE {
            return Err(Error::DtypeMismatch {
                actual: self.dtype.name(),
                expected: T::DTYPE.name(),
            });
        }
        let mut values = vec![T::zeroed(); self.len()];
        bytemuck::cast_slice_mut::<T, u8>(&mut values).copy_from_slice(&self.data);
        Ok(values)
    }

    /// Parses a `.npy` file (format 1.0, 2.0 or 3.0) of any [`Dtype`].
    ///
    /// # Errors
    ///
    /// As [`decode`](super::decode), except that every [`Dtype`] is accepted.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (header, data) = super::split(bytes)?;
        let dtype = Dtype::from_descr(&header.descr)?;
        Self::new(header.shape, dtype, data.to_vec())
    }

    /// The array as a `.npy` file, written as `numpy.save` does.
    pub fn encode(&self) -> Vec<u8> {
        super::write(self.dtype.descr(), &self.shape, &self.data)
    }

    /// Reads and [`decode`](Self::decode)s the `.npy` file at `path`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] when the file cannot be read, [`crate::Error::NpyFile`] naming the path when
    /// it is not a usable `.npy` file.
    pub fn read_file(path: impl AsRef<Path>) -> crate::Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| crate::Error::io(path, source))?;
        Self::decode(&bytes).map_err(|source| crate::Error::NpyFile {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the array as the `.npy` output file `name` (relative to
    /// [`OUTPUT_DIR`](crate::OUTPUT_DIR)).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] when the file cannot be written.
    pub fn write_output(&self, name: &str) -> crate::Result<()> {
        crate::write_output(name, &self.encode())
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips() {
        for dtype in Dtype::ALL {
            let data: Vec<u8> = (0..3 * dtype.size()).map(|i| i as u8).collect();
            let array = Array::new([3], dtype, data).unwrap();
            let file = array.encode();
            let header_len = usize::from(u16::from_le_bytes([file[8], file[9]]));
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(Array::decode(&file).unwrap(), array, "{dtype}");
            assert_eq!(Dtype::from_name(dtype.name()), Some(dtype));
            assert_eq!(Dtype::from_name(dtype.numpy_name()), Some(dtype));
        }
        assert_eq!(Dtype::from_name("float"), None);
    }

    #[test]
    fn reads_what_tensors_write_and_the_other_way() {
        let tensor = crate::nn::Tensor::from_f32([2], &[1.5, -2.0]).unwrap();
        let array = Array::decode(&tensor.to_npy()).unwrap();
        assert_eq!(array.to_vec::<f32>().unwrap(), [1.5, -2.0]);
        assert_eq!(array.encode(), tensor.to_npy());
        // A uint32 array has no tensor type, but is an Array.
        let u = Array::from_values([2], &[7u32, 8]).unwrap().encode();
        assert!(super::super::decode(&u).is_err());
        assert_eq!(Array::decode(&u).unwrap().dtype(), Dtype::U32);
    }

    #[test]
    fn typed_access_checks_the_dtype() {
        let a = Array::from_values([2, 2], &[1i32, -2, 3, 4]).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.to_vec::<i32>().unwrap(), [1, -2, 3, 4]);
        assert_eq!(
            a.to_vec::<u32>().unwrap_err().to_string(),
            "npy: the array's dtype is i32, not u32"
        );
        let a = a.reshape([4]).unwrap();
        assert_eq!(a.shape(), [4]);
        assert!(a.reshape([3]).is_err());
        let z = Array::zeros([2, 3], Dtype::F64).unwrap();
        assert_eq!((z.len(), z.bytes().len()), (6, 48));
        assert!(Array::zeros([usize::MAX, 2], Dtype::U8).is_err());
        assert_eq!(
            Array::from_values([3], &[1u8, 2]).unwrap_err().to_string(),
            "npy: data is 2 bytes but shape [3] of u8 needs 3"
        );
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let with = |descr: &str| {
            let mut file = Array::from_values([1], &[0u64]).unwrap().encode();
            let at = file.windows(3).position(|w| w == b"<u8").unwrap();
            file.splice(at..at + 3, descr.bytes());
            Array::decode(&file).unwrap_err().to_string()
        };
        assert!(with(">u8").contains("big-endian"), "{}", with(">u8"));
        assert!(with("<c8").contains("not a fixed-size numeric dtype"));
        assert!(with("|b1").contains("not a fixed-size numeric dtype"));
        assert!(with("=u8").contains("no explicit byte order"));
    }
}
