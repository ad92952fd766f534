//! The digits sample: classifies held-out 8×8 handwritten digits with an ONNX MLP through wasi-nn and
//! reports the accuracy.
//!
//! Loads `/assets/digits.onnx` (or `--model-name NAME`, a model the host registered), runs it on
//! `/assets/test-pixels.npy` (f32 `[N, 64]`) in batches of `--batch B` (default 64) and compares the
//! predicted digits (output `label`, else the argmax of `probabilities`) with
//! `/assets/test-labels.npy` (i64 `[N]`). Any `/input/*.npy` digits are classified too.
//! `samples/digits/train.py` trains the model and writes the assets.
//!
//! Run with: `netmind run samples/digits`

use std::{collections::BTreeMap, process::ExitCode};

use netmind_sdk::{
    Error, Result,
    nn::{Context, Encoding, Graph, Outputs, Target, Tensor, TensorType},
};
use serde::Serialize;

/// The model, in the bundle's assets.
const MODEL: &str = "digits.onnx";
/// The held-out pixels, f32 `[N, 64]`, in the bundle's assets.
const PIXELS: &str = "test-pixels.npy";
/// The held-out labels, i64 `[N]`, in the bundle's assets.
const LABELS: &str = "test-labels.npy";
/// The accuracy onnxruntime gave when `train.py` exported the model (4 decimals).
const EXPECTED: &str = "expected-accuracy.txt";
/// Pixels per image.
const FEATURES: usize = 64;
/// Images per `compute` call unless `--batch` says otherwise.
const DEFAULT_BATCH: usize = 64;
/// The usage line, shown with argument errors.
const USAGE: &str = "usage: digits [--model-name NAME] [--batch B] [--target cpu|gpu]";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    model_name: Option<String>,
    batch: usize,
    target: Target,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    /// `digits.onnx` or `name:<registered name>`.
    model: String,
    accuracy: f64,
    n: usize,
    correct: usize,
    /// The training script's accuracy, from `expected-accuracy.txt`, when the bundle has it.
    expected_accuracy: Option<f64>,
    /// `confusion[true digit][predicted digit]` = count.
    confusion: Vec<Vec<u64>>,
    /// How many `/input/*.npy` digits were classified (see `predictions.json`).
    input_digits: usize,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| run(&parse_args(&netmind_sdk::args())?))
}

fn run(options: &Options) -> Result<Report> {
    let (graph, model) = match &options.model_name {
        Some(name) => (Graph::load_by_name(name)?, format!("name:{name}")),
        None => {
            let bytes = netmind_sdk::read_asset(MODEL)?;
            (
                Graph::load(&bytes, Encoding::Onnx, options.target)?,
                MODEL.to_owned(),
            )
        }
    };
    let mut context = graph.context()?;

    let pixels = netmind_sdk::npy::read_file(netmind_sdk::asset_path(PIXELS))?;
    let pixels = images(&pixels, PIXELS)?;
    let labels = netmind_sdk::npy::read_file(netmind_sdk::asset_path(LABELS))?;
    let labels = integers(&labels).map_err(|e| Error::invalid(format!("{LABELS}: {e}")))?;
    let n = pixels.len() / FEATURES;
    if labels.len() != n {
        return Err(Error::invalid(format!(
            "{LABELS} has {} labels but {PIXELS} has {n} images",
            labels.len()
        )));
    }

    let predicted = classify(&mut context, &pixels, options.batch, |done| {
        netmind_sdk::progress(done as u64, n as u64, "classifying the held-out digits");
    })?;
    let confusion = confusion(&labels, &predicted)?;
    let correct = labels
        .iter()
        .zip(&predicted)
        .filter(|(a, b)| a == b)
        .count();
    let accuracy = if n == 0 {
        0.0
    } else {
        correct as f64 / n as f64
    };
    println!("accuracy: {accuracy:.4} ({correct}/{n})");
    print!("{}", format_confusion(&confusion));

    let expected_accuracy = expected_accuracy();
    if let Some(expected) = expected_accuracy {
        if format!("{expected:.4}") == format!("{accuracy:.4}") {
            println!("matches the accuracy train.py measured with onnxruntime ({expected:.4})");
        } else {
            println!(
                "warning: train.py measured {expected:.4} with onnxruntime; this host's backend gives \
                 {accuracy:.4}"
            );
        }
    }

    let input_digits = classify_inputs(&mut context, options.batch)?;
    Ok(Report {
        model,
        accuracy,
        n,
        correct,
        expected_accuracy,
        confusion,
        input_digits,
    })
}

