//! Tensors as they cross the sandbox boundary: dimensions, an element type and little-endian bytes.

use std::fmt;

use super::NnError;

/// The most dimensions a tensor may have.
pub const MAX_RANK: usize = 16;

/// Element types (`wasi:nn/tensor.tensor-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// IEEE 754 half precision.
    F16,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
    /// bfloat16.
    Bf16,
    /// Unsigned byte.
    U8,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
}

impl TensorType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }

    /// The name numpy gives the type, as job authors know it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::Bf16 => "bf16",
            Self::U8 => "u8",
            Self::I32 => "i32",
            Self::I64 => "i64",
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tensor: row-major, little-endian element bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Dimensions; `[]` is a scalar.
    pub dims: Vec<u32>,
    /// Element type.
    pub ty: TensorType,
    /// `product(dims) × ty.size()` bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({} {:?}, {} bytes)",
            self.ty,
            self.dims,
            self.data.len()
        )
    }
}

impl Tensor {
    /// A tensor of `f32`s.
    pub fn from_f32(dims: &[u32], values: &[f32]) -> Self {
        Self {
            dims: dims.to_vec(),
            ty: TensorType::F32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// A tensor of `i64`s.
    pub fn from_i64(dims: &[u32], values: &[i64]) -> Self {
        Self {
            dims: dims.to_vec(),
            ty: TensorType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The elements as `f32`s, when the tensor holds `f32`s.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.ty == TensorType::F32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    }

    /// The elements as `i64`s, when the tensor holds `i64`s.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        (self.ty == TensorType::I64).then(|| {
            self.data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        })
    }

    /// The number of elements the dimensions declare, or `None` on overflow.
    pub fn element_count(dims: &[u32]) -> Option<u64> {
        dims.iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(*d)))
    }

    /// The dimensions as `usize`s.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().map(|d| *d as usize).collect()
    }

    /// Checks that the data is exactly as long as the dimensions and type say,
    /// and at most `max_bytes` long.
    pub fn validate(&self, max_bytes: u64) -> Result<(), NnError> {
        if self.dims.len() > MAX_RANK {
            return Err(NnError::invalid(format!(
                "a tensor has at most {MAX_RANK} dimensions, not {}",
                self.dims.len()
            )));
        }
        let declared = Self::element_count(&self.dims)
            .and_then(|n| n.checked_mul(self.ty.size() as u64))
            .ok_or_else(|| {
                NnError::new(
                    super::ErrorCode::TooLarge,
                    format!("tensor dimensions {:?} overflow", self.dims),
                )
            })?;
        if declared > max_bytes {
            return Err(NnError::new(
                super::ErrorCode::TooLarge,
                format!(
                    "a {} tensor of dimensions {:?} takes {} bytes; this host's limit per tensor is {}",
                    self.ty,
                    self.dims,
                    declared,
                    crate::limits::bytes(max_bytes)
                ),
            ));
        }
        if declared != self.data.len() as u64 {
            return Err(NnError::invalid(format!(
                "a {} tensor of dimensions {:?} needs {declared} bytes of data but was given {}",
                self.ty,
                self.dims,
                self.data.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ErrorCode;

    #[test]
    fn validate_checks_length_overflow_and_limit() {
        let t = Tensor::from_f32(&[2, 3], &[0.0; 6]);
        assert!(t.validate(1 << 20).is_ok());
        let short = Tensor {
            data: vec![0; 20],
            ..t.clone()
        };
        let e = short.validate(1 << 20).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("needs 24 bytes"), "{e}");
        let huge = Tensor {
            dims: vec![u32::MAX, u32::MAX, u32::MAX],
            ..t.clone()
        };
        assert_eq!(
            huge.validate(u64::MAX).unwrap_err().code,
            ErrorCode::TooLarge
        );
        let big = Tensor {
            dims: vec![1 << 20, 1 << 10],
            ..t
        };
        let e = big.validate(1 << 30).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
        assert!(e.message.contains("limit per tensor is 1.0 GiB"), "{e}");
        let deep = Tensor::from_f32(&[1; 17], &[0.0]);
        let e = deep.validate(1 << 30).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("at most 16 dimensions, not 17"), "{e}");
    }

    #[test]
    fn typed_views_round_trip() {
        let t = Tensor::from_i64(&[3], &[-1, 0, 7]);
        assert_eq!(t.to_i64().unwrap(), vec![-1, 0, 7]);
        assert!(t.to_f32().is_none());
        assert_eq!(Tensor::from_f32(&[1], &[1.5]).to_f32().unwrap(), vec![1.5]);
    }
}
