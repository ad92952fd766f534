// C = A × B, f32, row-major: A is M×K, B is K×N. Workgroups of 16×16 invocations compute a 16×64 tile
// of C, each invocation a 1×4 strip, staging 16×16 tiles of A and 16×64 tiles of B in workgroup memory.
// Dispatch (ceil(N / 64), ceil(M / 16), 1).
struct Dims { m: u32, k: u32, n: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let row = wg.y * 16u + l.y;
    let col0 = wg.x * 64u + l.x * 4u;
    var acc = vec4<f32>(0.0);
    let tiles = (dims.k + 15u) / 16u;
    for (var t = 0u; t < tiles; t++) {
        let ka = t * 16u + l.x;
        ta[l.y][l.x] = select(0.0, a[row * dims.k + ka], row < dims.m && ka < dims.k);
        let kb = t * 16u + l.y;
        for (var j = 0u; j < 4u; j++) {
            let cb = wg.x * 64u + l.x + j * 16u;
            tb[l.y][l.x + j * 16u] = select(0.0, b[kb * dims.n + cb], kb < dims.k && cb < dims.n);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let av = ta[l.y][kk];
            let base = l.x * 4u;
            acc += av * vec4<f32>(tb[kk][base], tb[kk][base + 1u], tb[kk][base + 2u], tb[kk][base + 3u]);
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + j;
        if row < dims.m && col < dims.n {
            c[row * dims.n + col] = acc[j];
        }
    }
}
