//! naga's view of a job's WGSL: parsed, validated and reflected before any of it reaches a driver.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, ShaderStage, StorageAccess};

use super::GpuError;
use super::proto::{BindingInfo, BindingKind, Caps};

/// What the sandbox needs to know of a compute entry point.
#[derive(Debug, Clone)]
pub(crate) struct Reflection {
    pub(crate) workgroup_size: [u32; 3],
    /// Sorted by (group, binding).
    pub(crate) bindings: Vec<BindingInfo>,
}

/// Parses and validates `wgsl`, and checks that `entry` is a compute entry point that only uses what
/// the interface offers, within `caps`.
pub(crate) fn reflect(wgsl: &str, entry: &str, caps: &Caps) -> Result<Reflection, GpuError> {
    if wgsl.len() > caps.max_shader_bytes as usize {
        return Err(GpuError::QuotaExceeded(format!(
            "the shader is {} bytes; shaders are at most {} bytes",
            wgsl.len(),
            caps.max_shader_bytes
        )));
    }
    let module = naga::front::wgsl::parse_str(wgsl)
        .map_err(|e| GpuError::InvalidShader(e.emit_to_string(wgsl).trim_end().to_owned()))?;
    let info = Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .map_err(|e| GpuError::InvalidShader(e.emit_to_string(wgsl).trim_end().to_owned()))?;
    let Some((index, ep)) = module
        .entry_points
        .iter()
        .enumerate()
        .find(|(_, ep)| ep.name == entry)
    else {
        let names: Vec<_> = module
            .entry_points
            .iter()
            .map(|ep| format!("`{}` ({})", ep.name, stage_name(ep.stage)))
            .collect();
        let listed = if names.is_empty() {
            "it has none".to_owned()
        } else {
            format!("it has {}", names.join(", "))
        };
        return Err(GpuError::BindingMismatch(format!(
            "the shader has no entry point `{entry}`; {listed}"
        )));
    };
    if ep.stage != ShaderStage::Compute {
        return Err(GpuError::Unsupported(format!(
            "`{entry}` is a {} shader; only @compute entry points can run here",
            stage_name(ep.stage)
        )));
    }
    if !module.overrides.is_empty() || ep.workgroup_size_overrides.is_some() {
        return Err(GpuError::Unsupported(
            "pipeline-overridable constants (`override`) are not supported; use `const` values"
                .into(),
        ));
    }
    let [x, y, z] = ep.workgroup_size;
    let [mx, my, mz] = caps.max_workgroup_size;
    if x > mx || y > my || z > mz {
        return Err(GpuError::LimitExceeded(format!(
            "@workgroup_size({x}, {y}, {z}) is larger than this device allows ({mx}, {my}, {mz})"
        )));
    }
    let invocations = u64::from(x) * u64::from(y) * u64::from(z);
    if invocations > u64::from(caps.max_invocations_per_workgroup) {
        return Err(GpuError::LimitExceeded(format!(
            "@workgroup_size({x}, {y}, {z}) is {invocations} invocations; this device allows {} per workgroup",
            caps.max_invocations_per_workgroup
        )));
    }

    let used = info.get_entry_point(index);
    check_memory(&module, &used_globals(&module, used), caps)?;
    let mut bindings = Vec::new();
    for (handle, var) in module.global_variables.iter() {
        if used[handle].is_empty() {
            continue;
        }
        let name = var.name.as_deref().unwrap_or("<unnamed>");
        let kind = match var.space {
            AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => {
                BindingKind::StorageReadWrite
            }
            AddressSpace::Storage { .. } => BindingKind::StorageRead,
            AddressSpace::Uniform => BindingKind::Uniform,
            AddressSpace::Function | AddressSpace::Private | AddressSpace::WorkGroup => continue,
            AddressSpace::Handle => {
                return Err(GpuError::Unsupported(format!(
                    "`{name}` is a texture or sampler; only storage and uniform buffers can be bound"
                )));
            }
            other => {
                return Err(GpuError::Unsupported(format!(
                    "`{name}` is in the {other:?} address space; only storage and uniform buffers can be bound"
                )));
            }
        };
        let Some(rb) = &var.binding else {
            return Err(GpuError::InvalidShader(format!(
                "`{name}` has no @group/@binding"
            )));
        };
        if rb.group >= caps.max_bind_groups {
            return Err(GpuError::LimitExceeded(format!(
                "`{name}` is in @group({}); this device allows groups 0 to {}",
                rb.group,
                caps.max_bind_groups.saturating_sub(1)
            )));
        }
        let min_size = module.types[var.ty]
            .inner
            .try_size(module.to_ctx())
            .ok_or_else(|| GpuError::LimitExceeded(format!("`{name}`'s type is too large")))?;
        bindings.push(BindingInfo {
            group: rb.group,
            binding: rb.binding,
            kind,
            min_size: u64::from(min_size),
        });
    }
    bindings.sort_by_key(|b| (b.group, b.binding));
    Ok(Reflection {
        workgroup_size: ep.workgroup_size,
        bindings,
    })
}

fn used_globals(
    module: &naga::Module,
    used: &naga::valid::FunctionInfo,
) -> Vec<naga::Handle<naga::GlobalVariable>> {
    module
        .global_variables
        .iter()
        .filter(|(h, _)| !used[*h].is_empty())
        .map(|(h, _)| h)
        .collect()
}

