//! Tensors: an owned shape, element type and little-endian bytes, checked to agree.

use std::fmt;

use serde::Serialize;

use super::{
    Error, Result,
    bindings::wasi::nn::tensor::{self as wit},
};

/// The type of a tensor's elements, mirroring the WIT enum `wasi:nn/tensor.tensor-type`.
///
/// [`Display`](fmt::Display) and serde give the short names `f16`, `f32`, `f64`, `bf16`, `u8`, `i32`
/// and `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TensorType {
    /// IEEE 754 half precision (2 bytes).
    F16,
    /// IEEE 754 single precision (4 bytes).
    F32,
    /// IEEE 754 double precision (8 bytes).
    F64,
    /// bfloat16: the upper half of an `f32` (2 bytes).
    BF16,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
}

impl TensorType {
    /// Bytes per element.
    pub const fn element_size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }

    /// The short name: `"f32"`, `"i64"`, `"bf16"`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::BF16 => "bf16",
            Self::U8 => "u8",
            Self::I32 => "i32",
            Self::I64 => "i64",
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<TensorType> for wit::TensorType {
    fn from(ty: TensorType) -> Self {
        match ty {
            TensorType::F16 => Self::Fp16,
            TensorType::F32 => Self::Fp32,
            TensorType::F64 => Self::Fp64,
            TensorType::BF16 => Self::Bf16,
            TensorType::U8 => Self::U8,
            TensorType::I32 => Self::I32,
            TensorType::I64 => Self::I64,
        }
    }
}

impl From<wit::TensorType> for TensorType {
    fn from(ty: wit::TensorType) -> Self {
        match ty {
            wit::TensorType::Fp16 => Self::F16,
            wit::TensorType::Fp32 => Self::F32,
            wit::TensorType::Fp64 => Self::F64,
            wit::TensorType::Bf16 => Self::BF16,
            wit::TensorType::U8 => Self::U8,
            wit::TensorType::I32 => Self::I32,
            wit::TensorType::I64 => Self::I64,
        }
    }
}

/// A Rust number type that is a tensor element type: `f32`, `f64`, `i32`, `i64` and `u8`.
///
/// Used by [`Tensor::from_values`] and [`Tensor::to_vec`]; it cannot be implemented outside the SDK.
pub trait Element: Copy + private::Sealed {
    /// The matching tensor type.
    const TYPE: TensorType;

    /// Reads one element from exactly [`TensorType::element_size`] little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;

    /// Appends the element's little-endian bytes to `out`.
    fn push_le(self, out: &mut Vec<u8>);
}

