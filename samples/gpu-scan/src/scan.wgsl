// Inclusive prefix sum of u32 with wrapping addition, for any length, in passes:
//
// 1. `scan_blocks` scans each block of 1024 elements of `data` in place (256 invocations, 4 elements
//    each) and writes the block's total to `block_sums[block]`.
// 2. The block sums are scanned the same way (recursively, until one block is left).
// 3. `add_offsets` adds the scanned sum of all blocks before each block (`offsets[block - 1]`) to it.
//
// Each entry point reads its length from the buffer (`arrayLength`), so buffers must be exactly the
// array's size.

@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;

const WORKGROUP: u32 = 256u;
const PER_INVOCATION: u32 = 4u;
const BLOCK: u32 = 1024u;  // WORKGROUP * PER_INVOCATION

var<workgroup> partial: array<u32, 256>;

@compute @workgroup_size(256)
fn scan_blocks(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let n = arrayLength(&data);
    let base = group.x * BLOCK + local * PER_INVOCATION;

    // This invocation's 4 elements, scanned in registers (zeros past the end).
    var own: array<u32, 4>;
    var running = 0u;
    for (var j = 0u; j < PER_INVOCATION; j++) {
        if base + j < n {
            running += data[base + j];
        }
        own[j] = running;
    }

    // Inclusive scan of the 256 invocation totals (Hillis-Steele, in workgroup memory).
    partial[local] = running;
    workgroupBarrier();
    for (var offset = 1u; offset < WORKGROUP; offset *= 2u) {
        var sum = partial[local];
        if local >= offset {
            sum += partial[local - offset];
        }
        workgroupBarrier();
        partial[local] = sum;
        workgroupBarrier();
    }

    var before = 0u;
    if local > 0u {
        before = partial[local - 1u];
    }
    for (var j = 0u; j < PER_INVOCATION; j++) {
        if base + j < n {
            data[base + j] = before + own[j];
        }
    }
    if local == WORKGROUP - 1u {
        block_sums[group.x] = partial[local];
    }
}

@compute @workgroup_size(256)
fn add_offsets(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if group.x == 0u {
        return;
    }
    let n = arrayLength(&data);
    let add = offsets[group.x - 1u];
    let base = group.x * BLOCK + local * PER_INVOCATION;
    for (var j = 0u; j < PER_INVOCATION; j++) {
        if base + j < n {
            data[base + j] += add;
        }
    }
}
