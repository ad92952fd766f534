//! Models the host operator registers by name: loaded once, shared by every job.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backend::{Backend, Model};
use super::{NnError, Target};

/// A model a job used, as recorded in its report and receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelUse {
    /// The registered name, for `load-by-name`; `None` for bytes the job passed.
    pub name: Option<String>,
    /// SHA-256 of the model bytes, hex.
    pub sha256: String,
    /// Size of the model bytes.
    pub bytes: u64,
    /// The backend that ran it.
    pub backend: String,
    /// Microseconds spent loading it; `0` for a registered model that was already warm.
    pub load_us: u64,
}

impl ModelUse {
    pub(crate) fn new(
        name: Option<&str>,
        bytes: &[u8],
        backend: &dyn Backend,
        started: Instant,
    ) -> Self {
        Self {
            name: name.map(ToString::to_string),
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            backend: backend.info().name,
            load_us: started.elapsed().as_micros() as u64,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) model: Arc<dyn Model>,
    pub(crate) usage: ModelUse,
}

#[derive(Default)]
pub(crate) struct Registry {
    models: RwLock<BTreeMap<String, Registered>>,
}

impl Registry {
    pub(crate) fn register(
        &self,
        name: &str,
        bytes: &[u8],
        backend: &Arc<dyn Backend>,
        target: Target,
    ) -> Result<ModelUse, NnError> {
        if name.is_empty() {
            return Err(NnError::invalid(
                "a registered model needs a non-empty name",
            ));
        }
        let started = Instant::now();
        let model = backend.load(bytes, target)?;
        let usage = ModelUse::new(Some(name), bytes, backend.as_ref(), started);
        let entry = Registered {
            model,
            usage: usage.clone(),
        };
        self.models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), entry);
        Ok(usage)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Registered> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    pub(crate) fn list(&self) -> Vec<ModelUse> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|r| r.usage.clone())
            .collect()
    }
}