/// The f32 pixels of a tensor of whole 8×8 images (`[64]`, `[N, 64]`, `[8, 8]`, `[N, 8, 8]`, ...).
fn images(tensor: &Tensor, file: &str) -> Result<Vec<f32>> {
    if tensor.ty() != TensorType::F32 {
        return Err(Error::invalid(format!(
            "{file}: pixels must be float32, not {}; save them with a.astype(numpy.float32)",
            tensor.ty()
        )));
    }
    if !tensor.len().is_multiple_of(FEATURES)
        || tensor.shape().last().is_none_or(|&d| d != 64 && d != 8)
    {
        return Err(Error::invalid(format!(
            "{file}: shape {:?} is not a stack of 8x8 images: use [N, 64] or [N, 8, 8]",
            tensor.shape()
        )));
    }
    Ok(tensor.to_f32()?)
}

/// The elements of an i64 or i32 tensor, as i64.
fn integers(tensor: &Tensor) -> Result<Vec<i64>> {
    match tensor.ty() {
        TensorType::I64 => Ok(tensor.to_i64()?),
        TensorType::I32 => Ok(tensor.to_i32()?.into_iter().map(i64::from).collect()),
        other => Err(Error::invalid(format!(
            "expected int64 (or int32) labels, found {other} {:?}",
            tensor.shape()
        ))),
    }
}

/// Runs the model on `pixels` (whole images, row-major) `batch` images at a time; returns the predicted
/// digit of each image. `progress` is called with the number of images done after each batch.
fn classify(
    context: &mut Context,
    pixels: &[f32],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<i64>> {
    let mut predicted = Vec::with_capacity(pixels.len() / FEATURES);
    for chunk in pixels.chunks(batch * FEATURES) {
        let rows = chunk.len() / FEATURES;
        let input = Tensor::from_f32([rows, FEATURES], chunk)?;
        // "0": the model's first input, whatever it is called (`pixels` in train.py's model).
        let outputs = context.compute(&[("0", &input)])?;
        predicted.extend(predictions(&outputs, rows)?);
        progress(predicted.len());
    }
    Ok(predicted)
}

/// The predicted digits in `outputs` for `rows` images: output `label` (i64 or i32), or else the argmax
/// of each row of `probabilities`.
fn predictions(outputs: &Outputs, rows: usize) -> Result<Vec<i64>> {
    let predicted = if let Some(label) = outputs.get("label") {
        integers(label).map_err(|e| Error::invalid(format!("output `label`: {e}")))?
    } else if let Some(probabilities) = outputs.get("probabilities") {
        let values = probabilities.to_f32()?;
        let classes = values.len().checked_div(rows).unwrap_or(0);
        if classes == 0 || values.len() != rows * classes {
            return Err(Error::invalid(format!(
                "output `probabilities` has shape {:?}; expected [{rows}, classes]",
                probabilities.shape()
            )));
        }
        values.chunks(classes).map(argmax).collect()
    } else {
        return Err(Error::invalid(format!(
            "the model has neither a `label` nor a `probabilities` output; its outputs are: {}",
            outputs.names().join(", ")
        )));
    };
    if predicted.len() != rows {
        return Err(Error::invalid(format!(
            "the model gave {} labels for {rows} images",
            predicted.len()
        )));
    }
    Ok(predicted)
}

/// The index of the largest value (the first on ties; NaN never wins).
fn argmax(values: &[f32]) -> i64 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best as i64
}