/// WGSL's limits on per-invocation memory (8 KiB of `private` and of `function` variables), and the
/// device's on `workgroup` memory: nothing checks the latter before the driver, where a shader over it
/// is undefined behaviour.
fn check_memory(
    module: &naga::Module,
    used: &[naga::Handle<naga::GlobalVariable>],
    caps: &Caps,
) -> Result<(), GpuError> {
    const PER_INVOCATION: u64 = 8192;
    let size = |ty: naga::Handle<naga::Type>| {
        module.types[ty]
            .inner
            .try_size(module.to_ctx())
            .map_or(u64::MAX, u64::from)
    };
    let (mut workgroup, mut private) = (0u64, 0u64);
    for &h in used {
        let var = &module.global_variables[h];
        match var.space {
            AddressSpace::WorkGroup => workgroup = workgroup.saturating_add(size(var.ty)),
            AddressSpace::Private => private = private.saturating_add(size(var.ty)),
            _ => {}
        }
    }
    if workgroup > u64::from(caps.max_workgroup_storage_size) {
        return Err(GpuError::LimitExceeded(format!(
            "the entry point uses {workgroup} bytes of `var<workgroup>` memory; this device allows {}",
            caps.max_workgroup_storage_size
        )));
    }
    if private > PER_INVOCATION {
        return Err(GpuError::LimitExceeded(format!(
            "the entry point uses {private} bytes of `var<private>` memory; WGSL allows {PER_INVOCATION}"
        )));
    }
    let functions = module
        .functions
        .iter()
        .map(|(_, f)| f)
        .chain(module.entry_points.iter().map(|ep| &ep.function));
    for f in functions {
        let local = f
            .local_variables
            .iter()
            .fold(0u64, |acc, (_, v)| acc.saturating_add(size(v.ty)));
        if local > PER_INVOCATION {
            let name = f.name.as_deref().unwrap_or("a function");
            return Err(GpuError::LimitExceeded(format!(
                "`{name}` has {local} bytes of local variables; WGSL allows {PER_INVOCATION}"
            )));
        }
    }
    Ok(())
}

fn stage_name(stage: ShaderStage) -> &'static str {
    match stage {
        ShaderStage::Vertex => "@vertex",
        ShaderStage::Fragment => "@fragment",
        ShaderStage::Compute => "@compute",
        _ => "non-compute",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn caps() -> Caps {
        Caps {
            max_buffer_size: 1 << 28,
            max_total_bytes: 1 << 30,
            max_buffers: 16,
            max_pipelines: 4,
            max_dispatches: 100,
            max_dispatches_per_submit: 10,
            max_workgroup_size: [256, 256, 64],
            max_invocations_per_workgroup: 256,
            max_workgroups_per_dimension: 65535,
            max_storage_binding_size: 1 << 27,
            max_uniform_binding_size: 1 << 16,
            min_binding_offset_alignment: 256,
            max_bind_groups: 4,
            max_workgroup_storage_size: 16384,
            gpu_time_budget_ms: 1000,
            max_shader_bytes: 4096,
        }
    }

    const ADD: &str = "
        struct P { n: u32 }
        @group(0) @binding(0) var<storage, read> a: array<f32>;
        @group(0) @binding(1) var<storage, read_write> out: array<f32>;
        @group(1) @binding(0) var<uniform> p: P;
        @group(0) @binding(5) var<storage, read> unused: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if id.x < p.n { out[id.x] = a[id.x] * 2.0; }
        }
        @vertex fn vs() -> @builtin(position) vec4<f32> { return vec4<f32>(0.0); }
    ";

    #[test]
    fn reflects_used_bindings_only_in_order() {
        let r = reflect(ADD, "main", &caps()).unwrap();
        assert_eq!(r.workgroup_size, [64, 1, 1]);
        let got: Vec<_> = r
            .bindings
            .iter()
            .map(|b| (b.group, b.binding, b.kind, b.min_size))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0, BindingKind::StorageRead, 4),
                (0, 1, BindingKind::StorageReadWrite, 4),
                (1, 0, BindingKind::Uniform, 4),
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_plain_compute() {
        let c = caps();
        let err = reflect(ADD, "vs", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::Unsupported(m) if m.contains("@vertex")),
            "{err}"
        );
        let err = reflect(ADD, "nope", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::BindingMismatch(m) if m.contains("`main` (@compute)")),
            "{err}"
        );
        let err = reflect("fn main( {", "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::InvalidShader(m) if m.contains("expected")),
            "{err}"
        );
        let tex = "@group(0) @binding(0) var t: texture_2d<f32>;
            @compute @workgroup_size(1) fn main() { _ = textureDimensions(t); }";
        let err = reflect(tex, "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::Unsupported(m) if m.contains("texture")),
            "{err}"
        );
        let big = "@compute @workgroup_size(1024, 1024) fn main() {}";
        let err = reflect(big, "main", &c).unwrap_err();
        assert!(matches!(&err, GpuError::LimitExceeded(_)), "{err}");
        let err = reflect(&" ".repeat(5000), "main", &c).unwrap_err();
        assert!(matches!(&err, GpuError::QuotaExceeded(_)), "{err}");
        let wg = "var<workgroup> w: array<u32, 100000>;
            @compute @workgroup_size(1) fn main() { w[0] = 1u; }";
        let err = reflect(wg, "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::LimitExceeded(m) if m.contains("workgroup")),
            "{err}"
        );
        let private = "var<private> p: array<u32, 100000>;
            @compute @workgroup_size(1) fn main() { p[0] = 1u; }";
        let err = reflect(private, "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::LimitExceeded(m) if m.contains("private")),
            "{err}"
        );
        let local =
            "@compute @workgroup_size(1) fn main() { var l: array<u32, 100000>; l[1] = 2u; }";
        let err = reflect(local, "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::LimitExceeded(m) if m.contains("local")),
            "{err}"
        );
        let ov = "override n: u32 = 4u; @compute @workgroup_size(1) fn main() { _ = n; }";
        let err = reflect(ov, "main", &c).unwrap_err();
        assert!(
            matches!(&err, GpuError::Unsupported(m) if m.contains("override")),
            "{err}"
        );
    }
}
