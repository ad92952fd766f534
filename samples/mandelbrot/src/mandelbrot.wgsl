// Escape-time iteration counts of the Mandelbrot set, one invocation per pixel.
//
// The point of pixel (x, y) is (xs[x], ys[y]), computed on the CPU, so the shader does no coordinate
// arithmetic of its own. Each step is written with explicit fma so that no compiler can fuse it
// differently: x' = fma(x, x, fma(-y, y, cx)), y' = fma(2x, y, cy), escape when fma(x, x, y*y) > 4.
// A CPU loop of f32::mul_add in the same order gets the same counts wherever the GPU fuses fma.

struct Params {
    width: u32,
    height: u32,
    max_iter: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> ys: array<f32>;
@group(0) @binding(3) var<storage, read_write> iterations: array<u32>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let cx = xs[id.x];
    let cy = ys[id.y];
    var x = 0.0;
    var y = 0.0;
    var i = 0u;
    while i < params.max_iter {
        if fma(x, x, y * y) > 4.0 {
            break;
        }
        let nx = fma(x, x, fma(-y, y, cx));
        y = fma(2.0 * x, y, cy);
        x = nx;
        i += 1u;
    }
    iterations[id.y * params.width + id.x] = i;
}