mod private {
    /// Keeps [`super::Element`] closed to the SDK's own implementations.
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $ty:ident),* $(,)?) => {$(
        impl private::Sealed for $t {}

        impl Element for $t {
            const TYPE: TensorType = TensorType::$ty;

            fn from_le(bytes: &[u8]) -> Self {
                Self::from_le_bytes(bytes.try_into().expect("one element's bytes"))
            }

            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

element!(f32 => F32, f64 => F64, i32 => I32, i64 => I64, u8 => U8);

/// A tensor held by the job: a shape, an element type and the elements' little-endian bytes in
/// row-major (C) order.
///
/// Every constructor checks that the data is exactly `product(shape) × element size` bytes, so a `Tensor`
/// is always consistent. An empty shape `[]` is a scalar (one element). Tensors are plain values: they
/// are copied into the host only when passed to [`Context::compute`](super::Context::compute).
///
/// ```
/// use netmind_sdk::nn::{Tensor, TensorType};
///
/// let t = Tensor::from_f32([2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!((t.shape(), t.ty(), t.len()), (&[2, 3][..], TensorType::F32, 6));
/// assert_eq!(t.to_f32()?[5], 6.0);
/// assert!(t.to_i64().is_err()); // the type must match
/// assert!(Tensor::from_f32([2, 2], &[1.0]).is_err()); // and the shape
/// # Ok::<(), netmind_sdk::nn::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    ty: TensorType,
    data: Vec<u8>,
}

impl Tensor {
    /// A tensor of type `ty` and `shape` over `data`, the elements' little-endian bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidArgument`](super::ErrorCode::InvalidArgument) when `data` is not exactly
    /// `product(shape) × ty.element_size()` bytes (or that size overflows).
    pub fn new(shape: impl Into<Vec<usize>>, ty: TensorType, data: Vec<u8>) -> Result<Self> {
        let shape = shape.into();
        let needed = byte_len(&shape, ty)?;
        if data.len() != needed {
            return Err(Error::invalid_argument(format!(
                "tensor data is {} bytes but shape {shape:?} of {ty} needs {needed}",
                data.len()
            )));
        }
        Ok(Self { shape, ty, data })
    }

    /// A tensor of `shape` holding `values` (row-major); the type follows from `T`.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidArgument`](super::ErrorCode::InvalidArgument) when `values.len()` is not the
    /// product of `shape`.
    pub fn from_values<T: Element>(shape: impl Into<Vec<usize>>, values: &[T]) -> Result<Self> {
        let shape = shape.into();
        let elements = element_count(&shape)?;
        if values.len() != elements {
            return Err(Error::invalid_argument(format!(
                "{} {} values given but shape {shape:?} holds {elements}",
                values.len(),
                T::TYPE
            )));
        }
        let mut data = Vec::with_capacity(values.len() * T::TYPE.element_size());
        for &value in values {
            value.push_le(&mut data);
        }
        Self::new(shape, T::TYPE, data)
    }

    /// An `f32` tensor; see [`from_values`](Self::from_values).
    ///
    /// # Errors
    ///
    /// When `values.len()` is not the product of `shape`.
    pub fn from_f32(shape: impl Into<Vec<usize>>, values: &[f32]) -> Result<Self> {
        Self::from_values(shape, values)
    }

    /// An `f64` tensor; see [`from_values`](Self::from_values).
    ///
    /// # Errors
    ///
    /// When `values.len()` is not the product of `shape`.
    pub fn from_f64(shape: impl Into<Vec<usize>>, values: &[f64]) -> Result<Self> {
        Self::from_values(shape, values)
    }

    /// An `i32` tensor; see [`from_values`](Self::from_values).
    ///
    /// # Errors
    ///
    /// When `values.len()` is not the product of `shape`.
    pub fn from_i32(shape: impl Into<Vec<usize>>, values: &[i32]) -> Result<Self> {
        Self::from_values(shape, values)
    }

    /// An `i64` tensor; see [`from_values`](Self::from_values).
    ///
    /// # Errors
    ///
    /// When `values.len()` is not the product of `shape`.
    pub fn from_i64(shape: impl Into<Vec<usize>>, values: &[i64]) -> Result<Self> {
        Self::from_values(shape, values)
    }

    /// A `u8` tensor; see [`from_values`](Self::from_values).
    ///
    /// # Errors
    ///
    /// When `values.len()` is not the product of `shape`.
    pub fn from_u8(shape: impl Into<Vec<usize>>, values: &[u8]) -> Result<Self> {
        Self::from_values(shape, values)
    }

    /// The dimensions, outermost first; empty for a scalar.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn ty(&self) -> TensorType {
        self.ty
    }

    /// The number of elements: the product of the shape (1 for a scalar).
    pub fn len(&self) -> usize {
        self.data.len() / self.ty.element_size()
    }

    /// Whether the tensor has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements' little-endian bytes, row-major.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The elements' little-endian bytes, row-major, without copying.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// The same elements under another shape with the same number of elements.
    ///
    /// # Errors
    ///
    /// When the element counts differ.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        Self::new(shape, self.ty, self.data)
    }

    /// The elements as `T`s, row-major.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidArgument`](super::ErrorCode::InvalidArgument) when the tensor's type is not
    /// `T`'s: no conversion is made.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if self.ty != T::TYPE {
            return Err(Error::invalid_argument(format!(
                "tensor {:?} holds {}, not {}",
                self.shape,
                self.ty,
                T::TYPE
            )));
        }
        Ok(self
            .data
            .chunks_exact(self.ty.element_size())
            .map(T::from_le)
            .collect())
    }

    /// The elements of an `f32` tensor; see [`to_vec`](Self::to_vec).
    ///
    /// # Errors
    ///
    /// When the tensor is not `f32`.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.to_vec()
    }

    /// The elements of an `f64` tensor; see [`to_vec`](Self::to_vec).
    ///
    /// # Errors
    ///
    /// When the tensor is not `f64`.
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        self.to_vec()
    }

    /// The elements of an `i32` tensor; see [`to_vec`](Self::to_vec).
    ///
    /// # Errors
    ///
    /// When the tensor is not `i32`.
    pub fn to_i32(&self) -> Result<Vec<i32>> {
        self.to_vec()
    }

    /// The elements of an `i64` tensor; see [`to_vec`](Self::to_vec).
    ///
    /// # Errors
    ///
    /// When the tensor is not `i64`.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.to_vec()
    }

    /// The elements of a `u8` tensor; see [`to_vec`](Self::to_vec).
    ///
    /// # Errors
    ///
    /// When the tensor is not `u8`.
    pub fn to_u8(&self) -> Result<Vec<u8>> {
        self.to_vec()
    }

    /// Parses a NumPy `.npy` file; see [`npy::decode`](crate::npy::decode).
    ///
    /// # Errors
    ///
    /// A [`npy::Error`](crate::npy::Error) naming what is wrong with the file.
    pub fn from_npy(bytes: &[u8]) -> std::result::Result<Self, crate::npy::Error> {
        crate::npy::decode(bytes)
    }

    /// The tensor as a NumPy `.npy` file (format 1.0); see [`npy::encode`](crate::npy::encode).
    pub fn to_npy(&self) -> Vec<u8> {
        crate::npy::encode(self)
    }

    /// Copies the tensor into a host tensor resource.
    pub(super) fn to_wit(&self) -> Result<wit::Tensor> {
        let dims = self
            .shape
            .iter()
            .map(|&d| {
                u32::try_from(d).map_err(|_| {
                    Error::invalid_argument(format!(
                        "tensor dimension {d} in {:?} is larger than wasi-nn allows (2^32 - 1)",
                        self.shape
                    ))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        Ok(wit::Tensor::new(&dims, self.ty.into(), &self.data))
    }

    /// Copies a host tensor resource into a `Tensor`, checking that the host's shape and data agree.
    pub(super) fn from_wit(tensor: &wit::Tensor) -> Result<Self> {
        let shape: Vec<usize> = tensor
            .dimensions()
            .into_iter()
            .map(|d| d as usize)
            .collect();
        Self::new(shape, tensor.ty().into(), tensor.data()).map_err(|e| {
            Error::new(
                super::ErrorCode::RuntimeError,
                format!("host {}", e.message),
            )
        })
    }
}

impl fmt::Debug for Tensor {
    /// Shape, type and size only: the data can be megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("ty", &self.ty)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The number of elements of `shape`: the product of its dimensions (1 for `[]`).
fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::invalid_argument(format!("tensor shape {shape:?} is too large")))
}

/// The number of bytes of a tensor of `shape` and `ty`.
pub(crate) fn byte_len(shape: &[usize], ty: TensorType) -> Result<usize> {
    element_count(shape)?
        .checked_mul(ty.element_size())
        .ok_or_else(|| Error::invalid_argument(format!("tensor shape {shape:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ErrorCode;

    #[test]
    fn element_sizes_and_names() {
        let all = [
            (TensorType::F16, 2, "f16"),
            (TensorType::F32, 4, "f32"),
            (TensorType::F64, 8, "f64"),
            (TensorType::BF16, 2, "bf16"),
            (TensorType::U8, 1, "u8"),
            (TensorType::I32, 4, "i32"),
            (TensorType::I64, 8, "i64"),
        ];
        for (ty, size, name) in all {
            assert_eq!(ty.element_size(), size);
            assert_eq!(ty.to_string(), name);
            assert_eq!(serde_json::to_string(&ty).unwrap(), format!("\"{name}\""));
            assert_eq!(TensorType::from(wit::TensorType::from(ty)), ty);
        }
    }

    #[test]
    fn typed_round_trips() {
        let f = Tensor::from_f32([2, 2], &[1.5, -2.0, 0.0, f32::MAX]).unwrap();
        assert_eq!(f.bytes()[..4], 1.5f32.to_le_bytes());
        assert_eq!(f.to_f32().unwrap(), [1.5, -2.0, 0.0, f32::MAX]);
        let d = Tensor::from_f64([3], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(d.to_f64().unwrap(), [1.0, 2.0, 3.0]);
        let i = Tensor::from_i32([1, 3], &[-1, 0, i32::MAX]).unwrap();
        assert_eq!(i.to_i32().unwrap(), [-1, 0, i32::MAX]);
        let l = Tensor::from_i64(vec![2], &[i64::MIN, 7]).unwrap();
        assert_eq!(l.to_i64().unwrap(), [i64::MIN, 7]);
        let b = Tensor::from_u8(&[4][..], &[1, 2, 3, 255]).unwrap();
        assert_eq!(b.to_u8().unwrap(), [1, 2, 3, 255]);
        assert_eq!((b.len(), b.ty(), b.shape()), (4, TensorType::U8, &[4][..]));
    }

    #[test]
    fn shape_must_match_the_values() {
        let err = Tensor::from_f32([2, 3], &[1.0; 5]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.message, "5 f32 values given but shape [2, 3] holds 6");
        let err = Tensor::new([2, 3], TensorType::F32, vec![0; 12]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wasi-nn invalid-argument: tensor data is 12 bytes but shape [2, 3] of f32 needs 24"
        );
        assert!(Tensor::new([usize::MAX, 2], TensorType::U8, vec![]).is_err());
        assert!(Tensor::new([usize::MAX / 2], TensorType::I64, vec![]).is_err());
    }

    #[test]
    fn type_must_match_the_reader() {
        let t = Tensor::from_i64([1], &[3]).unwrap();
        let err = t.to_f32().unwrap_err();
        assert_eq!(err.message, "tensor [1] holds i64, not f32");
        assert!(t.to_i32().is_err());
        assert!(t.to_u8().is_err());
    }

    #[test]
    fn scalars_and_empty_tensors() {
        let s = Tensor::from_f32(Vec::new(), &[2.5]).unwrap();
        assert_eq!((s.shape(), s.len(), s.is_empty()), (&[][..], 1, false));
        let e = Tensor::from_f32([0, 4], &[]).unwrap();
        assert_eq!((e.len(), e.is_empty()), (0, true));
        assert!(Tensor::from_f32(Vec::new(), &[]).is_err());
    }

    #[test]
    fn raw_half_precision_and_reshape() {
        let h = Tensor::new([2], TensorType::F16, vec![0, 0x3c, 0, 0xc0]).unwrap();
        assert_eq!((h.len(), h.bytes().len()), (2, 4));
        assert!(h.to_f32().is_err());
        let r = Tensor::from_i32([2, 3], &[1, 2, 3, 4, 5, 6])
            .unwrap()
            .reshape([3, 2])
            .unwrap();
        assert_eq!(r.shape(), [3, 2]);
        assert!(r.reshape([4]).is_err());
    }

    #[test]
    fn debug_omits_the_data() {
        let t = Tensor::from_u8([3], &[1, 2, 3]).unwrap();
        assert_eq!(format!("{t:?}"), "Tensor { shape: [3], ty: U8, bytes: 3 }");
    }
}
