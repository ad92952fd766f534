//! The image-classify sample: classifies every PNG image in `/input` with an ONNX CNN through wasi-nn.
//!
//! Loads `/assets/cnn.onnx` (or `--model-name NAME`, a model the host registered) and the class names in
//! `/assets/labels.txt`, turns each PNG into an 8×8 grayscale image in `[0, 1]` (see the library), runs
//! all of them as one `[N, 1, 8, 8]` batch and writes `/output/labels.json`. Files that are not PNG
//! images are skipped with a warning. `samples/image-classify/train.py` trains the model.
//!
//! Run with: `netmind run samples/image-classify --input samples/image-classify/input`

use std::{collections::BTreeMap, process::ExitCode, time::Instant};

use netmind_sample_image_classify::{SIDE, decode_png, features, top_k};
use netmind_sdk::{
    Error, Result,
    nn::{Encoding, Graph, Outputs, Target, Tensor},
};
use serde::Serialize;

/// The model, in the bundle's assets.
const MODEL: &str = "cnn.onnx";
/// The class names, one a line (line `i` names class `i`), in the bundle's assets.
const LABELS: &str = "labels.txt";
/// The first bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// The usage line, shown with argument errors.
const USAGE: &str = "usage: image-classify [--model-name NAME] [--target cpu|gpu]";

/// One class and its probability.
#[derive(Debug, Clone, Serialize)]
struct Ranked {
    /// The class's name, from `labels.txt`.
    label: String,
    /// The class's number: its line in `labels.txt`, counting from 0.
    class: usize,
    probability: f32,
}

/// What `labels.json` says about one image.
#[derive(Debug, Serialize)]
struct Guess {
    /// The most probable class's name, from `labels.txt`.
    label: String,
    /// Its number.
    class: usize,
    probability: f32,
    /// The three most probable classes, most probable first.
    top3: Vec<Ranked>,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    /// `cnn.onnx` or `name:<registered name>`.
    model: String,
    images: usize,
    classes: usize,
    compute_ms: f64,
    /// File name → the predicted class's name.
    predictions: BTreeMap<String, String>,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let (model_name, target) = parse_args(&netmind_sdk::args())?;
        run(model_name.as_deref(), target)
    })
}

fn run(model_name: Option<&str>, target: Target) -> Result<Report> {
    let (files, pixels) = read_images()?;
    let n = files.len();
    let (graph, model) = match model_name {
        Some(name) => (Graph::load_by_name(name)?, format!("name:{name}")),
        None => {
            let bytes = netmind_sdk::read_asset(MODEL)?;
            let graph = Graph::load(&bytes, Encoding::Onnx, target)?;
            (graph, MODEL.to_owned())
        }
    };
    let mut context = graph.context()?;
    let batch = Tensor::from_f32([n, 1, SIDE, SIDE], &pixels)?;
    let started = Instant::now();
    // "0": the model's first input, whatever it is called (`image` in train.py's model).
    let outputs = context.compute(&[("0", &batch)])?;
    let compute_ms = started.elapsed().as_secs_f64() * 1000.0;
    netmind_sdk::progress(n as u64 + 1, n as u64 + 1, "classified");

    let probabilities = probabilities(&outputs, n)?;
    let classes = probabilities.len() / n;
    let names = class_names(classes)?;
    let mut labels = BTreeMap::new();
    let mut predictions = BTreeMap::new();
    for (file, row) in files.iter().zip(probabilities.chunks(classes)) {
        let top3: Vec<Ranked> = top_k(row, 3)
            .into_iter()
            .map(|(class, probability)| Ranked {
                label: names[class].clone(),
                class,
                probability,
            })
            .collect();
        let best = top3[0].clone();
        println!("{file}: {} (p={:.2})", best.label, best.probability);
        predictions.insert(file.clone(), best.label.clone());
        labels.insert(
            file.clone(),
            Guess {
                label: best.label,
                class: best.class,
                probability: best.probability,
                top3,
            },
        );
    }
    netmind_sdk::write_output_json("labels.json", &labels)?;
    Ok(Report {
        model,
        images: n,
        classes,
        compute_ms,
        predictions,
    })
}

