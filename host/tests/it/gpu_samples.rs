//! Every GPU sample through the sandbox on a real adapter, compared with its CPU reference.
//!
//! WGSL lets `fma` be fused or not; lavapipe's is not, most GPUs' is. Each float reference comes both
//! ways and the GPU's result must equal one of them exactly (the blur: within one level per channel
//! after rounding to 8 bits).

use std::path::Path;

use netmind_samples_artifacts as art;
use netmind_sdk::npy::Array;

use crate::gpu::{gpu_limits, rt, serial};
use crate::{Ran, run_with};

fn write_npy(dir: &Path, name: &str, array: &Array) {
    std::fs::write(dir.join(name), array.encode()).unwrap();
}

fn read_npy(ran: &Ran, name: &str) -> Array {
    let bytes = std::fs::read(ran.out.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Array::decode(&bytes).unwrap()
}

fn run_sample(wasm: &str, input: Option<&Path>, args: &[&str]) -> Option<Ran> {
    let rt = rt()?;
    let ran = run_with(rt, wasm, args, gpu_limits(), |o| {
        o.input_dir = input.map(Path::to_path_buf);
    });
    assert!(
        ran.report.success(),
        "{:?}\n{}",
        ran.report.termination,
        String::from_utf8_lossy(&ran.report.stderr)
    );
    assert!(ran.report.gpu.dispatches > 0, "{:?}", ran.report.gpu);
    Some(ran)
}

#[test]
fn gpu_matmul_equals_the_cpu_reference_for_sizes_off_the_tile() {
    use netmind_sample_gpu_matmul as mm;
    let _s = serial();
    let (m, k, n) = (100, 70, 130);
    let a = mm::matrix(m, k, 11);
    let b = mm::matrix(k, n, 12);
    let input = tempfile::tempdir().unwrap();
    write_npy(
        input.path(),
        "a.npy",
        &Array::from_values([m, k], &a).unwrap(),
    );
    write_npy(
        input.path(),
        "b.npy",
        &Array::from_values([k, n], &b).unwrap(),
    );
    let Some(ran) = run_sample(art::GPU_MATMUL, Some(input.path()), &[]) else {
        return;
    };
    let c = read_npy(&ran, "c.npy");
    assert_eq!(c.shape(), [m, n]);
    let c: Vec<f32> = c.to_vec().unwrap();
    assert!(
        mm::Fma::BOTH
            .iter()
            .any(|&fma| mm::matmul_reference_with(&a, &b, m, k, n, fma) == c),
        "C differs from both references by {}",
        mm::max_abs_diff(&c, &mm::matmul_reference(&a, &b, m, k, n))
    );
}

#[test]
fn gpu_scan_equals_the_cpu_prefix_sum() {
    use netmind_sample_gpu_scan as scan;
    let _s = serial();
    // Three levels of blocks, and a length that is no power of two.
    let x = scan::sequence(1_500_007, 5);
    let input = tempfile::tempdir().unwrap();
    write_npy(
        input.path(),
        "x.npy",
        &Array::from_values([x.len()], &x).unwrap(),
    );
    let Some(ran) = run_sample(art::GPU_SCAN, Some(input.path()), &[]) else {
        return;
    };
    let got: Vec<u32> = read_npy(&ran, "scan.npy").to_vec().unwrap();
    let want = scan::scan_reference(&x);
    assert_eq!(got.len(), want.len());
    let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
    assert_eq!(first_bad, None, "scan differs from the CPU's");
}

#[test]
fn gpu_blur_equals_the_cpu_blur() {
    use netmind_sample_gpu_blur as blur;
    let _s = serial();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("image.png"), blur::EXAMPLE_PNG).unwrap();
    let Some(ran) = run_sample(art::GPU_BLUR, Some(input.path()), &["--sigma", "2.5"]) else {
        return;
    };
    let decode = |bytes: &[u8]| {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (
            buf,
            info.width as usize,
            info.height as usize,
            info.color_type.samples(),
        )
    };
    let (src, w, h, ch) = decode(blur::EXAMPLE_PNG);
    let (got, gw, gh, gch) = decode(&std::fs::read(ran.out.path().join("blurred.png")).unwrap());
    assert_eq!(
        (gw, gh, gch),
        (w, h, ch),
        "the blurred image changed shape or colour type"
    );
    assert_ne!(got, src, "nothing was blurred");
    let diff = blur::Fma::BOTH
        .iter()
        .map(|&fma| {
            blur::max_channel_diff(&got, &blur::blur_reference_with(&src, w, h, ch, 2.5, fma))
        })
        .min()
        .unwrap();
    assert!(
        diff <= 1,
        "the GPU blur differs from the CPU's by {diff} levels"
    );
}

#[test]
fn mandelbrot_iterations_equal_the_cpu_reference() {
    use netmind_sample_mandelbrot as mb;
    let _s = serial();
    let view = mb::View {
        width: 320,
        height: 200,
        max_iter: 300,
        center: (-0.75, 0.1),
        scale: 2.5,
    };
    let Some(ran) = run_sample(
        art::MANDELBROT,
        None,
        &[
            "--width",
            "320",
            "--height",
            "200",
            "--max-iter",
            "300",
            "--center",
            "-0.75,0.1",
            "--scale",
            "2.5",
        ],
    ) else {
        return;
    };
    let it = read_npy(&ran, "iterations.npy");
    assert_eq!(it.shape(), [200, 320]);
    let got: Vec<u32> = it.to_vec().unwrap();
    assert!(
        mb::Fma::BOTH
            .iter()
            .any(|&fma| mb::iterations_reference_with(&view, fma) == got),
        "the iteration counts differ from both references"
    );
    let png = std::fs::read(ran.out.path().join("mandelbrot.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn wgsl_run_example_equals_the_cpu() {
    use netmind_sample_wgsl_run as wr;
    let _s = serial();
    let example = Path::new(art::SAMPLES_DIR).join("wgsl-run/example");
    let Some(ran) = run_sample(art::WGSL_RUN, Some(&example), &[]) else {
        return;
    };
    let got: Vec<f32> = read_npy(&ran, "out.npy").to_vec().unwrap();
    assert_eq!(
        got,
        wr::example_reference(&wr::example_a(), &wr::example_b())
    );
}