/// `matrix[true][predicted]` counts, over classes `0..=max(label, prediction)`.
fn confusion(labels: &[i64], predicted: &[i64]) -> Result<Vec<Vec<u64>>> {
    let max = labels.iter().chain(predicted).copied().max().unwrap_or(0);
    let min = labels.iter().chain(predicted).copied().min().unwrap_or(0);
    if min < 0 || max > 1000 {
        return Err(Error::invalid(format!(
            "labels must be digits 0..=1000, found {}",
            if min < 0 { min } else { max }
        )));
    }
    let classes = max as usize + 1;
    let mut matrix = vec![vec![0u64; classes]; classes];
    for (&truth, &guess) in labels.iter().zip(predicted) {
        matrix[truth as usize][guess as usize] += 1;
    }
    Ok(matrix)
}

/// The confusion matrix as text: a header of predicted digits, then one row per true digit.
fn format_confusion(matrix: &[Vec<u64>]) -> String {
    let width = matrix
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(matrix.len().to_string().len())
        + 1;
    let mut text = String::from("confusion matrix (rows: true digit, columns: predicted):\n    ");
    for class in 0..matrix.len() {
        text.push_str(&format!("{class:>width$}"));
    }
    text.push('\n');
    for (class, row) in matrix.iter().enumerate() {
        text.push_str(&format!("{class:>3}:"));
        for count in row {
            text.push_str(&format!("{count:>width$}"));
        }
        text.push('\n');
    }
    text
}

/// The accuracy in `expected-accuracy.txt`, if the bundle has a readable one.
fn expected_accuracy() -> Option<f64> {
    let text = std::fs::read_to_string(netmind_sdk::asset_path(EXPECTED)).ok()?;
    let parsed = text.split_whitespace().next()?.parse().ok();
    if parsed.is_none() {
        eprintln!("warning: {EXPECTED} does not hold a number; ignoring it");
    }
    parsed
}