/// Decodes every PNG in `/input` (sorted by name) into the model's input; returns the file names and
/// their pixels, `SIDE × SIDE` per image, concatenated. Files that are not PNGs are skipped with a
/// warning; a PNG that cannot be decoded is an error naming it.
fn read_images() -> Result<(Vec<String>, Vec<f32>)> {
    let inputs = netmind_sdk::inputs()?;
    let total = inputs.len() as u64 + 1;
    let mut files = Vec::new();
    let mut pixels = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let bytes = netmind_sdk::read_input(&input.name)?;
        if !bytes.starts_with(PNG_SIGNATURE) {
            eprintln!("warning: skipping {}: not a PNG image", input.name);
            continue;
        }
        let image =
            decode_png(&bytes).map_err(|e| Error::invalid(format!("{}: {e}", input.name)))?;
        pixels.extend(features(&image));
        files.push(input.name.clone());
        netmind_sdk::progress(i as u64 + 1, total, &input.name);
    }
    if files.is_empty() {
        return Err(Error::invalid(
            "no PNG images in /input; pass a directory of PNG images with `netmind run --input DIR`",
        ));
    }
    Ok((files, pixels))
}

/// The class probabilities for `n` images, row-major: output `probabilities`, else the first output.
fn probabilities(outputs: &Outputs, n: usize) -> Result<Vec<f32>> {
    let (name, tensor) = match outputs.get("probabilities") {
        Some(tensor) => ("probabilities", tensor),
        None => outputs
            .get_index(0)
            .ok_or_else(|| Error::invalid("the model returned no outputs"))?,
    };
    let values = tensor.to_f32()?;
    if n == 0 || values.is_empty() || !values.len().is_multiple_of(n) {
        return Err(Error::invalid(format!(
            "output `{name}` has shape {:?}; expected [{n}, classes]",
            tensor.shape()
        )));
    }
    Ok(values)
}

/// The names of `classes` classes from `labels.txt`, or the class numbers when the bundle has none.
fn class_names(classes: usize) -> Result<Vec<String>> {
    let text = match netmind_sdk::read_asset(LABELS) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(Error::MissingAsset { .. }) => {
            eprintln!("warning: no /assets/{LABELS}; naming classes by number");
            return Ok((0..classes).map(|c| c.to_string()).collect());
        }
        Err(e) => return Err(e),
    };
    parse_labels(&text, classes)
}

/// One name per non-empty line; there must be exactly `classes`.
fn parse_labels(text: &str, classes: usize) -> Result<Vec<String>> {
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() != classes {
        return Err(Error::invalid(format!(
            "{LABELS} names {} classes but the model gives {classes}",
            names.len()
        )));
    }
    Ok(names)
}

fn parse_args(args: &[String]) -> Result<(Option<String>, Target)> {
    let (mut model_name, mut target) = (None, Target::Cpu);
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
            "--model-name" => model_name = Some(value?),
            "--target" => {
                target = match value?.as_str() {
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
    Ok((model_name, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_must_match_the_classes() {
        let names = parse_labels("zero\none\n\ntwo\n", 3).unwrap();
        assert_eq!(names, ["zero", "one", "two"]);
        assert_eq!(
            parse_labels("a\nb\n", 3).unwrap_err().to_string(),
            "labels.txt names 2 classes but the model gives 3"
        );
    }

    #[test]
    fn probabilities_by_name_or_position() {
        let probs = Tensor::from_f32([2, 2], &[0.9, 0.1, 0.3, 0.7]).unwrap();
        let named = Outputs::new(vec![
            (
                "logits".into(),
                Tensor::from_f32([2, 2], &[0.0; 4]).unwrap(),
            ),
            ("probabilities".into(), probs.clone()),
        ]);
        assert_eq!(probabilities(&named, 2).unwrap(), [0.9, 0.1, 0.3, 0.7]);
        let unnamed = Outputs::new(vec![("output_0".into(), probs)]);
        assert_eq!(probabilities(&unnamed, 2).unwrap().len(), 4);
        assert!(probabilities(&unnamed, 3).is_err());
        assert!(probabilities(&Outputs::default(), 1).is_err());
    }

    #[test]
    fn parses_arguments() {
        let parse = |a: &[&str]| parse_args(&a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(parse(&[]).unwrap(), (None, Target::Cpu));
        assert_eq!(
            parse(&["--model-name=cnn", "--target", "gpu"]).unwrap(),
            (Some("cnn".into()), Target::Gpu)
        );
        assert!(parse(&["--target", "npu"]).is_err());
        assert!(parse(&["extra"]).is_err());
    }
}
