// C = A × B for row-major f32 matrices: A is M×K, B is K×N, C is M×N, for any M, K, N.
//
// Each workgroup of 16×16 invocations computes a 64×64 tile of C, each invocation a 4×4 block of it:
// rows local.y + 16i and columns local.x + 16j (strided, so neighbouring invocations touch neighbouring
// addresses). A and B pass through workgroup memory 16 columns / rows at a time. Elements beyond the
// matrices' edges load as zero and are never stored. Every element of C is summed in ascending k with
// fma, starting from 0, so it matches a CPU loop of f32::mul_add.

struct Dims {
    m: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;     // rows and columns of C per workgroup
const TILE_K: u32 = 16u;   // depth of one step through K
const THREADS: u32 = 16u;  // invocations along each side of the workgroup
const BLOCK: u32 = 4u;     // rows and columns of C per invocation (TILE / THREADS)

var<workgroup> tile_a: array<f32, 1024>;  // TILE × TILE_K of A, row-major
var<workgroup> tile_b: array<f32, 1024>;  // TILE_K × TILE of B, row-major

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let row0 = group.y * TILE;
    let col0 = group.x * TILE;
    var acc: array<f32, 16>;  // BLOCK × BLOCK, zero-initialised

    let steps = (dims.k + TILE_K - 1u) / TILE_K;
    for (var step = 0u; step < steps; step++) {
        let k0 = step * TILE_K;
        // 256 invocations load the 1024 elements of each tile, 4 each.
        for (var i = 0u; i < 4u; i++) {
            let e = index + i * 256u;
            let ra = row0 + e / TILE_K;
            let ka = k0 + e % TILE_K;
            var va = 0.0;
            if ra < dims.m && ka < dims.k {
                va = a[ra * dims.k + ka];
            }
            tile_a[e] = va;
            let kb = k0 + e / TILE;
            let cb = col0 + e % TILE;
            var vb = 0.0;
            if kb < dims.k && cb < dims.n {
                vb = b[kb * dims.n + cb];
            }
            tile_b[e] = vb;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < BLOCK; i++) {
                av[i] = tile_a[(local.y + i * THREADS) * TILE_K + kk];
                bv[i] = tile_b[kk * TILE + local.x + i * THREADS];
            }
            for (var i = 0u; i < BLOCK; i++) {
                for (var j = 0u; j < BLOCK; j++) {
                    acc[i * BLOCK + j] = fma(av[i], bv[j], acc[i * BLOCK + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < BLOCK; i++) {
        let r = row0 + local.y + i * THREADS;
        for (var j = 0u; j < BLOCK; j++) {
            let col = col0 + local.x + j * THREADS;
            if r < dims.m && col < dims.n {
                c[r * dims.n + col] = acc[i * BLOCK + j];
            }
        }
    }
}
