// out[i] = 2 * a[i] + b[i] for every element; the arrays' length comes from the buffers themselves.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    // 2 workgroups of 64 cover 128 invocations; the arrays have 100 elements.
    if i < arrayLength(&out) {
        out[i] = 2.0 * a[i] + b[i];
    }
}