/// Classifies the digits in every `/input/*.npy`, writes `/output/predictions.json` and returns how
/// many digits there were (0, writing nothing, when there are no such files).
fn classify_inputs(context: &mut Context, batch: usize) -> Result<usize> {
    let files: Vec<String> = netmind_sdk::inputs()?
        .into_iter()
        .map(|input| input.name)
        .filter(|name| !name.contains('/') && name.to_ascii_lowercase().ends_with(".npy"))
        .collect();
    let mut all = BTreeMap::new();
    let mut count = 0;
    for file in files {
        let tensor = netmind_sdk::npy::read_file(netmind_sdk::input_path(&file))?;
        let pixels = images(&tensor, &file)?;
        let predicted = classify(context, &pixels, batch, |_| {})?;
        let shown: Vec<String> = predicted.iter().map(ToString::to_string).collect();
        println!("{file}: {}", shown.join(" "));
        count += predicted.len();
        all.insert(file, predicted);
    }
    if !all.is_empty() {
        netmind_sdk::write_output_json("predictions.json", &all)?;
    }
    Ok(count)
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options {
        model_name: None,
        batch: DEFAULT_BATCH,
        target: Target::Cpu,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let value = inline
            .or_else(|| iter.next().cloned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::invalid(format!("{flag} needs a value; {USAGE}")));
        match flag {
            "--model-name" => options.model_name = Some(value?),
            "--batch" => {
                let value = value?;
                options.batch = value
                    .parse()
                    .ok()
                    .filter(|b| (1..=100_000).contains(b))
                    .ok_or_else(|| {
                        Error::invalid(format!("--batch must be 1 to 100000, not `{value}`"))
                    })?;
            }
            "--target" => {
                options.target = match value?.as_str() {
                    "cpu" => Target::Cpu,
                    "gpu" => Target::Gpu,
                    other => {
                        return Err(Error::invalid(format!(
                            "--target must be cpu or gpu, not `{other}`"
                        )));
                    }
                };
            }
            _ => return Err(Error::invalid(format!("unknown argument `{arg}`; {USAGE}"))),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(pairs: Vec<(&str, Tensor)>) -> Outputs {
        Outputs::new(pairs.into_iter().map(|(n, t)| (n.to_owned(), t)).collect())
    }

    #[test]
    fn predictions_prefer_label_then_argmax() {
        let probs = Tensor::from_f32([2, 3], &[0.1, 0.7, 0.2, 0.5, 0.2, 0.3]).unwrap();
        let both = outputs(vec![
            ("probabilities", probs.clone()),
            ("label", Tensor::from_i64([2], &[2, 2]).unwrap()),
        ]);
        assert_eq!(predictions(&both, 2).unwrap(), [2, 2]);
        let only_probs = outputs(vec![("probabilities", probs)]);
        assert_eq!(predictions(&only_probs, 2).unwrap(), [1, 0]);
        let i32_label = outputs(vec![("label", Tensor::from_i32([2, 1], &[4, 5]).unwrap())]);
        assert_eq!(predictions(&i32_label, 2).unwrap(), [4, 5]);
    }

    #[test]
    fn predictions_explain_what_is_missing() {
        let other = outputs(vec![("logits", Tensor::from_f32([1], &[0.0]).unwrap())]);
        assert_eq!(
            predictions(&other, 1).unwrap_err().to_string(),
            "the model has neither a `label` nor a `probabilities` output; its outputs are: logits"
        );
        let short = outputs(vec![("label", Tensor::from_i64([1], &[4]).unwrap())]);
        assert!(predictions(&short, 2).is_err());
        let float_label = outputs(vec![("label", Tensor::from_f32([1], &[4.0]).unwrap())]);
        assert!(
            predictions(&float_label, 1)
                .unwrap_err()
                .to_string()
                .starts_with("output `label`: expected int64")
        );
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.9, 0.9]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.2, 0.1]), 1);
        assert_eq!(argmax(&[3.0]), 0);
    }

    #[test]
    fn confusion_counts_and_prints() {
        let matrix = confusion(&[0, 1, 1, 2], &[0, 1, 2, 2]).unwrap();
        assert_eq!(matrix, [[1, 0, 0], [0, 1, 1], [0, 0, 1]]);
        assert_eq!(
            format_confusion(&matrix),
            "confusion matrix (rows: true digit, columns: predicted):\n     0 1 2\n  0: 1 0 0\n  1: 0 1 1\n  2: 0 0 1\n"
        );
        assert!(confusion(&[-1], &[0]).is_err());
    }

    #[test]
    fn images_must_be_whole_f32_digits() {
        let ok = Tensor::from_f32([2, 8, 8], &[0.5; 128]).unwrap();
        assert_eq!(images(&ok, "a.npy").unwrap().len(), 128);
        let wrong_type = Tensor::from_f64([1, 64], &[0.0; 64]).unwrap();
        assert!(
            images(&wrong_type, "a.npy")
                .unwrap_err()
                .to_string()
                .contains("float32")
        );
        let wrong_shape = Tensor::from_f32([2, 32], &[0.0; 64]).unwrap();
        assert!(
            images(&wrong_shape, "a.npy")
                .unwrap_err()
                .to_string()
                .contains("[N, 64]")
        );
    }

    #[test]
    fn parses_arguments() {
        let parse = |a: &[&str]| parse_args(&a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        let defaults = parse(&[]).unwrap();
        assert_eq!((defaults.batch, defaults.model_name), (64, None));
        let o = parse(&["--model-name", "digits", "--batch=10", "--target", "gpu"]).unwrap();
        assert_eq!(o.model_name.as_deref(), Some("digits"));
        assert_eq!((o.batch, o.target), (10, Target::Gpu));
        assert!(parse(&["--batch", "0"]).is_err());
        assert!(parse(&["--batch"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
