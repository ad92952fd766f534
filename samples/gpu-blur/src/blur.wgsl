// Separable Gaussian blur of an 8-bit image with 1 to 4 channels, in two passes, edges clamped.
//
// Pixels are packed one per u32, channel c in bits 8c..8c+7 (unused channels are zero). `horizontal`
// blurs each row of `pixels` into `temp` (f32, unrounded); `vertical` blurs each column of `temp_in`
// (the same buffer) into `out` and rounds to 8 bits (floor(v + 0.5), clamped to 0..255). Both sum
// `weights[d + radius] * pixel[clamp(i + d)]` for d = -radius..radius in that order with fma, from 0,
// as the CPU reference does.

struct Params {
    width: u32,
    height: u32,
    radius: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> pixels: array<u32>;
@group(0) @binding(3) var<storage, read_write> temp: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> temp_in: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;

fn unpack(p: u32) -> vec4<f32> {
    return vec4<f32>(
        f32(p & 0xffu),
        f32((p >> 8u) & 0xffu),
        f32((p >> 16u) & 0xffu),
        f32(p >> 24u),
    );
}

fn pack(v: vec4<f32>) -> u32 {
    let c = vec4<u32>(clamp(floor(v + vec4<f32>(0.5)), vec4<f32>(0.0), vec4<f32>(255.0)));
    return c.x | (c.y << 8u) | (c.z << 16u) | (c.w << 24u);
}

@compute @workgroup_size(16, 16, 1)
fn horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let r = i32(params.radius);
    let last = i32(params.width) - 1;
    let row = id.y * params.width;
    var acc = vec4<f32>(0.0);
    for (var d = -r; d <= r; d++) {
        let x = u32(clamp(i32(id.x) + d, 0, last));
        acc = fma(vec4<f32>(weights[u32(d + r)]), unpack(pixels[row + x]), acc);
    }
    temp[row + id.x] = acc;
}

@compute @workgroup_size(16, 16, 1)
fn vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let r = i32(params.radius);
    let last = i32(params.height) - 1;
    var acc = vec4<f32>(0.0);
    for (var d = -r; d <= r; d++) {
        let y = u32(clamp(i32(id.y) + d, 0, last));
        acc = fma(vec4<f32>(weights[u32(d + r)]), temp_in[y * params.width + id.x], acc);
    }
    out[id.y * params.width + id.x] = pack(acc);
}
